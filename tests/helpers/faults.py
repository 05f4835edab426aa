"""Fault injection through the real command line: `--trainer.callbacks+=<class path>`."""

from __future__ import annotations

import os
import signal
from typing import Any

import lightning as L


class LearningRateJump(L.Callback):
    """Multiplies every learning rate by `factor` when epoch `epoch` starts.

    A factor of 1e30 makes the next step's loss NaN (a diverging run); 0 freezes the weights,
    so that (without batch norm) no later epoch improves on the first.
    """

    def __init__(self, epoch: int = 1, factor: float = 1e30) -> None:
        self.epoch = epoch
        self.factor = factor

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.epoch:
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] *= self.factor


class SignalAtBatch(L.Callback):
    """Sends this process `signal_name` (e.g. "SIGTERM") after batch `batch` of epoch `epoch`.

    An interruption at a known step, as a user's `kill` or Ctrl-C would land there: a test
    that watched for a checkpoint file and signalled from outside raced the fit, and on a
    loaded single core the fit sometimes finished first.
    """

    def __init__(self, epoch: int, batch: int, signal_name: str, fold: int | None = None) -> None:
        self.epoch = epoch
        self.batch = batch
        self.signal = signal.Signals[signal_name]
        self.fold = fold  # in a bag, only that fold's fit (its logger version ends fold_<j>)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        version = str(trainer.logger.version) if trainer.logger is not None else ""
        if self.fold is not None and not version.endswith(f"fold_{self.fold}"):
            return
        if trainer.current_epoch == self.epoch and index == self.batch:
            os.kill(os.getpid(), self.signal)
