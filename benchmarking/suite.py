"""The seed-averaged benchmark of `BENCHMARK_PROTOCOL.md`: datasets x models x seeds.

`python scripts/benchmark.py` alone runs the full protocol (five datasets, our network and
the five baselines, seeds 0-4) into `benchmark_results/`; `--quick` is the CI-sized smoke
run; `--suite robustness` runs the datasets derived from the protocol's (`ROBUSTNESS`:
small stratified samples and rarer defaults, named `DATASET@MODIFIER`, and stand-ins for
wide categoricals and for files of many coded fields). Each run executes
in its own process forked from a server that imported the libraries once, so a run's peak
memory is its own and a crash loses only that run. Before a dataset's runs one such process
checks its data, so a bad file or config fails that dataset once, with one message. A rerun
with the same output folder skips runs already finished with the same settings (each
result records the commit it ran at; `--rerun MODEL` runs a model's again after a code
change).

Outputs in the folder: `results.csv` (one row per run), `results.json` (runs, summary,
paired comparison and the machine), `summary.md` (the tables), `runs/<dataset>/` (each
run's result and log) and `tensorboard/<dataset>/<model>-seed<s>/` (our network's logs and
the model it tested, `--keep-checkpoints` for every checkpoint: `tensorboard --logdir
<out>/tensorboard`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import re
import shlex
import sys
from argparse import ArgumentError
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from benchmarking.baselines import BASELINES, TUNABLE_BASELINES, bagged_name, unbagged_name
from benchmarking.checkpoint_pruning import prune_checkpoints
from benchmarking.code_record import changed_code
from benchmarking.inputs import inputs_digest
from benchmarking.machine import REPO, machine_metadata
from benchmarking.runner import RunSpec, data_check_main, read_result, worker_main
from benchmarking.scoreboard import (
    fit_time_ratios,
    markdown_tables,
    paired_comparison,
    reference_markdown,
    rich_tables,
    summarise,
    tuning_gains,
    tuning_markdown,
    worst_cases,
    worst_cases_markdown,
    worst_cases_table,
)
from benchmarking.tuned_names import DEFAULT_TRIALS, TUNED_SUFFIX, tuned_name, untuned_name
from datamodules.loan_datamodule import BAGGING_FOLDS
from datamodules.noise import SUITE_NOISE_COLUMNS
from lightning_modules.atomic import write_csv_atomically, write_text_atomically
from lightning_modules.option_suggestions import OneLineArgumentParser

DATASETS = ("taiwan", "credit_risk", "heloc", "gmsc", "german")
# The robustness suite: the public stand-in for credit data nobody here has tuned on.
# `DATASET@3k` is a stratified sample of 3,000 rows, `DATASET@5pct` the dataset with its
# defaulters down-sampled to a 5 % default rate (`datamodules/sampling.py`), `@noise` adds
# 35 uninformative columns.
SAMPLE_SIZES = ("1k", "3k", "10k")
# No public set here has a categorical of more than 10 levels; these configs read ordered
# columns with 56 to 7,943 values as categoricals, where CatBoost's statistics of levels
# matter most: two of them (configs/*_wide.yaml), or nearly every column
# (configs/*_categorical.yaml), as in credit files of many coded fields.
WIDE_STAND_INS = (
    "credit_risk_wide",
    "taiwan_wide",
    "credit_risk_categorical",
    "taiwan_categorical",
)
# Every column of the public sets is a known risk factor; real files carry columns with
# no signal too, which cost a network most where rows are few (`datamodules/noise.py`).
NOISY_SAMPLES = ("credit_risk@1k@noise", "taiwan@3k@noise")
# Credit files of many coded fields (30+ categoricals, some of thousands of levels, little
# else) have no public stand-in; two synthetic files of that shape, one of strong and one
# of weak signal, are generated in memory (configs/coded_fields*.yaml,
# `datamodules/coded_fields.py`). The weak one reproduced the gap to CatBoost that the
# default of the time had on such a held-back file.
CODED_FIELDS = ("coded_fields", "coded_fields_weak")
# Few rows and rare defaults at once: about 10,000 rows at a 5 % default rate (some 320
# training defaulters), the shape of the held-back credit file where the default of the
# time trailed CatBoost furthest.
SMALL_RARE_SAMPLES = ("taiwan@10k@5pct", "credit_risk@10k@5pct")
ROBUSTNESS = (
    *(f"{name}@{size}" for name in ("taiwan", "credit_risk", "gmsc") for size in SAMPLE_SIZES),
    "taiwan@5pct",
    "taiwan@2pct",
    "credit_risk@5pct",
    "credit_risk@2pct",
    "gmsc@2pct",
    *SMALL_RARE_SAMPLES,
    *WIDE_STAND_INS,
    *NOISY_SAMPLES,
    *CODED_FIELDS,
)
SUITES = {"protocol": DATASETS, "robustness": ROBUSTNESS}
# Our network's named variants: the default, `fast` (one plain MLP, one config away) and
# `bagged` (one default network per fold at any size, `lightning_modules/bagging.py`;
# compare it with `lightgbm-bagged`, fitted on the same folds).
NETWORK_VARIANTS: dict[str, tuple[str, ...]] = {
    "mlp": (),
    "fast": (
        f"--model={Path(__file__).parents[1] / 'configs/shared/model_fast.yaml'}",
        "--data.folds=1",
    ),
    "bagged": (f"--data.folds={BAGGING_FOLDS}",),
}
MODELS = ("mlp", *BASELINES)
MAX_STATED_ERROR = 300
_LOG_NOTE = " (its log: "
# The data options that decide which rows a run trains and is tested on.
_ROW_OPTION = re.compile(
    r"--data\.(path|data_dir|target|positive_label|seed|test_size|val_size|sample_rows|"
    r"sample_positive_rate|noise_columns|synthetic|synthetic_rows|synthetic_seed)(=|$)"
)
SEEDS = 5
QUICK_DATASETS = ("german", "heloc")
QUICK_NETWORK_ARGS = ("--trainer.max_epochs=3",)
DEFAULT_OUT = Path("benchmark_results")
# Imported once by the fork server, so each run starts without paying for the imports.
_PRELOAD = ["benchmarking.runner", "lightgbm", "xgboost", "catboost"]
_ROWS_MODIFIER = re.compile(r"(?P<count>\d+)(?P<thousands>k?)")
_RATE_MODIFIER = re.compile(r"(?P<percent>\d+(\.\d+)?)pct")
_FOLDS_OVERRIDE = re.compile(r"--data\.folds=(?P<folds>\d+)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description="Seed-averaged benchmark of our network against the protocol's baselines.",
        epilog="Overrides take one quoted string: --mlp-args='--trainer.max_epochs=5 "
        "--model.net.dropout=0.2'. A variant: --variant 'wide=--model.net.hidden_sizes=[512,512]' "
        "--models mlp wide.",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        help="config names, or derived datasets such as taiwan@3k (3,000 rows) and "
        "taiwan@5pct (5 %% default rate); default: the --suite's",
    )
    parser.add_argument(
        "--suite",
        choices=list(SUITES),
        help=f"a named set of datasets: protocol {DATASETS} (the default), or robustness "
        f"{ROBUSTNESS}",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        help=f"models to run (default: {MODELS}); `<model>{TUNED_SUFFIX}` searches a network "
        f"variant or one of {list(TUNABLE_BASELINES)} on each seed's train/validation rows "
        "first",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"trials of each tuned model's search, per dataset and seed (default: "
        f"{DEFAULT_TRIALS})",
    )
    parser.add_argument("--seeds", type=int, help=f"seeds 0..N-1 (default: {SEEDS})")
    parser.add_argument("--out", type=Path, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=REPO / "configs",
        help="folder of the dataset configs, one <dataset>.yaml each (default: this checkout's "
        "configs/); a config names its trainer file relative to its own folder",
    )
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
    parser.add_argument(
        "--reference",
        metavar="MODEL",
        help="also compare each of our other models with this one, seed by seed (e.g. the "
        "previous default, defined as a --variant)",
    )
    parser.add_argument(
        "--rerun",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="run these models again where a stored result matches their settings (a stored "
        "run is otherwise reused: its settings record the overrides and the contents of the "
        "config and data files, not the code; a reused run whose code this checkout has "
        "changed is named, so rerun what a change alters)",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every checkpoint of our network's runs; by default a finished run keeps "
        "only the model it tested (the last-epoch and fold checkpoints and the folds' "
        "records only resume a fit)",
    )
    parser.add_argument("--threads", type=int, help="threads per run (default: library defaults)")
    parser.add_argument("--timeout", type=float, help="seconds before a run is stopped as failed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: datasets {' '.join(QUICK_DATASETS)}, one seed, "
        f"{' '.join(QUICK_NETWORK_ARGS)} for our networks, output {DEFAULT_OUT / 'quick'}",
    )
    return parser.parse_args(argv)


def plan(options: argparse.Namespace) -> list[RunSpec]:
    """Every run of the grid, dataset by dataset and seed by seed (all models of a seed
    finish together, so a partial benchmark already pairs them)."""
    variants = NETWORK_VARIANTS | _parse_variants(options.variant)
    models = options.models or list(MODELS)
    if repeated := sorted({model for model in models if models.count(model) > 1}):
        raise SystemExit(f"--models names {repeated} more than once")
    for option, value, low in (("--seeds", options.seeds, 1), ("--threads", options.threads, 1)):
        if value is not None and value < low:
            raise SystemExit(f"{option} must be at least {low}, got {value}")
    if options.timeout is not None and options.timeout <= 0:
        raise SystemExit(f"--timeout must be a positive number of seconds, got {options.timeout}")
    tunable = [*variants, *TUNABLE_BASELINES]
    unknown = [
        model
        for model in models
        if model not in variants
        and model not in BASELINES
        and untuned_name(model) not in tunable
        and unbagged_name(model) is None
    ]
    if unknown:
        raise SystemExit(
            f"unknown models {unknown}: choose from {[*variants, *BASELINES]}, a tuned one "
            f"({', '.join(tuned_name(name) for name in tunable)}), a bagged baseline "
            f"({', '.join(bagged_name(name) for name in BASELINES)}), or define a variant "
            "with --variant NAME=ARGS"
        )
    if stray := [model for model in options.rerun if model not in models]:
        raise SystemExit(f"--rerun {stray}: not among the models of this run, {models}")
    if options.trials < 1:
        raise SystemExit(f"--trials must be at least 1, got {options.trials}")
    if options.reference is not None and options.reference not in models:
        raise SystemExit(f"--reference {options.reference} is not one of the models run: {models}")
    datasets = options.datasets or list(_default_datasets(options))
    derived = {name: derived_dataset(name) for name in datasets}
    configs = {name: options.config_dir / f"{base}.yaml" for name, (base, _) in derived.items()}
    missing = [str(path) for path in configs.values() if not path.is_file()]
    if missing:
        known = sorted(path.stem for path in options.config_dir.glob("*.yaml"))
        raise SystemExit(f"no config for datasets: {missing}; configs there: {known}")
    seeds = options.seeds if options.seeds is not None else (1 if options.quick else SEEDS)
    data_args = shlex.split(options.data_args)
    if options.data_dir:
        data_args.append(f"--data.data_dir={options.data_dir}")
    shared_network_args = [
        *(QUICK_NETWORK_ARGS if options.quick else ()),
        *shlex.split(options.mlp_args),
    ]
    _require_same_rows("--mlp-args", shared_network_args)
    same = [
        names
        for names in itertools.combinations(datasets, 2)
        if derived[names[0]] == derived[names[1]]
    ]
    if same:
        raise SystemExit(f"--datasets {list(same[0])} name the same dataset")
    out = options.out or (DEFAULT_OUT / "quick" if options.quick else DEFAULT_OUT)
    dataset_args = {dataset: (*data_args, *derived[dataset][1]) for dataset in datasets}
    network_args = {model: _network_args(model, variants, shared_network_args) for model in models}
    inputs = {
        (dataset, model): inputs_digest(
            configs[dataset], [*dataset_args[dataset], *(network_args[model] or ())]
        )
        for dataset in datasets
        for model in models
    }
    return [
        RunSpec(
            dataset=dataset,
            model=model,
            seed=seed,
            config=str(configs[dataset].resolve()),
            out_dir=str(Path(out).resolve()),
            data_args=dataset_args[dataset],
            network_args=network_args[model],
            threads=options.threads,
            trials=options.trials if untuned_name(model) else None,
            inputs=inputs[(dataset, model)],
        )
        for dataset in datasets
        for seed in range(seeds)
        for model in models
    ]


def _network_args(
    model: str, variants: dict[str, tuple[str, ...]], shared: Sequence[str]
) -> tuple[str, ...] | None:
    """The CLI overrides of a network variant, tuned or not; None for a baseline."""
    variant = untuned_name(model) or model
    return (*variants[variant], *shared) if variant in variants else None


def derived_dataset(name: str) -> tuple[str, tuple[str, ...]]:
    """The config name and data overrides behind a dataset name.

    `taiwan` is configs/taiwan.yaml as is; `taiwan@3k` (or `taiwan@3000`) a stratified
    sample of 3,000 of its rows; `taiwan@5pct` its defaulters down-sampled to a 5 % default
    rate; `taiwan@3k@5pct` both; `taiwan@3k@noise` the sample with 35 uninformative columns
    appended. A sample and its noise are drawn per seed, before the protocol split.
    """
    base, *modifiers = name.split("@")
    overrides: dict[str, str] = {}
    for modifier in modifiers:
        option, value = _modifier_override(name, modifier)
        if option in overrides:
            raise SystemExit(f"dataset {name!r} sets {option} twice")
        overrides[option] = value
    return base, tuple(f"--data.{option}={value}" for option, value in overrides.items())


def is_derived(dataset: str) -> bool:
    """Whether a dataset name is a derived one (reported in the robustness section)."""
    return "@" in dataset or dataset in ROBUSTNESS


def run_all(
    specs: Sequence[RunSpec],
    timeout: float | None,
    console: Console,
    rerun: Collection[str] = (),
    keep_checkpoints: bool = False,
) -> None:
    """Run every spec without a finished result (and every spec of a model in `rerun`),
    one at a time, each in its own process; first check each dataset's data once, and
    record its runs as failed if that fails. A reused result names the commit it ran at.
    A finished network run keeps only the model it tested unless `keep_checkpoints`."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # The first run whose command line was refused, by what it parses but the seed: its
    # other seeds would be refused alike, each after starting a process.
    refused: dict[tuple[Any, ...], tuple[str, str]] = {}
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("benchmark", total=len(specs))
        for dataset, dataset_specs in _by_dataset(specs).items():
            pending = []
            for spec in dataset_specs:
                previous = read_result(spec)
                # A copy of another model's run (`bagged` of `mlp`) follows that run's rerun.
                again = spec.model in rerun or (previous or {}).get("same_run_as") in rerun
                if previous is not None and previous["status"] == "ok" and not again:
                    notes = [previous.get("git_commit", "an unrecorded commit")]
                    if previous.get("inputs_unchecked"):
                        notes.append("stored before runs recorded their config's and data's digest")
                    if changed := changed_code(previous.get("code", {})):
                        notes.append(
                            f"its code has changed since: {_some(changed)}; --rerun "
                            f"{spec.model} if that changes its results"
                        )
                    progress.console.print(
                        f"[dim]{_label(spec)}: finished before (at {escape('; '.join(notes))}), "
                        "skipped[/dim]"
                    )
                    progress.advance(task)
                else:
                    pending.append(spec)
            if not pending:
                continue
            progress.update(task, description=f"{dataset} data check")
            error = _check_data(context, pending[0], timeout)
            if error:
                progress.console.print(
                    f"[red]{dataset}: data check failed, so its runs ({len(pending)}) are "
                    f"recorded as failed without running: {escape(error)}[/red]"
                )
            for spec in pending:
                if error:
                    _store(_failed(spec, f"not run, the data check failed: {error}"), spec)
                elif (record := repeated_run(spec, dataset_specs)) is not None:
                    _store(record, spec)
                    progress.console.print(
                        f"[dim]{_label(spec)}: the same run as {record['same_run_as']} "
                        f"(which bagged {record['folds']} folds), copied[/dim]"
                    )
                elif (first := refused.get(_parsed_inputs(spec))) is not None:
                    _store(_failed(spec, first[1]), spec)
                    progress.console.print(
                        f"[dim]{_label(spec)}: not run, its command line is {first[0]}'s, "
                        "which was refused[/dim]"
                    )
                else:
                    progress.update(task, description=_label(spec))
                    record = _run_one(context, spec, timeout)
                    ours = spec.network_args is not None
                    if ours and record["status"] == "ok" and not keep_checkpoints:
                        prune_checkpoints(spec.tensorboard_dir)
                    if str(record.get("error", "")).startswith(f"{ArgumentError.__name__}:"):
                        refused[_parsed_inputs(spec)] = (_label(spec), record["error"])
                    progress.console.print(_one_line(spec, record))
                progress.advance(task)
        progress.update(task, description="benchmark")


