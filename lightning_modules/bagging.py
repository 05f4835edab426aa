"""Bagging: one network per fold of the non-test rows, averaged into one model.

Each fold's network is an ordinary fit (the config's trainer, callbacks and budget) that
trains on the other folds and is early-stopped and restored to its best epoch on its own
fold, so every non-test row trains some network and the protocol's validation rows are
no longer wasted on early stopping alone (TabArena bags every model so). The averaged
model's temperature and decision threshold are fitted on the out-of-fold predictions,
each row scored by the one network that never trained on it: the only held-out rows with
labels left once every row trains. (AutoGluon calibrates its bags the same way; the
average of K networks is less extreme than one network, which the out-of-fold temperature
and threshold do not see.) The score reference of `predict`'s stability report is the
bag's own scores on the test rows, whose labels it does not read.

The result is one `LoanDefaultModel` with `networks` = K, written as one checkpoint that
`test`, `predict` and the benchmark load like any other (`weights_only=True`).

An interrupted bag resumes fold by fold: a finished fold is read back from its best
checkpoint, with the random state it ended with (so the next folds draw what they would
have drawn), and an unfinished one continues from its `last.ckpt`
(`lightning_modules/resume.py`), so on CPU the resumed bag equals an uninterrupted one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from contracts.errors import ConfigurationError
from contracts.evaluation import EvaluationOutputs
from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.atomic import save_torch_atomically
from lightning_modules.loan_model import (
    BAGGED_FOLDS_KEY,
    FIT_RECORD_KEY,
    FOLD_EPOCHS_KEY,
    LoanDefaultModel,
)
from lightning_modules.metrics import binary_report
from lightning_modules.resume import require_same_data

CHECKPOINT_NAME = "bagged.ckpt"
# Written in a fold's folder when its fit has ended: its network at the best epoch, the
# epochs trained and the random state after them.
FOLD_RECORD = "fold_fitted.pt"


@dataclass(frozen=True)
class FoldRun:
    """A fold's fresh model and trainer (its own logger, checkpoints and callback state),
    and the folder they write to."""

    model: LoanDefaultModel
    trainer: L.Trainer
    folder: Path


@dataclass(frozen=True)
class BaggedFit:
    """The averaged model, its out-of-fold validation (calibrated probabilities of every
    non-test row, in fold order, and the chosen threshold) and the checkpoint it was saved
    to."""

    model: LoanDefaultModel
    out_of_fold: EvaluationOutputs
    checkpoint: Path

    @property
    def fold_epochs(self) -> list[int]:
        """The epochs each fold's network trained, as the model (and its checkpoint) holds them."""
        return self.model.fold_epochs

    def report(self) -> dict[str, float]:
        """The protocol's metrics of the out-of-fold predictions at the chosen threshold."""
        outputs = self.out_of_fold
        report = binary_report(outputs.probabilities, outputs.targets, outputs.threshold)
        return {name: float(value) for name, value in report.items()}


def fit_bagged(
    datamodule: LoanDataModule,
    new_fold_run: Callable[[int], FoldRun],
    run_dir: Path,
    *,
    resume: bool = False,
) -> BaggedFit:
    """Fit one network per fold of `datamodule` (`resolved_folds` > 1) and save their average in
    `run_dir/checkpoints/bagged.ckpt`; `resume` continues an interrupted bag's folds."""
    members: list[LoanDefaultModel] = []
    logits: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    fold_epochs: list[int] = []
    folds = datamodule.resolved_folds()
    # Fit the shared preprocessing now, with a fold served (all non-test rows): a resumed
    # bag may read every fold back without a fit that would set it up.
    datamodule.select_fold(0)
    datamodule.setup("fit")
    for fold in range(folds):
        datamodule.select_fold(fold)
        run = new_fold_run(fold)
        record = run.folder / FOLD_RECORD
        if resume and record.is_file():
            model, epochs = _read_back(record, datamodule, folds)
        else:
            model, epochs = _fit_fold(run, datamodule, members, resume=resume)
        fold_epochs.append(epochs)
        held_out = datamodule.split_tensors("val")
        logits.append(_raw_logits(model, held_out.numeric, held_out.categorical))
        targets.append(held_out.target)
        members.append(model)
    datamodule.select_fold(None)
    bagged = average(members)
    bagged.fit_record, bagged.fold_epochs = members[0].fit_record, fold_epochs
    out_of_fold = bagged.calibrate(torch.cat(logits), torch.cat(targets))
    # The out-of-fold scores are single networks', more spread out than the bag's average
    # (german's bag of eight: PSI 1.1 between the two on the same test rows), so the score
    # reference is the bag's own scores on the test rows, which no network trained on;
    # their features only, never their labels.
    test = datamodule.split_tensors("test")
    test_logits = _raw_logits(bagged, test.numeric, test.categorical)
    bagged.keep_score_reference(torch.sigmoid(test_logits / bagged.temperature))
    checkpoint = run_dir / "checkpoints" / CHECKPOINT_NAME
    save_torch_atomically(_checkpoint(bagged, datamodule, folds), checkpoint)
    return BaggedFit(bagged, out_of_fold, checkpoint)


