"""Exploratory report of a configured dataset: `python scripts/eda.py --config configs/taiwan.yaml`.

Writes `reports/<config name>/report.html` (`--output` to change it); see `analysis/eda.py`.
"""

import sys

from analysis.eda import main
from lightning_modules.cli import run_entry_point

if __name__ == "__main__":
    run_entry_point(lambda: main(sys.argv[1:]))
