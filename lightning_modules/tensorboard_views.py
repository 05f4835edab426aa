"""What a run shows in TensorBoard beyond the scalars the model logs itself.

* IMAGES / PR CURVES: at the end of validation (every `every_n_epochs` epochs and after
  the last one), the ROC and precision-recall curves, the Kolmogorov-Smirnov chart, the
  confusion matrix at the model's decision threshold and a reliability diagram of the
  validation predictions, plus TensorBoard's native interactive PR curve; after `test`,
  the same of the test rows.
* HPARAMS: the model's hyperparameters, the data module's settings (dataset, seed,
  scaling...), the optimiser's and the global seed, declared with every validation and
  test metric, so runs can be sorted and compared side by side on any of them. The
  values shown are the last ones each run logged under those tags.
* PROJECTOR: at the end of fitting, each categorical column's learned embedding table,
  one point per code labelled with its category value and training rows / default rate.

The logger must be a `TensorBoardLogger(default_hp_metric=False)` (as
`configs/shared/trainer.yaml` sets); with any other logger the callback does nothing.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams

from contracts.evaluation import EvaluationOutputs, InspectableModel
from contracts.features import FittedTabularData
from lightning_modules.evaluation_figures import (
    confusion_figure,
    ks_figure,
    precision_recall_figure,
    reliability_figure,
    roc_figure,
)
from lightning_modules.metrics import CALIBRATION_BINS, binary_report
from lightning_modules.optimizers import OPTIMIZER_SETTINGS, optimizer_settings

METADATA_HEADER = ["level", "train_rows", "train_default_rate"]
# Hyperparameters some runs lack (a test of a checkpoint from before fit records, or a bag's
# run, has no optimiser; only a test names a checkpoint), with a value of each one's type.
OPTIONAL_HPARAMS: dict[str, bool | int | float | str] = {
    "ckpt_path": "",
    "trainer/max_epochs": 0,
    "optimizer/class": "",
    **{f"optimizer/{name}": "" if name == "betas" else 0.0 for name in OPTIMIZER_SETTINGS},
}
EXTRA_METRICS = ("train/loss_epoch", "train/roc_auc", "train/accuracy", "val/loss", "test/loss")


class TensorBoardViews(L.Callback):
    """Curves, hyperparameters and embeddings for TensorBoard.

    Args:
        every_n_epochs: draw the validation curves every this many epochs, unless the
            fit's last epoch comes sooner: they are always drawn after the last one (the
            planned budget's, or an early stop's). A drawing costs about a second on CPU.
        calibration_bins: equal-width bins of the reliability diagram (the protocol's
            expected calibration error uses 15).
        embeddings: export the categorical embeddings to the projector at the end of fit.
        figures: draw the validation figures. A bag's folds do not (`LoanCLI.fit_bagged`
            turns it off): the bag draws them once, for its out-of-fold predictions,
            where 13 drawings in the folds took a quarter of german's fit.
    """

    def __init__(
        self,
        every_n_epochs: int = 5,
        calibration_bins: int = CALIBRATION_BINS,
        embeddings: bool = True,
        figures: bool = True,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if calibration_bins < 2:
            raise ValueError(f"calibration_bins must be >= 2, got {calibration_bins}")
        self.every_n_epochs = every_n_epochs
        self.calibration_bins = calibration_bins
        self.embeddings = embeddings
        self.figures = figures
        self._hparams_written: set[str] = set()
        self._curves_step: int | None = None

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write_hparams(trainer, pl_module)

    @rank_zero_only
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write_hparams(trainer, pl_module)

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _tensorboard_logger(trainer)
        outputs = pl_module.test_outputs if isinstance(pl_module, InspectableModel) else None
        if logger is None or outputs is None:
            return
        self.write_figures(logger, outputs, trainer.global_step, stage="test", rows="test")

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The model computes the epoch's predictions in on_validation_epoch_end, which
        # Lightning calls after the callbacks' one: on_validation_end is the first hook
        # where they are ready.
        epochs_done = trainer.current_epoch + 1
        if trainer.sanity_checking or epochs_done % self.every_n_epochs:
            return
        if (
            trainer.max_epochs is not None
            and 0 <= trainer.max_epochs - epochs_done < self.every_n_epochs
        ):
            return  # the end of the fit, where they are drawn anyway, comes sooner
        self._write_curves(trainer, pl_module)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._curves_step != trainer.global_step:
            self._write_curves(trainer, pl_module)
        if self.embeddings:
            self._write_embeddings(trainer, pl_module)

    def _write_hparams(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Declare hyperparameters and metrics once per run folder.

        Written directly rather than through `logger.log_hyperparams(params, metrics)`,
        which would also log each metric's placeholder value as a scalar at step 0 and
        put a false first point on every validation curve.
        """
        logger = _tensorboard_logger(trainer)
        if logger is None or logger.log_dir in self._hparams_written:
            return
        params = run_hyperparameters(trainer, pl_module)
        if trainer.ckpt_path and not trainer.training:
            # A `test` run is a version of its own: which model it scored.
            params["ckpt_path"] = str(trainer.ckpt_path)
        self.write_hparams(logger, params)

    def write_hparams(self, logger: TensorBoardLogger, params: dict[str, Any]) -> None:
        """Declare these hyperparameters and every metric for the logger's run folder."""
        logger.log_hyperparams(params)  # kept in the run's hparams.yaml
        metrics = dict.fromkeys(metric_tags(), 0.0)
        _, start, end = hparams(params, metrics)
        # TensorBoard takes its columns from the first run's declaration it reads: declare
        # the keys only some runs have (a fit's optimiser, a test's checkpoint) in every run.
        experiment, _, _ = hparams(OPTIONAL_HPARAMS | params, metrics)
        writer = logger.experiment.file_writer
        for summary in (experiment, start, end):
            writer.add_summary(summary)
        self._hparams_written.add(logger.log_dir)

    def _write_curves(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _tensorboard_logger(trainer)
        outputs = pl_module.validation_outputs if isinstance(pl_module, InspectableModel) else None
        if logger is None or outputs is None or not self.figures:
            return
        # The epoch in the title: the last figures are the last epoch's, which need not be
        # the kept (best) one, nor its threshold.
        rows = f"validation, epoch {trainer.current_epoch}"
        self.write_figures(logger, outputs, trainer.global_step, stage="val", rows=rows)
        self._curves_step = trainer.global_step

    def write_figures(
        self,
        logger: TensorBoardLogger,
        outputs: EvaluationOutputs,
        step: int,
        *,
        stage: str,
        rows: str,
    ) -> None:
        """The `<stage>/*` figures and PR curve of these predictions: a fit's validation
        epoch, a bag's out-of-fold rows (`stage` "val", `rows` "out-of-fold") or the test
        rows. `rows` names them in each figure's title."""
        probs = outputs.probabilities.detach().float().cpu()
        targets = outputs.targets.detach().float().cpu()
        threshold = outputs.threshold
        figures = {
            "roc_curve": roc_figure(probs, targets, threshold, rows),
            "precision_recall_curve": precision_recall_figure(probs, targets, threshold, rows),
            "ks_curve": ks_figure(probs, targets, rows),
            "confusion_matrix": confusion_figure(probs, targets, threshold, rows),
            "reliability_diagram": reliability_figure(probs, targets, rows, self.calibration_bins),
        }
        for name, figure in figures.items():
            logger.experiment.add_figure(f"{stage}/{name}", figure, global_step=step)
        logger.experiment.add_pr_curve(f"{stage}/pr_curve", targets.long(), probs, global_step=step)

    def _write_embeddings(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _tensorboard_logger(trainer)
        datamodule = trainer.datamodule
        if (
            logger is None
            or not isinstance(pl_module, InspectableModel)
            or not isinstance(datamodule, FittedTabularData)
        ):
            return
        train = datamodule.split_tensors("train")
        tables = pl_module.categorical_embedding_weights()
        for index, ((column, labels), weight) in enumerate(
            zip(datamodule.code_labels().items(), tables, strict=True)
        ):
            logger.experiment.add_embedding(
                weight.detach().cpu(),
                metadata=embedding_metadata(labels, train.categorical[:, index], train.target),
                metadata_header=METADATA_HEADER,
                tag=column,
                global_step=trainer.global_step,
            )


def run_hyperparameters(
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    datamodule: L.LightningDataModule | None = None,
) -> dict[str, Any]:
    """Flat {name: bool | int | float | str} of everything that defines the run.

    Leaves out LightningCLI's internal keys, the data module's prediction-time settings
    and the optimiser's implementation switches (foreach, fused...). The data module's
    settings are read from its attributes (it stores each constructor argument under the
    same name) because it does not call `save_hyperparameters`: its read options are a
    dataclass, which would stop checkpoints from loading with `weights_only=True`.
    `datamodule`: where the trainer has none attached (a bag's run, whose trainer never fits).
    """
    params = flat_settings(
        {name: value for name, value in pl_module.hparams.items() if not name.startswith("_")}
    )
    # `auto` as the fit resolved it (the loan model's epochs and schedule).
    resolved = getattr(pl_module, "resolved_settings", None)
    if callable(resolved):
        params |= resolved()
    datamodule = datamodule or trainer.datamodule
    if datamodule is not None:
        for name in inspect.signature(type(datamodule).__init__).parameters:
            if name.startswith("predict_") or not hasattr(datamodule, name):
                continue
            value = getattr(datamodule, name)
            if is_dataclass(value) and not isinstance(value, type):
                params |= {f"data/{name}/{key}": item for key, item in asdict(value).items()}
            else:
                params[f"data/{name}"] = value
        # `auto` as the data resolved it (the loan data module's batch size and folds).
        resolved = getattr(datamodule, "resolved_settings", None)
        if callable(resolved):
            params |= {f"data/{name}": value for name, value in resolved().items()}
    for optimizer in trainer.optimizers[:1]:
        params |= optimizer_settings(optimizer)
    params["seed_everything"] = os.environ.get("PL_GLOBAL_SEED", "None")
    return {name: _hparam_value(value) for name, value in params.items()}


def metric_tags() -> list[str]:
    """Every validation and test metric the model logs, in the names it logs them under.

    The protocol's metric set is whatever `binary_report` returns, so its keys are read
    from a two-row report rather than copied here, where they would drift.
    """
    names = binary_report(torch.tensor([0.25, 0.75]), torch.tensor([0.0, 1.0]), 0.5)
    return [f"{stage}/{name}" for stage in ("val", "test") for name in names] + list(EXTRA_METRICS)


def embedding_metadata(
    labels: list[str], codes: torch.Tensor, targets: torch.Tensor
) -> list[list[str]]:
    """One projector row per code: label, training rows and training default rate."""
    size = len(labels)
    rows = torch.bincount(codes, minlength=size)
    defaults = torch.bincount(codes, weights=targets.double(), minlength=size)
    return [
        [
            " ".join(str(label).split()),  # TSV: no tabs or newlines inside a label
            str(int(count)),
            f"{float(default) / int(count):.4f}" if count else "",
        ]
        for label, count, default in zip(labels, rows, defaults, strict=True)
    ]


def flat_settings(
    values: Mapping[str, Any], separator: str = "/", prefix: str = ""
) -> dict[str, Any]:
    """Nested settings as one key each, joined by `separator`: HPARAMS' columns (`net/dropout`,
    `net/n_bins`), or a config's options as the command line names them (`model.net.dropout`)."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            flat |= flat_settings(value, separator, f"{prefix}{name}{separator}")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return str(value)


def _tensorboard_logger(trainer: L.Trainer) -> TensorBoardLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
