"""Where training time goes: data path, framework overhead, memory and scaling.

    python scripts/throughput.py                      # the loops at 100k rows, scaling to 1M
    python scripts/throughput.py --scale 100000 1000000 10000000

Prints Rich tables and writes them as JSON (`--output`). These are benchmarks, not tests:
the figures depend on the machine and on what else runs on it.

Each scale point reads a table that another process wrote, in a fresh process of its own,
so its peak memory is reading, preprocessing and training alone; generating the table in
the same process used to count in it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, TensorDataset

from benchmarking.machine import REPO, peak_rss_mb
from contracts.features import TabularTensors
from datamodules.loan_datamodule import LoanDataModule
from datamodules.tensor_data import batch_loader
from lightning_modules.atomic import write_text_atomically
from lightning_modules.cli import LoanCLI, build_cli
from lightning_modules.option_suggestions import OneLineArgumentParser, parser_options

DEFAULT_CONFIG = REPO / "configs" / "default.yaml"
console = Console()


class EpochTimer(L.Callback):
    """Time of each epoch's training batches (validation and checkpointing excluded), and of
    the first batch after `fit` starts."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.fit_started = time.perf_counter()
        self.first_batch_seconds: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_start(self, *args: Any) -> None:
        if self.first_batch_seconds is None:
            self.first_batch_seconds = time.perf_counter() - self.fit_started

    def on_train_batch_end(self, *args: Any) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds.append(self._last_batch_end - self._start)


class PerRowDataModule(LoanDataModule):
    """The same data served the common way: a per-row `TensorDataset` and default collate."""

    def train_dataloader(self) -> DataLoader:
        t = self.split_tensors("train")
        dataset = TensorDataset(t.numeric, t.categorical, t.target)
        return DataLoader(dataset, batch_size=self.training_batch_size(), shuffle=True)


def lean_trainer(epochs: int) -> list[str]:
    """A bare-bones Trainer: no validation, callbacks, logger or progress bar."""
    return [
        f"--trainer.max_epochs={epochs}",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_model_summary=false",
        "--trainer.enable_progress_bar=false",
    ]


def configured_trainer(epochs: int, folder: str) -> list[str]:
    """The Trainer as the config has it (callbacks, logging, progress bar), in a scratch folder."""
    return [
        f"--trainer.max_epochs={epochs}",
        f"--trainer.logger.init_args.save_dir={folder}",
        "--trainer.enable_model_summary=false",
    ]


def time_data_path(tensors: TabularTensors, batch_size: int, repeats: int) -> dict[str, float]:
    def epoch_seconds(loader: DataLoader) -> float:
        start = time.perf_counter()
        for _ in loader:
            pass
        return time.perf_counter() - start

    by_index = batch_loader(tensors, batch_size=batch_size, shuffle=True)
    per_row = DataLoader(
        TensorDataset(tensors.numeric, tensors.categorical, tensors.target),
        batch_size=batch_size,
        shuffle=True,
    )
    fast = min(epoch_seconds(by_index) for _ in range(repeats))
    slow = min(epoch_seconds(per_row) for _ in range(repeats))
    batches = len(by_index)
    return {
        "rows": len(tensors),
        "batches": batches,
        "by_index_batches_per_s": batches / fast,
        "by_index_rows_per_s": len(tensors) / fast,
        "per_row_batches_per_s": batches / slow,
        "per_row_rows_per_s": len(tensors) / slow,
        "speedup": slow / fast,
        "by_index_epoch_s": fast,
    }


def bare_loop_epochs(
    cli: LoanCLI, tensors: TabularTensors, batch_size: int, epochs: int
) -> list[float]:
    """The same network (a copy of the configured one), batches, loss and optimiser in a
    plain PyTorch loop: what Lightning's loop is measured against."""
    net = copy.deepcopy(cli.model.net)
    optimizer = cli.model.optimizer_factory(net.parameters())
    loader = batch_loader(tensors, batch_size=batch_size, shuffle=True)
    net.train()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x_num, x_cat, target in loader:
            optimizer.zero_grad(set_to_none=True)
            member_logits = net(x_num, x_cat)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                member_logits, target[:, None].expand_as(member_logits)
            )
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def trainer_epochs(
    config: Path, overrides: list[str], datamodule_class: type = LoanDataModule
) -> tuple[list[float], LoanCLI]:
    timer = EpochTimer()
    cli = build_cli(
        ["--config", str(config), *overrides],
        datamodule_class=datamodule_class,
        save_config_callback=None,
        script_options=list(parser_options(_parser())),
    )
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return timer.epoch_seconds, cli


