"""The combinations of categoricals the default keeps, per dataset and seed:
`python scripts/combinations.py --datasets credit_risk@2pct --seeds 5`.

See `benchmarking/combinations.py` for why and what it prints.
"""

import sys

from benchmarking.combinations import main
from lightning_modules.cli import run_entry_point

if __name__ == "__main__":
    sys.exit(run_entry_point(lambda: main(sys.argv[1:])))
