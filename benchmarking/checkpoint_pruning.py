"""What of a finished network run's checkpoints the benchmark keeps on disk.

A run writes a best and a last-epoch checkpoint per network, for a bag per fold too with
each fold's fitted network (`fold_fitted.pt`), and then the model it tested: 12 files of
3.5 MB for one small-set bag, 40+ GB for a scoreboard of 1,050 runs, which filled this
machine's disk once. The last-epoch and fold checkpoints and the fold records exist to
resume an interrupted fit, and the benchmark never resumes a run (a
rerun starts it afresh), so once a run has its result only the tested model is worth
keeping: with it, `predict` and `test` still work from the benchmark's folder.
"""

from __future__ import annotations

from pathlib import Path

from lightning_modules.bagging import FOLD_RECORD
from lightning_modules.resume import LAST_CHECKPOINT_GLOB


def prune_checkpoints(run_dir: Path) -> None:
    """Delete the checkpoints of `run_dir` (one network run's log folder) that only a resumed
    fit reads: every last-epoch checkpoint and every fold's, and each fold's record. Keeps
    the model the run tested: the bag's `bagged.ckpt` or the single network's best-epoch
    file."""
    for checkpoint in run_dir.rglob("*.ckpt"):
        tested = checkpoint.parent == run_dir / "checkpoints"
        if not tested or checkpoint.match(LAST_CHECKPOINT_GLOB):
            checkpoint.unlink()
    for record in run_dir.glob(f"fold_*/{FOLD_RECORD}"):
        record.unlink()
