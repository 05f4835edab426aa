"""Shared fixtures: small synthetic files, the real-data folder, and the CLI run in-process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

from datamodules.synthetic import generate_loan_book
from lightning_modules.cli import LoanCLI, cli_main

# One torch thread in each test worker (setup.cfg runs one per core) and the runs it starts:
# on test-sized batches several OpenMP threads mostly wait for each other (a 2-epoch fit
# measured 2.8 s on one thread, 16 s on two on a busy machine), and one thread keeps sums in
# the same order in subprocesses and in-process runs that are compared with each other.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED_DATA = REPO.parent / "shared" / "data"

# Short training runs for tests: CPU, a couple of epochs, one network (the test files are
# small enough for the default to bag five; the bagging tests ask for it). (The configs'
# progress bar stays: Lightning refuses `enable_progress_bar=false` beside a configured
# progress bar.)
FAST_TRAINER = [
    "--trainer.accelerator=cpu",
    "--trainer.max_epochs=2",
    "--trainer.enable_model_summary=false",
    "--trainer.log_every_n_steps=5",
    "--data.folds=1",
]


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The shared real datasets: $LOAN_DATA_DIR, else ../shared/data next to the repository."""
    directory = Path(os.environ.get("LOAN_DATA_DIR") or SHARED_DATA)
    if not (directory / "uci_taiwan_credit_default").is_dir():
        pytest.skip(
            f"real datasets not found in {directory}: set LOAN_DATA_DIR to the shared data "
            "folder (CI provides ../shared/data)"
        )
    return directory


@pytest.fixture(scope="session")
def loan_frame() -> pd.DataFrame:
    """2,000 rows of the synthetic loan book: small enough for a fit in a few seconds."""
    return generate_loan_book(2_000, seed=1).frame


@pytest.fixture
def loan_csv(tmp_path: Path, loan_frame: pd.DataFrame) -> Path:
    path = tmp_path / "loans.csv"
    loan_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., LoanCLI]:
    """Run `scripts/main.py` in-process inside tmp_path (logs and checkpoints land there)."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> LoanCLI:
        return cli_main(list(args))

    return run
