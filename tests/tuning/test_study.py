"""Studies in a database: reproducible draws, resuming, several workers, dead workers.

These use a stand-in objective (no fit), so they check the study machinery alone.
"""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from contracts.errors import ConfigurationError
from tuning.study import (
    INTERRUPTED_KEY,
    SEED_SETTING,
    SETTINGS_KEY,
    SPACE_SETTING,
    TrialSeededSampler,
    open_storage,
    open_study,
    sqlite_url,
)

ORIGIN = {"config": "default", "space": "test"}


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0) + trial.suggest_int("n", 1, 100) / 100


def _draws(study: optuna.Study) -> list[tuple[float, int]]:
    return [(t.params["x"], t.params["n"]) for t in sorted(study.trials, key=lambda t: t.number)]


def _study(url: str, seed: int = 0) -> optuna.Study:
    return open_study(
        "s", open_storage(url), seed=seed, pruner=optuna.pruners.NopPruner(), origin=ORIGIN
    )


def test_a_seed_gives_the_same_study_whether_or_not_it_was_interrupted(tmp_path):
    whole = optuna.create_study(sampler=TrialSeededSampler(0))
    whole.optimize(_objective, n_trials=4)

    url = sqlite_url(tmp_path / "resumed.db")
    _study(url).optimize(_objective, n_trials=2)
    resumed = _study(url)  # a new process: a new sampler, seeded again
    resumed.optimize(_objective, n_trials=2)

    assert _draws(resumed) == _draws(whole)
    assert len(set(_draws(whole))) == 4
    other_seed = optuna.create_study(sampler=TrialSeededSampler(1))
    other_seed.optimize(_objective, n_trials=1)
    assert _draws(other_seed) != _draws(whole)[:1]


def test_workers_with_the_same_seed_draw_different_values(tmp_path):
    url = sqlite_url(tmp_path / "shared.db")
    first, second = _study(url), _study(url)  # two workers, same command
    for _ in range(2):
        first.optimize(_objective, n_trials=1)
        second.optimize(_objective, n_trials=1)
    draws = _draws(_study(url))
    assert len(draws) == 4 and len(set(draws)) == 4


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize",
    "ignore::optuna.exceptions.ExperimentalWarning",
)
def test_a_trial_whose_worker_died_is_failed_and_run_again_with_its_values(tmp_path):
    url = sqlite_url(tmp_path / "zombie.db")
    study = open_study(
        "s",
        open_storage(url, heartbeat_interval=1, grace_period=1),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
        origin=ORIGIN,
    )
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    study._storage.record_heartbeat(trial._trial_id)  # its last sign of life; then it died
    time.sleep(2.1)  # past the 1 s grace period (SQLite's clock counts whole seconds)

    resumed = open_study(
        "s",
        open_storage(url, heartbeat_interval=1, grace_period=1),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
        origin=ORIGIN,
    )
    assert [t.state for t in resumed.trials] == [TrialState.FAIL, TrialState.WAITING]
    resumed.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    retried = resumed.trials[1]
    assert retried.state == TrialState.COMPLETE and retried.params == {"x": x}
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retried) == 0


def test_a_study_opened_for_another_config_is_refused(tmp_path):
    url = sqlite_url(tmp_path / "s.db")
    _study(url)
    with pytest.raises(ConfigurationError, match=r"created for \{'config': 'default'.*--study"):
        open_study(
            "s",
            open_storage(url),
            seed=0,
            pruner=optuna.pruners.NopPruner(),
            origin={"config": "taiwan", "space": "test"},
        )


def test_a_study_opened_with_other_settings_is_refused_naming_them(tmp_path):
    url = sqlite_url(tmp_path / "s.db")
    settings = {"data.seed": "0", "data file": "abc", "trainer.max_epochs": "30"}

    def reopen(**changes: str) -> optuna.Study:
        return open_study(
            "s",
            open_storage(url),
            seed=0,
            pruner=optuna.pruners.NopPruner(),
            origin=ORIGIN,
            settings={**settings, **changes},
        )

    reopen()
    reopen()  # the same settings: resumed
    with pytest.raises(ConfigurationError, match=r"data file def \(the study: abc\); data.seed 1"):
        reopen(**{"data.seed": "1", "data file": "def"})


def test_a_study_recorded_before_its_space_and_seed_were_is_checked_on_the_rest(tmp_path):
    url = sqlite_url(tmp_path / "s.db")
    settings = {"data.seed": "0"}
    open_study(
        "s",
        open_storage(url),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
        origin=ORIGIN,
        settings=settings,
    )
    space = {f"{SPACE_SETTING}lr": "model.optimizer.init_args.lr: float in [0.0001, 0.003] log"}
    reopened = open_study(
        "s",
        open_storage(url),
        seed=0,
        pruner=optuna.pruners.NopPruner(),
        origin=ORIGIN,
        settings=settings | space | {SEED_SETTING: "3"},
    )
    assert reopened.user_attrs[SETTINGS_KEY] == settings  # resumed, as before


@pytest.mark.parametrize(
    "url",
    ["foo://bar", "/tmp/no-scheme.db", "sqlite:///{tmp}", "postgresql://u:secret@localhost/db"],
    ids=["unknown dialect", "a path, not a URL", "a folder", "a driver not installed"],
)
def test_a_storage_that_cannot_be_opened_is_one_message_at_once(tmp_path, url):
    url = url.format(tmp=tmp_path)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="the study's database cannot be opened") as raised:
        open_storage(url)
    assert time.monotonic() - started < 5  # not retried as a race of workers would be
    assert "A storage is a database URL" in str(raised.value) and "secret" not in str(raised.value)


def test_an_interrupted_trial_runs_again_once_with_its_values(tmp_path):
    url = sqlite_url(tmp_path / "s.db")
    study = _study(url)
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr(INTERRUPTED_KEY, True)
    study.tell(trial, state=TrialState.FAIL)
    broken = study.ask()  # a failure of its own: not run again
    broken.suggest_float("x", 0.0, 1.0)
    study.tell(broken, state=TrialState.FAIL)

    resumed = _study(url)
    assert [t.state for t in resumed.trials] == [TrialState.FAIL] * 2 + [TrialState.WAITING]
    assert resumed.trials[2].user_attrs["retry_of"] == 0
    _study(url)  # opened again: the retry is queued already
    assert len(resumed.trials) == 3
    resumed.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert resumed.trials[2].params == {"x": x}
