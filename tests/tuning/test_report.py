"""The study's plots, drawn from a stand-in study (no fit)."""

from __future__ import annotations

import io
import warnings

import optuna
from rich.console import Console

from lightning_modules.cli import build_cli
from tests.conftest import CONFIGS
from tuning.report import BestConfigWriter, write_plots, write_report
from tuning.study import StudyFolder


def test_a_study_of_one_trial_draws_its_plots_without_warnings(tmp_path):
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-2), n_trials=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning fails the test
        written = write_plots(study, tmp_path, seed=0)
    assert written["optimization_history.png"] == tmp_path / "optimization_history.png"
    assert written["parallel_coordinate.png"] == tmp_path / "parallel_coordinate.png"


def test_the_report_names_a_trial_still_running_when_the_worker_ends(tmp_path):
    """A worker killed in the config's trial and rerun at once leaves that trial RUNNING
    until its heartbeat goes stale: the study's point to beat is missing, and says so."""
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e-3}, user_attrs={"origin": "config"})
    study.ask()  # the killed worker's trial
    args = ["--config", str(CONFIGS / "default.yaml")]
    writer = BestConfigWriter(build_cli(args).parser, args, tmp_path / "best_config.yaml")
    shown = io.StringIO()
    write_report(
        study, StudyFolder(tmp_path), writer, seed=0, console=Console(file=shown, width=400)
    )
    text = shown.getvalue()
    assert "no trial has completed yet" in text
    assert "trial 0 (the config as it is) is still running" in text
    assert "raise --trials if the study has reached it" in text


def test_the_report_names_the_parameters_the_importances_leave_out(tmp_path):
    """fANOVA ranks only what every completed trial drew: a depth drawn only where the
    widths are searched is missing from the plot, and the report says so."""

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("overrides", [])  # as a trial records them: the config as it is
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        if trial.suggest_categorical("layers", ["auto", "searched"]) == "searched":
            return lr * 10 + trial.suggest_int("depth", 1, 4)
        return lr * 10

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=12)
    ranked = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
    )
    assert sorted(ranked) == ["layers", "lr"]  # what Optuna draws: no depth
    args = ["--config", str(CONFIGS / "default.yaml")]
    writer = BestConfigWriter(build_cli(args).parser, args, tmp_path / "best_config.yaml")
    shown = io.StringIO()
    write_report(
        study, StudyFolder(tmp_path), writer, seed=0, console=Console(file=shown, width=400)
    )
    assert "param_importances.png leaves out depth: fANOVA ranks only" in shown.getvalue()


def test_the_report_shows_what_the_best_gains_over_the_config_and_at_what_cost(tmp_path):
    study = optuna.create_study(direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    for value, origin in [(0.9000, "config"), (0.9125, None), (0.8500, None)]:
        attrs = {"overrides": []} | ({"origin": origin} if origin else {})
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 1e-3}, distributions={"lr": lr}, value=value, user_attrs=attrs
            )
        )
    args = ["--config", str(CONFIGS / "default.yaml")]
    writer = BestConfigWriter(build_cli(args).parser, args, tmp_path / "best_config.yaml")
    shown = io.StringIO()
    write_report(
        study, StudyFolder(tmp_path), writer, seed=0, console=Console(file=shown, width=400)
    )
    assert (
        "against the config as it is (trial 0, val/roc_auc 0.9000): +0.0125, fit 0 s against 0 s"
        in shown.getvalue()
    )
