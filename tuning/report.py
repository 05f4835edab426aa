"""What a study shows a person: one line per trial, the best trial as a config to refit,
Optuna's plots and a table of every trial."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
from jsonargparse import ArgumentParser
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from optuna.exceptions import ExperimentalWarning
from optuna.importance import FanovaImportanceEvaluator
from optuna.search_space import intersection_search_space
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import matplotlib as optuna_plots
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import make_url

from lightning_modules.atomic import (
    write_bytes_atomically,
    write_csv_atomically,
    write_text_atomically,
)
from lightning_modules.loan_model import MONITOR
from tuning.study import FINISHED, GRACE_PERIOD_S, StudyFolder, count

IMPORTANCES = "param_importances.png"


class ProgressLine:
    """An Optuna callback: after each trial, one line with how it ended, how many trials
    the study holds (every worker's) and the best so far."""

    def __init__(self, console: Console, n_trials: int | None) -> None:
        self.console = console
        self.n_trials = n_trials
        self.started = time.monotonic()

    def opening(self, study: optuna.Study, storage_url: str) -> None:
        finished = count(study, FINISHED)
        state = "resuming" if finished else "new"
        storage = make_url(storage_url).render_as_string(hide_password=True)
        self.console.print(
            Text.assemble(
                ("study ", "bold"),
                (study.study_name, "bold cyan"),
                f" ({state}, {storage}): ",
                self._status(study),
            )
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        elapsed = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - self.started))
        line = Text.assemble((f"trial {trial.number:>3} ", "bold"), _outcome(trial))
        if trial.user_attrs.get("origin") == "config":
            line.append(" (the config as it is)")
        line.append(" │ ").append_text(self._status(study))
        line.append(f" │ {elapsed}", style="dim")
        self.console.print(line)

    def _status(self, study: optuna.Study) -> Text:
        finished = count(study, FINISHED)
        of = f"/{self.n_trials}" if self.n_trials is not None else ""
        status = Text(f"{finished}{of} finished, {count(study, [TrialState.PRUNED])} pruned")
        failed = count(study, [TrialState.FAIL])
        if failed:
            status.append(f", {failed} failed")
        best = best_trial(study)
        if best is not None:
            status.append(" │ best ")
            status.append(f"{best.value:.4f}", style="bold green")
            status.append(f" (trial {best.number})")
        return status


