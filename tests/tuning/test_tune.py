"""`scripts/tune.py` end to end on the synthetic book: tiny space, one-epoch trials.

Workers run as forked processes: the same code as `python scripts/tune.py`, without a new
interpreter importing torch and Lightning again. Interruptions are sent when a trial
announces that it is training (`tests/tuning/faults.py`), never after a delay.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import time
from argparse import ArgumentError
from pathlib import Path
from types import SimpleNamespace

import matplotlib.image
import optuna
import pytest
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from contracts.errors import ConfigurationError
from lightning_modules.cli import run_entry_point
from lightning_modules.loan_model import MONITOR
from tests.conftest import CONFIGS
from tests.tuning.faults import WaitInTrial
from tuning.objective import TrialObjective
from tuning.space import load_space
from tuning.study import StudyFolder, open_storage, open_study, run_trials, sqlite_url
from tuning.tune import main

pytestmark = pytest.mark.slow

# The recommended model (auto blocks, piecewise, 48 bins, lr 1e-3) lies inside: trial 0 is it.
TINY_SPACE = """\
fixed:
  trainer.max_epochs: 1
parameters:
  lr: {key: model.optimizer.init_args.lr, type: float, low: 1.0e-4, high: 3.0e-3, log: true}
  numeric_embedding:
    {key: model.net.numeric_embedding, type: categorical, choices: [piecewise, none]}
  n_bins:
    {key: model.net.n_bins, type: int, low: 8, high: 48, when: {numeric_embedding: [piecewise]}}
  hidden_sizes:
    {key: model.net.hidden_sizes, type: layers, depth: [1, 3], width: [32, 256], log: true,
     off_value: auto}
"""
STUDY = "default-space"  # <config name>-<space name>
SMALL = ["--data.synthetic_rows=1500", "--trainer.accelerator=cpu"]
# The configured callbacks without `TensorBoardViews`, whose end-of-fit figures cost more
# than a one-epoch trial's training: only the pruning test, which checks that a pruned run
# still gets them, keeps it. (Trials drop the checkpoint; a refit of the best config uses it.)
WITHOUT_FIGURES = [
    "--trainer.callbacks=["
    '{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", '
    '"init_args": {"monitor": "val/roc_auc", "mode": "max"}}, '
    '{"class_path": "lightning.pytorch.callbacks.EarlyStopping", '
    '"init_args": {"monitor": "val/roc_auc", "mode": "max"}}, '
    '{"class_path": "lightning_modules.guards.FiniteGuard"}]'
]


def _space(root: Path, text: str = TINY_SPACE) -> Path:
    path = root / "space.yaml"
    path.write_text(text)
    return path


def _args(root: Path, trials: int, *extra: str) -> list[str]:
    return [
        f"--config={CONFIGS / 'default.yaml'}",
        f"--space={root / 'space.yaml'}",
        f"--trials={trials}",
        f"--output={root / 'tuning_results'}",
        *SMALL,
        *WITHOUT_FIGURES,
        *extra,
    ]


def _waiting_in(version: str, marker: Path) -> list[str]:
    return [
        f"--trainer.callbacks+={WaitInTrial.__module__}.WaitInTrial",
        f"--trainer.callbacks.init_args.version={version}",
        f"--trainer.callbacks.init_args.marker={marker}",
    ]


def _start_worker(args: list[str]) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=_worker, args=(args,))
    process.start()
    return process


def _worker(args: list[str]) -> None:
    # Ctrl-C as in a user's terminal: a shell starts background jobs (a CI runner, `cmd &`)
    # with SIGINT ignored, and a forked worker would inherit that and never see the signal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_entry_point(lambda: main(args))


def _signal_once_training(process: multiprocessing.Process, marker: Path, sig: int) -> int:
    """Send `sig` once the trial has created `marker`; the worker's exit status."""
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert process.is_alive(), f"the worker ended (status {process.exitcode}) before the trial"
        assert time.monotonic() < deadline, "the trial never started training"
        time.sleep(0.02)
    os.kill(process.pid, sig)
    process.join(timeout=120)
    if process.is_alive():  # never leave a worker behind, whatever the assertion says
        process.kill()
        process.join()
    return process.exitcode


