"""Callbacks that turn a run into something a person reads: metric tables and a submission file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from rich.console import Console
from rich.table import Table

from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.atomic import write_csv_atomically
from lightning_modules.metrics import binary_report

PROBABILITY_COLUMN = "default_probability"
LABEL_COLUMN = "predicted_default"


class MetricsReport(L.Callback):
    """Prints the final validation metrics after `fit` and the test metrics after `test`.

    On the synthetic loan book, whose true default probabilities are known, the test table
    also shows the Bayes-optimal classifier on the same rows (the true probability, cut at
    0.5): the ceiling no model can exceed on that data. It is logged as `test/bayes_*`.
    """

    def __init__(self) -> None:
        self.console = Console()

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = _stage_metrics(trainer, "val")
        if not metrics:
            return
        table = _metrics_table("Validation metrics (last epoch)", {"model": metrics})
        self.console.print(table)
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            best = checkpoint.best_model_score
            self.console.print(
                f"best {checkpoint.monitor} = {float(best):.4f}: {checkpoint.best_model_path}"
            )

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        columns = {"model": _stage_metrics(trainer, "test")}
        ceiling = self._bayes_ceiling(trainer)
        if ceiling:
            columns["Bayes ceiling"] = ceiling
            if trainer.logger is not None:
                trainer.logger.log_metrics(
                    {f"test/bayes_{name}": value for name, value in ceiling.items()},
                    step=trainer.global_step,
                )
        if trainer.is_global_zero:
            self.console.print(_metrics_table("Test metrics", columns))

    @staticmethod
    def _bayes_ceiling(trainer: L.Trainer) -> dict[str, float]:
        datamodule = trainer.datamodule
        if not isinstance(datamodule, LoanDataModule):
            return {}
        probability = datamodule.true_default_probability("test")
        if probability is None:
            return {}
        targets = datamodule.split_tensors("test").target
        report = binary_report(torch.from_numpy(probability), targets, threshold=0.5)
        return {name: float(report[name]) for name in ("roc_auc", "accuracy", "pr_auc", "log_loss")}


def _stage_metrics(trainer: L.Trainer, stage: str) -> dict[str, float]:
    prefix = f"{stage}/"
    return {
        name.removeprefix(prefix): float(value)
        for name, value in sorted(trainer.callback_metrics.items())
        if name.startswith(prefix)
    }


def _metrics_table(title: str, columns: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    names = list(next(iter(columns.values())))
    for name in names:
        cells = [f"{values[name]:.4f}" if name in values else "" for values in columns.values()]
        table.add_row(name, *cells)
    return table


class SubmissionWriter(BasePredictionWriter):
    """Writes `predict` output as CSV: id (when the file has one), probability, predicted label.

    The label uses the decision threshold chosen on validation and stored in the
    checkpoint. The file is written atomically.

    Args:
        output_path: where the CSV goes.
    """

    def __init__(self, output_path: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.output_path = output_path

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        if trainer.world_size > 1:
            raise RuntimeError("predict writes one file: run it on a single device")
        batches = (
            predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        )
        probability = torch.cat(batches).float().cpu().numpy()
        threshold = float(pl_module.decision_threshold)
        columns: dict[str, np.ndarray] = {}
        datamodule = trainer.datamodule
        if not isinstance(datamodule, LoanDataModule):
            raise TypeError("SubmissionWriter writes the predictions of a LoanDataModule's file")
        ids = datamodule.predict_ids()
        if ids is not None:
            columns[ids[0]] = ids[1]
        columns[PROBABILITY_COLUMN] = probability
        columns[LABEL_COLUMN] = (probability >= threshold).astype(np.int64)
        path = write_csv_atomically(pd.DataFrame(columns), self.output_path)
        rank_zero_info(
            f"wrote {len(probability)} predictions to {Path(path).resolve()} (decision "
            f"threshold {threshold:.4f}, {int(columns[LABEL_COLUMN].sum())} predicted defaults)"
        )