def _parsed_inputs(spec: RunSpec) -> tuple[Any, ...]:
    """What a run's command line is built from, the seed aside."""
    return (spec.model, spec.config, spec.data_args, spec.network_args, spec.trials)


def repeated_run(spec: RunSpec, dataset_specs: Sequence[RunSpec]) -> dict[str, Any] | None:
    """The stored result of another network run of the plan that `spec` would repeat,
    recorded as `spec`'s; None if there is none.

    A variant that differs from another only by pinning `--data.folds=K` (`bagged`) is
    that run wherever its `folds: auto` resolved to K: the same rows, folds and networks
    (measured: records identical but for the clock). The default bags on most of the
    robustness suite, so copying its run halves the network's cost of a scoreboard there.
    """
    if spec.network_args is None or spec.trials is not None:
        return None
    pins = [pin for arg in spec.network_args if (pin := _FOLDS_OVERRIDE.fullmatch(arg))]
    if len(pins) != 1:
        return None
    (pin,) = pins
    folds = int(pin["folds"])
    unpinned = replace(spec, network_args=tuple(a for a in spec.network_args if a != pin.string))
    for other in dataset_specs:
        if replace(other, model=spec.model) != unpinned:  # `spec` itself keeps its pin
            continue
        record = read_result(other)
        if record is not None and record["status"] == "ok" and record.get("folds") == folds:
            return record | {
                "model": spec.model,
                "spec": spec.fingerprint(),
                "same_run_as": other.model,
            }
    return None


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
    out: Path,
    records: list[dict[str, Any]],
    metadata: dict[str, Any],
    console: Console,
    reference: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results.csv, results.json and summary.md, each written atomically; then the tables.
    With a `reference` model, each of our other models is also compared with it."""
    runs = pd.DataFrame(records).drop(columns=["spec", "lightning_test", "code"], errors="ignore")
    counts = [name for name in ("train_rows", "passes") if name in runs.columns]
    runs = runs.astype(dict.fromkeys(counts, "Int64"))
    summary = summarise(runs)
    models = list(runs["model"].unique())
    baselines = [
        model
        for model in models
        if (untuned_name(model) or unbagged_name(model) or model) in BASELINES
    ]
    ours = [model for model in models if model not in baselines]
    paired = paired_comparison(runs, ours=ours, baselines=baselines)
    cases = worst_cases(runs, models=[*ours, *baselines], baselines=baselines)
    ratios = fit_time_ratios(runs, ours=ours)
    gains = tuning_gains(
        runs, [(model, untuned) for model in models if (untuned := untuned_name(model)) in models]
    )
    against = (
        paired_comparison(runs, ours=[m for m in ours if m != reference], baselines=[reference])
        if reference
        else pd.DataFrame()
    )
    write_csv_atomically(runs, out / "results.csv")
    report = {
        "metadata": metadata,
        "runs": records,
        "summary": summary.to_dict("records"),
        "paired": paired.to_dict("records"),
        "worst_cases": cases.to_dict("records"),
        "fit_time_ratios": ratios.to_dict("records"),
        "paired_reference": against.to_dict("records"),
        "tuning_gains": gains.to_dict("records"),
    }
    write_text_atomically(
        json.dumps(_without_nan(report), indent=2, allow_nan=False), out / "results.json"
    )
    sections = _sections(runs["dataset"].unique())
    tables = [
        f"## {title}\n\n"
        + markdown_tables(_of(summary, names), _of(paired, names), _of(ratios, names))
        + (f"\n{reference_markdown(_of(against, names), reference)}" if reference else "")
        + (f"\n{tuning_markdown(_of(gains, names))}" if not gains.empty else "")
        for title, names in sections
    ]
    overall = f"{worst_cases_markdown(cases)}\n" if not cases.empty else ""
    write_text_atomically(
        _markdown_header(metadata, records) + overall + "\n".join(tables), out / "summary.md"
    )
    for title, names in sections:
        for table in rich_tables(_of(summary, names), _of(paired, names), title=title):
            console.print(table)
    if not cases.empty:
        console.print(worst_cases_table(cases))
    console.print(f"results: {out / 'results.csv'}, {out / 'results.json'}, {out / 'summary.md'}")
    return summary, paired


def refuse_replacing_stored_runs(specs: Sequence[RunSpec], rerun: Collection[str]) -> None:
    """Stop before anything runs if a finished run stored in the folder would be replaced
    by one of other settings (another `--threads`, `--data-args`, `--mlp-args`...): the
    folder holds one result per dataset, model and seed, and a scoreboard's runs take
    hours. `--rerun MODEL` replaces them on purpose. A run whose config or data file has
    changed since is run again: its stored result no longer describes those files."""
    replaced, models = [], set()
    for spec in specs:
        if spec.model in rerun or read_result(spec) is not None:
            continue
        try:
            stored = json.loads(spec.result_path.read_text())
        except (OSError, ValueError):
            continue
        if stored.get("status") != "ok":
            continue
        before, now = stored.get("spec") or {}, spec.fingerprint()
        changed = sorted(
            key
            for key in before.keys() | now.keys()
            if key != "inputs" and before.get(key) != now.get(key)
        )
        if not changed:
            continue
        settings = "; ".join(
            f"{key} {_short(before.get(key))} -> {_short(now.get(key))}" for key in changed
        )
        replaced.append(f"{_label(spec)} ({settings})")
        models.add(spec.model)
    if replaced:
        raise SystemExit(
            f"{len(replaced)} finished runs stored in {specs[0].out_dir} have other settings "
            f"than this command's, which would replace them: {_some(replaced)}. Use another "
            f"--out for these settings, or --rerun {' '.join(sorted(models))} to replace them."
        )


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


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
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out}: a file, not a folder to store the runs in")
    refuse_replacing_stored_runs(specs, options.rerun)
    console.print(f"{len(specs)} runs into {out}")
    keep = options.keep_checkpoints
    try:
        run_all(specs, options.timeout, console, rerun=options.rerun, keep_checkpoints=keep)
    except KeyboardInterrupt:
        console.print(
            f"interrupted: the finished runs are stored in {out / 'runs'}; the same command "
            "continues with the others (the tables are written when every run has a result)"
        )
        return 130
    metadata["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    metadata["load_average_after"] = os.getloadavg()
    records = collect(specs)
    write_outputs(out, records, metadata, console, options.reference)
    if others := _other_stored_runs(out, specs):
        console.print(
            f"{out}: the tables cover this command's {len(specs)} runs; the folder holds "
            f"{others} more stored runs of other datasets, models or seeds (a command naming "
            "them all tabulates everything)"
        )
    return 0 if all(record["status"] == "ok" for record in records) else 1


def _other_stored_runs(out: Path, specs: Sequence[RunSpec]) -> int:
    """Stored results in `out` that this plan does not include: results.csv and summary.md
    were just rewritten without them."""
    planned = {spec.result_path.resolve() for spec in specs}
    stored = (out / "runs").glob("*/*.json")
    return sum(path.resolve() not in planned for path in stored)


def _run_one(
    context: multiprocessing.context.ForkServerContext, spec: RunSpec, timeout: float | None
) -> dict[str, Any]:
    spec.result_path.unlink(missing_ok=True)
    exit_code = _run_in_process(context, worker_main, spec, timeout)
    if exit_code is None:
        return _store(_failed(spec, f"timed out after {timeout:g} s (stopped)"), spec)
    record = read_result(spec)
    if record is None:
        return _store(_failed(spec, _no_result("run", exit_code, spec.log_path)), spec)
    return record


def _check_data(
    context: multiprocessing.context.ForkServerContext, spec: RunSpec, timeout: float | None
) -> str:
    """The error that stops every run of `spec`'s dataset, or "" if its data is usable."""
    spec.data_check_path.unlink(missing_ok=True)
    exit_code = _run_in_process(context, data_check_main, spec, timeout)
    if exit_code is None:
        return f"the data check timed out after {timeout:g} s (stopped)"
    try:
        return str(json.loads(spec.data_check_path.read_text())["error"])
    except (OSError, ValueError, KeyError):
        return _no_result("data check", exit_code, spec.data_check_path.with_suffix(".log"))