def _params(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> SimpleNamespace:
    """A 3-trial study whose worker got SIGTERM in trial 1, then the same command again."""
    root = tmp_path_factory.mktemp("tune")
    _space(root)
    marker = root / "trial_1_training"
    worker = _start_worker(_args(root, 3, *_waiting_in("trial_1", marker)))
    status = _signal_once_training(worker, marker, signal.SIGTERM)
    folder = StudyFolder(root / "tuning_results" / STUDY)
    before = optuna.load_study(study_name=STUDY, storage=sqlite_url(folder.database)).trials
    first_events = sorted(folder.trial_dir(0).glob("events.out.tfevents.*"))
    study = main(_args(root, 3, *_waiting_in("trial_1", marker)))  # the same command
    return SimpleNamespace(
        folder=folder, status=status, before=before, first_events=first_events, study=study
    )


def test_an_interrupted_study_continues_with_the_same_command(resumed):
    assert resumed.status == 143
    assert [t.state for t in resumed.before] == [TrialState.COMPLETE, TrialState.FAIL]
    trials = resumed.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 2
    # Trial 0 was not run again: same start, same TensorBoard files.
    assert trials[0].datetime_start == resumed.before[0].datetime_start
    assert sorted(resumed.folder.trial_dir(0).glob("events.*")) == resumed.first_events
    # The interrupted trial's values ran first, once; then new ones.
    assert trials[2].params == trials[1].params and trials[2].user_attrs["retry_of"] == 1
    assert len(set(_params(resumed.study))) == 3
    first = trials[0]
    assert first.user_attrs["origin"] == "config"  # the config as it is
    assert first.params["hidden_sizes.off"] and first.params["n_bins"] == 48  # auto, 48
    for trial in (t for t in trials if t.state == TrialState.COMPLETE):
        assert trial.intermediate_values == {0: trial.value}
        assert 0.5 < trial.value <= 1.0


def test_the_best_trial_is_a_config_that_fit_refits_to_the_same_score(resumed, run_cli, tmp_path):
    best = resumed.study.best_trial
    config = resumed.folder.best_config
    assert f"The best trial ({best.number}) of study {STUDY}" in config.read_text()
    refit = run_cli("fit", f"--config={config}")
    assert float(refit.trainer.callback_metrics[MONITOR]) == pytest.approx(best.value, abs=1e-6)
    assert list((tmp_path / "logs" / STUDY / "version_0" / "checkpoints").glob("*.ckpt"))


def test_the_study_folder_holds_plots_a_table_and_a_tensorboard_run_per_trial(resumed):
    folder = resumed.folder
    for name in ("optimization_history.png", "param_importances.png", "parallel_coordinate.png"):
        image = matplotlib.image.imread(folder.plots / name)
        assert image.shape[0] > 200 and image.shape[1] > 300
    assert len(folder.trials_table.read_text().strip().splitlines()) == 1 + 4
    assert not list(folder.root.rglob("*.ckpt"))  # trials keep no weights
    for number in (0, 2, 3):
        run = folder.trial_dir(number)
        assert (run / "config.yaml").is_file()
        assert "Validation metrics" in (run / "fit.log").read_text()  # the fit's console
        events = EventAccumulator(str(run), size_guidance={"scalars": 0})
        events.Reload()
        assert [event.step for event in events.Scalars(MONITOR)][-1] == 3  # 4 steps, 1 epoch


def test_ctrl_c_records_the_running_trial_as_failed(tmp_path):
    _space(tmp_path)
    marker = tmp_path / "trial_0_training"
    worker = _start_worker(_args(tmp_path, 2, *_waiting_in("trial_0", marker)))
    assert _signal_once_training(worker, marker, signal.SIGINT) == 130
    database = StudyFolder(tmp_path / "tuning_results" / STUDY).database
    study = optuna.load_study(study_name=STUDY, storage=sqlite_url(database))
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_a_study_resumed_with_other_data_settings_or_asked_to_bag_is_refused(tmp_path):
    _space(tmp_path)
    main(_args(tmp_path, 1))
    with pytest.raises(ConfigurationError, match=r"data.seed 1 \(the study: 0\).*--study"):
        main(_args(tmp_path, 2, "--data.seed=1"))
    with pytest.raises(ConfigurationError, match=r"a search cannot bag; pass --data\.folds"):
        main(_args(tmp_path, 2, "--study=bagged", "--data.folds=5"))


def test_a_study_resumed_with_an_edited_space_or_another_seed_is_refused(tmp_path):
    _space(tmp_path)
    main(_args(tmp_path, 1))
    _space(tmp_path, TINY_SPACE.replace("high: 3.0e-3", "high: 3.0e-2"))
    lr = "model.optimizer.init_args.lr: float in [0.0001, {}] log"
    changed = f"search space: lr {lr.format(0.03)} (the study: {lr.format(0.003)})"
    with pytest.raises(ConfigurationError, match=re.escape(changed)):
        main(_args(tmp_path, 2))
    _space(tmp_path)
    with pytest.raises(ConfigurationError, match=re.escape("sampler seed 1 (the study: 0)")):
        main(_args(tmp_path, 2, "--seed=1"))


def test_a_study_of_the_same_name_in_another_storage_leaves_the_folder_alone(tmp_path):
    _space(tmp_path)
    main(_args(tmp_path, 1))
    folder = StudyFolder(tmp_path / "tuning_results" / STUDY)
    runs, best = sorted(folder.tensorboard.rglob("*")), folder.best_config.read_text()
    other = sqlite_url(tmp_path / "other.db")
    with pytest.raises(
        ConfigurationError, match=f"holds the trials of another study named '{STUDY}'"
    ):
        main(_args(tmp_path, 1, f"--storage={other}"))
    assert sorted(folder.tensorboard.rglob("*")) == runs
    assert folder.best_config.read_text() == best
    main(_args(tmp_path, 1))  # its own study still resumes there


def test_a_report_of_a_study_that_does_not_exist_is_refused_and_creates_none(tmp_path):
    _space(tmp_path)
    with pytest.raises(
        ConfigurationError,
        match=r"no study 'defualt-space' in .*tuning_results to report on \(--trials 0 runs no "
        r"trial\); the studies there: none",
    ):
        main(_args(tmp_path, 0, "--study=defualt-space"))
    assert not (tmp_path / "tuning_results").exists()
    shared = sqlite_url(tmp_path / "shared.db")
    with pytest.raises(ConfigurationError, match=r"the studies there: none$"):
        main(_args(tmp_path, 0, f"--study={STUDY}", f"--storage={shared}"))
    assert not (tmp_path / "shared.db").exists()  # not created to be found empty
    optuna.create_study(storage=open_storage(shared), study_name=STUDY)
    with pytest.raises(ConfigurationError, match=f"the studies there: {STUDY}$"):
        main(_args(tmp_path, 0, "--study=defualt-space", f"--storage={shared}"))
    assert optuna.get_all_study_names(open_storage(shared)) == [STUDY]


def test_a_config_the_space_cannot_express_is_said_to_have_no_trial(tmp_path, capsys):
    _space(tmp_path, TINY_SPACE.replace("low: 1.0e-4, high: 3.0e-3", "low: 2.0e-3, high: 3.0e-3"))
    study = main(_args(tmp_path, 1))
    assert "origin" not in study.trials[0].user_attrs  # a drawn trial, not the config's
    assert (
        "note: the config as it is cannot be a trial, so the study has no point to beat: "
        "model.optimizer.init_args.lr = 0.001 is not among what parameter 'lr' draws "
        "(float in [0.002, 0.003] log)"
    ) in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            "parameters:\n  n_bins: {key: model.net.n_bins, type: float, low: 8, high: 48}\n",
            r"parameter 'n_bins': model\.net\.n_bins = \d+\.\d+ is not a value the training CLI "
            r"takes: Parser key \"model\.net\.n_bins\"",
        ),
        (
            "parameters:\n  kind:\n    {key: model.net.numeric_embedding, type: categorical, "
            "choices: [piecewise, periodc]}\n",
            r"parameter 'kind': model\.net\.numeric_embedding = 'periodc' is not a value",
        ),
        (
            "fixed:\n  trainer.max_epoch: 1\nparameters:\n"
            "  lr: {key: model.optimizer.init_args.lr, type: float, low: 1.0e-4, high: 3.0e-3}\n",
            r"fixed: 'trainer\.max_epoch' is not an option of the training CLI \(did you mean "
            r"'trainer\.max_epochs'\?\)",
        ),
    ],
    ids=["a float for an int", "a choice the option lacks", "a misspelt fixed key"],
)
def test_a_space_the_training_cli_refuses_stops_before_any_trial(tmp_path, space, message):
    path = _space(tmp_path, space)
    with pytest.raises(ConfigurationError, match=re.escape(str(path)) + ": " + message):
        main(_args(tmp_path, 3))
    assert not (tmp_path / "tuning_results").exists()  # no study opened


