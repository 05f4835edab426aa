"""The command line: `python scripts/main.py {fit,test,predict} --config configs/<x>.yaml`."""

from __future__ import annotations

import os
from pathlib import Path

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49; the warnings are not the
# user's to act on, so keep them off the console unless asked for.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.callbacks import MetricsReport, SubmissionWriter
from lightning_modules.loan_model import LoanDefaultModel


class LoanCLI(LightningCLI):
    """LightningCLI with the two callbacks every run wants, configurable as top-level keys."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SubmissionWriter, "submission")
        parser.add_lightning_class_args(MetricsReport, "report")

    def before_instantiate_classes(self) -> None:
        """Name the TensorBoard run after the config file when the logger's name is null.

        `configs/taiwan.yaml` then logs to `logs/taiwan/version_N`, with one shared
        trainer file for every dataset.
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        logger = config.trainer.logger
        init_args = getattr(logger, "init_args", None)
        if init_args is None or "name" not in init_args or init_args.name is not None:
            return
        config_files = config.get("config") or []
        init_args.name = Path(str(config_files[-1])).stem if config_files else "run"


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
