"""One benchmark run (dataset x model x seed), scored and costed the same way for every model.

Our network is trained by `scripts/main.py`'s own CLI, configs, data module and
LightningModule; the baselines (`benchmarking/baselines.py`) read the same data module
built from the same config, so every model sees the same rows, schema and protocol split.
Each run executes in its own process (`worker_main`), so its peak memory is its own.
Before a dataset's runs, one process checks that its data can be read, validated and split
(`data_check_main`), so a bad file or config is reported once instead of by every run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import ProgressBar

from benchmarking.baselines import (
    BASELINES,
    TUNABLE_BASELINES,
    BaggedFitted,
    BaselineInputs,
    feature_frame,
    unbagged_name,
)
from benchmarking.code_record import executed_code
from benchmarking.machine import git_commit, peak_rss_mb
from benchmarking.tuned_names import untuned_name
from datamodules.loan_datamodule import LabelledTable, LoanDataModule
from lightning_modules.atomic import write_text_atomically
from lightning_modules.cli import LoanCLI, build_cli, drop_callbacks, hide_lightning_tip
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.metrics import binary_report, choose_threshold

if TYPE_CHECKING:
    from benchmarking.tuned import SearchCost

# The protocol's decision threshold maximises accuracy on validation, for every model.
THRESHOLD_OBJECTIVE = "accuracy"
MAX_ERROR_CHARS = 500
CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunSpec:
    """What one run trains, on what, and where it writes.

    network_args: CLI overrides of `scripts/main.py` that define a variant of our network
    (empty for the plain config); None for a baseline.
    data_args: CLI overrides of the data section, applied to every model alike.
    threads: thread count for torch and the baselines' libraries (None: their defaults).
    trials: for a tuned model (`<model>-tuned`), the trials its search runs before the
    refit that is scored; None for a model run as it is.
    inputs: the digest of the files the run reads (`benchmarking.inputs`), so that an
    edited config or another data file behind the same path is run again.
    """

    dataset: str
    model: str
    seed: int
    config: str
    out_dir: str
    data_args: tuple[str, ...] = ()
    network_args: tuple[str, ...] | None = None
    threads: int | None = None
    trials: int | None = None
    inputs: str | None = None

    @property
    def name(self) -> str:
        return f"{self.model}-seed{self.seed}"

    @property
    def result_path(self) -> Path:
        return Path(self.out_dir) / "runs" / self.dataset / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return self.result_path.with_suffix(".log")

    @property
    def data_check_path(self) -> Path:
        """The outcome of the dataset's data check, shared by all its runs (its log beside)."""
        return Path(self.out_dir) / "data-checks" / f"{self.dataset}.json"

    @property
    def tensorboard_dir(self) -> Path:
        return Path(self.out_dir) / "tensorboard" / self.dataset / self.name

    @property
    def baseline(self) -> str:
        """The baseline this run fits (`lightgbm` for `lightgbm-tuned` and
        `lightgbm-bagged` too)."""
        return untuned_name(self.model) or unbagged_name(self.model) or self.model

    def cli_args(self) -> list[str]:
        """The run's arguments to the training CLI after `--config`: its seed and data."""
        return [f"--seed_everything={self.seed}", f"--data.seed={self.seed}", *self.data_args]

    def fingerprint(self) -> dict[str, Any]:
        """What decides a run's result: a stored result is reused only if this matches.

        Paths inside this checkout are written relative to it, so that a result stored
        from one checkout of the code (e.g. a git worktree that keeps the benchmark's code
        fixed while another is edited) is reused from another.
        """
        spec = asdict(self)
        del spec["out_dir"]
        spec["config"] = _relative_to_checkout(self.config)
        spec["data_args"] = [_relative_to_checkout(arg) for arg in self.data_args]
        if self.network_args is not None:
            spec["network_args"] = [_relative_to_checkout(arg) for arg in self.network_args]
        if self.trials is None:
            del spec["trials"]  # as results stored before tuned runs existed record it
        if self.inputs is None:
            del spec["inputs"]
        return spec


def _relative_to_checkout(text: str) -> str:
    """`text` with this checkout's absolute path removed wherever it prefixes a path."""
    return text.replace(f"{CHECKOUT}{os.sep}", "")