def test_an_option_the_training_cli_refuses_is_one_message_naming_tunes_own(tmp_path):
    _space(tmp_path)
    with pytest.raises(
        ConfigurationError,
        match=r"unrecognized arguments: --trial=3 \(--trial: did you mean --trials\?\) \(tune\.py",
    ):
        main(_args(tmp_path, 1, "--trial=3"))


def test_a_misspelt_trials_is_named_where_no_budget_is_given():
    with pytest.raises(ArgumentError, match=r"or both \(--trails: did you mean --trials\?\)$"):
        main([f"--config={CONFIGS / 'default.yaml'}", "--trails", "3"])


def test_two_workers_share_one_study(tmp_path):
    _space(tmp_path)
    workers = [_start_worker(_args(tmp_path, 2)) for _ in range(2)]
    for worker in workers:
        worker.join(timeout=600)
    assert [worker.exitcode for worker in workers] == [0, 0]
    database = StudyFolder(tmp_path / "tuning_results" / STUDY).database
    study = optuna.load_study(study_name=STUDY, storage=sqlite_url(database))
    trials = study.trials
    # Each worker finishes the trial it is running when the study reaches 2.
    assert 2 <= len(trials) <= 3
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(_params(study))) == len(trials)
    assert sum(t.user_attrs.get("origin") == "config" for t in trials) == 1


