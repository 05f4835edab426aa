"""Fault injection for tuning runs, through the CLI: `--trainer.callbacks+=<class path>`."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L


class WaitInTrial(L.Callback):
    """In one trial's fit (its logger version, e.g. "trial_1"), announce the first training
    epoch by creating `marker`, then wait there for the signal a test sends.

    The wait ends with the signal's exception; after `limit_s` it fails instead, so a
    test whose signal never comes fails rather than hangs.
    """

    def __init__(self, version: str, marker: str, limit_s: float = 300.0) -> None:
        self.version = version
        self.marker = marker
        self.limit_s = limit_s

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is None or trainer.logger.version != self.version:
            return
        Path(self.marker).touch()
        deadline = time.monotonic() + self.limit_s
        while time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError(f"no signal came within {self.limit_s} s")
