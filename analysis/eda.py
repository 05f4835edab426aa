"""Exploratory report of a configured dataset: `python scripts/eda.py --config configs/taiwan.yaml`.

The data module is built by the training CLI's own parser from the same config (any
`--data.*` override passes through), so the report sees the rows, schema and split the
model would see. Writes `<output>/report.html` (default `reports/<config name>`).
"""

from __future__ import annotations

import time
from pathlib import Path

from analysis.profiling import profile_dataset
from analysis.report import print_summary, write_report
from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.cli import build_cli, config_name, without_lightning_notices
from lightning_modules.option_suggestions import OneLineArgumentParser, parser_options


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        description=__doc__,
        epilog="Every other argument (--config, --data.*) goes to the training CLI's parser.",
    )
    parser.add_argument("--output", type=Path, help="report folder (default reports/<config>)")
    parser.add_argument(
        "--rows",
        choices=("all", "train"),
        default="all",
        help="describe every labelled row (default) or the training split only",
    )
    return parser


def main(argv: list[str] | None = None) -> Path:
    parser = _parser()
    options, cli_args = parser.parse_known_args(argv)
    started = time.perf_counter()
    with without_lightning_notices():
        cli = build_cli(cli_args, script_options=list(parser_options(parser)))
    datamodule: LoanDataModule = cli.datamodule
    table = datamodule.labelled_table()
    profile = profile_dataset(table, datamodule.schema, source=datamodule.source, rows=options.rows)
    name = config_name(cli.config, default="dataset")
    report = write_report(profile, options.output or Path("reports") / name)
    print_summary(profile, report)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return report
