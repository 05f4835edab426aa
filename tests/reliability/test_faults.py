"""Faults during a run: divergence, SIGTERM and Ctrl-C, an interrupted write.

The interruption test runs `scripts/main.py fit` as a real subprocess, signals it once a
checkpoint exists, resumes with `--ckpt_path last`, and compares the end of the resumed
run with an uninterrupted one: on CPU with the same seed they must be identical.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
import yaml

from contracts.errors import ConfigurationError, NonFiniteTrainingError
from datamodules.loan_datamodule import LoanDataModule
from datamodules.synthetic import generate_loan_book
from lightning_modules.atomic import write_csv_atomically
from lightning_modules.bagging import FOLD_RECORD
from lightning_modules.guards import FiniteGuard
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.resume import LastEpochCheckpoint, ResumableRun
from tests.conftest import CONFIGS, FAST_TRAINER, REPO
from tests.helpers.faults import LearningRateJump, SignalAtBatch

# 1,500 synthetic rows: 4 training batches of 256 per epoch, about a second per epoch.
SMALL_RUN = [
    f"--config={CONFIGS / 'default.yaml'}",
    "--data.synthetic_rows=1500",
    *FAST_TRAINER,
    "--trainer.log_every_n_steps=2",
]
STEPS_PER_EPOCH = 4


def _val_metrics(cli) -> dict[str, float]:
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}


def _checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


# A diverging fit ------------------------------------------------------------------------


@pytest.mark.slow
def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(
    run_cli, tmp_path
):
    """After epoch 0 the learning rate jumps by 1e30: the loss becomes NaN in epoch 1."""
    with pytest.raises(NonFiniteTrainingError) as raised:
        run_cli(
            "fit",
            *SMALL_RUN,
            "--trainer.max_epochs=3",
            f"--trainer.callbacks+={LearningRateJump.__module__}.LearningRateJump",
        )
    message = str(raised.value)
    last = Path("logs/default/version_0/checkpoints/last.ckpt")
    assert "the training loss is not finite (here: nan) at epoch 1, step" in message
    assert f"last good checkpoint is {last}" in message
    assert "--model.optimizer.init_args.lr" in message

    checkpoint = _checkpoint(tmp_path / last)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == STEPS_PER_EPOCH
    for name, tensor in checkpoint["state_dict"].items():
        assert torch.isfinite(tensor.float()).all(), name


def _quiet_trainer(root: Path, max_epochs: int, callbacks: list[L.Callback]) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


class _CorruptWeightsAtEpoch(L.Callback):
    """Fault injection: a weight turns NaN just before an epoch's checkpoint is written.

    (Runs before `ModelCheckpoint`, which Lightning always calls last.)
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            with torch.no_grad():
                next(p for p in pl_module.parameters() if p.dim() == 2)[0, 0] = float("nan")


@pytest.mark.slow
def test_non_finite_weights_are_never_written_over_the_last_checkpoint(tmp_path):
    datamodule = LoanDataModule(synthetic_rows=1500, id_column="loan_id")
    checkpoints = LastEpochCheckpoint(dirpath=str(tmp_path))
    trainer = _quiet_trainer(
        tmp_path, 3, [checkpoints, FiniteGuard(), _CorruptWeightsAtEpoch(epoch=1)]
    )
    with pytest.raises(NonFiniteTrainingError, match=r"hold NaN or infinity at epoch 1") as raised:
        trainer.fit(LoanDefaultModel(), datamodule=datamodule)
    assert "the checkpoint was not written" in str(raised.value)
    last = _checkpoint(tmp_path / "last.ckpt")
    assert last["epoch"] == 0
    assert all(torch.isfinite(t.float()).all() for t in last["state_dict"].values())


class _CorruptWeightsBeforeSanityCheck(L.Callback):
    """Fault injection: the network's last weight matrix (feeding every output) turns NaN."""

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            [p for p in pl_module.parameters() if p.dim() == 2][-1].fill_(float("nan"))


def test_non_finite_validation_outputs_name_the_stage_not_a_metric_internal(tmp_path):
    trainer = _quiet_trainer(tmp_path, 1, [_CorruptWeightsBeforeSanityCheck()])
    with pytest.raises(NonFiniteTrainingError, match=r"validation outputs hold NaN") as raised:
        trainer.fit(LoanDefaultModel(), datamodule=LoanDataModule(synthetic_rows=1500))
    assert "before any training step" in str(raised.value)


# The last complete epoch ----------------------------------------------------------------


