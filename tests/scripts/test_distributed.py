"""DDP on CPU (gloo): two processes shard the batches and agree on synchronised metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CONFIGS, REPO

pytestmark = pytest.mark.slow


def _fit(tmp_path, name: str, *extra: str) -> list[dict]:
    probe_dir = tmp_path / name
    command = [
        sys.executable,
        str(REPO / "scripts" / "main.py"),
        "fit",
        f"--config={CONFIGS / 'default.yaml'}",
        "--data.synthetic_rows=2000",
        "--data.batch_size=64",
        "--data.folds=1",  # one fit to shard; a bag on a 2,000-row file is five
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=2",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=tests.ddp_probe.ShardProbe",
        f"--trainer.callbacks.output_dir={probe_dir}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
        *extra,
    ]
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(path.read_text()) for path in sorted(probe_dir.glob("rank*.json"))]


def test_ddp_shards_batches_and_synchronises_metrics(tmp_path):
    ranks = _fit(tmp_path, "ddp", "--trainer.strategy=ddp", "--trainer.devices=2")
    single = _fit(tmp_path, "single", "--trainer.devices=1")
    assert [r["world_size"] for r in ranks] == [2, 2]

    train_rows = len(single[0]["rows"])
    first, second = ({tuple(row) for row in r["rows"]} for r in ranks)
    assert len(ranks[0]["rows"]) == len(ranks[1]["rows"]) == train_rows // 2
    assert not first & second, "the two processes trained on overlapping rows"
    assert first | second == {tuple(row) for row in single[0]["rows"]}

    assert ranks[0]["val"] == ranks[1]["val"], "validation metrics differ between processes"
    assert abs(ranks[0]["val"]["val/roc_auc"] - single[0]["val"]["val/roc_auc"]) < 0.05
