"""Hyperparameter search: `python scripts/tune.py --config configs/german.yaml --trials 20`.

Rerun the same command to resume; start it on several processes or machines to share the
study. Writes `tuning_results/<study>/`; see `tuning/tune.py` and `docs/tuning.md`.
"""

import sys

from lightning_modules.cli import run_entry_point
from tuning.tune import main

if __name__ == "__main__":
    run_entry_point(lambda: main(sys.argv[1:]))