@dataclass
class Outcome:
    """Predicted probabilities on validation and test, and what the fit cost.

    passes: epochs for the network, boosting rounds run or solver iterations for a baseline.
    folds: how many models were fitted on folds and averaged (1: one model).
    search: what a tuned model's search cost before its refit (None if not tuned).
    """

    val_probs: np.ndarray
    val_targets: np.ndarray
    test_probs: np.ndarray
    test_targets: np.ndarray
    fit_seconds: float
    train_rows: int
    passes: int
    folds: int = 1
    lightning_test: dict[str, float] = field(default_factory=dict)
    search: SearchCost | None = None


class BenchmarkCLI(LoanCLI):
    """`scripts/main.py`'s CLI without progress-bar callbacks.

    The benchmark draws one bar over all runs and sends each run's output to its log file,
    where a per-step bar would only be noise.
    """

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        drop_callbacks(self.config.trainer, (ProgressBar,))
        self.config.trainer.enable_progress_bar = False


def build_run_cli(spec: RunSpec, extra_args: list[str]) -> LoanCLI:
    """Parse and instantiate the run's config exactly as `scripts/main.py` would, plus overrides."""
    args = ["--config", spec.config, *spec.cli_args(), *extra_args]
    return build_cli(args, BenchmarkCLI, save_config_kwargs={"overwrite": True})


def run_network(spec: RunSpec, overrides: Sequence[str] = ()) -> Outcome:
    """Fit our network with the config's trainer, test its best checkpoint, predict val/test.

    `overrides` (a search's best values) come after the variant's own. TensorBoard logs,
    the run's full config and its checkpoints go to
    `<out>/tensorboard/<dataset>/<model>-seed<s>`, emptied first: a rerun replaces them.
    """
    if spec.network_args is None:
        raise ValueError(f"{spec.model} is a baseline, not a variant of our network")
    log_dir = spec.tensorboard_dir
    shutil.rmtree(log_dir, ignore_errors=True)
    cli = build_run_cli(
        spec,
        [
            *spec.network_args,
            *overrides,
            f"--trainer.logger.init_args.save_dir={log_dir.parent.parent}",
            f"--trainer.logger.init_args.name={log_dir.parent.name}",
            f"--trainer.logger.init_args.version={log_dir.name}",
        ],
    )
    datamodule, model, trainer = cli.datamodule, cli.model, cli.trainer
    datamodule.labelled_table()  # reading the file is not part of the fit, for any model
    if datamodule.resolved_folds() > 1:
        return _run_bagged_network(cli)
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    epochs = trainer.current_epoch
    (logged,) = trainer.test(model, datamodule=datamodule, ckpt_path="best")
    # `test(ckpt_path="best")` leaves the best checkpoint's weights in the model.
    val, test = datamodule.split_tensors("val"), datamodule.split_tensors("test")
    return Outcome(
        val_probs=_network_probabilities(model, val.numeric, val.categorical),
        val_targets=val.target.numpy().astype(np.int64),
        test_probs=_network_probabilities(model, test.numeric, test.categorical),
        test_targets=test.target.numpy().astype(np.int64),
        fit_seconds=fit_seconds,
        train_rows=len(datamodule.split_tensors("train")),
        passes=epochs,
        lightning_test={name: float(value) for name, value in logged.items()},
    )


def _run_bagged_network(cli: LoanCLI) -> Outcome:
    """`run_network` for a bagged config: the threshold is chosen on the out-of-fold
    probabilities (the bag's validation rows); passes are all folds' epochs together."""
    datamodule = cli.datamodule
    start = time.perf_counter()
    bagged = cli.fit_bagged(datamodule)
    fit_seconds = time.perf_counter() - start
    (logged,) = cli.trainer.test(bagged.model, datamodule=datamodule)
    test = datamodule.split_tensors("test")
    return Outcome(
        val_probs=bagged.out_of_fold.probabilities.double().numpy(),
        val_targets=bagged.out_of_fold.targets.numpy().astype(np.int64),
        test_probs=_network_probabilities(bagged.model, test.numeric, test.categorical),
        test_targets=test.target.numpy().astype(np.int64),
        fit_seconds=fit_seconds,
        train_rows=len(datamodule.fold_splits()[0].train),
        passes=sum(bagged.fold_epochs),
        folds=len(bagged.fold_epochs),
        lightning_test={name: float(value) for name, value in logged.items()},
    )


def run_tuned_network(spec: RunSpec) -> Outcome:
    """Search our network on the seed's train/validation rows, then run the best values."""
    if spec.network_args is None or spec.trials is None:
        raise ValueError(f"{spec.model} is not a tuned variant of our network")
    # Imported here, not above: only a tuned run's code record should name the search.
    from benchmarking.tuned import study_folder, tune_network

    overrides, cost = tune_network(
        study_folder(spec.out_dir, spec.dataset, spec.name),
        spec.config,
        [*spec.cli_args(), *spec.network_args],
        trials=spec.trials,
        seed=spec.seed,
    )
    return _with_search(run_network(spec, overrides), cost)