@pytest.mark.slow
def test_last_checkpoint_is_the_last_epoch_even_when_later_epochs_do_not_improve(
    run_cli, tmp_path, capsys
):
    """Frozen weights from epoch 1 on (learning rate x 0, no batch norm whose statistics would
    still move, no moving average of the weights still approaching them): epochs 1 and 2
    score exactly what epoch 0 scored, so none improves, and the best checkpoint stays at
    epoch 0 while `last.ckpt` must follow every epoch."""
    frozen = [
        "--model.net.normalization=none",
        "--model.weight_average_half_life=null",
        "--trainer.max_epochs=3",
        f"--trainer.callbacks+={LearningRateJump.__module__}.LearningRateJump",
        "--trainer.callbacks.init_args.factor=0.0",
    ]
    run_cli("fit", *SMALL_RUN, *frozen)
    folder = tmp_path / "logs" / "default" / "version_0" / "checkpoints"
    assert [path.name[:8] for path in folder.glob("epoch*.ckpt")] == ["epoch000"]
    last = _checkpoint(folder / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS_PER_EPOCH)

    capsys.readouterr()
    # Still frozen: the resumed epoch 3 ties epoch 0, which stays the checkpoint kept, and
    # was not seen by this fit, so its table is the last epoch's, not "epoch 3, kept".
    resumed = run_cli(
        "fit", *SMALL_RUN, *frozen[:2], "--trainer.max_epochs=4", *frozen[3:], "--ckpt_path=last"
    )
    assert Path(resumed.trainer.ckpt_path).resolve() == (folder / "last.ckpt").resolve()
    assert _checkpoint(folder / "last.ckpt")["global_step"] == 4 * STEPS_PER_EPOCH
    assert [path.name[:8] for path in folder.glob("epoch*.ckpt")] == ["epoch000"]
    printed = " ".join(capsys.readouterr().out.split())
    assert "Validation metrics (last epoch)" in printed and "checkpoint kept" not in printed


# SIGTERM and Ctrl-C ---------------------------------------------------------------------


def _start_fit(workdir: Path, *extra: str) -> subprocess.Popen[str]:
    """`python scripts/main.py fit` in workdir, with this process's thread count (same sums);
    the repository on the path, for the test callbacks."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "main.py"), "fit", *SMALL_RUN, *extra],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ctrl_c_as_for_a_user,
    )


def _ctrl_c_as_for_a_user() -> None:
    """A shell starts background jobs with SIGINT ignored, and exec keeps an ignored signal:
    run from such a job (a CI runner, `cmd &`), the fit would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted(
    workdir: Path, epoch: int, sig: signal.Signals, *extra: str, fold: int | None = None
) -> tuple[int, str]:
    """A fit that receives `sig` in the middle of epoch `epoch` (after its 10th batch; in a
    bag, of fold `fold`'s fit), and what it printed. The timeout only guards against a hung
    process."""
    process = _start_fit(
        workdir,
        *extra,
        f"--trainer.callbacks+={SignalAtBatch.__module__}.SignalAtBatch",
        f"--trainer.callbacks.init_args.epoch={epoch}",
        "--trainer.callbacks.init_args.batch=10",
        f"--trainer.callbacks.init_args.signal_name={sig.name}",
        *([f"--trainer.callbacks.init_args.fold={fold}"] if fold is not None else []),
    )
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


@pytest.mark.slow
def test_sigterm_then_ctrl_c_then_resume_ends_exactly_like_an_uninterrupted_run(run_cli, tmp_path):
    # Small batches: about 60 steps an epoch, so the 10th is in the middle of one.
    max_epochs = ["--trainer.max_epochs=3", "--data.batch_size=16"]
    last = tmp_path / "logs" / "default" / "version_0" / "checkpoints" / "last.ckpt"

    code, output = _interrupted(tmp_path, 1, signal.SIGTERM, *max_epochs)
    assert code == 128 + signal.SIGTERM, output
    assert "Received SIGTERM" in output and "--ckpt_path last" in output
    after_sigterm = _checkpoint(last)["epoch"]
    assert after_sigterm == 0

    code, output = _interrupted(tmp_path, 2, signal.SIGINT, *max_epochs, "--ckpt_path=last")
    assert code == 1, output
    assert "KeyboardInterrupt" in output and "--ckpt_path last" in output
    after_ctrl_c = _checkpoint(last)["epoch"]
    assert after_ctrl_c == 1
    assert not (tmp_path / "logs" / "default" / "version_1").exists()  # same run continued

    resumed = run_cli("fit", *SMALL_RUN, *max_epochs, "--ckpt_path=last")
    assert Path(resumed.trainer.ckpt_path).resolve() == last.resolve()
    assert resumed.trainer.current_epoch == 3
    # The run's recipe trains it again from the start, not from its own last checkpoint.
    recipe = (tmp_path / "logs/default/version_0/config.yaml").read_text()
    assert "\nckpt_path: null\n" in recipe

    uninterrupted = run_cli("fit", *SMALL_RUN, *max_epochs)
    assert uninterrupted.trainer.logger.version == 1
    assert _val_metrics(resumed) == _val_metrics(uninterrupted)
    final = _checkpoint(last)["state_dict"]
    reference = _checkpoint(tmp_path / "logs/default/version_1/checkpoints/last.ckpt")
    assert final.keys() == reference["state_dict"].keys()
    for name, tensor in final.items():
        assert torch.equal(tensor, reference["state_dict"][name]), name


