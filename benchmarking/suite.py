"""The seed-averaged benchmark of `BENCHMARK_PROTOCOL.md`: datasets x models x seeds.

`python scripts/benchmark.py` alone runs the full protocol (five datasets, our network and
the four baselines, seeds 0-4) into `benchmark_results/`; `--quick` is the CI-sized smoke
run. Each run executes in its own process forked from a server that imported the libraries
once, so a run's peak memory is its own and a crash loses only that run. A rerun with the
same output folder skips runs already finished with the same settings.

Outputs in the folder: `results.csv` (one row per run), `results.json` (runs, summary,
paired comparison and the machine), `summary.md` (the tables), `runs/<dataset>/` (each
run's result and log) and `tensorboard/<dataset>/<model>-seed<s>/` (our network's logs and
checkpoints: `tensorboard --logdir <out>/tensorboard`).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmarking.baselines import BASELINES
from benchmarking.machine import REPO, machine_metadata
from benchmarking.runner import RunSpec, read_result, worker_main
from benchmarking.scoreboard import (
    markdown_tables,
    paired_comparison,
    rich_tables,
    summarise,
)
from lightning_modules.atomic import write_csv_atomically, write_text_atomically

DATASETS = ("taiwan", "credit_risk", "heloc", "gmsc", "german")
# Our network's variants: a name and the `scripts/main.py` CLI overrides that define it.
NETWORK_VARIANTS: dict[str, tuple[str, ...]] = {"mlp": ()}
MODELS = (*NETWORK_VARIANTS, *BASELINES)
SEEDS = 5
QUICK_DATASETS = ("german", "heloc")
QUICK_NETWORK_ARGS = ("--trainer.max_epochs=3",)
DEFAULT_OUT = Path("benchmark_results")
# Imported once by the fork server, so each run starts without paying for the imports.
_PRELOAD = ["benchmarking.runner", "lightgbm", "xgboost"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seed-averaged benchmark of our network against the protocol's baselines.",
        epilog="Overrides take one quoted string: --mlp-args='--trainer.max_epochs=5 "
        "--model.net.dropout=0.2'. A variant: --variant 'wide=--model.net.hidden_sizes=[512,512]' "
        "--models mlp wide.",
    )
    parser.add_argument("--datasets", nargs="+", help=f"config names (default: {DATASETS})")
    parser.add_argument("--models", nargs="+", help=f"models to run (default: {MODELS})")
    parser.add_argument("--seeds", type=int, help=f"seeds 0..N-1 (default: {SEEDS})")
    parser.add_argument("--out", type=Path, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--config-dir", type=Path, default=REPO / "configs")
    parser.add_argument("--data-dir", help="folder of the datasets (default: $LOAN_DATA_DIR)")
    parser.add_argument(
        "--data-args", default="", help="CLI overrides of the data section, for every model"
    )
    parser.add_argument(
        "--mlp-args", default="", help="CLI overrides for every variant of our network"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="define a variant of our network by its CLI overrides (repeatable)",
    )
    parser.add_argument("--threads", type=int, help="threads per run (default: library defaults)")
    parser.add_argument("--timeout", type=float, help="seconds before a run is stopped as failed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: datasets {QUICK_DATASETS}, one seed, {QUICK_NETWORK_ARGS}, "
        f"output {DEFAULT_OUT / 'quick'}",
    )
    return parser.parse_args(argv)


def plan(options: argparse.Namespace) -> list[RunSpec]:
    """Every run of the grid, dataset by dataset and seed by seed (all models of a seed
    finish together, so a partial benchmark already pairs them)."""
    variants = NETWORK_VARIANTS | _parse_variants(options.variant)
    models = options.models or list(MODELS)
    unknown = [model for model in models if model not in variants and model not in BASELINES]
    if unknown:
        raise SystemExit(
            f"unknown models {unknown}: choose from {[*variants, *BASELINES]} or define one "
            "with --variant NAME=ARGS"
        )
    datasets = options.datasets or list(QUICK_DATASETS if options.quick else DATASETS)
    configs = {name: options.config_dir / f"{name}.yaml" for name in datasets}
    missing = [str(path) for path in configs.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"no config for datasets: {missing}")
    seeds = options.seeds if options.seeds is not None else (1 if options.quick else SEEDS)
    data_args = shlex.split(options.data_args)
    if options.data_dir:
        data_args.append(f"--data.data_dir={options.data_dir}")
    shared_network_args = [
        *(QUICK_NETWORK_ARGS if options.quick else ()),
        *shlex.split(options.mlp_args),
    ]
    out = options.out or (DEFAULT_OUT / "quick" if options.quick else DEFAULT_OUT)
    return [
        RunSpec(
            dataset=dataset,
            model=model,
            seed=seed,
            config=str(configs[dataset].resolve()),
            out_dir=str(Path(out).resolve()),
            data_args=tuple(data_args),
            network_args=((*variants[model], *shared_network_args) if model in variants else None),
            threads=options.threads,
        )
        for dataset in datasets
        for seed in range(seeds)
        for model in models
    ]


def run_all(specs: Sequence[RunSpec], timeout: float | None, console: Console) -> None:
    """Run every spec without a finished result, one at a time, each in its own process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("benchmark", total=len(specs))
        for spec in specs:
            label = f"{spec.dataset} {spec.model} seed {spec.seed}"
            previous = read_result(spec)
            if previous is not None and previous["status"] == "ok":
                progress.console.print(f"[dim]{label}: finished before, skipped[/dim]")
                progress.advance(task)
                continue
            progress.update(task, description=label)
            record = _run_one(context, spec, timeout)
            progress.console.print(_one_line(label, record))
            progress.advance(task)
        progress.update(task, description="benchmark")