def _outcome(trial: FrozenTrial) -> Text:
    if trial.state == TrialState.COMPLETE:
        epoch = trial.user_attrs.get("best_epoch")
        return Text.assemble((f"{trial.value:.4f}", "green"), f" {MONITOR} at epoch {epoch}")
    if trial.state == TrialState.PRUNED:
        if "diverged" in trial.user_attrs:
            return Text("pruned: training diverged", style="yellow")
        return Text(f"pruned after epoch {trial.last_step}", style="yellow")
    return Text(trial.state.name.lower(), style="red")


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or None before the first one completes."""
    try:
        return study.best_trial
    except ValueError:
        return None


class BestConfigWriter:
    """An Optuna callback: rewrites the best config whenever the best trial changes.

    Args:
        parser: the training CLI's parser (the one `scripts/main.py fit` reads it with).
        refit_args: the arguments every trial shared (`--config` and the user's overrides);
            the best trial's own overrides are added to them.
        path: where the config goes.
    """

    def __init__(self, parser: ArgumentParser, refit_args: Sequence[str], path: Path) -> None:
        self.parser = parser
        self.refit_args = list(refit_args)
        self.path = path
        self._written: int | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None = None) -> Path | None:
        best = best_trial(study)
        if best is None:
            return None
        if best.number != self._written:
            self._write(study.study_name, best)
            self._written = best.number
        return self.path

    def _write(self, study_name: str, best: FrozenTrial) -> None:
        """The complete resolved config (every default written out, as a fit saves its
        own), so it refits the same model even if the config files change later."""
        config = self.parser.parse_args([*self.refit_args, *best.user_attrs["overrides"]])
        header = (
            f"# The best trial ({best.number}) of study {study_name}: {MONITOR} "
            f"{best.value:.4f} at epoch {best.user_attrs.get('best_epoch')}.\n"
            f"# Refit: python scripts/main.py fit --config {self.path.as_posix()}\n"
        )
        write_text_atomically(header + self.parser.dump(config, skip_none=False), self.path)


def _config_trial(study: optuna.Study) -> FrozenTrial | None:
    """The completed trial of the config as it is (the study's first, where the space
    expresses the config), or None."""
    return next(
        (
            trial
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if trial.user_attrs.get("origin") == "config"
        ),
        None,
    )


def _seconds(trial: FrozenTrial) -> str:
    return "?" if trial.duration is None else f"{trial.duration.total_seconds():.0f} s"


def left_out_of_importances(study: optuna.Study) -> list[str]:
    """The parameters of completed trials that the importances cannot rank: fANOVA fits on
    the search space every completed trial shares (Optuna's intersection), so a conditional
    parameter (a network's depth, drawn only where the widths are searched) drops out."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    drawn = {name for trial in complete for name in trial.params}
    return sorted(drawn - set(intersection_search_space(complete)))


def write_plots(study: optuna.Study, folder: Path, *, seed: int) -> dict[str, Path | str]:
    """Optuna's plots as PNG files; {file name: path written, or why it was not}.

    Optuna's matplotlib backend, because plotly is not a dependency. Importances need two
    complete trials whose values differ; a plot that cannot be drawn yet is skipped with
    Optuna's reason rather than failing the study.
    """
    evaluator = FanovaImportanceEvaluator(seed=seed)  # seeded: the same study, the same plot
    plots: dict[str, Callable[[], Axes]] = {
        "optimization_history.png": lambda: optuna_plots.plot_optimization_history(
            study, target_name=MONITOR
        ),
        IMPORTANCES: lambda: optuna_plots.plot_param_importances(
            study, evaluator=evaluator, target_name=MONITOR
        ),
        "parallel_coordinate.png": lambda: optuna_plots.plot_parallel_coordinate(
            study, target_name=MONITOR
        ),
    }
    written: dict[str, Path | str] = {}
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                # One finished trial gives an axis of one value, which matplotlib widens
                # itself after warning once per axis.
                warnings.filterwarnings("ignore", message="Attempting to set identical low")
                axes = draw()
        except (ValueError, RuntimeError) as error:
            written[name] = str(error)
            continue
        figure = axes.figure
        figure.set_size_inches(*_figure_size(name, study))
        written[name] = _save_png_atomically(figure, folder / name)
        plt.close(figure)
    return written


def _figure_size(name: str, study: optuna.Study) -> tuple[float, float]:
    """Inches: the parallel coordinates get one inch and a half per axis, so that the
    labels of a dozen parameters do not overlap."""
    if name != "parallel_coordinate.png":
        return (11.0, 6.0)
    names = {param for trial in study.get_trials(deepcopy=False) for param in trial.params}
    return (max(11.0, 1.5 * (len(names) + 1)), 7.0)


def _save_png_atomically(figure: Figure, path: Path) -> Path:
    return write_bytes_atomically(
        lambda stream: figure.savefig(stream, format="png", dpi=110, bbox_inches="tight"), path
    )


def write_report(
    study: optuna.Study,
    folder: StudyFolder,
    best_config: BestConfigWriter,
    *,
    seed: int,
    console: Console,
) -> None:
    """The study's files (best config, trials.csv, plots) and a summary on the console."""
    write_csv_atomically(study.trials_dataframe(), folder.trials_table)
    plots = write_plots(study, folder.plots, seed=seed)
    config = best_config(study)
    best = best_trial(study)
    if best is None or config is None:
        pruned = count(study, [TrialState.PRUNED])
        console.print(
            f"no trial completed ({pruned} pruned): no best config"
            if pruned
            else "no trial has completed yet: no best config, rerun to continue"
        )
    else:
        console.print(
            Text.assemble(
                ("best: ", "bold"),
                f"trial {best.number}, {MONITOR} ",
                (f"{best.value:.4f}", "bold green"),
                f" at epoch {best.user_attrs.get('best_epoch')}",
            )
        )
        for name, value in sorted(best.params.items()):
            console.print(f"  {name} = {value}", markup=False)
        if (baseline := _config_trial(study)) is not None and baseline.number != best.number:
            # What the best gains over the setup to beat, and at what cost: a gain in the
            # fourth decimal of one validation split is not worth a fit ten times as long.
            console.print(
                f"  against the config as it is (trial {baseline.number}, {MONITOR} "
                f"{baseline.value:.4f}): {best.value - baseline.value:+.4f}, fit "
                f"{_seconds(best)} against {_seconds(baseline)}",
                markup=False,
            )
        console.print(f"config: {config} (refit: python scripts/main.py fit --config {config})")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # This worker is done, so a running trial is another worker's, or one whose worker
        # was killed: the study is not complete without it (the first may be the config).
        which = " (the config as it is)" if trial.user_attrs.get("origin") == "config" else ""
        console.print(
            f"trial {trial.number}{which} is still running: another worker's, or its worker "
            f"was killed, and then it runs again once silent for {GRACE_PERIOD_S // 60} "
            "minutes, in a worker with trials left to run (raise --trials if the study has "
            "reached it)",
            style="yellow",
            markup=False,
        )
    for name, result in plots.items():
        if isinstance(result, Path):
            console.print(f"plot: {result}", markup=False)
        else:
            console.print(f"plot {name} skipped: {result}", style="dim", markup=False)
    if isinstance(plots[IMPORTANCES], Path) and (left_out := left_out_of_importances(study)):
        console.print(
            f"{IMPORTANCES} leaves out {', '.join(left_out)}: fANOVA ranks only the "
            "parameters every completed trial drew, and these are drawn only under some "
            "choices of another (trials.csv holds their values)",
            style="dim",
            markup=False,
        )
    console.print(f"trials: {folder.trials_table}; runs: tensorboard --logdir {folder.tensorboard}")
