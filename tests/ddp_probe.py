"""A callback for the distributed test: records what each process trained on and logged."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch


class ShardProbe(L.Callback):
    """Writes, per rank, every training row of the first epoch (its numeric features) and the
    final validation metrics, so the test can check sharding and metric synchronisation."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)
        self.rows: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            self.rows.append(batch[0].detach().cpu())

    def on_fit_end(self, trainer, pl_module) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "world_size": trainer.world_size,
            "rows": torch.cat(self.rows).tolist(),
            "val": {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")
            },
        }
        path = self.output_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))