def _run_in_process(
    context: multiprocessing.context.ForkServerContext,
    target: Callable[[RunSpec], None],
    spec: RunSpec,
    timeout: float | None,
) -> int | None:
    """Run `target(spec)` in a process of its own: its exit code, or None if it ran past
    `timeout` and was stopped."""
    process = context.Process(target=target, args=(spec,), name=spec.name)
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
        return None
    return process.exitcode


def _no_result(what: str, exit_code: int, log: Path) -> str:
    """Why a process left no result: the error its command line stated (an unknown override,
    a config that does not load), else where its log is."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    starts = [index for index, line in enumerate(lines) if line.startswith("error:")]
    if starts:
        # jsonargparse states the cause on the indented lines below its "error:" line.
        stated = [lines[starts[-1]].strip()]
        for line in lines[starts[-1] + 1 :]:
            if not line[:1].isspace() or not line.strip():
                break
            stated.append(line.strip())
        return f"the {what} stopped: {' '.join(stated)[:MAX_STATED_ERROR]}{_LOG_NOTE}{log})"
    return f"the {what}'s process exited with code {exit_code} without a result{_LOG_NOTE}{log})"


def _by_dataset(specs: Sequence[RunSpec]) -> dict[str, list[RunSpec]]:
    """The specs of each dataset, in plan order."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.dataset, []).append(spec)
    return groups