def test_resuming_a_fit_stopped_in_its_first_epoch_starts_it_over_not_an_older_run(
    run_cli, tmp_path
):
    """The newest fit is the one to continue: an older finished run's `last.ckpt` (other
    settings) must be neither trained on nor overwritten."""
    finished = run_cli("fit", *SMALL_RUN, "--trainer.max_epochs=1")
    older = tmp_path / "logs" / "default" / "version_0"
    assert finished.trainer.logger.version == 0
    written = {path: path.read_bytes() for path in older.rglob("*") if path.is_file()}

    other = ["--model.net.dropout=0.0", "--trainer.max_epochs=2", "--data.batch_size=16"]
    code, output = _interrupted(tmp_path, 0, signal.SIGINT, *other)
    assert code == 1, output
    assert "before its first complete epoch was saved" in output
    assert (tmp_path / "logs" / "default" / "version_1" / "checkpoints").is_dir()

    resumed = run_cli("fit", *SMALL_RUN, *other, "--ckpt_path=last")
    assert resumed.trainer.ckpt_path is None
    assert resumed.trainer.logger.version == 2
    assert resumed.trainer.current_epoch == 2
    assert {path: path.read_bytes() for path in older.rglob("*") if path.is_file()} == written


@pytest.mark.slow
def test_an_interrupted_bag_resumes_fold_by_fold_and_ends_like_an_uninterrupted_one(
    run_cli, tmp_path
):
    """SIGTERM in the second fold of a 2-fold bag: the resumed bag reads the first fold
    back and continues the second from its last complete epoch; its averaged checkpoint
    equals an uninterrupted bag's. With every rate input on: the resumed fold recomputes
    its rows' out-of-fold rates, which the checkpoint does not carry."""
    bag = [
        "--data.folds=2",
        "--trainer.max_epochs=2",
        "--data.batch_size=16",
        "--data.target_statistics=true",
        "--data.value_statistics=true",
    ]
    run_dir = tmp_path / "logs" / "default" / "version_0"
    second_fold_last = run_dir / "fold_1" / "checkpoints" / "last.ckpt"

    code, output = _interrupted(tmp_path, 1, signal.SIGTERM, *bag, fold=1)
    assert code == 128 + signal.SIGTERM, output
    assert (run_dir / "fold_0" / FOLD_RECORD).is_file()
    assert not (run_dir / "fold_1" / FOLD_RECORD).exists()
    assert _checkpoint(second_fold_last)["epoch"] == 0

    run_cli("fit", *SMALL_RUN, *bag, "--ckpt_path=last")
    assert not (tmp_path / "logs" / "default" / "version_1").exists()  # same run continued
    run_cli("fit", *SMALL_RUN, *bag)
    resumed = _checkpoint(run_dir / "checkpoints" / "bagged.ckpt")["state_dict"]
    reference = _checkpoint(tmp_path / "logs/default/version_1/checkpoints/bagged.ckpt")
    assert resumed.keys() == reference["state_dict"].keys()
    for name, tensor in resumed.items():
        assert torch.equal(tensor, reference["state_dict"][name]), name


@pytest.mark.parametrize(("folds", "version"), [(1, None), (2, None), (1, "mine")])
def test_a_fit_continued_on_a_changed_file_is_refused_before_anything_is_restored(
    run_cli, tmp_path, folds, version
):
    """Labels flipped in training rows only (the held-out rows, which `test` checks, are
    unchanged): a single network would go on training on them, a bag would read its folds
    back and calibrate them on rows some of them trained on."""
    loans = tmp_path / "loans.csv"
    generate_loan_book(1500, seed=0).frame.to_csv(loans, index=False)
    on_file = [*SMALL_RUN, f"--data.path={loans}", f"--data.folds={folds}"]
    on_file.append("--trainer.max_epochs=1")
    if version is not None:  # a version the user fixed: Lightning finds "last" itself
        on_file.append(f"--trainer.logger.init_args.version={version}")
    fitted = run_cli("fit", *on_file)
    training_rows = fitted.datamodule.labelled_table().split.train[:40]
    changed = pd.read_csv(loans)
    changed.loc[training_rows, "default"] = 1 - changed.loc[training_rows, "default"]
    changed.to_csv(loans, index=False)
    record = f"fold_0/{FOLD_RECORD}" if folds > 1 else "checkpoints/last.ckpt"
    with pytest.raises(ConfigurationError) as refused:
        run_cli("fit", *on_file, "--ckpt_path=last")
    message = str(refused.value)
    assert message.startswith(f"logs/default/{version or 'version_0'}/{record}: ")
    assert f"{loans} is not the file the checkpoint was fitted on" in message