def _fit_fold(
    run: FoldRun, datamodule: LoanDataModule, fitted: list[LoanDefaultModel], *, resume: bool
) -> tuple[LoanDefaultModel, int]:
    """Train the fold's network (from its `last.ckpt` if resuming and there is one),
    restore its best epoch and record that the fold is done."""
    model, trainer = run.model, run.trainer
    if fitted:
        # Folds differ by a row or so in size; one architecture must fit them all, so
        # every fold takes the first fold's resolved `auto` settings.
        model.settings = fitted[0].settings
    last = run.folder / "checkpoints" / "last.ckpt"
    resumed = resume and last.is_file()
    if resumed:
        require_same_data(last, datamodule)
    trainer.fit(model, datamodule=datamodule, ckpt_path=last if resumed else None)
    rng = torch.get_rng_state()
    # The best epoch on the fold's own rows, as `test(ckpt_path="best")` would load it (a
    # trainer without a monitored checkpoint keeps the last epoch).
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
    model.cpu().eval()
    record = {
        "hyper_parameters": _init_arguments(model),
        "state_dict": model.state_dict(),
        "epochs": trainer.current_epoch,
        FIT_RECORD_KEY: model.fit_record,
        "torch_rng": rng,
        "folds": datamodule.resolved_folds(),
        "data": {"held_out": datamodule.labelled_table().held_out.to_state()},
    }
    save_torch_atomically(record, run.folder / FOLD_RECORD)
    return model, trainer.current_epoch


def _read_back(
    record_path: Path, datamodule: LoanDataModule, folds: int
) -> tuple[LoanDefaultModel, int]:
    """A finished fold's network, and the random state its fit ended with; refused if the
    fold was fitted on other rows or in a bag of other folds, whose out-of-fold rows
    would then include rows it trained on."""
    record = torch.load(record_path, map_location="cpu", weights_only=True)
    if record.get("folds", folds) != folds:
        raise ConfigurationError(
            f"{record_path}: this fold belongs to a bag of {record['folds']} folds, this run's "
            f"has {folds}. Start a new fit (without --ckpt_path last), or continue with the "
            "fit's own --data.folds."
        )
    datamodule.require_fitted_rows(record.get("data", {}), continued=str(record_path))
    member = LoanDefaultModel(**record["hyper_parameters"])
    member.load_state_dict(record["state_dict"])
    member.fit_record = record.get(FIT_RECORD_KEY, {})
    torch.set_rng_state(record["torch_rng"])
    return member.eval(), int(record["epochs"])


def _init_arguments(model: LoanDefaultModel) -> dict[str, Any]:
    """The model's hyperparameters that its constructor takes (not the CLI's bookkeeping)."""
    accepted = inspect.signature(LoanDefaultModel).parameters
    return {key: value for key, value in model.hparams.items() if key in accepted}


def average(members: list[LoanDefaultModel]) -> LoanDefaultModel:
    """One model whose networks are the members' (each already holding its own bins);
    its calibration is left for `LoanDefaultModel.calibrate`."""
    bagged = LoanDefaultModel(**(_init_arguments(members[0]) | {"networks": len(members)}))
    for network, member in zip(bagged.networks(), members, strict=True):
        network.load_state_dict(member.networks()[0].state_dict())
    return bagged.eval()


# Rows scored at once: a whole split in one pass would hold every network's activations for
# all its rows (a 10M-row file's test split through a bag of five: about 10 GB).
_SCORING_ROWS = 65_536


def _raw_logits(
    model: LoanDefaultModel, numeric: torch.Tensor, categorical: torch.Tensor
) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat(
            [
                model.raw_logits(
                    numeric[start : start + _SCORING_ROWS],
                    categorical[start : start + _SCORING_ROWS],
                )
                for start in range(0, len(numeric), _SCORING_ROWS)
            ]
        )


def _checkpoint(model: LoanDefaultModel, datamodule: LoanDataModule, folds: int) -> dict[str, Any]:
    """What Lightning's own checkpoint holds for `test` and `predict`: the weights and
    buffers, the hyperparameters that rebuild the model, the data module's fitted state;
    and the fold count, so that `validate` knows the validation rows were trained on."""
    return {
        BAGGED_FOLDS_KEY: folds,
        FIT_RECORD_KEY: model.fit_record,
        FOLD_EPOCHS_KEY: model.fold_epochs,
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        type(datamodule).__qualname__: datamodule.state_dict(),
    }