def collect(specs: Sequence[RunSpec]) -> list[dict[str, Any]]:
    """The stored record of every spec, in plan order (a missing one counts as failed)."""
    records = []
    for spec in specs:
        record = read_result(spec)
        if record is None:
            record = _failed(spec, "no result (the run did not finish)")
        records.append(record)
    return records


def write_outputs(
    out: Path, records: list[dict[str, Any]], metadata: dict[str, Any], console: Console
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results.csv, results.json and summary.md, each written atomically; then the tables."""
    runs = pd.DataFrame(records).drop(columns=["spec", "lightning_test"], errors="ignore")
    counts = [name for name in ("train_rows", "passes") if name in runs.columns]
    runs = runs.astype(dict.fromkeys(counts, "Int64"))
    summary = summarise(runs)
    ours = [model for model in runs["model"].unique() if model not in BASELINES]
    paired = paired_comparison(runs, ours=ours, baselines=list(BASELINES))
    write_csv_atomically(runs, out / "results.csv")
    report = {
        "metadata": metadata,
        "runs": records,
        "summary": summary.to_dict("records"),
        "paired": paired.to_dict("records"),
    }
    write_text_atomically(
        json.dumps(_without_nan(report), indent=2, allow_nan=False), out / "results.json"
    )
    write_text_atomically(
        _markdown_header(metadata, records) + markdown_tables(summary, paired), out / "summary.md"
    )
    for table in rich_tables(summary, paired):
        console.print(table)
    console.print(f"results: {out / 'results.csv'}, {out / 'results.json'}, {out / 'summary.md'}")
    return summary, paired


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(arguments)
    specs = plan(options)
    out = Path(specs[0].out_dir)
    # Off a terminal (a log file, CI) Rich assumes 80 columns, too narrow for the tables.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    metadata = {
        "command": shlex.join(["python", "scripts/benchmark.py", *arguments]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
        "threads_per_run": options.threads,
        **machine_metadata(),
    }
    console.print(f"{len(specs)} runs into {out}")
    run_all(specs, options.timeout, console)
    metadata["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    metadata["load_average_after"] = os.getloadavg()
    records = collect(specs)
    write_outputs(out, records, metadata, console)
    return 0 if all(record["status"] == "ok" for record in records) else 1


def _run_one(
    context: multiprocessing.context.ForkServerContext, spec: RunSpec, timeout: float | None
) -> dict[str, Any]:
    spec.result_path.unlink(missing_ok=True)
    process = context.Process(target=worker_main, args=(spec,), name=spec.name)
    process.start()
    try:
        process.join(timeout)
    except BaseException:  # Ctrl-C: stop the run too; its result stays absent, so a rerun redoes it
        process.kill()
        process.join()
        raise
    if process.is_alive():
        process.kill()
        process.join()
        return _store(_failed(spec, f"timed out after {timeout:g} s (stopped)"), spec)
    record = read_result(spec)
    if record is None:
        reason = f"the run's process exited with code {process.exitcode} without a result"
        return _store(_failed(spec, f"{reason}; see {spec.log_path}"), spec)
    return record


def _failed(spec: RunSpec, error: str) -> dict[str, Any]:
    return {
        "dataset": spec.dataset,
        "model": spec.model,
        "seed": spec.seed,
        "status": "failed",
        "error": error,
        "spec": spec.fingerprint(),
    }


def _store(record: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    write_text_atomically(json.dumps(record, indent=2), spec.result_path)
    return record


def _one_line(label: str, record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"[red]{label}: failed: {record['error']}[/red]"
    return (
        f"{label}: roc_auc {record['roc_auc']:.4f}, fit {record['fit_seconds']:.1f} s, "
        f"peak {record['peak_rss_mb']:.0f} MiB"
    )


def _parse_variants(definitions: Sequence[str]) -> dict[str, tuple[str, ...]]:
    variants = {}
    for definition in definitions:
        name, separator, overrides = definition.partition("=")
        if not separator or not name.strip():
            raise SystemExit(f"--variant wants NAME=ARGS, got {definition!r}")
        if name in BASELINES:
            raise SystemExit(f"--variant {name!r} would hide the baseline of that name")
        variants[name.strip()] = tuple(shlex.split(overrides))
    return variants


def _markdown_header(metadata: dict[str, Any], records: list[dict[str, Any]]) -> str:
    failed = [record for record in records if record["status"] != "ok"]
    packages = ", ".join(f"{name} {version}" for name, version in metadata["packages"].items())
    before = ", ".join(f"{load:.2f}" for load in metadata["load_average_before"])
    after = ", ".join(f"{load:.2f}" for load in metadata["load_average_after"])
    threads = (
        metadata["threads_per_run"] or f"library defaults (torch: {metadata['torch_threads']})"
    )
    lines = [
        "# Benchmark results",
        "",
        f"- command: `{metadata['command']}`",
        f"- run: {metadata['started']} to {metadata['finished']} (UTC), commit "
        f"{metadata['git_commit']}",
        f"- machine: {metadata['cpu']}, {metadata['cores']} cores, "
        f"{metadata['memory_gib']:.0f} GiB; threads per run {threads}; "
        f"load average (1, 5, 15 min) before {before}, after {after}",
        f"- Python {metadata['python']}; {packages}",
        f"- runs: {len(records) - len(failed)} ok, {len(failed)} failed",
        *(
            f"  - failed: {r['dataset']} {r['model']} seed {r['seed']}: {r['error']}"
            for r in failed
        ),
        "- metrics: on the test split; accuracy, f1, precision and recall at the threshold "
        "that maximises validation accuracy (`threshold`), accuracy_at_0.5 at 0.5.",
        "",
        "",
    ]
    return "\n".join(lines)


def _without_nan(value: Any) -> Any:
    """JSON has no NaN: missing numbers (a std over one seed, a failed run) become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value
