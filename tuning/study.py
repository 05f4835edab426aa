"""Where a study lives and how workers share it: storage, names, resuming, stale trials.

A study is a row in a database (SQLite by default, any SQLAlchemy URL such as
postgresql://... for several machines), so every worker that opens the same name in the
same storage adds to the same study, and rerunning an interrupted command continues it.
Each running trial sends a heartbeat; a trial whose worker died (killed, machine lost)
stops sending it, is marked failed by the next worker that starts a trial, and is queued
once more with the same values.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from contracts.errors import ConfigurationError
from lightning_modules.atomic import write_text_atomically

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A study's record of what every trial shares, and a trial's of how it ended or whom it retries.
SETTINGS_KEY = "settings"
# The settings' entries for the space's parameters, one each (what it draws), and the
# sampler's seed (with another, a resumed study's draws would follow neither seed).
SPACE_SETTING = "search space: "
SEED_SETTING = "sampler seed"
INTERRUPTED_KEY = "interrupted"
RETRY_OF_KEY = "retry_of"
# A study's identity, recorded in the study and in its folder: another study of the same
# name (in another storage, or after its database was deleted) must not write over the
# folder's trial runs and best config.
STUDY_ID_KEY = "study_id"
RETRIED_ATTRS = ("origin",)  # what a retry keeps of the interrupted trial's record
# Heartbeats every 15 s; a trial silent for 2 minutes has lost its worker. (The heartbeat
# runs in its own thread, so a long epoch does not delay it; a busy SQLite file can, by
# up to SQLITE_TIMEOUT_S.)
HEARTBEAT_INTERVAL_S = 15
GRACE_PERIOD_S = 120
SQLITE_TIMEOUT_S = 60
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    # No pruning before 5 trials have finished, nor in a trial's first 5 epochs, whose
    # validation scores are too noisy to rank (on german's 200 validation rows one epoch
    # can move the score by 0.03).
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    "none": optuna.pruners.NopPruner,
}


@dataclass(frozen=True)
class StudyFolder:
    """What a study writes on this machine, all under `root` (`tuning_results/<study>`)."""

    root: Path

    @property
    def database(self) -> Path:
        """The default storage: one SQLite file per study, beside its outputs."""
        return self.root / "study.db"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def trial_dir(self, number: int) -> Path:
        """Trial n's TensorBoard run, resolved config and console log."""
        return self.tensorboard / f"trial_{number}"

    @property
    def best_config(self) -> Path:
        return self.root / "best_config.yaml"

    @property
    def trials_table(self) -> Path:
        return self.root / "trials.csv"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def study_id(self) -> Path:
        return self.root / "study_id"

    def claim(self, study: optuna.Study) -> None:
        """Refuse the folder to a study whose outputs it does not hold, else mark it as this
        study's. A study from before studies had an identity is not checked."""
        identity = study.user_attrs.get(STUDY_ID_KEY)
        if identity is None:
            return
        # In this order: a worker marks the folder before its first trial starts, and a
        # trial starts before its run is made, so a run seen here has its study's mark and
        # its trial (a second worker that joins as the first starts).
        runs = any(self.tensorboard.glob("trial_*"))
        marked = self.study_id.read_text().strip() if self.study_id.is_file() else None
        started = any(trial.state != TrialState.WAITING for trial in study.trials)
        unmarked_runs = marked is None and not started and runs
        if (marked is not None and marked != identity) or unmarked_runs:
            raise ConfigurationError(
                f"{self.root} holds the trials of another study named {study.study_name!r} "
                "(in another --storage, or one whose database was deleted), which this "
                "search would write over: give it another --study name or --output, or "
                "remove that folder"
            )
        if marked is None:
            write_text_atomically(identity + "\n", self.study_id)


