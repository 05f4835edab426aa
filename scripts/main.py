"""The command line: `python scripts/main.py {fit,validate,test,predict} --config configs/<x>.yaml`."""

from __future__ import annotations

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.callbacks import MetricsReport, SubmissionWriter
from lightning_modules.loan_model import LoanDefaultModel


class LoanCLI(LightningCLI):
    """LightningCLI with the two callbacks every run wants, configurable as top-level keys."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SubmissionWriter, "submission")
        parser.add_lightning_class_args(MetricsReport, "report")


def cli_main(args: list[str] | None = None) -> LoanCLI:
    return LoanCLI(
        LoanDefaultModel,
        LoanDataModule,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    cli_main()
