"""The seed-averaged benchmark: `python scripts/benchmark.py [--quick] [--datasets ...]`.

See `benchmarking/suite.py` for the options and outputs, BENCHMARKS.md for the scoreboard.
"""

import sys

from benchmarking.suite import main
from lightning_modules.cli import run_entry_point

if __name__ == "__main__":
    sys.exit(run_entry_point(lambda: main(sys.argv[1:])))
