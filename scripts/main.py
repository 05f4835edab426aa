"""The command line: `python scripts/main.py {fit,test,predict} --config configs/<x>.yaml`."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49, and a torch pytree API
# deprecated in 2.13; the warnings are not the user's to act on, so keep them off the console.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.callbacks import MetricsReport, SubmissionWriter
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.resume import find_last_checkpoint

warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")


class LoanCLI(LightningCLI):
    """LightningCLI with the two callbacks every run wants, configurable as top-level keys."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SubmissionWriter, "submission")
        parser.add_lightning_class_args(MetricsReport, "report")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._name_run_after_config(config)
        if config.get("weights_only", False) is None:
            config.weights_only = True  # checkpoints hold plain tensors: never unpickle code
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            self._continue_last_version(config)

    @staticmethod
    def _name_run_after_config(config: Namespace) -> None:
        """Name the TensorBoard run after the config file when the logger's name is null.

        `configs/taiwan.yaml` then logs to `logs/taiwan/version_N`, with one shared
        trainer file for every dataset.
        """
        logger = config.trainer.logger
        init_args = getattr(logger, "init_args", None)
        if init_args is None or "name" not in init_args or init_args.name is not None:
            return
        config_files = config.get("config") or []
        init_args.name = Path(str(config_files[-1])).stem if config_files else "run"

    @staticmethod
    def _continue_last_version(config: Namespace) -> None:
        """`fit --ckpt_path last`: resume the newest `last.ckpt` of this run, in its version.

        Lightning would look only in the new version's empty folder and start over. (With
        a fixed logger version it looks in the right folder already.)
        """
        init_args = getattr(config.trainer.logger, "init_args", None)
        if init_args is None or not all(k in init_args for k in ("save_dir", "name", "version")):
            return
        if init_args.version is not None:
            return
        last = find_last_checkpoint(Path(init_args.save_dir) / str(init_args.name))
        if last is not None:
            config.ckpt_path = str(last.path)
            init_args.version = last.version


def cli_main(args: list[str] | None = None) -> LoanCLI:
    return LoanCLI(
        LoanDefaultModel,
        LoanDataModule,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    try:
        cli_main()
    except SIGTERMException:  # Lightning exits 0 on SIGTERM; a stopped run is not a success
        sys.exit(128 + signal.SIGTERM)
