"""What `fit --ckpt_path last` needs to continue exactly as an uninterrupted run would have.

Lightning restores weights, optimiser, loop counters and callback states from a
checkpoint, but not the random generators that draw each epoch's shuffling and dropout
masks; it looks for "last" only in the new run's own (empty) version folder; and its
`ModelCheckpoint(save_last=True)` writes `last.ckpt` only in the epochs where it also
saves a top-k checkpoint (Lightning 2.6), so with a monitored metric `last.ckpt` is the
best epoch, not the last one. `LastEpochCheckpoint` writes `last.ckpt` after every
complete epoch; `ResumableRun` keeps the generators' state in every checkpoint;
`newest_fit_version` and `find_last_checkpoint` find the newest fit's `last.ckpt`.

A run resumes from the end of its last complete epoch (checkpoints are written after
validation, never on an interruption): the interrupted epoch is trained again from its
start with the same random state, so on CPU the resumed run ends with exactly the
metrics of an uninterrupted one. Resuming mid-epoch would need the data loader's
position saved too, and Ctrl-C can land inside an optimiser step, so a checkpoint taken
at that moment could hold half an update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

if TYPE_CHECKING:
    from datamodules.loan_datamodule import LoanDataModule

LAST_CHECKPOINT_GLOB = "last*.ckpt"


class LastEpochCheckpoint(ModelCheckpoint):
    """`last.ckpt` at the end of every complete epoch, whether or not the epoch improved.

    A `ModelCheckpoint` without a monitor, keeping one file named "last": Lightning's
    `ckpt_path="last"` finds it like its own. Never written on an exception, so a crash
    cannot replace the last complete epoch.

    Args:
        dirpath: the folder (default: the logger's `version_N/checkpoints`).
    """

    def __init__(self, dirpath: str | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            save_on_exception=False,
            enable_version_counter=False,
        )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Make the checkpoint folder now: it marks the version folder as a fit's even if
        the fit stops before its first epoch ends (`newest_fit_version`)."""
        if trainer.is_global_zero and self.dirpath is not None:
            Path(self.dirpath).mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> str:
        """The file written after the newest complete epoch ("" before the first)."""
        return self.best_model_path


def last_epoch_checkpoint(trainer: L.Trainer) -> str:
    """The newest complete epoch's checkpoint of this run, or "" if none was written."""
    return next(
        (
            callback.path
            for callback in trainer.checkpoint_callbacks
            if isinstance(callback, LastEpochCheckpoint)
        ),
        "",
    )


class ResumableRun(L.Callback):
    """Keeps torch's random state in each checkpoint; after Ctrl-C or SIGTERM, says how to resume.

    The state is plain byte tensors, so checkpoints still load with `weights_only=True`.
    It is restored as the checkpoint is loaded: from then to the first training batch
    nothing draws random numbers except the sanity check, which Lightning isolates.
    """

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda") or []
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        last = last_epoch_checkpoint(trainer)
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        if not last:
            rank_zero_info(
                f"fit interrupted at {where}, before its first complete epoch was saved: "
                "--ckpt_path last starts this fit over (a bag keeps its finished folds)."
            )
            return
        rank_zero_info(
            f"fit interrupted at {where}. The last complete epoch is saved in {last}; rerun the "
            "same command with --ckpt_path last to continue from there."
        )


@dataclass(frozen=True)
class LastCheckpoint:
    """The newest `last.ckpt` of a run, and its bagging fold's folder name (None outside a
    bag)."""

    path: Path
    fold: str | None = None


def version_folder(version: int | str) -> str:
    """The folder of a logger version, as `TensorBoardLogger` names it: `version_N`, or a
    version given as text as it is."""
    return f"version_{version}" if isinstance(version, int) else str(version)


def newest_fit_version(run_dir: Path) -> int | None:
    """The highest `version_N` under a logger's run folder that a fit began to write to
    (`LastEpochCheckpoint` makes its checkpoint folder when training starts; a bag's folds
    each have theirs), or None.

    The newest fit is the run `--ckpt_path last` continues: an older version's `last.ckpt`
    belongs to another run, perhaps with other settings, which a fit interrupted before
    its first complete epoch must not take over.
    """
    versions = [
        int(match.group(1))
        for folder in run_dir.glob("version_*")
        if (match := re.fullmatch(r"version_(\d+)", folder.name))
        and ((folder / "checkpoints").is_dir() or any(folder.glob("fold_*/checkpoints")))
    ]
    return max(versions, default=None)


def find_last_checkpoint(version_dir: Path) -> LastCheckpoint | None:
    """The most recently written `checkpoints/last*.ckpt` of a logger version folder (or of
    a bagged fit's `fold_<j>/checkpoints/`), None before its first complete epoch.

    Resuming into that same version keeps the TensorBoard curves in one place and lets
    `ModelCheckpoint` restore its best score, which it only does for the same folder.
    """
    found = [
        LastCheckpoint(path=path, fold=path.parts[-3] if within else None)
        for within in ("", "fold_*/")
        for path in version_dir.glob(f"{within}checkpoints/{LAST_CHECKPOINT_GLOB}")
        if path.is_file()
    ]
    return max(found, key=lambda last: last.path.stat().st_mtime, default=None)


def require_same_data(checkpoint_path: str | Path, datamodule: LoanDataModule) -> None:
    """Before a fit continues from `checkpoint_path`: the labelled rows must be the ones the
    checkpoint's fit began on (`LoanDataModule.require_fitted_rows`; Lightning keeps the
    data module's state under its class's name). Memory-mapped: only that state is read."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
    state = checkpoint.get(type(datamodule).__qualname__, {})
    datamodule.require_fitted_rows(state, continued=str(checkpoint_path))
