"""The seed-averaged benchmark: `python scripts/benchmark.py [--quick] [--datasets ...]`.

See `benchmarking/suite.py` for the options and outputs, BENCHMARKS.md for the scoreboard.
"""

import sys

if __name__ == "__main__":
    # Imported here: the benchmark's run processes import this file again (as the main
    # module of their fork server), and each run records the project code it imported.
    from benchmarking.suite import main
    from lightning_modules.cli import run_entry_point

    sys.exit(run_entry_point(lambda: main(sys.argv[1:])))