def measure_training(config: Path, overrides: list[str], epochs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        configured = [*overrides, *configured_trainer(epochs, folder)]
        configured_s, cli = trainer_epochs(config, configured)
        tensors = cli.datamodule.split_tensors("train")
        batch_size = cli.datamodule.training_batch_size()
        bare_s = bare_loop_epochs(cli, tensors, batch_size, epochs)
        lean_s, _ = trainer_epochs(config, [*overrides, *lean_trainer(epochs)])
        per_row_s, _ = trainer_epochs(config, configured, PerRowDataModule)
        bare_s += bare_loop_epochs(cli, tensors, batch_size, epochs)
    rows = len(tensors)
    # The fastest epoch after the first (which pays one-off warm-up costs): on a machine
    # shared with other work, interference only ever adds time, so the minimum is the rate.
    seconds = {
        "configured": min(configured_s[1:] or configured_s),
        "lean": min(lean_s[1:] or lean_s),
        "per_row": min(per_row_s[1:] or per_row_s),
        "bare": min(bare_s[1:] or bare_s),
    }
    data = time_data_path(tensors, batch_size, repeats=3)
    return {
        "train_rows": rows,
        "batch_size": batch_size,
        "epochs": epochs,
        "trainer_rows_per_s": rows / seconds["configured"],
        "lean_trainer_rows_per_s": rows / seconds["lean"],
        "bare_loop_rows_per_s": rows / seconds["bare"],
        "trainer_per_row_loader_rows_per_s": rows / seconds["per_row"],
        "trainer_over_bare": seconds["bare"] / seconds["configured"],
        "lean_trainer_over_bare": seconds["bare"] / seconds["lean"],
        "data_path_share_of_epoch": data["by_index_epoch_s"] / seconds["configured"],
        "data_path": data,
    }


# Scaling ---------------------------------------------------------------------------------


def wide_table(
    n_rows: int, *, n_numeric: int = 20, n_categorical: int = 10, seed: int = 0
) -> pd.DataFrame:
    """A generic loan-like table: skewed numerics with gaps, string categoricals (3-1000 levels)."""
    rng = np.random.default_rng(seed)
    numeric = rng.lognormal(0.0, 1.0, size=(n_rows, n_numeric)).astype(np.float64)
    numeric[rng.random((n_rows, n_numeric)) < 0.02] = np.nan
    levels = np.geomspace(3, 1000, n_categorical).astype(int)
    codes = [rng.zipf(1.5, n_rows) % k for k in levels]
    logit = -1.5 + 0.8 * np.log1p(np.nan_to_num(numeric[:, 0])) - 0.5 * (codes[0] == 1)
    frame = pd.DataFrame(numeric, columns=[f"num_{i}" for i in range(n_numeric)])
    for i, column_codes in enumerate(codes):
        frame[f"cat_{i}"] = _labels(column_codes, i)
    frame["y"] = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return frame


def _labels(codes: np.ndarray, column: int) -> pd.Series:
    """Codes as strings via a vocabulary lookup (a per-row f-string takes minutes at 10M rows)."""
    vocabulary = np.array([f"c{column}_{v}" for v in range(codes.max() + 1)], dtype=object)
    return pd.Series(vocabulary[codes], dtype="string[pyarrow]")


def scale_worker(n_rows: int, epochs: int, path: Path) -> dict[str, Any]:
    """One scale point on the table at `path`, run in a fresh process that did not write it,
    so that its peak memory is its own: `peak_rss_mb_after_preprocess` is the peak of
    reading and preprocessing (taken before training starts), `peak_rss_mb_before_read`
    the process after its imports."""
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    timer = EpochTimer()
    categoricals = [f"cat_{i}" for i in range(10)]
    cli = build_cli(
        [
            "--config",
            str(DEFAULT_CONFIG),
            f"--data.path={path}",
            "--data.target=y",
            "--data.id_column=null",
            f"--data.categorical_columns={json.dumps(categoricals)}",
            *lean_trainer(epochs),
        ],
        save_config_callback=None,
    )
    dm = cli.datamodule
    dm.setup("fit")
    tensors = [dm.split_tensors(split) for split in ("train", "val", "test")]
    preprocess_s = time.perf_counter() - start
    tensor_mb = (
        sum(t.numeric.nbytes + t.categorical.nbytes + t.target.nbytes for t in tensors) / 2**20
    )
    rss_after_preprocess = peak_rss_mb()
    cli.trainer.callbacks.append(timer)
    timer.fit_started = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=dm)
    return {
        "rows": n_rows,
        "train_rows": len(tensors[0]),
        "read_and_preprocess_s": preprocess_s,
        "first_batch_s": timer.first_batch_seconds,
        "epoch_s": statistics.median(timer.epoch_seconds),
        "tensor_mb": tensor_mb,
        "peak_rss_mb_after_preprocess": rss_after_preprocess,
        "preprocess_mb_per_million_rows": (rss_after_preprocess - rss_before) / (n_rows / 1e6),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_before_read": rss_before,
    }


