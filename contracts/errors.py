"""The errors a user can fix from the message alone, so the command line can tell them from bugs.

`scripts/main.py` (and every other entry point) prints a `UserFacingError` as one message
with a non-zero exit status; any other exception is a bug and keeps its traceback.
"""


class UserFacingError(Exception):
    """A mistake in the input, the configuration or the run, explained by its message."""


class DataValidationError(UserFacingError, ValueError):
    """Input data or data settings that cannot be used as given.

    Messages name the file, the column and the problem, and say what to change,
    because the person reading them usually did not make the file.
    """


class ConfigurationError(UserFacingError, ValueError):
    """An option outside its allowed values or range; the message names the option."""


class NonFiniteTrainingError(UserFacingError, RuntimeError):
    """Training produced NaN or infinity; the message says where and which checkpoint is good."""
