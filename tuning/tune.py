"""Hyperparameter search: `python scripts/tune.py --config configs/german.yaml --trials 20`.

Each trial is a normal fit of the config with values drawn from a search space
(`configs/search/default.yaml`) by a seeded TPE sampler; the objective is the best
validation ROC-AUC. The study lives in a database, so the same command resumes it and
several processes or machines can work on it at once. Outputs in `tuning_results/<study>/`
(`docs/tuning.md`).
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import optuna
from jsonargparse import ArgumentError, Namespace
from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console

from benchmarking.inputs import data_file_digest
from contracts.errors import ConfigurationError
from lightning_modules.cli import (
    DEBUG_ENV,
    LoanCLI,
    build_cli,
    quiet_lightning,
    without_lightning_notices,
)
from lightning_modules.option_suggestions import (
    OneLineArgumentParser,
    closest_option,
    parser_options,
)
from tuning.objective import TrialInterrupted, TrialObjective
from tuning.report import BestConfigWriter, ProgressLine, write_report
from tuning.space import SearchSpace, load_space
from tuning.study import (
    FINISHED,
    PRUNERS,
    SEED_SETTING,
    SPACE_SETTING,
    StudyFolder,
    count,
    default_study_name,
    open_storage,
    open_study,
    require_study,
    run_trials,
    sqlite_url,
)

DEFAULT_SPACE = Path("configs/search/default.yaml")
DEFAULT_OUTPUT = Path("tuning_results")
LOGGER_NAME_KEY = "trainer.logger.init_args.name"


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every other argument (--data.*, --model.*, --trainer.*) goes to every trial's "
        "training CLI, as it would to scripts/main.py fit.",
    )
    parser.add_argument("--config", required=True, help="the dataset config, as for main.py")
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE, help="search space YAML")
    parser.add_argument(
        "--trials",
        type=int,
        help="stop when the study holds this many finished (complete or pruned) trials, "
        "every worker's counted; rerunning the command continues up to it",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds after which this worker starts no new trial"
    )
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument(
        "--study",
        help="the study's name (default: <config name>-<space name>, e.g. german-default)",
    )
    parser.add_argument(
        "--storage",
        help="database URL shared by the workers (default: sqlite:///<output>/<study>/study.db; "
        "postgresql://user:password@host/db for several machines)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="parent of the study folder"
    )
    parser.add_argument(
        "--pruner",
        choices=sorted(PRUNERS),
        default="median",
        help="stop a trial whose best score so far falls below the median of the earlier "
        "trials' at the same epoch (from 5 finished trials and epoch 5 on), or never",
    )
    return parser


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = _parser()
    options, cli_args = parser.parse_known_args(argv)
    if options.trials is None and options.timeout is None:
        # Unknown options go to the training CLI, so a misspelt --trials is only found here.
        hints = [
            f" ({option}: did you mean {meant}?)"
            for option in (arg.split("=", 1)[0] for arg in cli_args if arg.startswith("--"))
            if (meant := closest_option(option, ["--trials", "--timeout"]))
        ]
        parser.error(f"give --trials N, --timeout SECONDS or both{''.join(hints[:1])}")
    if options.trials is not None and options.trials < 0:
        parser.error(f"--trials must be >= 0, got {options.trials}")
    if options.seed < 0:
        parser.error(f"--seed must be >= 0, got {options.seed}")
    return options, cli_args


def main(argv: list[str] | None = None) -> optuna.Study:
    """Run (or resume, or join) the study; returns it once this worker is done."""
    options, cli_args = parse_args(argv)
    quiet_lightning(["fit"])
    # The progress line reports each trial; a failed trial's error ends the command with its
    # own message (and traceback, where it is not a user's mistake), so Optuna's warning,
    # the same traceback again, is kept for LOAN_DEBUG=1.
    debugging = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING if debugging else optuna.logging.ERROR)
    console = Console(highlight=False, soft_wrap=True)

    space = load_space(options.space)
    if searched := space.searched_in(cli_args):
        console.print(
            f"note: {', '.join(searched)} {'is' if len(searched) == 1 else 'are'} searched by "
            f"{options.space}: each trial's drawn value replaces yours (to hold yours, drop "
            "that parameter from the space)",
            style="yellow",
        )
    base_args = space.trial_args(options.config, cli_args)
    name = options.study or default_study_name(options.config, options.space)
    folder = StudyFolder(options.output / name)
    if options.trials == 0:
        require_study(name, options.storage, folder)
    storage_url = options.storage or sqlite_url(folder.database)
    study, base = open_search(
        name,
        storage_url,
        base_args,
        space,
        seed=options.seed,
        pruner=PRUNERS[options.pruner](),
    )
    folder.claim(study)
    if outside := space.outside(space.config_values(base.config)):
        console.print(
            f"note: the config as it is cannot be a trial, so the study has no point to beat: "
            f"{outside}",
            style="yellow",
            markup=False,
        )

    # The best config refits under logs/<study>/, not under the name of its own file.
    refit_args = (
        [*base_args, f"--{LOGGER_NAME_KEY}={name}"] if LOGGER_NAME_KEY in base.config else base_args
    )
    best_config = BestConfigWriter(base.parser, refit_args, folder.best_config)
    progress = ProgressLine(console, options.trials)
    progress.opening(study, storage_url)
    try:
        with _sigterm_raises():
            run_trials(
                study,
                TrialObjective(tuple(base_args), space, folder),
                n_trials=options.trials,
                timeout=options.timeout,
                callbacks=[progress, best_config],
            )
    except (TrialInterrupted, KeyboardInterrupt, SIGTERMException) as error:
        stop = error.stop if isinstance(error, TrialInterrupted) else error
        console.print(
            f"interrupted with {count(study, FINISHED)} finished trials (the running one is "
            "recorded as failed): rerun the same command to continue",
            style="yellow",
        )
        raise SystemExit(143 if isinstance(stop, SIGTERMException) else 130) from None
    write_report(study, folder, best_config, seed=options.seed, console=console)
    return study


def open_search(
    name: str,
    storage_url: str,
    base_args: Sequence[str],
    space: SearchSpace,
    *,
    seed: int,
    pruner: optuna.pruners.BasePruner,
) -> tuple[optuna.Study, LoanCLI]:
    """Check the config and space against the training CLI, then open (create, resume or
    join) the study whose first trial is the config as it is, when the space holds it: the
    point to beat. `base_args` are what every trial shares (`SearchSpace.trial_args`);
    also returns the config they parse to."""
    # The space's keys and values are checked against the training CLI without its fixed
    # settings first, so that a mistake there names the space file, not a usage page.
    fixed = set(space.fixed_overrides())
    shared = [arg for arg in base_args if arg not in fixed]
    with without_lightning_notices():
        bare = _training_cli(shared)
    space.check_keys(bare.config.keys())
    space.check_values(lambda overrides: bare.parser.parse_args([*shared, *overrides]))
    base = _training_cli(base_args)  # built, so the fixed values' ranges are checked too
    folds = base.config.get("data.folds")
    if folds != 1:
        raise ConfigurationError(
            f"--data.folds {folds}: a trial is scored as one network on the validation rows, "
            "so a search cannot bag; pass --data.folds to main.py fit with the best config "
            "to bag its refit"
        )
    config = base_args[base_args.index("--config") + 1]
    study = open_study(
        name,
        open_storage(storage_url),
        seed=seed,
        pruner=pruner,
        origin={"config": Path(config).stem, "space": space.name},
        settings=shared_settings(base.config, space) | {SEED_SETTING: str(seed)},
        first_params=space.params_for(space.config_values(base.config)),
    )
    return study, base


def _training_cli(args: Sequence[str]) -> LoanCLI:
    """The training CLI of `args`; an option it refuses is one message, not its usage page."""
    try:
        return build_cli(list(args), script_options=list(parser_options(_parser())))
    except ArgumentError as error:
        raise ConfigurationError(
            f"{' '.join(str(error).split())} (tune.py passes every option but its own, "
            "listed by `python scripts/tune.py --help`, to the training CLI, as "
            "scripts/main.py fit takes them)"
        ) from None


# Parsed keys that do not change what a trial trains on or how it is scored: where the
# config was read from, where a trial logs (the objective sets it), test-time reports.
_UNSHARED = ("config", "trainer.logger.", "submission.", "report.", "data.predict_")


def shared_settings(config: Namespace, space: SearchSpace) -> dict[str, str]:
    """{key: value} of what every trial of this command trains and is scored with: the
    parsed config and overrides but the searched keys, and the data file's digest."""
    searched = {parameter.key for parameter in space.parameters}
    settings = {
        key: str(value)
        for key, value in config.items()  # dotted names, as the space's keys
        if key not in searched and not key.startswith(_UNSHARED) and "__path__" not in key
    }
    settings["data file"] = data_file_digest(config.get("data.path"), config.get("data.data_dir"))
    settings |= {f"{SPACE_SETTING}{p.name}": p.describe() for p in space.parameters}
    return settings


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises `SIGTERMException` wherever the study is, as Ctrl-C raises
    KeyboardInterrupt, so the running trial is recorded as failed rather than left RUNNING
    until its heartbeat goes stale. (During a fit Lightning's handler runs first.)"""

    def stop(signum: int, frame: object) -> None:
        raise SIGTERMException

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
