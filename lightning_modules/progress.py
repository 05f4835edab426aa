"""The console progress bar, updated every few training batches."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class StridedRichProgressBar(RichProgressBar):
    """Lightning's `RichProgressBar`, with the training bar and its metrics updated every
    `every_n_batches` batches and after an epoch's last one.

    Why: the stock bar updates its task and reads the logged metrics after every batch,
    which cost the 100,000-row book's training loop 12 % of its rows a second (43,000
    without a bar, 38,000 with it: `scripts/throughput.py`'s configured loop, one process
    on 2 cores), about 1 ms of a 12 ms step. At tens of batches a second, every 10th still
    moves the bar several times a second.

    Args:
        every_n_batches: training batches between two updates.
        **kwargs: `RichProgressBar`'s (`refresh_rate`, `leave`, `theme`, ...).
    """

    def __init__(self, every_n_batches: int = 10, **kwargs: Any) -> None:
        if every_n_batches < 1:
            raise ValueError(f"every_n_batches must be >= 1, got {every_n_batches}")
        super().__init__(**kwargs)
        self.every_n_batches = every_n_batches

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        done = batch_idx + 1
        if done % self.every_n_batches == 0 or done == self.total_train_batches:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        """Lightning's, with the version as text in `v_num`: Lightning keeps the last four
        characters of a version written as text ("ld_7" of a bag's "version_0/fold_7"),
        and Rich formats a numbered one as a float ("0.000")."""
        metrics = super().get_metrics(trainer, pl_module)
        version = trainer.logger.version if trainer.logger is not None else None
        if version is not None and "v_num" in metrics:
            metrics["v_num"] = str(version).rsplit("/", 1)[-1]
        return metrics

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Close the bar when training ends (Lightning closes it at teardown, after the
        fit's metrics table), so that its last state stands above that table rather than
        below the checkpoint's path as the run's last line."""
        self._stop_progress()
