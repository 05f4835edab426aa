"""Where training time goes: `python scripts/throughput.py [--scale 100000 1000000]`.

Prints the data-path, framework-overhead and scaling tables (`benchmarking/throughput.py`)
and writes them as JSON. Figures depend on the machine: benchmarks, not tests.
"""

import sys

from benchmarking.throughput import main
from lightning_modules.cli import run_entry_point

if __name__ == "__main__":
    run_entry_point(lambda: main(sys.argv[1:]))