def _default_datasets(options: argparse.Namespace) -> Sequence[str]:
    if options.suite:
        return SUITES[options.suite]
    return QUICK_DATASETS if options.quick else DATASETS


def _modifier_override(name: str, modifier: str) -> tuple[str, str]:
    """The data-module option and value of one `@` modifier of a dataset name."""
    if rows := _ROWS_MODIFIER.fullmatch(modifier):
        count = int(rows["count"]) * (1000 if rows["thousands"] else 1)
        if count < 1:
            raise SystemExit(f"dataset {name!r}: @{modifier} samples no rows; use @1 or more")
        return "sample_rows", str(count)
    if rate := _RATE_MODIFIER.fullmatch(modifier):
        percent = float(rate["percent"])
        if not 0 < percent < 100:
            raise SystemExit(
                f"dataset {name!r}: @{modifier} is not a default rate a sample can have; use "
                "a percentage above 0 and below 100, e.g. @5pct"
            )
        return "sample_positive_rate", f"{percent / 100:g}"
    if modifier == "noise":
        return "noise_columns", str(SUITE_NOISE_COLUMNS)
    raise SystemExit(
        f"dataset {name!r}: unknown modifier {modifier!r}; use @ROWS (e.g. @3k or @500) for a "
        "stratified sample, @PERCENTpct (e.g. @5pct) for a default rate, @noise for "
        f"{SUITE_NOISE_COLUMNS} uninformative columns"
    )


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


