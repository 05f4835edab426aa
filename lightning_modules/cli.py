"""The command line every entry point shares: `LoanCLI`, building it without running it,
and printing a user's mistake as a message instead of a traceback."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import warnings
import zipfile
from argparse import ArgumentError
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import yaml

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49; the warnings are not the
# user's to act on, so keep them off the console. (Read when jsonargparse is imported.)
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from jsonargparse import Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console
from rich.text import Text

from contracts.errors import ConfigurationError, UserFacingError
from datamodules.loan_datamodule import LoanDataModule
from lightning_modules.bagging import BaggedFit, FoldRun, fit_bagged
from lightning_modules.callbacks import MetricsReport, SubmissionWriter
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.option_suggestions import (
    parser_options,
    subcommand_actions,
    with_suggestions,
)
from lightning_modules.resume import (
    find_last_checkpoint,
    newest_fit_version,
    require_same_data,
    version_folder,
)
from lightning_modules.tensorboard_views import (
    TensorBoardViews,
    flat_settings,
    run_hyperparameters,
)

# What `fit --ckpt_path last` compares with the run's config.yaml; the file's rows are
# compared by their digest instead (`require_same_data`), so the path may differ.
_COMPARED_ON_RESUME = (
    "model.",
    "data.",
    "seed_everything",
    "trainer.max_epochs",
    "trainer.precision",
    "trainer.gradient_clip",
    "trainer.accumulate_grad_batches",
)
_NOT_COMPARED_ON_RESUME = ("data.predict_", "data.path", "data.data_dir", "data.eval_batch_size")
# What a single network may be continued with otherwise: how it goes on, not what it is.
_CONTINUED_OTHERWISE = (
    "model.optimizer.",
    "model.lr_schedule",
    "model.training_epochs",
    "model.warmup_fraction",
    "data.batch_size",
    "seed_everything",
    "trainer.",
)
DEBUG_ENV = "LOAN_DEBUG"  # set to 1 for the full traceback of a user-facing error
Result = TypeVar("Result")


class RunConfig(SaveConfigCallback):
    """A fit's `config.yaml` as the recipe of the run: without the `ckpt_path` a resumed fit
    continued from, nor the logger version `--ckpt_path last` found for it (`continued`),
    so that `--config <run>/config.yaml` trains the run again in a version of its own
    rather than reading its last checkpoint back or writing over it."""

    def __init__(self, *args: Any, continued: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.continued = continued

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self.config.get("ckpt_path") is not None:
            self.config = self.config.clone()
            self.config.ckpt_path = None
            if self.continued:
                self.config.trainer.logger.init_args.version = None
        super().setup(trainer, pl_module, stage)


class LoanCLI(LightningCLI):
    """LightningCLI with the two callbacks every run wants, configurable as top-level keys,
    and `fit` bagging when the data module has folds (`--data.folds 5`)."""

    def __init__(self, *args: Any, script_options: Sequence[str] = (), **kwargs: Any) -> None:
        """`script_options`: the options of the script that passes the rest of its
        arguments here (tune.py's `--trials`...), offered too when an option is refused."""
        self.script_options = tuple(script_options)
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(SubmissionWriter, "submission")
        parser.add_lightning_class_args(MetricsReport, "report")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check the checkpoint before LightningCLI reads its hyperparameters.
        A misspelt option names the closest one (the parsers are built with
        `exit_on_error=False`, so the error reaches here instead of a usage page).
        `test` defaults to `--verbose false`: `MetricsReport` prints its metrics in the
        protocol's order, and Lightning's table would repeat them."""
        for subcommands in subcommand_actions(parser):
            if "test" in subcommands.choices:
                subcommands.choices["test"].set_defaults(verbose=False)
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as error:
            given = sys.argv[1:] if args is None else [str(arg) for arg in args]
            message = with_suggestions(
                str(error), parser_options(parser, given), given, others=self.script_options
            )
            raise ArgumentError(None, message) from None
        subcommand = self.config.get("subcommand")
        if subcommand is not None:
            _require_checkpoint(subcommand, self.config[subcommand].get("ckpt_path"))

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._name_run_after_config(config)
        if config.get("weights_only", False) is None:
            config.weights_only = True  # checkpoints hold plain tensors: never unpickle code
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            self._continue_last_version(config)

    def fit(
        self,
        model: LoanDefaultModel,
        datamodule: LoanDataModule,
        ckpt_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`fit`: the trainer's, or one network per fold averaged (LightningCLI runs a CLI
        method named after the subcommand instead of the trainer's)."""
        if datamodule.resolved_folds() == 1:
            last = (
                find_last_checkpoint(Path(self.trainer.log_dir or "."))
                if ckpt_path == "last"
                else None
            )
            resumed = str(last.path) if last is not None else ckpt_path
            if resumed is not None and Path(resumed).is_file():
                require_same_data(resumed, datamodule)
            self.trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **kwargs)
            return
        if ckpt_path not in (None, "last"):
            raise ConfigurationError(
                "a bagged fit resumes with --ckpt_path last (from its folds' "
                f"own checkpoints), not from {ckpt_path!r}"
            )
        bagged = self.fit_bagged(datamodule, resume=ckpt_path == "last")
        report = bagged.report()
        Console(highlight=False).print(
            f"bagged model of {len(bagged.fold_epochs)} networks (epochs {bagged.fold_epochs}): "
            f"out-of-fold ROC-AUC {report['roc_auc']:.4f}, accuracy "
            f"{report['accuracy']:.4f} at threshold {bagged.out_of_fold.threshold:.3f}\n"
            f"checkpoint: {bagged.checkpoint}"
        )

    def fit_bagged(self, datamodule: LoanDataModule, *, resume: bool = False) -> BaggedFit:
        """One fit per fold, each logged in `<run>/fold_<j>` with its own checkpoints; the
        averaged model in `<run>/checkpoints/bagged.ckpt`, its out-of-fold metrics logged
        as the run's `val/*`. `resume`: continue the run's folds (`fit_bagged`)."""
        root = self.trainer.logger
        if not isinstance(root, TensorBoardLogger):
            raise ConfigurationError(
                "a bagged fit (--data.folds above 1, or auto on a small training set) logs "
                "each fold's fit beside the others: configure a TensorBoardLogger as "
                "trainer.logger, or train one network with --data.folds 1"
            )
        run = version_folder(root.version)
        # The run's own config.yaml, as a single fit writes it (the trainer that would
        # write it never fits here): `--config <run>/config.yaml` reproduces the bag.
        for callback in self.trainer.callbacks:
            if isinstance(callback, SaveConfigCallback):
                callback.setup(self.trainer, self.model, "fit")

        def new_fold_run(fold: int) -> FoldRun:
            fresh = self.parser.instantiate_classes(self.config)
            logger = TensorBoardLogger(
                root.save_dir, name=root.name, version=f"{run}/fold_{fold}", default_hp_metric=False
            )
            trainer_config = {**self._get(fresh, "trainer", default={}), "logger": logger}
            extra = [self._get(fresh, key) for key in self._parser(self.subcommand).callback_keys]
            trainer = self._instantiate_trainer(trainer_config, extra)
            for views in _views(trainer):
                views.figures = False
            return FoldRun(self._get(fresh, "model"), trainer, Path(logger.log_dir))

        bagged = fit_bagged(datamodule, new_fold_run, Path(root.log_dir), resume=resume)
        report = bagged.report()
        root.log_metrics({f"val/{name}": value for name, value in report.items()}, step=0)
        # One value per metric is a lone dot in SCALARS: the table says what it is.
        text = _out_of_fold_text(bagged, report)
        root.experiment.add_text("val/out_of_fold", text, global_step=0)
        for views in _views(self.trainer):
            views.write_figures(root, bagged.out_of_fold, 0, stage="val", rows="out-of-fold")
            views.write_hparams(root, run_hyperparameters(self.trainer, bagged.model, datamodule))
        root.save()
        return bagged

    @staticmethod
    def _name_run_after_config(config: Namespace) -> None:
        """Name the TensorBoard run after the config file when the logger's name is null.

        `configs/taiwan.yaml` then logs to `logs/taiwan/version_N`, with one shared
        trainer file for every dataset.
        """
        logger = config.trainer.logger
        init_args = getattr(logger, "init_args", None)
        if init_args is None or "name" not in init_args or init_args.name is not None:
            return
        init_args.name = config_name(config, default="run")

    def _continue_last_version(self, config: Namespace) -> None:
        """`fit --ckpt_path last`: resume the newest fit of this run from its `last.ckpt`,
        in its version; start a new fit where it has none.

        Lightning would look only in the new version's empty folder and start over. (With
        a fixed logger version it looks in the right folder already.)
        """
        init_args = getattr(config.trainer.logger, "init_args", None)
        if init_args is None or not all(k in init_args for k in ("save_dir", "name", "version")):
            return
        run_dir = Path(init_args.save_dir) / str(init_args.name)
        if init_args.version is not None:
            # Lightning looks in the right folder already; the settings still must match.
            fixed = run_dir / version_folder(init_args.version)
            bag = any(fixed.glob("fold_*/checkpoints"))
            self._require_settings_it_began_with(config, fixed, bag=bag)
            return
        version = newest_fit_version(run_dir)
        newest = run_dir / version_folder(version) if version is not None else None
        last = find_last_checkpoint(newest) if newest is not None else None
        if last is None:
            which = "no fit" if newest is None else f"its newest fit ({newest.name}) has none"
            rank_zero_info(
                f"--ckpt_path last: no complete epoch saved in {run_dir} ({which}); "
                "starting a new fit."
            )
            config.ckpt_path = None
            return
        bag = last.fold is not None
        self._require_settings_it_began_with(config, newest, bag=bag)
        # A bagged fit finds each fold's own checkpoint in the version's fold folders.
        config.ckpt_path = "last" if bag else str(last.path)
        init_args.version = version
        self.save_config_kwargs = {**self.save_config_kwargs, "continued": True}

    def _require_settings_it_began_with(
        self, config: Namespace, version_dir: Path, *, bag: bool
    ) -> None:
        """Continue a fit only with the settings it began with (its `config.yaml`, written
        as it began), but for those that change how it goes on, not what it is: a single
        network may take another rate, schedule, batch size or seed (said, not refused).
        Other model or data settings would build another network or other inputs (the
        restore would fail with a size mismatch, or load weights into inputs they were not
        trained on); in a bag, any change would average folds trained two ways."""
        recipe = version_dir / "config.yaml"
        if not recipe.is_file():
            return
        began = flat_settings(yaml.safe_load(recipe.read_text()) or {}, separator=".")
        dumped = self._parser("fit").dump(config, skip_none=False)
        now = flat_settings(yaml.safe_load(dumped) or {}, separator=".")
        changed = {
            key: f"{key} {began[key]!r} (this run: {now.get(key)!r})"
            for key in sorted(began)  # keys a config written before them lacks: not compared
            if key.startswith(_COMPARED_ON_RESUME)
            and not key.startswith(_NOT_COMPARED_ON_RESUME)
            and began[key] != now.get(key)
        }
        allowed = [key for key in changed if not bag and key.startswith(_CONTINUED_OTHERWISE)]
        refused = [text for key, text in changed.items() if key not in allowed]
        if refused:
            what = "its finished folds would be averaged with networks trained otherwise"
            if not bag:
                what = "its network would be restored into one built for other settings"
            raise ConfigurationError(
                f"--ckpt_path last: {version_dir} began with {', '.join(refused)}; {what}. "
                f"Continue it with its own settings (--config {recipe} --ckpt_path last), or "
                "start a new fit."
            )
        if allowed:
            rank_zero_warn(
                f"--ckpt_path last: continuing {version_dir} with other settings than it "
                f"began with: {', '.join(changed[key] for key in allowed)}"
            )


