"""A user's mistake ends with its message and a non-zero status, never a traceback.

One case runs `scripts/main.py` as a real process, as a user would; the others call the
same entry point in-process and read what the terminal would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from contracts.errors import DataValidationError
from lightning_modules.cli import DEBUG_ENV, cli_main, quiet_lightning, run_entry_point
from tests.conftest import CONFIGS, REPO

SMALL = [f"--config={CONFIGS / 'default.yaml'}", "--data.synthetic_rows=1500"]


def _exit_status(args: list[str]) -> int:
    with pytest.raises(SystemExit) as raised:
        run_entry_point(lambda: cli_main(args))
    return int(raised.value.code)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", *SMALL, "--data.target=outcome"], "configured target not found in the file"),
        (["fit", *SMALL, "--model.net.dropout=2"], "error: dropout must be in [0, 1), got 2"),
        (["test", *SMALL, "--ckpt_path=best_model.ckpt"], "checkpoint 'best_model.ckpt' not found"),
        (["predict", *SMALL], "error: predict needs a trained model: pass --ckpt_path"),
        (
            ["fit", *SMALL, "--data.scaling=robust"],
            "Expected a typing.Literal['standard', 'quantile']",
        ),
        (
            ["fit", *SMALL, "--data.pth=loans.csv", "--model.net.dropot", "0.1"],
            "error: unrecognized arguments: --data.pth=loans.csv --model.net.dropot 0.1 "
            "(--data.pth: did you mean --data.path? "
            "--model.net.dropot: did you mean --model.net.dropout?)",
        ),
        # The right name in the wrong group: the optimiser's, which holds the learning rate.
        (
            ["fit", *SMALL, "--model.lr=0.01"],
            "(--model.lr: did you mean --model.optimizer.init_args.lr?)",
        ),
        (["fitt", *SMALL], "invalid choice: 'fitt' (choose from 'fit', 'validate'"),
        (
            # Written whole: argparse would take it for --trainer.max_epochs and fit.
            ["fit", *SMALL, "--trainer.max_epoch=3"],
            "(--trainer.max_epoch: did you mean --trainer.max_epochs?)",
        ),
        # test's own option: not offered back to fit as the closest of fit's.
        (["fit", *SMALL, "--verbose=true"], "unrecognized arguments: --verbose=true\n"),
        (["fit", *SMALL, "--data.test_size=0"], "test_size must be above 0: the test rows are"),
        (["fit", *SMALL, "--data.val_size=1.5"], "val_size must be in (0, 1), got 1.5"),
    ],
    ids=[
        "wrong target",
        "bad option value",
        "missing checkpoint",
        "no checkpoint",
        "bad choice",
        "misspelt options",
        "an option in another group",
        "misspelt subcommand",
        "an abbreviation",
        "another subcommand's option",
        "no test rows",
        "a share above 1",
    ],
)
def test_a_mistake_prints_its_message_alone(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert _exit_status(args) == 2
    shown = capsys.readouterr()
    assert message in shown.err
    assert "Traceback" not in shown.err + shown.out
    # The message and one hint: not the ~100 lines of the usage page above it.
    assert len(shown.err.splitlines()) == 2 and "usage:" not in shown.err


def test_a_misspelt_key_in_a_config_file_names_the_file_and_the_key_meant(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text("data:\n  synthetic_rows: 1500\n  batch_siz: 64\n")
    assert _exit_status(["fit", *SMALL, f"--config={mine}"]) == 2
    shown = " ".join(capsys.readouterr().err.split())
    assert (
        f"error: Subcommand 'fit' does not accept option 'data.batch_siz' (in {mine}; "
        "did you mean data.batch_size?)" in shown
    )


def test_a_file_that_is_not_a_checkpoint_is_named(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.ckpt").write_text("not a model")
    assert _exit_status(["predict", *SMALL, "--ckpt_path=notes.ckpt"]) == 2
    assert "'notes.ckpt' is not a checkpoint" in capsys.readouterr().err


def test_the_debug_switch_lets_the_error_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(DataValidationError, match=r"data file 'loans\.csv' not found"):
        run_entry_point(lambda: cli_main(["fit", *SMALL, "--data.path=loans.csv"]))


@pytest.mark.slow
def test_the_script_exits_with_the_message_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "main.py"), "fit", *SMALL, "--data.path=loans.csv"],
        cwd=tmp_path,
        env=os.environ | {"OMP_NUM_THREADS": "1", DEBUG_ENV: ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: data file 'loans.csv' not found" in result.stderr
    assert f"(set {DEBUG_ENV}=1 for the traceback)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_warning_prints_as_one_line_without_its_source(monkeypatch):
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    monkeypatch.setenv(DEBUG_ENV, "1")
    quiet_lightning(["predict"])
    shown = warnings.formatwarning(UserWarning("a.csv: odd"), UserWarning, "x.py", 7, "warn(")
    assert "x.py:7" in shown  # with LOAN_DEBUG, where it came from
    monkeypatch.setenv(DEBUG_ENV, "")
    quiet_lightning(["predict"])
    shown = warnings.formatwarning(UserWarning("a.csv: odd"), UserWarning, "x.py", 7, "warn(")
    assert shown == "UserWarning: a.csv: odd\n"


def test_ctrl_c_outside_training_ends_with_a_line_and_status_130(capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as raised:
        run_entry_point(interrupted)
    assert raised.value.code == 130
    assert capsys.readouterr().err.strip() == "interrupted (Ctrl-C)"