@pytest.mark.parametrize(
    ("folds", "other", "began", "refused"),
    [
        (2, "--model.net.dropout=0.0", "model.net.dropout 0.25 (this run: 0.0)", True),
        (1, "--data.value_counts=false", "data.value_counts True (this run: False)", True),
        (1, "--model.optimizer.init_args.lr=0.0005", "lr 0.001 (this run: 0.0005)", False),
    ],
    ids=["bag, any setting", "network, its inputs", "network, its rate"],
)
def test_a_fit_continued_with_other_settings_is_refused_unless_they_only_steer_training(
    run_cli, tmp_path, folds, other, began, refused
):
    """A bag would average folds trained two ways; a single network restored into other
    inputs fails with a size mismatch (or worse, loads); another rate is a choice."""
    run = [*SMALL_RUN, f"--data.folds={folds}", "--trainer.max_epochs=1"]
    run_cli("fit", *run)
    version_0 = tmp_path / "logs" / "default" / "version_0"
    if refused:
        with pytest.raises(ConfigurationError, match=re.escape(began)):
            run_cli("fit", *run, other, "--ckpt_path=last")
        run_cli("fit", *run, "--ckpt_path=last")  # with its own settings it goes on
    else:
        with pytest.warns(UserWarning, match=re.escape(began)):
            run_cli("fit", *run, other, "--ckpt_path=last", "--trainer.max_epochs=2")
    assert not (tmp_path / "logs" / "default" / "version_1").exists()
    # The recipe of the continued run trains it again, in a version of its own.
    recipe = yaml.safe_load((version_0 / "config.yaml").read_text())
    assert (
        recipe["ckpt_path"] is None and recipe["trainer"]["logger"]["init_args"]["version"] is None
    )


def test_resuming_from_a_complete_epoch_restores_the_random_state(tmp_path):
    """Without the generator state, the resumed epoch would shuffle and drop out differently."""
    state = ResumableRun().state_dict()
    expected = torch.rand(5)
    torch.manual_seed(1234)
    ResumableRun().load_state_dict(state)
    assert torch.equal(torch.rand(5), expected)


# Atomic writes --------------------------------------------------------------------------


class _FailsWhenWritten:
    """A cell whose text cannot be produced: the write stops halfway through the file."""

    def __str__(self) -> str:
        raise KeyboardInterrupt


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "predictions.csv"
    write_csv_atomically(pd.DataFrame({"p": [0.1, 0.2]}), target)
    old = target.read_bytes()
    new = pd.DataFrame({"p": [0.3] * 250_000 + [_FailsWhenWritten()]})  # fails in chunk 3
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomically(new, target)
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_a_written_file_has_the_mode_of_any_new_file(tmp_path):
    """Not the temporary file's private 0600: others may need to read predictions."""
    plain = tmp_path / "plain.csv"
    plain.write_text("id\n")
    written = write_csv_atomically(pd.DataFrame({"id": [1]}), tmp_path / "predictions.csv")
    assert written.stat().st_mode == plain.stat().st_mode


@pytest.mark.slow
def test_a_killed_writer_leaves_the_old_file_intact(tmp_path):
    """SIGKILL mid-write (no cleanup possible): the target still holds the complete old file."""
    target = tmp_path / "predictions.csv"
    write_csv_atomically(pd.DataFrame({"p": [0.1, 0.2]}), target)
    old = target.read_bytes()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, numpy as np, pandas as pd\n"
            "from lightning_modules.atomic import write_csv_atomically\n"
            "frame = pd.DataFrame(np.random.default_rng(0).random((1_000_000, 4)))\n"
            "write_csv_atomically(frame, sys.argv[1])\n",
            str(target),
        ],
        cwd=REPO,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and writer.poll() is None:
        partial = [p for p in tmp_path.glob(".predictions.csv.*.tmp") if p.stat().st_size > 0]
        if partial:
            writer.kill()
            break
        time.sleep(0.01)
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    assert target.read_bytes() == old