def _out_of_fold_text(bagged: BaggedFit, report: dict[str, float]) -> str:
    """The bag's validation figures (`report`), as the TEXT tab shows them (Markdown)."""
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in report.items())
    return (
        f"Bag of {len(bagged.fold_epochs)} networks (epochs {bagged.fold_epochs}). Its `val/*` "
        "are out of fold: every non-test row scored by the one network that did not train on "
        "it. Each `fold_<j>` run's `val/*` are that fold's early-stopping rows.\n\n"
        f"| metric | out of fold |\n| --- | --- |\n{rows}"
    )


def _require_checkpoint(subcommand: str, ckpt_path: str | None) -> None:
    """A checkpoint that is named must exist and be one; evaluating or predicting needs one.

    Without this, `test --ckpt_path typo.ckpt` would go on with an untrained model and fail
    later with a message about the network's inputs, and a file that is not a checkpoint
    would fail inside the unpickler. (`torch.save` writes a zip archive: checking for one
    reads a few bytes, where loading the file here would load it twice.)
    """
    if ckpt_path in ("best", "last", "hpc"):
        return
    if ckpt_path and not Path(ckpt_path).is_file():
        raise ConfigurationError(
            f"checkpoint {ckpt_path!r} not found (from {Path.cwd()}); a fit writes them to "
            "logs/<config name>/version_N/checkpoints/"
        )
    if ckpt_path and not zipfile.is_zipfile(ckpt_path):
        raise ConfigurationError(
            f"{ckpt_path!r} is not a checkpoint (not a file written by torch.save): give a "
            ".ckpt file from logs/<config name>/version_N/checkpoints/"
        )
    if not ckpt_path and subcommand != "fit":
        raise ConfigurationError(
            f"{subcommand} needs a trained model: pass --ckpt_path "
            "logs/<config name>/version_N/checkpoints/<file>.ckpt"
        )