def _label(spec: RunSpec) -> str:
    return f"{spec.dataset} {spec.model} seed {spec.seed}"


def _one_line(spec: RunSpec, record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"[red]{_label(spec)}: failed: {escape(record['error'])}[/red]"
    return (
        f"{_label(spec)}: roc_auc {record['roc_auc']:.4f}, fit {record['fit_seconds']:.1f} s, "
        f"peak {record['peak_rss_mb']:.0f} MiB"
    )


def _parse_variants(definitions: Sequence[str]) -> dict[str, tuple[str, ...]]:
    variants = {}
    reserved = {*NETWORK_VARIANTS, *BASELINES, *(bagged_name(name) for name in BASELINES)}
    for definition in definitions:
        name, separator, overrides = definition.partition("=")
        name = name.strip()
        if not separator or not name:
            raise SystemExit(f"--variant wants NAME=ARGS, got {definition!r}")
        if name in reserved or untuned_name(name) or name in variants:
            raise SystemExit(
                f"--variant {name!r}: a model of that name exists already (built in: "
                f"{sorted(reserved)}, or defined twice); name the variant otherwise"
            )
        variants[name] = tuple(shlex.split(overrides))
        _require_same_rows(f"--variant {name}", variants[name])
    return variants


def _require_same_rows(where: str, overrides: Sequence[str]) -> None:
    """A network's overrides must not change which rows it trains and is tested on: the
    paired comparison with the baselines, which read the rows of `--data-args` and the
    dataset's name, would compare different test sets."""
    changed = [arg for arg in overrides if _ROW_OPTION.match(arg)]
    if changed:
        raise SystemExit(
            f"{where} sets {changed}, which changes the rows it is trained and tested on, "
            "so its comparison with the baselines would not be paired: give data options "
            "for every model in --data-args, or name a derived dataset (e.g. taiwan@3k)"
        )


def _sections(datasets: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The scoreboard's sections: the datasets as configured, then the derived ones."""
    given = [name for name in datasets if not is_derived(name)]
    derived = [name for name in datasets if is_derived(name)]
    sections = [("Datasets", given), ("Robustness suite (derived datasets)", derived)]
    return [(title, names) for title, names in sections if names]


def _of(table: pd.DataFrame, datasets: Sequence[str]) -> pd.DataFrame:
    """The rows of `table` on these datasets (an empty table stays as it is)."""
    return table[table["dataset"].isin(datasets)] if not table.empty else table


def _failure_lines(failed: list[dict[str, Any]]) -> list[str]:
    """One line per dataset and error, so a data error shared by all its runs reads once."""
    runs: dict[tuple[str, str], list[str]] = {}
    first_error: dict[tuple[str, str], str] = {}
    for record in failed:
        # Each run has its own log: the same error reads once, with its first run's log.
        key = (record["dataset"], record["error"].split(_LOG_NOTE)[0])
        runs.setdefault(key, []).append(f"{record['model']} seed {record['seed']}")
        first_error.setdefault(key, record["error"])
    return [
        f"  - failed: {key[0]} {', '.join(names)}: {first_error[key]}"
        for key, names in runs.items()
    ]


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
        *_failure_lines(failed),
        *_code_lines(records),
        "- metrics: on the test split; accuracy, f1, precision and recall at the threshold "
        "that maximises validation accuracy (`threshold`), accuracy_at_0.5 at 0.5.",
        "- models: `mlp` is the code's default network (a bag of 8 below 5,120 training rows, "
        "of 5 from there, where it bags), `fast` the plain MLP, `bagged` a bag of "
        f"{BAGGING_FOLDS} at every size (the default's own run where it bags five); the others "
        "are baselines, and `<baseline>-bagged` is one on the default's folds (on those of "
        "its bag where it fits one network).",
        "- comparisons: a model against the best baseline, the one with the highest mean "
        "ROC-AUC over the seeds every baseline completed; differences are paired seed by "
        "seed (over the seeds both runs completed), with a 95 % "
        't-interval over the seeds. "Ahead or level" counts the datasets whose mean '
        'difference is at least 0, "behind beyond the noise" those whose interval lies '
        "below 0; the rest are behind inside the noise.",
        "",
        "",
    ]
    return "\n".join(lines)


def _code_lines(records: list[dict[str, Any]]) -> list[str]:
    """Which runs were computed by code that this checkout has changed, or did not record it:
    the tables show stored runs as they were computed."""
    stale: dict[str, int] = {}
    files: dict[str, None] = {}
    unrecorded = 0
    for record in records:
        if record["status"] != "ok":
            continue
        if "code" not in record:
            unrecorded += 1
        elif changed := changed_code(record["code"]):
            stale[record["model"]] = stale.get(record["model"], 0) + 1
            files |= dict.fromkeys(changed)
    lines = []
    if stale:
        counts = ", ".join(f"{model} {count}" for model, count in stale.items())
        lines.append(
            f"- code: {sum(stale.values())} runs ({counts}) were computed by code this "
            f"checkout has changed since ({_some(list(files))}); `--rerun MODEL` recomputes a "
            "model's runs where the change moves its results"
        )
    if unrecorded:
        lines.append(
            f"- code: {unrecorded} runs were stored before runs recorded their code (their "
            "commit is in results.csv)"
        )
    return lines


def _some(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _without_nan(value: Any) -> Any:
    """JSON has no NaN: missing numbers (a std over one seed, a failed run) become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value
