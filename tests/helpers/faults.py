"""Fault injection through the real command line: `--trainer.callbacks+=<class path>`."""

from __future__ import annotations

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