def run_baseline(spec: RunSpec) -> Outcome:
    """Fit a baseline on the protocol split of the data module built from the same config;
    a tuned one (`spec.trials`) is searched on the training and validation rows first."""
    datamodule = build_run_cli(spec, ["--trainer.logger=false"]).datamodule
    table = datamodule.labelled_table()
    split, targets = table.split, table.targets
    features = _baseline_features(datamodule, table, split.train)
    inputs = BaselineInputs.from_split(
        features, targets, split, seed=spec.seed, threads=spec.threads
    )
    params: dict[str, Any] = {}
    cost = None
    if spec.trials is not None:
        # Imported here, not above: only a tuned run's code record should name the search.
        from benchmarking.tuned import study_folder, tune_baseline

        folder = study_folder(spec.out_dir, spec.dataset, spec.name)
        params, cost = tune_baseline(folder, spec.baseline, inputs, trials=spec.trials)
    start = time.perf_counter()
    fitted = (
        TUNABLE_BASELINES[spec.baseline](inputs, params)
        if params
        else BASELINES[spec.baseline](inputs)
    )
    fit_seconds = time.perf_counter() - start
    outcome = Outcome(
        val_probs=fitted.predict_proba(features.iloc[split.val]),
        val_targets=targets[split.val],
        test_probs=fitted.predict_proba(features.iloc[split.test]),
        test_targets=targets[split.test],
        fit_seconds=fit_seconds,
        train_rows=len(split.train),
        passes=fitted.iterations,
    )
    return outcome if cost is None else _with_search(outcome, cost)


def run_bagged_baseline(spec: RunSpec) -> Outcome:
    """A baseline fitted on each of the default network's folds where it bags, else on
    those of the bag it would take (`bag_size`: the same rows, seed and fold count),
    early-stopped on its own fold; test probabilities averaged, the threshold chosen on
    the out-of-fold probabilities."""
    datamodule = build_run_cli(spec, ["--trainer.logger=false"]).datamodule
    table = datamodule.labelled_table()
    resolved = datamodule.resolved_folds()
    folds = datamodule.fold_splits(resolved if resolved > 1 else datamodule.bag_size())
    features = _baseline_features(datamodule, table, np.union1d(table.split.train, table.split.val))
    fit = BASELINES[spec.baseline]
    start = time.perf_counter()
    bag = BaggedFitted(
        tuple(
            fit(
                BaselineInputs.from_split(
                    features, table.targets, fold, seed=spec.seed, threads=spec.threads
                )
            )
            for fold in folds
        )
    )
    fit_seconds = time.perf_counter() - start
    held_out = [fold.val for fold in folds]
    test = table.split.test
    return Outcome(
        val_probs=np.concatenate(
            [
                member.predict_proba(features.iloc[rows])
                for member, rows in zip(bag.members, held_out, strict=True)
            ]
        ),
        val_targets=table.targets[np.concatenate(held_out)],
        test_probs=bag.predict_proba(features.iloc[test]),
        test_targets=table.targets[test],
        fit_seconds=fit_seconds,
        train_rows=len(folds[0].train),
        passes=bag.iterations,
        folds=len(folds),
    )


def _baseline_features(
    datamodule: LoanDataModule, table: LabelledTable, training_rows: np.ndarray
) -> pd.DataFrame:
    """`feature_frame` of the labelled rows, categorical levels from `training_rows`."""
    schema = datamodule.schema
    if schema is None:
        raise RuntimeError("the data module has no schema after reading the labelled file")
    return feature_frame(
        table.numeric,
        schema.numeric_columns,
        table.frame[list(schema.categorical_columns)],
        training_rows,
    )


def _with_search(outcome: Outcome, cost: SearchCost) -> Outcome:
    """The refit's outcome charged with its search: a tuned model's fit time is both."""
    outcome.search = cost
    outcome.fit_seconds += cost.seconds
    return outcome


def score(outcome: Outcome) -> dict[str, float]:
    """The protocol's metrics on test, at the threshold that maximises validation accuracy."""
    threshold = choose_threshold(
        torch.from_numpy(outcome.val_probs),
        torch.from_numpy(outcome.val_targets),
        THRESHOLD_OBJECTIVE,
    )
    report = binary_report(
        torch.from_numpy(outcome.test_probs), torch.from_numpy(outcome.test_targets), threshold
    )
    return {name: float(value) for name, value in report.items()}


