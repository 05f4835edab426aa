"""The one exception type for bad input, so callers can tell user mistakes from bugs."""


class DataValidationError(ValueError):
    """Input data or configuration that cannot be used as given.

    Messages name the file, the column and the problem, and say what to change,
    because the person reading them usually did not make the file.
    """
