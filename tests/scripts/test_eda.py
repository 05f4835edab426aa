"""End-to-end runs of `scripts/eda.py` on the synthetic book, a user's CSV and real data."""

from __future__ import annotations

import base64
import io
import logging
import re
from argparse import ArgumentError
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from analysis.eda import main
from analysis.report import REPORT_NAME
from datamodules.synthetic import generate_loan_book
from lightning_modules.cli import NOTICE_LOGGERS
from tests.conftest import CONFIGS

# Target balance, missing values, ranking, distributions, categorical rates, correlations.
FIGURES_WITH_CATEGORICALS = 6


def _images(report: Path) -> list:
    encoded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", report.read_text())
    return [
        matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
        for data in encoded
    ]


def test_synthetic_report_has_every_figure_and_the_true_target_rate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    report = main([f"--config={CONFIGS / 'default.yaml'}", "--data.synthetic_rows=3000"])
    assert report == Path("reports/default") / REPORT_NAME and report.is_file()
    images = _images(report)
    assert len(images) == FIGURES_WITH_CATEGORICALS
    assert all(image.shape[0] > 50 and image.shape[1] > 200 for image in images)
    frame = generate_loan_book(3000, seed=0).frame
    printed = capsys.readouterr().out
    rate = frame["default"].mean()
    assert f"{int(frame['default'].sum()):,} ({rate:.2%})" in printed
    html = report.read_text()
    assert f"{rate:.2%}" in html
    for column, missing in frame.isna().sum().items():
        if missing:
            assert f"<td>{column}</td>" in html and f"{missing:,} ({missing / 3000:.1%})" in html


def test_a_users_csv_config_with_overrides_and_training_rows_only(
    tmp_path, loan_csv, loan_frame, capsys
):
    config = tmp_path / "mine.yaml"
    config.write_text(f"data:\n  path: {loan_csv}\n  target: default\n  id_column: loan_id\n")
    output = tmp_path / "out"
    report = main(
        [
            "--config",
            str(config),
            "--data.drop_columns=[annual_income]",
            "--output",
            str(output),
            "--rows",
            "train",
        ]
    )
    assert report == output / REPORT_NAME
    html = report.read_text()
    assert "<td>annual_income</td><td>dropped</td>" in html
    assert "1,280: the training split only" in html  # 64 % of 2,000 rows
    assert len(_images(report)) == FIGURES_WITH_CATEGORICALS
    assert "EDA of" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.real_data
def test_taiwan_report_from_its_config(real_data_dir, tmp_path, capsys):
    report = main(
        [
            f"--config={CONFIGS / 'taiwan.yaml'}",
            f"--data.data_dir={real_data_dir}",
            f"--output={tmp_path}",
        ]
    )
    frame = pd.read_csv(real_data_dir / "uci_taiwan_credit_default" / "UCI_Credit_Card.csv.gz")
    rate = frame["default.payment.next.month"].mean()
    assert f"{rate:.2%}" == "22.12%"
    assert f"6,636 ({rate:.2%})" in capsys.readouterr().out
    html = report.read_text()
    assert "<td>ID</td><td>id</td>" in html
    assert "<h3>EDUCATION (7 levels)</h3>" in html
    assert "<th>present</th></tr><tr><td>PAY_0</td>" in html  # tops the single-feature ranking
    assert len(_images(report)) == FIGURES_WITH_CATEGORICALS


@pytest.mark.slow
@pytest.mark.real_data
def test_give_me_some_credit_report_names_its_sentinel_values(real_data_dir, tmp_path):
    report = main(
        [
            f"--config={CONFIGS / 'gmsc.yaml'}",
            f"--data.data_dir={real_data_dir}",
            f"--output={tmp_path}",
        ]
    )
    html = report.read_text()
    assert "96 (5 rows, 80.0% defaulted), 98 (264 rows, 54.2% defaulted)" in html
    assert len(_images(report)) == FIGURES_WITH_CATEGORICALS - 1  # no categoricals


def test_the_report_prints_no_notices_of_a_trainer_it_never_uses(tmp_path, monkeypatch):
    """Lightning announces the seed and the accelerators when a trainer is built; the EDA
    builds one only to read the data, so those lines would only mislead."""
    monkeypatch.chdir(tmp_path)
    notices: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notices.append(record.getMessage())

    loggers = [logging.getLogger(name) for name in NOTICE_LOGGERS]
    for logger in loggers:
        logger.addHandler(Collect())
    try:
        main([f"--config={CONFIGS / 'default.yaml'}", "--data.synthetic_rows=1000"])
    finally:
        for logger in loggers:
            logger.handlers = [h for h in logger.handlers if not isinstance(h, Collect)]
    assert notices == []


def test_a_misspelt_option_of_the_report_is_named_by_the_training_cli_it_reaches(tmp_path):
    # --row is not the report's (--rows), so it goes to the training CLI, which refuses it.
    with pytest.raises(ArgumentError, match=r"--row train \(--row: did you mean --rows\?\)"):
        main([f"--config={CONFIGS / 'default.yaml'}", "--row", "train"])
