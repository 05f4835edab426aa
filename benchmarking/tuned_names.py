"""How the benchmark names a tuned model (`lightgbm-tuned` searches `lightgbm`).

Apart from the searches (`benchmarking/tuned.py`) so that the runs of untuned models do not
import the tuning package: a run records the project code it executed
(`benchmarking/code_record.py`), and a change to the search would otherwise mark every run
as computed by changed code.
"""

TUNED_SUFFIX = "-tuned"
DEFAULT_TRIALS = 20


def tuned_name(model: str) -> str:
    return f"{model}{TUNED_SUFFIX}"


def untuned_name(model: str) -> str | None:
    """The model a tuned row searches (`lightgbm-tuned` -> `lightgbm`); None if not tuned."""
    return model.removesuffix(TUNED_SUFFIX) if model.endswith(TUNED_SUFFIX) else None
