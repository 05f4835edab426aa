"""Which combinations of categoricals the default keeps, dataset by dataset and seed by
seed, on the rows each kind of run tests them on: `python scripts/combinations.py
--datasets credit_risk@2pct --seeds 5 > before.jsonl`, one JSON line per seed.

Why: the benchmark reuses a stored run whose config and overrides match, not its code, so
after a change to the interactions' test someone decides which runs to repeat. A run whose
combinations are the same, in the same order, reads the same inputs, and its stored result
is what the new code computes; the others must run again. A bag (the default where it
bags, and the `bagged` model) fits its preprocessing, and so the test, on the training and
validation rows; one network (the default elsewhere, and `fast`) on the training rows. So
each seed is listed on both (`bag`, `one_network`), with whether the default bags there:
a listing of the training rows alone once chose the wrong bagged runs to repeat.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from benchmarking.runner import RunSpec, build_run_cli
from benchmarking.suite import SEEDS, derived_dataset
from datamodules.loan_datamodule import BAGGING_FOLDS, LoanDataModule
from lightning_modules.cli import without_lightning_notices
from lightning_modules.option_suggestions import OneLineArgumentParser


def default_datamodule(
    config: Path, data_args: Sequence[str], seed: int, folds: int | None = None
) -> LoanDataModule:
    """The default's data module for one seed as the benchmark builds it, not yet set up;
    with `folds`, that many bagging folds instead of the default's choice."""
    spec = RunSpec(
        dataset=config.stem,
        model="mlp",
        seed=seed,
        config=str(config),
        out_dir="",
        data_args=tuple(data_args),
    )
    fold_args = [] if folds is None else [f"--data.folds={folds}"]
    with without_lightning_notices():
        return build_run_cli(spec, ["--trainer.logger=false", *fold_args]).datamodule


def kept_combinations(
    config: Path, data_args: Sequence[str], seed: int, *, bag: bool
) -> list[list[str]]:
    """The combinations the default's preprocessing keeps on one seed's rows: a bag's
    (`bag`: the training and validation rows) or one network's (the training rows)."""
    datamodule = default_datamodule(config, data_args, seed, folds=BAGGING_FOLDS if bag else 1)
    datamodule.select_fold(0 if bag else None)
    datamodule.setup("fit")
    return [list(names) for names in datamodule.preprocessor.combination_columns_]


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", required=True, help="as the benchmark's")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds 0..N-1")
    parser.add_argument("--config-dir", type=Path, default=Path("configs"))
    parser.add_argument("--data-dir", help="folder of the datasets (default: $LOAN_DATA_DIR)")
    parser.add_argument("--data-args", default="", help="CLI overrides of the data section")
    options = parser.parse_args(argv)
    shared = shlex.split(options.data_args)
    if options.data_dir:
        shared.append(f"--data.data_dir={options.data_dir}")
    for dataset in options.datasets:
        base, derived = derived_dataset(dataset)
        config = options.config_dir / f"{base}.yaml"
        if not config.is_file():
            raise SystemExit(f"no config for dataset {dataset!r}: {config}")
        data_args = [*shared, *derived]
        for seed in range(options.seeds):
            default = default_datamodule(config, data_args, seed)
            record = {
                "dataset": dataset,
                "seed": seed,
                "default_bags": default.resolved_folds() > 1,
                "bag": kept_combinations(config, data_args, seed, bag=True),
                "one_network": kept_combinations(config, data_args, seed, bag=False),
            }
            print(json.dumps(record), flush=True)
    return 0
