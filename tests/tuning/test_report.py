"""The study's plots, drawn from a stand-in study (no fit)."""

from __future__ import annotations

import warnings

import optuna

from tuning.report import write_plots


def test_a_study_of_one_trial_draws_its_plots_without_warnings(tmp_path):
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-2), n_trials=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning fails the test
        written = write_plots(study, tmp_path, seed=0)
    assert written["optimization_history.png"] == tmp_path / "optimization_history.png"
    assert written["parallel_coordinate.png"] == tmp_path / "parallel_coordinate.png"
