"""Reading back what a run wrote for TensorBoard."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

VALIDATION_FIGURES = {
    "val/roc_curve",
    "val/precision_recall_curve",
    "val/ks_curve",
    "val/confusion_matrix",
    "val/reliability_diagram",
}


def read_events(run_dir: Path) -> EventAccumulator:
    """Every event of the run folder itself (not of its sub-folders), nothing sampled away."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    return accumulator.Reload()
