"""The `LightningModule`: loss, optimiser, metrics and the decision threshold around the network."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC

from lightning_modules.metrics import (
    PredictionCollector,
    ThresholdObjective,
    binary_report,
    choose_threshold,
)
from lightning_modules.networks import Activation, LoanDefaultNet, Normalization

ClassWeighting = Literal["none", "balanced"]
MONITOR = "val/roc_auc"


class LoanDefaultModel(L.LightningModule):
    """Predicts P(default) for each applicant.

    The input description (`n_numeric`, `cardinalities`, `positive_rate`) is normally left
    unset: `configure_model` takes it from the fitted data module and writes it into the
    hyperparameters, so a checkpoint alone rebuilds the network (LightningCLI feeds a
    checkpoint's hyperparameters back for `test`/`predict --ckpt_path`). A link applied at
    instantiation would instead have to read and fit the training file before any
    checkpoint is restored, which `predict` must not need.

    Args:
        hidden_sizes: width of each MLP block.
        dropout, normalization, activation: per-block regularisation and non-linearity.
        embedding_max_dim: cap of the categorical embedding size rule.
        class_weighting: "balanced" weighs positives by negatives/positives in the loss.
        threshold_objective: what the validation-chosen decision threshold maximises.
        optimizer, scheduler: LightningCLI-injected; a ReduceLROnPlateau monitors val/loss.
    """

    def __init__(
        self,
        *,
        hidden_sizes: list[int] | None = None,
        dropout: float = 0.1,
        normalization: Normalization = "batchnorm",
        activation: Activation = "relu",
        embedding_max_dim: int = 16,
        class_weighting: ClassWeighting = "none",
        threshold_objective: ThresholdObjective = "accuracy",
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = None,
        n_numeric: int | None = None,
        cardinalities: list[int] | None = None,
        positive_rate: float | None = None,
    ) -> None:
        super().__init__()
        if class_weighting not in ("none", "balanced"):
            raise ValueError(
                f"class_weighting must be 'none' or 'balanced', got {class_weighting!r}"
            )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.net: LoanDefaultNet | None = None
        self.register_buffer("decision_threshold", torch.tensor(0.5))
        self.register_buffer("pos_weight", torch.tensor(1.0))
        self.train_metrics = MetricCollection(
            {"roc_auc": BinaryAUROC(), "accuracy": BinaryAccuracy()}, prefix="train/"
        )
        self.val_predictions = PredictionCollector()
        self.test_predictions = PredictionCollector()
        # The last validation epoch's (probabilities, targets), for TensorBoardViews' curves.
        self.last_val_predictions: tuple[torch.Tensor, torch.Tensor] | None = None
        if n_numeric is not None and cardinalities is not None and positive_rate is not None:
            self._build(n_numeric, cardinalities, positive_rate)

    def configure_model(self) -> None:
        """Build the network from the data module once its preprocessing is fitted."""
        datamodule = getattr(self.trainer, "datamodule", None)
        spec = getattr(datamodule, "feature_spec", None) if datamodule is not None else None
        if self.net is not None:
            if spec is not None:
                self._check_matches(spec.n_numeric, spec.cardinalities)
            return
        if spec is None:
            raise RuntimeError(
                "the network's inputs are unknown: use a data module with `feature_spec` or "
                "pass n_numeric, cardinalities and positive_rate"
            )
        self._build(spec.n_numeric, list(spec.cardinalities), spec.positive_rate)

    def _build(self, n_numeric: int, cardinalities: list[int], positive_rate: float) -> None:
        hp = self.hparams
        self.hparams.update(
            n_numeric=n_numeric, cardinalities=list(cardinalities), positive_rate=positive_rate
        )
        self.net = LoanDefaultNet(
            n_numeric=n_numeric,
            cardinalities=list(cardinalities),
            hidden_sizes=list(hp.hidden_sizes or [256, 256, 256]),
            dropout=hp.dropout,
            normalization=hp.normalization,
            activation=hp.activation,
            embedding_max_dim=hp.embedding_max_dim,
            positive_rate=positive_rate,
        )
        if hp.class_weighting == "balanced":
            self.pos_weight.fill_((1.0 - positive_rate) / positive_rate)

    def _check_matches(self, n_numeric: int, cardinalities: list[int]) -> None:
        if n_numeric != self.hparams.n_numeric or list(cardinalities) != list(
            self.hparams.cardinalities
        ):
            raise ValueError(
                "the checkpoint's network expects "
                f"{self.hparams.n_numeric} numeric inputs and categorical cardinalities "
                f"{self.hparams.cardinalities}, but the data gives {n_numeric} and "
                f"{list(cardinalities)}: the data's columns differ from the training file's."
            )

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Shape: x_num (B, n_numeric), x_cat (B, n_cat) -> (B,) default logits."""
        if self.net is None:
            raise RuntimeError("the network is not built yet (see configure_model)")
        return self.net(x_num, x_cat)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=self.pos_weight
        )

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x_num, x_cat, target = batch
        logits = self(x_num, x_cat)
        loss = self._loss(logits, target)
        self.train_metrics.update(torch.sigmoid(logits.detach()), target.long())
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(target)
        )
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_predictions)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_predictions)

    def _evaluate(
        self, batch: tuple[torch.Tensor, ...], stage: str, collector: PredictionCollector
    ) -> None:
        x_num, x_cat, target = batch
        logits = self(x_num, x_cat)
        loss = self._loss(logits, target)
        self.log(f"{stage}/loss", loss, batch_size=len(target), sync_dist=True)
        collector.update(torch.sigmoid(logits), target)

    def on_validation_epoch_end(self) -> None:
        """Choose the decision threshold on validation; the checkpoint saved now carries it."""
        probs, targets = self.val_predictions.compute()
        self.val_predictions.reset()
        self.last_val_predictions = (probs, targets)
        threshold = choose_threshold(probs, targets, self.hparams.threshold_objective)
        self.decision_threshold.fill_(threshold)
        self._log_report(probs, targets, "val")

    def on_test_epoch_end(self) -> None:
        probs, targets = self.test_predictions.compute()
        self.test_predictions.reset()
        self._log_report(probs, targets, "test")

    def _log_report(self, probs: torch.Tensor, targets: torch.Tensor, stage: str) -> None:
        report = binary_report(probs, targets, float(self.decision_threshold))
        self.log_dict({f"{stage}/{name}": value for name, value in report.items()}, sync_dist=False)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x_num, x_cat, _ = batch
        return torch.sigmoid(self(x_num, x_cat))

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"},
            }
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
