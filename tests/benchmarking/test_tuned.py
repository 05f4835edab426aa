"""The benchmark's tuned rows: each seed's search runs on its train/validation rows, the
best values are refitted and scored, the search is charged to the fit time, and a stopped
benchmark continues the same study."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmarking.baselines import BaselineInputs, fit_lightgbm
from benchmarking.scoreboard import tuning_gains
from benchmarking.suite import main, parse_args, plan
from benchmarking.tuned import study_folder, tune_baseline
from tests.helpers.books import baseline_book
from tuning.study import StudyFolder

TRIALS = 3
MODELS = ["mlp", "mlp-tuned", "lightgbm", "lightgbm-tuned"]
ARGS = [
    "--datasets",
    "default",
    "--data-args=--data.synthetic_rows=1500",
    "--threads=1",
    "--seeds=1",
    f"--trials={TRIALS}",
    # Two epochs win over the search space's own cap; one network, not the small-data bag.
    "--mlp-args=--trainer.max_epochs=2 --data.folds=1",
    "--models",
    *MODELS,
]


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("tuned")
    return out, main([*ARGS, "--out", str(out)])


def _study(out: Path, model: str) -> optuna.Study:
    folder = study_folder(out, "default", f"{model}-seed0")
    return optuna.load_study(
        study_name=folder.root.name, storage=f"sqlite:///{folder.database.as_posix()}"
    )


@pytest.mark.slow
def test_tuned_rows_search_refit_and_pay_for_the_search(tuned_run):
    out, exit_code = tuned_run
    assert exit_code == 0
    runs = pd.read_csv(out / "results.csv").set_index("model")
    assert list(runs.index) == MODELS and (runs["status"] == "ok").all()

    for model in ("mlp-tuned", "lightgbm-tuned"):
        run = runs.loc[model]
        assert run["trials_complete"] + run["trials_pruned"] == TRIALS
        # The search is charged: fit time is the trials' summed wall time plus the refit's.
        assert 0 < run["search_seconds"] < run["fit_seconds"]
        study = _study(out, model)
        assert len(study.trials) == TRIALS
        assert study.trials[0].user_attrs["origin"] == "config"  # the default comes first
    assert runs[["search_seconds"]].loc[["mlp", "lightgbm"]].isna().all().all()

    lightgbm = _study(out, "lightgbm-tuned")
    assert lightgbm.trials[0].user_attrs["params"] == {}  # the untuned baseline
    assert all(trial.user_attrs["params"] for trial in lightgbm.trials[1:])
    # Every network trial trains the run's own data: its seed and sample.
    trial = study_folder(out, "default", "mlp-tuned-seed0").trial_dir(1)
    config = (trial / "config.yaml").read_text()
    assert "synthetic_rows: 1500" in config and "seed_everything: 0" in config
    assert "max_epochs: 2" in config

    report = json.loads((out / "results.json").read_text())
    pairs = {(row["model"], row["default"]) for row in report["tuning_gains"]}
    assert pairs == {("mlp-tuned", "mlp"), ("lightgbm-tuned", "lightgbm")}
    # The tuned trees count as baselines, the tuned network as ours.
    paired = {row["model"]: row["best_baseline"] for row in report["paired"]}
    assert set(paired) == {"mlp", "mlp-tuned"}
    assert set(paired.values()) <= {"lightgbm", "lightgbm-tuned"}
    assert "### Tuned against default" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_a_rerun_continues_the_same_study_and_scores_the_same(tuned_run):
    out, _ = tuned_run
    result = out / "runs" / "default" / "lightgbm-tuned-seed0.json"
    before = json.loads(result.read_text())
    result.unlink()  # as if the benchmark had stopped after the search

    assert main([*ARGS, "--out", str(out)]) == 0

    after = json.loads(result.read_text())
    assert len(_study(out, "lightgbm-tuned").trials) == TRIALS  # no new trials
    assert after["roc_auc"] == before["roc_auc"]
    assert after["search_seconds"] == pytest.approx(before["search_seconds"])


def test_the_first_trial_is_the_untuned_baseline_as_it_scores_alone(tmp_path):
    features, targets, split = baseline_book(2000)
    data = BaselineInputs.from_split(features, targets, split, seed=3, threads=1)

    params, cost = tune_baseline(StudyFolder(tmp_path / "study"), "lightgbm", data, trials=1)

    assert params == {} and (cost.complete, cost.pruned) == (1, 0)
    alone = roc_auc_score(data.y_val, fit_lightgbm(data).predict_proba(data.x_val))
    study = optuna.load_study(
        study_name="study", storage=f"sqlite:///{(tmp_path / 'study' / 'study.db').as_posix()}"
    )
    assert study.best_value == pytest.approx(alone)


def test_tuning_gains_pair_each_tuned_model_with_its_default_over_shared_seeds():
    runs = pd.DataFrame(
        {
            "dataset": ["a"] * 6,
            "model": ["lightgbm"] * 3 + ["lightgbm-tuned"] * 3,
            "seed": [0, 1, 2] * 2,
            "status": ["ok"] * 5 + ["failed"],
            "roc_auc": [0.70, 0.72, 0.74, 0.71, 0.74, 0.99],
            "fit_seconds": [1.0, 1.0, 1.0, 11.0, 13.0, 99.0],
            "search_seconds": [None] * 3 + [10.0, 12.0, 98.0],
            "trials_complete": [None] * 3 + [4, 3, 1],
            "trials_pruned": [None] * 3 + [0, 1, 0],
        }
    )

    (row,) = tuning_gains(runs, [("lightgbm-tuned", "lightgbm")]).to_dict("records")

    assert row["default"] == "lightgbm" and row["seeds"] == 2  # seed 2 failed when tuned
    assert row["mean_difference"] == pytest.approx(0.015)
    assert row["seeds_won"] == 2
    assert row["search_seconds"] == pytest.approx(11.0)
    assert row["fit_seconds"] == pytest.approx(12.0)
    assert row["trials_complete"] == pytest.approx(3.5)


def test_only_network_variants_and_tunable_baselines_can_be_tuned(tmp_path):
    def planned(*models: str) -> list:
        return plan(
            parse_args(
                ["--datasets", "default", "--seeds=1", "--out", str(tmp_path), "--models", *models]
            )
        )

    fast, catboost = planned("fast-tuned", "catboost-tuned")
    assert fast.network_args == plan(parse_args(["--models", "fast"]))[0].network_args
    assert fast.trials == catboost.trials == 20 and catboost.network_args is None
    assert planned("fast")[0].trials is None
    with pytest.raises(SystemExit, match="logreg-tuned"):
        planned("logreg-tuned")
