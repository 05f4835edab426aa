"""The searches behind the benchmark's tuned rows (`mlp-tuned`, `lightgbm-tuned`, ...).

A tuned run searches one model on its seed's training and validation rows, then refits
the best values and scores them on that seed's test rows like any run
(`benchmarking/runner.py`). Every model gets the same number of trials and the same
machinery as `scripts/tune.py`: a TPE sampler seeded by the run's seed, a study in SQLite
(`<out>/studies/<dataset>/<model>-seed<s>/`, so a benchmark stopped mid-study resumes it),
and a first trial that is the model as the benchmark runs it untuned, so the best trial
is never worse than the default on validation. Our network's trials are normal fits with
median pruning (`tuning/objective.py`); a baseline's trials fit it with the trial's values
and score validation ROC-AUC (boosting already stops early on validation log-loss, so
there is nothing to prune).

The search's cost is the sum of its trials' wall times, so a resumed study counts every
trial once, whichever process ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from benchmarking.baselines import TUNABLE_BASELINES, BaselineInputs, Fitted
from benchmarking.machine import REPO
from tuning.objective import TrialObjective
from tuning.space import SearchSpace, load_space
from tuning.study import PRUNERS, StudyFolder, open_storage, open_study, run_trials, sqlite_url
from tuning.tune import open_search

NETWORK_SPACE = REPO / "configs" / "search" / "default.yaml"
# A baseline's space: configs/search/<baseline>.yaml, for each of TUNABLE_BASELINES.
BASELINE_SPACES = {name: REPO / "configs" / "search" / f"{name}.yaml" for name in TUNABLE_BASELINES}


@dataclass(frozen=True)
class SearchCost:
    """What a study cost: the trials' summed wall time, and how many ended each way."""

    seconds: float
    complete: int
    pruned: int

    @classmethod
    def of(cls, study: optuna.Study) -> SearchCost:
        trials = study.get_trials(deepcopy=False)
        seconds = sum(
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            for trial in trials
            if trial.datetime_start is not None and trial.datetime_complete is not None
        )
        states = [trial.state for trial in trials]
        return cls(seconds, states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED))


def study_folder(out_dir: str | Path, dataset: str, run_name: str) -> StudyFolder:
    return StudyFolder(Path(out_dir) / "studies" / dataset / run_name)


def tune_network(
    folder: StudyFolder, config: str, cli_args: Sequence[str], *, trials: int, seed: int
) -> tuple[list[str], SearchCost]:
    """Search our network over the default space; returns the best trial's CLI arguments.

    `cli_args` are the run's own arguments after `--config` (seeds, data overrides, the
    variant's overrides): every trial trains exactly what the untuned run would, plus the
    trial's values.
    """
    space = load_space(NETWORK_SPACE)
    base_args = space.trial_args(config, cli_args)
    study, _ = open_search(
        folder.root.name,
        sqlite_url(folder.database),
        base_args,
        space,
        seed=seed,
        pruner=PRUNERS["median"](),
    )
    run_trials(
        study, TrialObjective(tuple(base_args), space, folder), n_trials=trials, timeout=None
    )
    # The trial's own arguments after the config, so that repeated after the run's they
    # make the refit train exactly what the trial trained.
    return [*base_args[2:], *study.best_trial.user_attrs["overrides"]], SearchCost.of(study)


def tune_baseline(
    folder: StudyFolder, model: str, data: BaselineInputs, *, trials: int
) -> tuple[dict[str, Any], SearchCost]:
    """Search a baseline over its space; returns the best trial's parameters ({} if the
    untuned baseline scored best)."""
    space = load_space(BASELINE_SPACES[model])
    study = open_study(
        folder.root.name,
        open_storage(sqlite_url(folder.database)),
        seed=data.seed,
        pruner=optuna.pruners.NopPruner(),
        origin={"model": model, "space": space.name},
        first_params={},  # the untuned baseline: no parameter of the space set
    )
    objective = _BaselineObjective(TUNABLE_BASELINES[model], space, data)
    run_trials(study, objective, n_trials=trials, timeout=None)
    return dict(study.best_trial.user_attrs["params"]), SearchCost.of(study)


@dataclass(frozen=True)
class _BaselineObjective:
    """A trial: the baseline fitted with the trial's values, scored by validation ROC-AUC."""

    fit: Callable[[BaselineInputs, Mapping[str, Any]], Fitted]
    space: SearchSpace
    data: BaselineInputs

    def __call__(self, trial: optuna.Trial) -> float:
        untuned = trial.user_attrs.get("origin") == "config"
        params = {} if untuned else {**self.space.fixed, **self.space.suggest(trial)}
        trial.set_user_attr("params", params)
        fitted = self.fit(self.data, params)
        trial.set_user_attr("passes", fitted.iterations)
        return float(roc_auc_score(self.data.y_val, fitted.predict_proba(self.data.x_val)))
