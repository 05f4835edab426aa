"""Uninformative columns: their shapes, their determinism, and their place in the data module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts.errors import ConfigurationError, DataValidationError
from datamodules.loan_datamodule import LoanDataModule
from datamodules.noise import SUITE_NOISE_COLUMNS, append_noise_columns, noise_column_names
from datamodules.synthetic import generate_loan_book
from lightning_modules.callbacks import PROBABILITY_COLUMN
from tests.conftest import CONFIGS, FAST_TRAINER


def _noise(rows: int = 2_000, seed: int = 0, count: int = SUITE_NOISE_COLUMNS) -> pd.DataFrame:
    frame = pd.DataFrame({"default": np.zeros(rows, dtype=int)})
    return append_noise_columns(frame, count, seed=seed, source="loans.csv").drop(columns="default")


def test_the_suites_noise_is_thirty_numeric_and_five_categorical_columns_of_credit_shapes():
    noise = _noise()
    numeric, categorical = noise_column_names(SUITE_NOISE_COLUMNS)
    assert list(noise.columns) == sorted([*numeric, *categorical])
    assert (len(numeric), len(categorical)) == (30, 5)
    assert [noise[name].nunique() for name in categorical] == [3, 5, 8, 15, 30]
    assert all(pd.api.types.is_float_dtype(noise[name]) for name in numeric)
    # Heavy-tailed amounts, counts and ratios with missing values, as credit files have.
    shapes = noise[numeric[:4]]
    assert shapes.iloc[:, 1].median() > 1_000 and shapes.iloc[:, 1].skew() > 2
    assert (shapes.iloc[:, 2] == shapes.iloc[:, 2].round()).all()
    assert shapes.iloc[:, 3].isna().mean() == pytest.approx(0.1, abs=0.02)
    assert noise.drop(columns=numeric[3::4]).notna().all().all()


def test_the_noise_is_a_function_of_the_row_count_and_the_seed_only():
    pd.testing.assert_frame_equal(_noise(seed=3), _noise(seed=3))
    assert not _noise(seed=3).equals(_noise(seed=4))
    # The file's own columns, the target included, play no part in the draw.
    frame = pd.DataFrame({"default": np.arange(500) % 2, "income": np.arange(500.0)})
    flipped = frame.assign(default=1 - frame["default"], income=-frame["income"])
    drawn = append_noise_columns(frame, 7, seed=1, source="a.csv")
    redrawn = append_noise_columns(flipped, 7, seed=1, source="a.csv")
    pd.testing.assert_frame_equal(drawn.iloc[:, 2:], redrawn.iloc[:, 2:])
    pd.testing.assert_frame_equal(drawn.iloc[:, :2], frame)


def test_a_file_with_a_column_of_the_noises_name_is_refused_naming_it():
    frame = pd.DataFrame({"noise_01": [1.0, 2.0]})
    message = r"loans\.csv: --data\.noise_columns .*\['noise_01'\]"
    with pytest.raises(DataValidationError, match=message):
        append_noise_columns(frame, 3, seed=0, source="loans.csv")


def test_a_negative_count_is_refused_when_the_data_module_is_built():
    with pytest.raises(ConfigurationError, match="noise_columns"):
        LoanDataModule(None, target="default", noise_columns=-1)


def test_the_data_module_appends_the_noise_to_the_same_sampled_rows():
    options = dict(target="default", id_column="loan_id", synthetic_rows=2_000, seed=5)
    categoricals = ["employment_status", "home_ownership", "loan_purpose", "region"]
    clean = LoanDataModule(None, sample_rows=1_000, categorical_columns=categoricals, **options)
    noisy = LoanDataModule(
        None, sample_rows=1_000, categorical_columns=categoricals, noise_columns=14, **options
    )
    clean_table, noisy_table = clean.labelled_table(), noisy.labelled_table()

    # Same rows, same split, so a noisy run pairs with its clean one seed by seed.
    assert noisy_table.frame["loan_id"].tolist() == clean_table.frame["loan_id"].tolist()
    np.testing.assert_array_equal(noisy_table.split.train, clean_table.split.train)
    numeric, categorical = noise_column_names(14)
    assert noisy.schema.categorical_columns == (*categoricals, *categorical)
    assert noisy.schema.numeric_columns == (*clean.schema.numeric_columns, *numeric)


@pytest.mark.slow
def test_a_model_trained_with_noise_columns_predicts_a_file_without_them(run_cli, tmp_path):
    """The placebo check runs end to end: the prediction file gets its own noise columns."""
    train_csv, applicants_csv = tmp_path / "train.csv", tmp_path / "applicants.csv"
    generate_loan_book(1_500, seed=5).frame.to_csv(train_csv, index=False)
    applicants = generate_loan_book(200, seed=6).frame.drop(columns=["default"])
    applicants.to_csv(applicants_csv, index=False)
    data = [f"--config={CONFIGS / 'default.yaml'}", f"--data.path={train_csv}"]
    data.append("--data.noise_columns=7")
    fit = run_cli("fit", *data, *FAST_TRAINER, "--trainer.max_epochs=1")
    assert fit.datamodule.schema.categorical_columns[-1] == "noise_06"
    assert len(fit.datamodule.schema.feature_columns) == 15 + 7

    output = tmp_path / "predictions.csv"
    checkpoint = tmp_path / "logs" / "default" / "version_0" / "checkpoints" / "last.ckpt"
    run_cli(
        "predict",
        *data,
        f"--data.predict_path={applicants_csv}",
        f"--ckpt_path={checkpoint}",
        f"--submission.output_path={output}",
    )
    submission = pd.read_csv(output)
    assert submission["loan_id"].tolist() == applicants["loan_id"].tolist()
    assert submission[PROBABILITY_COLUMN].between(0, 1, inclusive="neither").all()


def test_dropping_a_categorical_noise_column_leaves_the_others_categorical():
    """So that the numeric and the categorical noise can be measured apart."""
    datamodule = LoanDataModule(
        None,
        target="default",
        synthetic_rows=500,
        categorical_columns=["employment_status", "home_ownership", "loan_purpose", "region"],
        noise_columns=14,
        drop_columns=["noise_06"],
    )
    datamodule.labelled_table()
    assert datamodule.schema.categorical_columns[-1:] == ("noise_13",)
    assert "noise_06" not in datamodule.schema.feature_columns
