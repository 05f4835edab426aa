"""Callbacks that turn a run into something a person reads: metric tables, the gains table and
the model card after `test`, and the submission file (with scorecard points, reason codes
and a population stability report) after `predict`."""

from __future__ import annotations

import importlib.util
import os
import pickle
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts.choices import check_range
from contracts.errors import ConfigurationError
from contracts.evaluation import EvaluationOutputs, InspectableModel
from contracts.wording import counted
from datamodules.io import resolve_data_path
from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.atomic import write_csv_atomically, write_text_atomically
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.metrics import CALIBRATION_BINS, binary_report
from lightning_modules.tensorboard_views import metric_tags, run_hyperparameters
from risk.attribution import column_contributions, top_reasons
from risk.bootstrap import bootstrap_intervals
from risk.discrimination import kolmogorov_smirnov
from risk.gains import cutoff_tradeoff, defaults_format, gains_table
from risk.model_card import ModelCard, render_model_card
from risk.scorecard import ScorecardScaling
from risk.stability import (
    MIN_JUDGED_ROWS,
    SHIFTED,
    TOO_FEW_ROWS,
    WATCH,
    BinnedDistribution,
    Kind,
    distribution_summary,
    stability_table,
)

PROBABILITY_COLUMN = "default_probability"
LABEL_COLUMN = "predicted_default"
POINTS_COLUMN = "points"
GAINS_FILE = "gains_table.csv"
MODEL_CARD_FILE = "model_card.md"
BAND_STYLES = {"stable": "green", "watch": "yellow", "shifted": "bold red", TOO_FEW_ROWS: "dim"}