def execute(spec: RunSpec) -> dict[str, Any]:
    """Run, score and cost one spec; a failure becomes a record with its error, not a raise.

    Cost: fit_seconds is the wall time of the fit alone (preprocessing fit, training and
    the validation passes that early stopping needs; not reading the file); a tuned
    model's adds its search (`search_seconds`, also recorded alone). Training rows
    per second is passes x training rows / fit_seconds: rows seen per second. Peak memory
    is this process's maximum resident set; `peak_rss_growth_mb` subtracts what the process
    held when the run started (interpreter and libraries, the same for every run).
    """
    floor_mb = peak_rss_mb()
    record: dict[str, Any] = {
        "dataset": spec.dataset,
        "model": spec.model,
        "seed": spec.seed,
        "status": "ok",
        "error": "",
    }
    started = time.time()
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    try:
        outcome = _run(spec)
        record |= score(outcome)
        record |= {
            "fit_seconds": outcome.fit_seconds,
            "train_rows": outcome.train_rows,
            "passes": outcome.passes,
            "folds": outcome.folds,
            "train_rows_per_second": outcome.passes * outcome.train_rows / outcome.fit_seconds,
        }
        if outcome.search is not None:
            record |= {
                "search_seconds": outcome.search.seconds,
                "trials_complete": outcome.search.complete,
                "trials_pruned": outcome.search.pruned,
            }
        if outcome.lightning_test:
            record["lightning_test"] = outcome.lightning_test
    except Exception as error:
        traceback.print_exc()
        record["status"] = "failed"
        record["error"] = _error_text(error)
    peak_mb = peak_rss_mb()
    record |= {
        "peak_rss_mb": peak_mb,
        "peak_rss_growth_mb": peak_mb - floor_mb,
        "run_seconds": time.time() - started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "code": executed_code(),
        "spec": spec.fingerprint(),
    }
    return record


def _run(spec: RunSpec) -> Outcome:
    if spec.network_args is None:
        return run_bagged_baseline(spec) if unbagged_name(spec.model) else run_baseline(spec)
    return run_network(spec) if spec.trials is None else run_tuned_network(spec)


def worker_main(spec: RunSpec) -> None:
    """Process entry point: output to the run's log, result to the run's JSON."""
    hide_lightning_tip()
    with _output_to(spec.log_path):
        record = execute(spec)
    write_text_atomically(json.dumps(record, indent=2, allow_nan=True), spec.result_path)


def check_data(spec: RunSpec) -> str:
    """The error every run of this dataset would stop on, as a run records it ("" if none).

    Reads, validates and splits the labelled rows through the data module built from the
    run's config and data overrides, exactly as each run does before it fits.
    """
    try:
        build_run_cli(spec, ["--trainer.logger=false"]).datamodule.labelled_table()
    except Exception as error:
        traceback.print_exc()
        return _error_text(error)
    return ""


def data_check_main(spec: RunSpec) -> None:
    """Process entry point of the data check: output to its log, the error to its JSON."""
    hide_lightning_tip()
    with _output_to(spec.data_check_path.with_suffix(".log")):
        error = check_data(spec)
    write_text_atomically(json.dumps({"error": error}), spec.data_check_path)


def read_result(spec: RunSpec) -> dict[str, Any] | None:
    """The stored result of this exact spec, or None if absent, unreadable or for another spec.

    A result stored before runs recorded their inputs' digest matches on the other
    settings alone, and says so (`inputs_unchecked`).
    """
    try:
        record = json.loads(spec.result_path.read_text())
    except (OSError, ValueError):
        return None
    stored = record.get("spec")
    if stored == spec.fingerprint():
        return record
    legacy = isinstance(stored, dict) and "inputs" not in stored
    if legacy and stored == replace(spec, inputs=None).fingerprint():
        return record | {"inputs_unchecked": True}
    return None


@contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr into `path`: file descriptors, so that the output of
    libraries' native code lands there too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
        yield
        sys.stdout.flush()
        sys.stderr.flush()


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def _network_probabilities(
    model: LoanDefaultModel, numeric: torch.Tensor, categorical: torch.Tensor
) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        logits = model(numeric.to(model.device), categorical.to(model.device))
    return torch.sigmoid(logits).double().cpu().numpy()