@pytest.mark.parametrize(
    ("pruner", "extra"),
    [
        (optuna.pruners.ThresholdPruner(lower=1.01), []),
        (
            optuna.pruners.NopPruner(),
            [*WITHOUT_FIGURES, "--trainer.callbacks+=tests.helpers.faults.LearningRateJump"],
        ),
    ],
    ids=["below the threshold", "diverged"],
)
def test_a_stopped_trial_is_recorded_as_pruned_after_one_epoch(tmp_path, pruner, extra):
    """No ROC-AUC reaches 1.01, so the threshold prunes after the first epoch; a learning
    rate multiplied by 1e30 in epoch 1 makes the loss NaN."""
    space = load_space(_space(tmp_path, TINY_SPACE.replace("max_epochs: 1", "max_epochs: 3")))
    folder = StudyFolder(tmp_path / "study")
    study = open_study(
        "pruning",
        open_storage(sqlite_url(folder.database)),
        seed=0,
        pruner=pruner,
        origin={"config": "default", "space": space.name},
    )
    base_args = tuple(space.trial_args(CONFIGS / "default.yaml", [*SMALL, *extra]))
    run_trials(study, TrialObjective(base_args, space, folder), n_trials=1, timeout=None)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]
    if extra:
        assert "the training loss is not finite" in trial.user_attrs["diverged"]
        return
    # Stopped the way early stopping stops: the run ends normally, with its HPARAMS row
    # and the end-of-fit figures.
    assert trial.user_attrs["epochs"] == 1
    events = EventAccumulator(str(folder.trial_dir(0)), size_guidance={"images": 0})
    events.Reload()
    assert "val/roc_curve" in events.Tags()["images"]
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    ).session_start_info
    lr = trial.params["lr"]
    assert start.hparams["optimizer/lr"].number_value == pytest.approx(lr)
