"""One trial: a normal fit through the training CLI, with the trial's values as overrides.

The objective is the best epoch's validation ROC-AUC (the epoch a fit's best checkpoint
keeps), on the protocol's validation split of `data.seed`; the test split is never
touched. Each epoch's score goes to the trial as it is logged, so the pruner can stop a
poor trial early.
"""

from __future__ import annotations

import os
import shutil
import sys
from argparse import ArgumentError
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar

from contracts.errors import ConfigurationError, NonFiniteTrainingError
from lightning_modules.cli import LoanCLI, build_cli, drop_callbacks
from lightning_modules.loan_model import MONITOR
from tuning.space import SearchSpace, cli_overrides
from tuning.study import INTERRUPTED_KEY, StudyFolder

LOG_NAME = "fit.log"


class TuningCLI(LoanCLI):
    """The training CLI for a trial: no checkpoints and no per-step progress bar.

    A trial keeps its TensorBoard run and config, not its weights: the best trial's config
    is enough to refit it, and a checkpoint per trial would add up to gigabytes. The study
    prints one line per trial instead of a bar per epoch.
    """

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        drop_callbacks(self.config.trainer, (ModelCheckpoint, ProgressBar))
        self.config.trainer.enable_checkpointing = False
        self.config.trainer.enable_progress_bar = False


class TrialReporter(L.Callback):
    """After each validation epoch, reports the best validation ROC-AUC so far to the trial
    (its score if it stopped now) and stops the fit when the pruner says so.

    The best so far rather than the epoch's own score: on a small validation split one
    noisy epoch would otherwise prune a trial that has already scored well, and a pruned
    trial's last report is what TPE ranks it by.

    Written here rather than taken from optuna-integration's
    `PyTorchLightningPruningCallback`: that package is not a dependency (the `tune` extra
    is Optuna alone), and its callback raises `TrialPruned` inside the Lightning hook,
    which Lightning handles as a crash, so the pruned run's TensorBoard views would miss
    their end-of-fit figures. This one stops the fit the way early stopping does, and the
    objective raises `TrialPruned` once the fit has ended.
    """

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.pruned_at: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The model logs its validation metrics at epoch end, before this hook (as
        # EarlyStopping, which reads them here too, relies on).
        value = trainer.callback_metrics.get(MONITOR)
        if trainer.sanity_checking or value is None:
            return
        score, epoch = float(value), trainer.current_epoch
        if self.best is None or score > self.best:
            self.best, self.best_epoch = score, epoch
        self.trial.report(self.best, step=epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True


class TrialInterrupted(Exception):
    """Ctrl-C or SIGTERM ended a trial; `stop` is the exception that did.

    Lightning ends an interrupted fit with `SystemExit` (`sys.exit(1)` after Ctrl-C,
    `SIGTERMException` after SIGTERM), which Optuna does not catch: the trial would stay
    RUNNING until its heartbeat went stale. As an ordinary exception it is recorded as
    failed at once, and the study passes it on.
    """

    def __init__(self, stop: BaseException) -> None:
        super().__init__(f"interrupted by {type(stop).__name__}")
        self.stop = stop


@dataclass(frozen=True)
class TrialObjective:
    """Optuna's objective: the trial's values -> a fit -> the best validation ROC-AUC.

    Args:
        base_args: the training CLI's arguments shared by every trial
            (`SearchSpace.trial_args`: the config, the space's fixed settings, the user's
            overrides); the trial's values follow them.
        space: where the trial's values come from.
        folder: where the trial's TensorBoard run, config and log go.
    """

    base_args: tuple[str, ...]
    space: SearchSpace
    folder: StudyFolder

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.space.suggest(trial)
        overrides = cli_overrides(values)
        trial.set_user_attr("overrides", overrides)
        run_dir = self.folder.trial_dir(trial.number)
        shutil.rmtree(run_dir, ignore_errors=True)  # left by a deleted study of the same name
        run_dir.mkdir(parents=True)
        reporter = TrialReporter(trial)
        try:
            with output_to(run_dir / LOG_NAME):
                cli = self._build(trial.number, overrides, values, reporter)
                cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        except NonFiniteTrainingError as error:
            # A diverging learning rate is a poor value, not a broken study: pruned, TPE
            # ranks it below every finished trial.
            trial.set_user_attr("diverged", str(error))
            raise optuna.TrialPruned(f"diverged: {error}") from error
        except (KeyboardInterrupt, SystemExit) as stop:
            trial.set_user_attr(INTERRUPTED_KEY, True)  # its values run again on resuming
            raise TrialInterrupted(stop) from stop
        trial.set_user_attr("epochs", cli.trainer.current_epoch)
        trial.set_user_attr("best_epoch", reporter.best_epoch)
        if reporter.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
        if reporter.best is None:
            raise ConfigurationError(
                f"trial {trial.number} ran no validation epoch, so it has no {MONITOR}: check "
                "trainer.max_epochs and trainer.limit_val_batches"
            )
        return reporter.best

    def _build(
        self, number: int, overrides: list[str], values: dict[str, Any], reporter: TrialReporter
    ) -> LoanCLI:
        args = [
            *self.base_args,
            *overrides,
            f"--trainer.logger.init_args.save_dir={self.folder.root}",
            f"--trainer.logger.init_args.name={self.folder.tensorboard.name}",
            f"--trainer.logger.init_args.version={self.folder.trial_dir(number).name}",
            # One device per trial: with more, Lightning would start copies of this
            # script. Several workers (one per GPU) run trials side by side instead.
            "--trainer.devices=1",
        ]
        try:
            return build_cli(
                args,
                TuningCLI,
                trainer_defaults={"callbacks": [reporter]},
                save_config_kwargs={"overwrite": True},
            )
        except (ConfigurationError, ArgumentError) as error:
            raise ConfigurationError(
                f"{self.space.path}: trial {number}'s values {values} are not accepted by "
                f"the training CLI: {error}"
            ) from error


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's console output to a file for the duration.

    Redirected at the file-descriptor level, so that Lightning's log messages (whose
    handlers hold the terminal stream from import time) and native code's output follow,
    and at Python's level, for whatever replaced `sys.stdout` (a test's capture): the
    metrics table, warnings and messages all land in the trial's log, and the study's
    console keeps one line per trial.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    try:
        with open(path, "a", encoding="utf-8", buffering=1) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            with redirect_stdout(log), redirect_stderr(log):
                yield
    finally:
        for descriptor, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, descriptor)
            os.close(copy)
