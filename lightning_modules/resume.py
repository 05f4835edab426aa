"""What `fit --ckpt_path last` needs to continue exactly as an uninterrupted run would have.

Lightning restores weights, optimiser, loop counters and callback states from a
checkpoint, but not the random generators that draw each epoch's shuffling and dropout
masks; it looks for "last" only in the new run's own (empty) version folder; and its
`ModelCheckpoint(save_last=True)` writes `last.ckpt` only in the epochs where it also
saves a top-k checkpoint (Lightning 2.6), so with a monitored metric `last.ckpt` is the
best epoch, not the last one. `LastEpochCheckpoint` writes `last.ckpt` after every
complete epoch; `ResumableRun` keeps the generators' state in every checkpoint;
`find_last_checkpoint` finds the newest `last.ckpt` among a run's earlier versions.

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
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

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
            rank_zero_info(f"fit interrupted at {where}, before any checkpoint was written.")
            return
        rank_zero_info(
            f"fit interrupted at {where}. The last complete epoch is saved in {last}; rerun the "
            "same command with --ckpt_path last to continue from there."
        )


@dataclass(frozen=True)
class LastCheckpoint:
    """The newest `last.ckpt` of a run, the logger version folder it belongs to, and its
    bagging fold's folder name (None outside a bag)."""

    path: Path
    version: int
    fold: str | None = None


def find_last_checkpoint(run_dir: Path) -> LastCheckpoint | None:
    """The most recently written `version_N/checkpoints/last*.ckpt` (or a bagged fit's
    `version_N/fold_<j>/checkpoints/last*.ckpt`) under a logger's run folder.

    Resuming into that same version keeps the TensorBoard curves in one place and lets
    `ModelCheckpoint` restore its best score, which it only does for the same folder.
    """
    found = []
    for within in ("", "fold_*/"):
        for path in run_dir.glob(f"version_*/{within}checkpoints/{LAST_CHECKPOINT_GLOB}"):
            parts = path.relative_to(run_dir).parts
            match = re.fullmatch(r"version_(\d+)", parts[0])
            if match and path.is_file():
                fold = parts[1] if within else None
                found.append(LastCheckpoint(path=path, version=int(match.group(1)), fold=fold))
    if not found:
        return None
    return max(found, key=lambda last: last.path.stat().st_mtime)