def _views(trainer: Trainer) -> list[TensorBoardViews]:
    return [callback for callback in trainer.callbacks if isinstance(callback, TensorBoardViews)]


def drop_callbacks(trainer_config: Namespace, kinds: tuple[type, ...]) -> None:
    """Remove the configured callbacks of these kinds from a parsed trainer config.

    The benchmark and the tuner run the training config with their own progress display
    (and the tuner without checkpoints); entries are `class_path` namespaces or instances.
    """
    callbacks = trainer_config.callbacks or []
    if not isinstance(callbacks, list):
        callbacks = [callbacks]
    trainer_config.callbacks = [item for item in callbacks if not _is_one_of(item, kinds)]


def _is_one_of(item: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(item, Namespace):
        module, _, name = str(item.class_path).rpartition(".")
        item = getattr(importlib.import_module(module), name)
    kind = item if isinstance(item, type) else type(item)
    return issubclass(kind, kinds)


def config_name(config: Namespace, *, default: str) -> str:
    """The stem of the last `--config` file (`configs/taiwan.yaml` -> "taiwan")."""
    config_files = config.get("config") or []
    return Path(str(config_files[-1])).stem if config_files else default


# A refused option raises (one message, caught by `run_entry_point`) instead of printing the
# usage page, and an option must be written whole: argparse would take `--trainer.max_epoch`
# for `--trainer.max_epochs` and `--model.lr` for `--model.lr_schedule`.
PARSER_KWARGS = {"exit_on_error": False, "allow_abbrev": False}


def build_cli(
    args: Sequence[str],
    cli_class: type[LoanCLI] = LoanCLI,
    datamodule_class: type[LoanDataModule] = LoanDataModule,
    **kwargs: Any,
) -> LoanCLI:
    """The model, data module and trainer exactly as `scripts/main.py` builds them from a
    config, without running a subcommand: for the benchmark, the EDA report and throughput.
    A refused option raises `ArgumentError` (one message) instead of printing the usage
    (`PARSER_KWARGS`)."""
    kwargs["parser_kwargs"] = PARSER_KWARGS | kwargs.get("parser_kwargs", {})
    with warnings.catch_warnings():
        # The arguments are passed on purpose, so the "args and sys.argv" notice is noise.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return cli_class(
            LoanDefaultModel,
            datamodule_class,
            run=False,
            args=list(args),
            seed_everything_default=0,
            **kwargs,
        )