def measure_scaling(sizes: list[int], epochs: int) -> list[dict[str, Any]]:
    results = []
    for n_rows in sizes:
        console.print(f"scale point: {n_rows:,} rows ...")
        with tempfile.TemporaryDirectory() as folder:
            table = ["--table", str(Path(folder) / "wide.parquet")]
            completed = _run_module("--write-table", str(n_rows), *table)
            if completed.returncode == 0:
                completed = _run_module(
                    "--scale-worker", str(n_rows), "--epochs", str(epochs), *table
                )
        if completed.returncode != 0:
            results.append({"rows": n_rows, "error": completed.stderr[-2000:]})
            continue
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return results


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """This module in a child process (`python -m benchmarking.throughput ARGS`)."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarking.throughput", *args],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )


# Reporting -------------------------------------------------------------------------------


def print_tables(training: dict[str, Any] | None, scaling: list[dict[str, Any]]) -> None:
    if training:
        data = training["data_path"]
        table = Table(title=f"Data path: one epoch over {data['rows']:,} training rows")
        for column in ("loader", "batches/s", "rows/s"):
            table.add_column(column, justify="right")
        table.add_row(
            "in-memory, batch by index",
            f"{data['by_index_batches_per_s']:,.0f}",
            f"{data['by_index_rows_per_s']:,.0f}",
        )
        table.add_row(
            "per-row TensorDataset",
            f"{data['per_row_batches_per_s']:,.0f}",
            f"{data['per_row_rows_per_s']:,.0f}",
        )
        table.add_row("speed-up", f"{data['speedup']:.1f}x", "")
        console.print(table)
        table = Table(
            title=f"Training rows/s (batch {training['batch_size']}, "
            f"fastest of epochs 2..{training['epochs']})"
        )
        table.add_column("loop")
        table.add_column("rows/s", justify="right")
        table.add_row("Trainer.fit as configured", f"{training['trainer_rows_per_s']:,.0f}")
        table.add_row(
            "Trainer.fit, bare-bones Trainer", f"{training['lean_trainer_rows_per_s']:,.0f}"
        )
        table.add_row("bare PyTorch loop", f"{training['bare_loop_rows_per_s']:,.0f}")
        table.add_row(
            "Trainer.fit as configured, per-row loader",
            f"{training['trainer_per_row_loader_rows_per_s']:,.0f}",
        )
        table.add_row("as configured / bare", f"{training['trainer_over_bare']:.0%}")
        table.add_row("bare-bones Trainer / bare", f"{training['lean_trainer_over_bare']:.0%}")
        table.add_row(
            "data path share of a Trainer epoch", f"{training['data_path_share_of_epoch']:.1%}"
        )
        console.print(table)
    if scaling:
        table = Table(title="Scaling (wide table: 20 numeric + 10 categorical, Parquet)")
        for column in (
            "rows",
            "read+preprocess s",
            "first batch s",
            "epoch s",
            "tensors MB",
            "read+preprocess MB per M rows",
            "peak RSS MB",
        ):
            table.add_column(column, justify="right")
        for point in scaling:
            if "error" in point:
                table.add_row(f"{point['rows']:,}", "failed", point["error"][-60:], "", "", "", "")
                continue
            table.add_row(
                f"{point['rows']:,}",
                f"{point['read_and_preprocess_s']:.1f}",
                f"{point['first_batch_s']:.1f}",
                f"{point['epoch_s']:.1f}",
                f"{point['tensor_mb']:,.0f}",
                f"{point['preprocess_mb_per_million_rows']:,.0f}",
                f"{point['peak_rss_mb']:,.0f}",
            )
        console.print(table)


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every other argument overrides the timed config, as main.py fit takes it "
        "(e.g. --data.batch_size=1024).",
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="config whose model and data are timed"
    )
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per timed loop (the first is warm-up)"
    )
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[100_000, 1_000_000],
        help="row counts for the scaling table",
    )
    parser.add_argument("--skip-training", action="store_true", help="only the scaling table")
    parser.add_argument("--output", type=Path, default=Path("throughput.json"))
    parser.add_argument("--scale-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--write-table", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    # The arguments it does not know, in their order, are the config's overrides.
    args, overrides = _parser().parse_known_args(argv)
    if args.write_table:
        wide_table(args.write_table).to_parquet(args.table, engine="pyarrow", index=False)
        return
    if args.scale_worker:
        print(json.dumps(scale_worker(args.scale_worker, max(1, args.epochs // 2), args.table)))
        return
    training = None if args.skip_training else measure_training(args.config, overrides, args.epochs)
    scaling = measure_scaling(args.scale, max(1, args.epochs // 2)) if args.scale else []
    print_tables(training, scaling)
    write_text_atomically(
        json.dumps({"training": training, "scaling": scaling}, indent=2), args.output
    )
    console.print(f"wrote {args.output}")


if __name__ == "__main__":  # the scale worker's process: python -m benchmarking.throughput
    main()
