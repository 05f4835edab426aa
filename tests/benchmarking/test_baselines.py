"""The protocol's baselines on the synthetic loan book: they learn, early-stop on the rows
they are given, and handle levels that training never showed."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from benchmarking.baselines import (
    BASELINES,
    MAX_TREES,
    BaselineInputs,
    MissingExtraError,
    feature_frame,
)
from datamodules.loan_datamodule import LoanDataModule


@pytest.fixture(scope="module")
def book() -> tuple[pd.DataFrame, np.ndarray, object]:
    datamodule = LoanDataModule(None, target="default", id_column="loan_id", synthetic_rows=4000)
    table = datamodule.labelled_table()
    schema = datamodule.schema
    features = feature_frame(
        table.numeric,
        schema.numeric_columns,
        table.frame[list(schema.categorical_columns)],
        table.split.train,
    )
    return features, table.targets, table.split


def _fit(name, book):
    features, targets, split = book
    return BASELINES[name](BaselineInputs.from_split(features, targets, split, seed=0, threads=1))


def test_feature_frame_keeps_training_levels_only_and_numbers_as_given():
    categorical = pd.DataFrame({"grade": ["A", "B", None, "A", "Z"], "code": [2, 3, 2, 3, 4]})
    numeric = np.array([[1.0], [np.nan], [3.0], [4.0], [5.0]])
    frame = feature_frame(numeric, ["income"], categorical, train_rows=np.array([0, 1, 2, 3]))

    assert list(frame.columns) == ["income", "grade", "code"]
    np.testing.assert_array_equal(frame["income"].to_numpy(), numeric[:, 0])
    assert list(frame["grade"].cat.categories) == ["A", "B"]
    assert list(frame["code"].cat.categories) == ["2", "3"]
    # Row 4 holds levels training never saw: missing, not an error and not a new level.
    assert frame["grade"].isna().tolist() == [False, False, True, False, True]
    assert pd.isna(frame.loc[4, "code"])


@pytest.mark.parametrize("name", list(BASELINES))
def test_every_baseline_learns_the_synthetic_book(name, book):
    features, targets, split = book
    fitted = _fit(name, book)
    probabilities = fitted.predict_proba(features.iloc[split.test])

    assert probabilities.shape == (len(split.test),)
    assert np.all((probabilities > 0) & (probabilities < 1))
    assert roc_auc_score(targets[split.test], probabilities) > 0.75
    assert fitted.iterations >= 1


@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_boosting_stops_early_within_the_protocol_budget(name, book):
    fitted = _fit(name, book)
    # Early stopping ran 100 rounds past the best one and then stopped, far below 2,000.
    assert 100 < fitted.iterations < MAX_TREES


def test_hgb_early_stops_on_the_validation_rows_it_is_given(book):
    features, targets, split = book
    fitted = _fit("hgb", book)
    model = fitted.model
    val_loss = log_loss(targets[split.val], fitted.predict_proba(features.iloc[split.val]))

    # Its last validation score is the log-loss on exactly our validation rows.
    assert -model.validation_score_[-1] == pytest.approx(val_loss, rel=1e-6)
    assert fitted.iterations == model.n_iter_ < model.max_iter


@pytest.mark.parametrize(("name", "package"), [("lightgbm", "lightgbm"), ("xgboost", "xgboost")])
def test_missing_optional_library_names_the_install_command(name, package, book, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[benchmark\]"'):
        _fit(name, book)