NOTICE_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed")


@contextmanager
def without_lightning_notices() -> Iterator[None]:
    """Lightning's notices of a trainer being built (the seed, the accelerators, its tip)
    off the console, for tools that build the CLI only to read the data (the EDA report,
    the combinations' listing): they train nothing, so the notices only mislead."""
    loggers = [logging.getLogger(name) for name in NOTICE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def cli_main(args: Sequence[str] | None = None) -> LoanCLI:
    """`fit`, `validate`, `test` or `predict`, as `scripts/main.py` runs them."""
    quiet_lightning(sys.argv[1:] if args is None else args)
    return LoanCLI(
        LoanDefaultModel,
        LoanDataModule,
        seed_everything_default=0,
        save_config_callback=RunConfig,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=PARSER_KWARGS,
        args=None if args is None else list(args),
    )


def quiet_lightning(args: Sequence[str]) -> None:
    """Keep off the console what a user cannot act on: Lightning's cloud-service tip, a
    torch-internal deprecation, the logging interval of a small set's short epochs, and,
    when a checkpoint is only read (test, predict), the warning that its checkpoint folder
    differs from the run's. A warning prints as its kind and message, without the source
    line that raised it (`rank_zero_warn(`), unless LOAN_DEBUG is set."""
    hide_lightning_tip()
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    warnings.formatwarning = _PYTHON_FORMATWARNING if debug else _one_line_warning
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    # A small set's epoch has fewer batches than log_every_n_steps: its per-step loss goes
    # unlogged, its epoch loss is logged, and there is nothing to change.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval")
    if "fit" not in args:
        warnings.filterwarnings("ignore", message=r"The dirpath has changed from")


_PYTHON_FORMATWARNING = warnings.formatwarning


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    return f"{category.__name__}: {message}\n"


def hide_lightning_tip() -> None:
    """Lightning's tip to install its cloud-service logger off the console and logs."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(added, _NoAdvertisement) for added in logger.filters):
        logger.addFilter(_NoAdvertisement())


class _NoAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def run_entry_point(main: Callable[[], Result]) -> Result:
    """Run a script's `main`, turning a user's mistake into its message and exit status 2.

    Bad files, columns and options raise `UserFacingError` (or Lightning's
    `MisconfigurationException`); their message says what to fix, and a traceback would only
    bury it. Set LOAN_DEBUG=1 to see the traceback anyway. A SIGTERM ends with status 143:
    Lightning exits 0 on it, but a stopped run is not a success; Ctrl-C outside training
    with 130.
    """
    try:
        return main()
    except (UserFacingError, MisconfigurationException, ArgumentError) as error:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        console.print(Text.assemble(("error: ", "bold red"), " ".join(str(error).split())))
        hint = "--help lists the options" if isinstance(error, ArgumentError) else None
        console.print(
            f"({hint or f'set {DEBUG_ENV}=1 for the traceback'})", style="dim", markup=False
        )
        sys.exit(2)
    except SIGTERMException:
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        # Outside a trainer's loop (reading data, writing a bag's checkpoint), which
        # handles its own: what was written is whole (atomic writes), so no traceback.
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        Console(stderr=True, highlight=False).print("interrupted (Ctrl-C)", style="bold red")
        sys.exit(128 + signal.SIGINT)