class MetricsReport(L.Callback):
    """Prints the final validation metrics after `fit` and the test metrics after `test`.

    On the synthetic loan book, whose true default probabilities are known, the test table
    also shows the Bayes-optimal classifier on the same rows (the true probability, cut at
    0.5): the ceiling no model can exceed on that data. It is logged as `test/bayes_*`.

    After `test` it also prints the gains table of the test scores and writes it, with the
    model card (`risk/model_card.py`), into the run's log folder: `gains_table.csv` and
    `model_card.md`.

    Args:
        n_bands: bands of equal size in the gains table (10: deciles).
        bootstrap_resamples: resamples of the test rows behind the model card's 95 %
            intervals (fixed seed; 500 resamples of 30,000 rows take about 4 s on 2 cores).
    """

    def __init__(self, n_bands: int = 10, bootstrap_resamples: int = 500) -> None:
        check_range("report.n_bands", n_bands, low=1)
        check_range("report.bootstrap_resamples", bootstrap_resamples, low=1)
        self.n_bands = n_bands
        self.bootstrap_resamples = bootstrap_resamples
        self.console = Console()
        # Each validated epoch's metrics in this fit, by epoch: the kept one's are printed.
        self._epoch_metrics: dict[int, dict[str, float]] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_metrics = {}  # a bag's next fold starts afresh

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._epoch_metrics[trainer.current_epoch] = _stage_metrics(trainer, "val")

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The validation metrics of the checkpoint that `test` and `predict` will use (the
        last epoch's where this fit did not see the kept epoch: resumed after it)."""
        metrics = _stage_metrics(trainer, "val")
        if not metrics:
            return
        fold = getattr(trainer.datamodule, "selected_fold", None)
        # A bag's fold: its own early-stopping rows, not the bag's out-of-fold figures.
        rows = "" if fold is None else f", fold {fold} of the bag"
        checkpoint = _monitoring_checkpoint(trainer)
        best = None if checkpoint is None else checkpoint.best_model_score
        kept = _kept_epoch(checkpoint)
        if kept in self._epoch_metrics:
            title = f"Validation metrics (epoch {kept}, the checkpoint kept{rows})"
            metrics = self._epoch_metrics[kept]
        else:
            title = f"Validation metrics (last epoch{rows})"
        self.console.print(_metrics_table(title, {"model": metrics}))
        if checkpoint is not None and best is not None:
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
        folder = Path(trainer.log_dir or trainer.default_root_dir)  # a collective call
        outputs = pl_module.test_outputs if isinstance(pl_module, InspectableModel) else None
        if trainer.is_global_zero:
            self.console.print(_metrics_table("Test metrics", columns))
            if outputs is not None:
                on_cpu = EvaluationOutputs(
                    outputs.probabilities.cpu(), outputs.targets.cpu(), outputs.threshold
                )
                self._write_test_reports(trainer, pl_module, on_cpu, folder)

    def _write_test_reports(
        self,
        trainer: L.Trainer,
        model: LoanDefaultModel,
        outputs: EvaluationOutputs,
        folder: Path,
    ) -> None:
        """The gains table (printed, CSV) and the model card. Shape: outputs on the CPU."""
        probs, targets = outputs.probabilities.numpy(), outputs.targets.numpy()
        gains = gains_table(probs, targets, self.n_bands)
        self.console.print(_gains_rich_table(gains))
        write_csv_atomically(gains, folder / GAINS_FILE)
        written = [GAINS_FILE]
        datamodule = trainer.datamodule
        if isinstance(datamodule, LoanDataModule):
            card = self._model_card(trainer, model, datamodule, outputs, gains)
            write_text_atomically(render_model_card(card), folder / MODEL_CARD_FILE)
            written.append(MODEL_CARD_FILE)
        rank_zero_info(f"wrote {' and '.join(written)} to {folder.resolve()}")

    def _model_card(
        self,
        trainer: L.Trainer,
        model: LoanDefaultModel,
        datamodule: LoanDataModule,
        outputs: EvaluationOutputs,
        gains: pd.DataFrame,
    ) -> ModelCard:
        probs, targets, threshold = outputs.probabilities, outputs.targets, outputs.threshold
        unused = {f"net/{name}" for name in model.settings.unused_settings()}
        settings = {
            name: value
            for name, value in run_hyperparameters(trainer, model).items()
            if not name.startswith("data/") and name not in unused
        }
        return ModelCard(
            title=datamodule.source,
            data=_data_facts(datamodule, trainer.ckpt_path, model.bagged_folds),
            settings=settings,
            metrics=bootstrap_intervals(
                probs,
                targets,
                threshold,
                calibration_bins=CALIBRATION_BINS,
                resamples=self.bootstrap_resamples,
            ),
            resamples=self.bootstrap_resamples,
            ks_cutoff=float(kolmogorov_smirnov(probs, targets).cutoff),
            temperature=float(model.temperature),
            tradeoff=cutoff_tradeoff(probs.numpy(), targets.numpy(), threshold),
            gains=gains,
            training=distribution_summary(*_reference_distributions(datamodule, model)),
            bagged_folds=model.bagged_folds,
            saved_epoch=model.saved_epoch,
            fold_epochs=tuple(model.fold_epochs),
        )

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


def _kept_epoch(checkpoint: ModelCheckpoint | None) -> int | None:
    """The epoch of the checkpoint kept, read from its file: after a resume, a later epoch
    that only ties the kept score (not saved: the checkpoint saves on a strict improvement)
    is not it, and the score alone could not tell them apart."""
    path = None if checkpoint is None else checkpoint.best_model_path
    if not path or not Path(path).is_file():
        return None
    try:  # mmap: the epoch is read without loading the weights
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except (OSError, RuntimeError, pickle.UnpicklingError, KeyError, TypeError, ValueError):
        return None  # a file that cannot say: the table is the last epoch's, the fit stands


def _monitoring_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The trainer's checkpoint callback where it keeps a best epoch by a monitor."""
    checkpoint = trainer.checkpoint_callback
    return checkpoint if isinstance(checkpoint, ModelCheckpoint) and checkpoint.monitor else None


def _stage_metrics(trainer: L.Trainer, stage: str) -> dict[str, float]:
    """A stage's logged metrics: the protocol's in `binary_report`'s order (Gini and KS
    beside ROC-AUC), then the others by name."""
    prefix = f"{stage}/"
    protocol = [tag for tag in metric_tags() if tag.startswith(prefix)]
    logged = sorted(
        (name for name in trainer.callback_metrics if name.startswith(prefix)),
        key=lambda name: (protocol.index(name) if name in protocol else len(protocol), name),
    )
    return {name.removeprefix(prefix): float(trainer.callback_metrics[name]) for name in logged}


def _gains_rich_table(gains: pd.DataFrame) -> Table:
    table = Table(title=f"Test gains table ({len(gains)} bands of equal size, riskiest first)")
    for name in ("band", "default probability", "rows", "defaults", "rate", "captured", "lift"):
        table.add_column(name, justify="right")
    defaults = defaults_format(gains)
    for row in gains.itertuples(index=False):
        table.add_row(
            str(row.band),
            f"{row.score_from:.4f}-{row.score_to:.4f}",
            f"{row.rows:,}",
            defaults.format(row.defaults),
            f"{row.default_rate:.2%}",
            f"{row.captured:.1%}",
            f"{row.lift:.2f}",
        )
    return table


def _data_facts(
    datamodule: LoanDataModule, checkpoint: str | None, bagged_folds: int
) -> dict[str, str]:
    """The model card's data section: the file, its rows and default rate, the split (a
    bag's networks trained on every non-test row, each early-stopped on its own fold)."""
    labelled = datamodule.labelled_table()
    targets = labelled.targets

    def part(rows: np.ndarray) -> str:
        return f"{len(rows):,} rows, default rate {targets[rows].mean():.2%}"

    split = labelled.split
    if bagged_folds:
        fitted = {
            f"train and validation ({bagged_folds} folds)": part(
                np.concatenate([split.train, split.val])
            )
            + f"; each of the {bagged_folds} networks trained on {bagged_folds - 1} "
            + ("fold" if bagged_folds == 2 else "folds")
            + " and was early-stopped on the other",
        }
    else:
        fitted = {"train": part(split.train), "validation": part(split.val)}
    return {
        "file": datamodule.source,
        "rows": f"{len(targets):,}",
        "default rate": f"{targets.mean():.2%}",
        **fitted,
        "test": part(split.test),
        "split": f"stratified, seed {datamodule.seed}",
        "checkpoint": str(checkpoint),
    }


def _reference_distributions(
    datamodule: LoanDataModule, model: LoanDefaultModel
) -> tuple[dict[str, BinnedDistribution], dict[str, Kind]]:
    """The training distributions `predict` compares new files with: the score's (kept by
    the model), then each feature's (kept by the data module)."""
    reference: dict[str, BinnedDistribution] = {}
    kinds: dict[str, Kind] = {}
    score = model.score_reference()
    if score is not None:
        reference[PROBABILITY_COLUMN], kinds[PROBABILITY_COLUMN] = score, "score"
    for name, distribution in datamodule.feature_distributions().items():
        reference[name] = distribution
        kinds[name] = "numeric" if distribution.cuts is not None else "categorical"
    return reference, kinds


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
    """Writes `predict` output as CSV: id (when the file has one), probability, predicted label,
    and on request scorecard points and reason codes; then reports population stability.

    The label uses the decision threshold chosen on validation and stored in the
    checkpoint. The file is written atomically. Next to it, `<name>.psi.csv` holds the
    population stability index of every feature and of the score against their training
    distributions (printed as a table, the most shifted first; `risk/stability.py`).

    Args:
        output_path: where the CSV goes.
        points: add a `points` column: base_points + pdo / ln 2 x ln(odds / base_odds), the
            odds of not defaulting (`risk/scorecard.py`); higher is safer.
        base_points, base_odds, pdo: the scale: base_points at base_odds to 1, and the
            points that double the odds (600 at 50:1, 20).
        reason_codes: k > 0 adds, per applicant, the k columns that raised the predicted
            risk the most against a typical applicant (`reason_1`..`reason_k`) and their
            contributions to the logit (`reason_1_contribution`..), from integrated
            gradients (`risk/attribution.py`; needs the `explain` extra).
        psi: print and write the population stability report.
    """

    def __init__(
        self,
        output_path: str = "predictions.csv",
        points: bool = False,
        base_points: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        reason_codes: int = 0,
        psi: bool = True,
    ) -> None:
        super().__init__(write_interval="epoch")
        check_range("submission.base_odds", base_odds, low=0.0, low_inclusive=False)
        check_range("submission.pdo", pdo, low=0.0, low_inclusive=False)
        check_range("submission.reason_codes", reason_codes, low=0)
        if reason_codes and importlib.util.find_spec("captum") is None:
            raise ConfigurationError(
                "submission.reason_codes needs captum (integrated gradients): "
                "pip install -e '.[explain]'"
            )
        self.output_path = output_path
        self.scaling = ScorecardScaling(base_points, base_odds, pdo) if points else None
        self.reason_codes = reason_codes
        self.psi = psi
        self.console = Console()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Refuse, before anything is scored, an output path that is the file to score."""
        datamodule = trainer.datamodule
        if stage != "predict" or not isinstance(datamodule, LoanDataModule):
            return
        if datamodule.predict_path is None:
            return
        scored = resolve_data_path(datamodule.predict_path, datamodule.data_dir).resolve()
        output = Path(self.output_path)
        # samefile: a hard link, or another case of the name on a case-insensitive disk.
        if output.resolve() == scored or (output.exists() and os.path.samefile(output, scored)):
            raise ConfigurationError(
                f"--submission.output_path {self.output_path} is the file to score ({scored}): "
                "the predictions would replace it. Write them to another file."
            )

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        if trainer.world_size > 1:
            raise RuntimeError("predict writes one file: run it on a single device")
        datamodule = trainer.datamodule
        if not isinstance(datamodule, LoanDataModule) or not isinstance(
            pl_module, LoanDefaultModel
        ):
            raise TypeError("SubmissionWriter writes a LoanDefaultModel's predictions of a file")
        batches = (
            predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        )
        probability = torch.cat(batches).float().cpu().numpy()
        threshold = float(pl_module.decision_threshold)
        columns: dict[str, np.ndarray] = {}
        ids = datamodule.predict_ids()
        if ids is not None:
            columns[ids[0]] = ids[1]
        columns[PROBABILITY_COLUMN] = probability
        columns[LABEL_COLUMN] = (probability >= threshold).astype(np.int64)
        if self.scaling is not None:
            columns[POINTS_COLUMN] = self.scaling.points(probability)
        frame = pd.DataFrame(columns)
        if self.reason_codes:
            frame = pd.concat([frame, self._reasons(pl_module, datamodule)], axis=1)
        path = write_csv_atomically(frame, self.output_path)
        rank_zero_info(
            f"wrote {len(probability)} predictions to {Path(path).resolve()} (decision "
            f"threshold {threshold:.4f}, {int(columns[LABEL_COLUMN].sum())} predicted defaults)"
        )
        if self.psi:
            self._report_stability(pl_module, datamodule, probability, path)

    def _reasons(self, model: LoanDefaultModel, datamodule: LoanDataModule) -> pd.DataFrame:
        """The reason-code columns: integrated gradients against the typical applicant."""
        schema = datamodule.schema
        if schema is None:
            raise RuntimeError("no schema: restore a checkpoint before predicting")
        if self.reason_codes > len(schema.feature_columns):
            raise ConfigurationError(
                f"submission.reason_codes is {self.reason_codes}, but the model has only "
                f"{len(schema.feature_columns)} feature columns to give as reasons"
            )
        inputs = datamodule.predict_inputs().tensors
        reference_num, reference_cat = datamodule.reference_applicant()
        start = time.perf_counter()
        numeric, categorical, gap = model.input_attributions(
            inputs.numeric, inputs.categorical, reference_num, reference_cat
        )
        # Which columns differ from the typical applicant's, row by row: a pair's rate is
        # credited to those of its columns that do.
        n_numeric = len(schema.numeric_columns)
        differs = torch.cat(
            [
                inputs.numeric[:, :n_numeric] != reference_num[:, :n_numeric],
                inputs.categorical != reference_cat,
            ],
            dim=1,
        ).to(numeric.device)
        # A categorical's target statistic sits in the numeric block: its share is added to
        # the categorical's own embedding's.
        by_column = column_contributions(
            numeric, datamodule.numeric_input_owners(), schema.feature_columns, differs
        )
        by_column[:, len(schema.numeric_columns) :] += categorical
        contributions = by_column.cpu().numpy()
        rank_zero_info(
            f"reason codes: integrated gradients for {len(inputs)} applicants in "
            f"{time.perf_counter() - start:.1f} s; contributions add up to the logit "
            f"difference from the typical applicant within {float(gap.abs().median()):.2g} "
            "(median)"
        )
        return top_reasons(contributions, schema.feature_columns, self.reason_codes)

    def _report_stability(
        self,
        model: LoanDefaultModel,
        datamodule: LoanDataModule,
        probability: np.ndarray,
        output: Path,
    ) -> None:
        """Print and write the PSI of the score and of every feature against training."""
        reference, kinds = _reference_distributions(datamodule, model)
        current = dict(datamodule.predict_inputs().feature_counts)
        if PROBABILITY_COLUMN in reference:
            current[PROBABILITY_COLUMN] = reference[PROBABILITY_COLUMN].count(probability)
        if not current:
            rank_zero_info(
                "no population stability report: the checkpoint holds no training "
                "distributions (it was written by an older version)"
            )
            return
        table = stability_table(reference, current, kinds, first=[PROBABILITY_COLUMN])
        path = write_csv_atomically(table, output.with_name(f"{output.stem}.psi.csv"))
        self.console.print(_stability_rich_table(table, str(datamodule.predict_path)))
        self.console.print(_stability_summary(table, rows=len(probability)))
        rank_zero_info(f"wrote the population stability report to {Path(path).resolve()}")


def _stability_rich_table(table: pd.DataFrame, source: str) -> Table:
    """The score first, then the features by PSI; narrow enough for an 80-column log."""
    rich = Table(
        title=f"Population stability against training: {escape(source)}",
        caption=f"PSI < {WATCH} stable, {WATCH}-{SHIFTED} watch, > {SHIFTED} shifted",
    )
    rich.add_column("variable", no_wrap=True)  # the names are what a reader scans for
    rich.add_column("PSI", justify="right", no_wrap=True)
    rich.add_column("band", no_wrap=True)
    rich.add_column("largest move (train → new)")
    for index, row in enumerate(table.itertuples(index=False)):
        style = BAND_STYLES[row.band]
        rich.add_row(
            escape(row.variable),
            f"[{style}]{row.psi:.4f}[/]",
            f"[{style}]{row.band}[/]",
            f"{escape(row.bin_moved_most)}: {row.train_share:.1%} → {row.new_share:.1%}",
            end_section=index == 0 and row.kind == "score",
        )
    return rich


def _stability_summary(table: pd.DataFrame, rows: int) -> str:
    """One line a reader sees first: what shifted and what to watch, or that the file's
    `rows` are too few for a verdict (`MIN_JUDGED_ROWS`)."""
    if (table["band"] == TOO_FEW_ROWS).all():
        return (
            f"PSI: no verdict on {counted(rows, 'row')} (fewer than {MIN_JUDGED_ROWS}: "
            f"sampling alone gives a PSI of {9 / max(rows, 1):.2f} or more); the table gives "
            "the figures"
        )
    shifted = [escape(name) for name in table.loc[table["band"] == "shifted", "variable"]]
    watch = [escape(name) for name in table.loc[table["band"] == "watch", "variable"]]
    if not shifted and not watch:
        return f"[{BAND_STYLES['stable']}]PSI: all {len(table)} variables stable[/]"
    parts = []
    if shifted:
        style = BAND_STYLES["shifted"]
        parts.append(f"[{style}]shifted (PSI > {SHIFTED}): {', '.join(shifted)}[/]")
    if watch:
        parts.append(f"[{BAND_STYLES['watch']}]watch ({WATCH}-{SHIFTED}): {', '.join(watch)}[/]")
    return "PSI: " + "; ".join(parts)