def default_study_name(config: str | Path, space: str | Path) -> str:
    """`configs/german.yaml` with `configs/search/default.yaml` -> "german-default"."""
    return f"{Path(config).stem}-{Path(space).stem}"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    attempts: int = 10,
) -> RDBStorage:
    """The database behind a study, with heartbeats and stale-trial retries.

    SQLite serves several processes on one machine: the file is put in write-ahead-log
    mode (readers never block the writer) and each connection waits up to
    SQLITE_TIMEOUT_S for a lock instead of failing with "database is locked". Two workers
    that open a new database at the same moment race twice, and the loser retries: both
    switching it to WAL is a lock deadlock that SQLite answers at once with "database is
    locked", without waiting; both creating its tables gives one "table already exists".
    """
    engine_kwargs: dict[str, Any] = {}
    sqlite_path = _sqlite_path(url)
    if sqlite_path is not None:
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    failures = 0
    while True:
        try:
            if sqlite_path is not None:
                _prepare_sqlite(sqlite_path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat arguments
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except (
            sqlite3.OperationalError,
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.IntegrityError,
        ) as error:
            failures += 1
            if failures == attempts or not _is_race(error):
                raise _unusable_storage(url, error) from error
            time.sleep(0.2 * failures)
        except (sqlalchemy.exc.ArgumentError, ImportError, OSError) as error:
            raise _unusable_storage(url, error) from error


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite storage URL (`sqlite_url`'s inverse), None for another database."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _is_race(error: Exception) -> bool:
    """Whether an error is one of the races of workers opening a new database (a lock, a
    table or a row another worker created first); anything else will not pass on retry."""
    message = str(error)
    return (
        isinstance(error, sqlalchemy.exc.IntegrityError)
        or "database is locked" in message
        or "already exists" in message
    )


def _unusable_storage(url: str, error: Exception) -> ConfigurationError:
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        shown = url
    cause = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ConfigurationError(
        f"--storage {shown}: the study's database cannot be opened: {cause}. A storage is a "
        "database URL: sqlite:///relative/path.db, sqlite:////absolute/path.db, or "
        "postgresql://user:password@host/db (with its driver installed)"
    )


def _prepare_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        connection.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
    finally:
        connection.close()


class TrialSeededSampler(BaseSampler):
    """TPE whose random draws depend on the seed and the trial's number, not on the process.

    A seeded `TPESampler` draws from one generator per process: a resumed study would
    repeat its first trials' values, and two workers given the same seed would draw the
    same values side by side. Trial numbers are handed out by the storage, unique across
    workers, so a TPE seeded with (seed, number) for each trial keeps a single-worker study
    reproducible while a resumed run or a second worker explores new points.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tpe = TPESampler(seed=seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        entropy = np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0]
        self._tpe = TPESampler(seed=int(entropy))
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: list[float] | None,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)


def require_study(name: str, storage_url: str | None, folder: StudyFolder) -> None:
    """Refuse to report on a study that does not exist (`--trials 0` runs no trial): a
    misspelt `--study` would otherwise create an empty study, and its folder, to report
    on. `storage_url` None is the default storage, the study folder's own database."""
    if storage_url is None:
        if folder.database.exists():
            return
        where = str(folder.root.parent)
        held = sorted(path.parent.name for path in folder.root.parent.glob("*/study.db"))
    else:
        # An SQLite file that does not exist holds no study: opening it would create it.
        absent = (path := _sqlite_path(storage_url)) is not None and not path.exists()
        held = [] if absent else sorted(optuna.get_all_study_names(open_storage(storage_url)))
        if name in held:
            return
        where = make_url(storage_url).render_as_string(hide_password=True)
    raise ConfigurationError(
        f"no study {name!r} in {where} to report on (--trials 0 runs no trial); the studies "
        f"there: {', '.join(held) or 'none'}"
    )


def open_study(
    name: str,
    storage: RDBStorage,
    *,
    seed: int,
    pruner: optuna.pruners.BasePruner,
    origin: dict[str, str],
    settings: dict[str, str] | None = None,
    first_params: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study, or load it to resume or to join it as one more worker.

    `origin` (the config and space names) and `settings` (what every trial shares: the
    parsed config and overrides but the searched values, and the data file's digest) are
    recorded when the study is created and must match when it is opened again: a study's
    trials are only comparable if they train the same rows on the same space. (A study
    created before its settings were recorded is checked on its origin alone.)
    `first_params` are queued as the first trial by the one worker that creates the study,
    so that workers starting together queue them once; opened again, the study queues once
    more the values of every trial that Ctrl-C or SIGTERM ended (the first one included),
    so that an interruption loses no point of the search.
    """
    sampler = TrialSeededSampler(seed)
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        _check_recorded(study, origin, settings)
        _queue_interrupted(study)
    else:
        study.set_user_attr(STUDY_ID_KEY, uuid.uuid4().hex)
        for key, value in origin.items():
            study.set_user_attr(key, value)
        if settings is not None:
            study.set_user_attr(SETTINGS_KEY, settings)
        if first_params is not None:
            study.enqueue_trial(first_params, user_attrs={"origin": "config"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def _check_recorded(
    study: optuna.Study, origin: dict[str, str], settings: dict[str, str] | None
) -> None:
    name = study.study_name
    recorded = {key: study.user_attrs.get(key, value) for key, value in origin.items()}
    if recorded != origin:
        raise ConfigurationError(
            f"study {name!r} in this storage was created for {recorded}, not {origin}: give "
            "this search another --study name"
        )
    created_with = study.user_attrs.get(SETTINGS_KEY)
    if settings is None or created_with is None:
        return
    if not any(key.startswith(SPACE_SETTING) for key in created_with):
        # A study from before its space was recorded is checked on the rest.
        settings = {k: v for k, v in settings.items() if not k.startswith(SPACE_SETTING)}
    if SEED_SETTING not in created_with:  # likewise its seed
        settings = {k: v for k, v in settings.items() if k != SEED_SETTING}
    differences = [
        f"{key} {settings.get(key, '(unset)')} (the study: {created_with.get(key, '(unset)')})"
        for key in sorted(set(settings) | set(created_with))
        if settings.get(key) != created_with.get(key)
    ]
    if differences:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        raise ConfigurationError(
            f"study {name!r} was created with other settings than this run's, so their trials "
            f"would not be comparable: {shown}. Rerun it with the study's settings, or give "
            "this search another --study name"
        )


def _queue_interrupted(study: optuna.Study) -> None:
    """Queue once more the values of each trial an interruption ended (`INTERRUPTED_KEY`)
    that no later trial retries yet."""
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get(RETRY_OF_KEY) for trial in trials}
    for trial in trials:
        if (
            trial.state == TrialState.FAIL
            and trial.user_attrs.get(INTERRUPTED_KEY)
            and trial.number not in retried
        ):
            attrs = {k: v for k, v in trial.user_attrs.items() if k in RETRIED_ATTRS}
            study.enqueue_trial(trial.params, user_attrs={**attrs, RETRY_OF_KEY: trial.number})


def count(study: optuna.Study, states: Iterable[TrialState]) -> int:
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int | None,
    timeout: float | None,
    callbacks: Iterable[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> None:
    """Run trials until the study holds `n_trials` finished (complete or pruned) trials,
    counting every worker's, or until no new trial may start after `timeout` seconds.

    Failed trials do not count, so a trial lost to an interruption is made up for. With
    several workers each finishes the trial it is running when the count is reached, so
    a study can end with up to (workers - 1) more trials than asked for.
    """
    stop_at: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    if n_trials is not None:
        if count(study, FINISHED) >= n_trials:
            return
        stop_at.append(MaxTrialsCallback(n_trials, states=FINISHED))
    study.optimize(
        objective,
        timeout=timeout,
        callbacks=[*callbacks, *stop_at],
        gc_after_trial=True,
    )
