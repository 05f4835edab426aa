"""Tests for the synthetic loan book: shape of the data and honesty of its Bayes ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from datamodules.synthetic import (
    CATEGORICAL_COLUMNS,
    ID_COLUMN,
    TARGET_COLUMN,
    SyntheticLoanBook,
    generate_loan_book,
)

N_ROWS = 20_000
INT_COLUMNS = ["age", "term_months", "open_accounts", "delinquencies_2y"]
FLOAT_COLUMNS = [
    "annual_income",
    "employment_length_years",
    "loan_amount",
    "interest_rate",
    "credit_history_years",
    "revolving_utilization",
    "debt_to_income",
]
CATEGORIES = {
    "employment_status": {"employed", "self_employed", "unemployed", "retired", "student"},
    "home_ownership": {"RENT", "MORTGAGE", "OWN", "OTHER"},
    "loan_purpose": {
        "debt_consolidation",
        "credit_card",
        "home_improvement",
        "car",
        "medical",
        "small_business",
        "education",
        "other",
    },
    "region": {"north", "south", "east", "west", "central", "coastal", "mountain", "metro"},
}


@pytest.fixture(scope="module")
def book() -> SyntheticLoanBook:
    return generate_loan_book(N_ROWS, seed=0)


@pytest.fixture(scope="module")
def frame(book: SyntheticLoanBook) -> pd.DataFrame:
    return book.frame


def test_same_seed_is_identical_and_other_seed_differs() -> None:
    first, second = generate_loan_book(2_000, seed=7), generate_loan_book(2_000, seed=7)
    pd.testing.assert_frame_equal(first.frame, second.frame)
    np.testing.assert_array_equal(first.default_probability, second.default_probability)

    other = generate_loan_book(2_000, seed=8)
    assert not other.frame.equals(first.frame)
    assert not np.array_equal(other.default_probability, first.default_probability)


@pytest.mark.parametrize("n_rows", [0, -3, 2.5, True, "10"])
def test_invalid_row_count_is_rejected(n_rows: object) -> None:
    with pytest.raises(ValueError, match="n_rows"):
        generate_loan_book(n_rows)  # type: ignore[arg-type]


def test_single_row_book() -> None:
    single = generate_loan_book(1, seed=0)
    assert len(single.frame) == 1
    assert single.default_probability.shape == (1,)


def test_columns_and_dtypes(frame: pd.DataFrame) -> None:
    expected = {ID_COLUMN, TARGET_COLUMN, *INT_COLUMNS, *FLOAT_COLUMNS, *CATEGORICAL_COLUMNS}
    assert set(frame.columns) == expected
    assert len(frame.columns) == len(expected)
    assert set(CATEGORICAL_COLUMNS) == set(CATEGORIES)
    for column in [ID_COLUMN, TARGET_COLUMN, *INT_COLUMNS]:
        assert pd.api.types.is_integer_dtype(frame[column]), column
    for column in FLOAT_COLUMNS:
        assert pd.api.types.is_float_dtype(frame[column]), column
    for column, allowed in CATEGORIES.items():
        assert pd.api.types.is_string_dtype(frame[column]), column
        observed = set(frame[column].dropna())
        assert observed == allowed, column


def test_ids_are_unique_and_sequential(frame: pd.DataFrame) -> None:
    assert frame[ID_COLUMN].is_unique
    np.testing.assert_array_equal(frame[ID_COLUMN], np.arange(1, N_ROWS + 1))


def test_value_ranges(frame: pd.DataFrame) -> None:
    assert frame["age"].between(18, 80).all()
    assert set(frame["term_months"]) == {36, 60}
    assert (frame["annual_income"].dropna() > 0).all()
    assert frame["loan_amount"].between(1_000, 40_000).all()
    assert frame["interest_rate"].between(5, 31).all()
    assert frame["revolving_utilization"].dropna().between(0, 1.5).all()
    assert (frame["revolving_utilization"] > 1.0).any()
    assert (frame["debt_to_income"].dropna() >= 0).all()
    assert (frame["open_accounts"] >= 0).all()
    assert (frame["delinquencies_2y"] >= 0).all()
    assert (frame["delinquencies_2y"] == 0).mean() > 0.75
    adult_years = frame["age"] - 18
    assert (frame["credit_history_years"] <= adult_years + 0.1).all()
    tenure = frame["employment_length_years"]
    assert tenure.dropna().between(0, 70).all()
    assert (tenure <= adult_years)[tenure.notna()].all()


def test_missing_values_where_documented(frame: pd.DataFrame) -> None:
    missing = frame.isna().mean()
    for column in ["annual_income", "revolving_utilization", "debt_to_income"]:
        assert 0.005 < missing[column] < 0.1, column
    assert 0.003 < missing["home_ownership"] < 0.03
    no_job = frame["employment_status"].isin(["unemployed", "student"])
    assert frame.loc[no_job, "employment_length_years"].isna().all()
    assert 0.005 < frame.loc[~no_job, "employment_length_years"].isna().mean() < 0.1
    with_nans = {
        "annual_income",
        "employment_length_years",
        "revolving_utilization",
        "debt_to_income",
        "home_ownership",
    }
    assert (missing.drop(list(with_nans)) == 0).all()


def test_feature_dependencies(frame: pd.DataFrame) -> None:
    income = frame.groupby("employment_status")["annual_income"].median()
    assert income["employed"] > income["unemployed"] and income["employed"] > income["student"]
    ages = frame.groupby("employment_status")["age"].mean()
    assert ages["student"] < ages["employed"] < ages["retired"]
    delinquent = frame["delinquencies_2y"] > 0
    rate = frame["interest_rate"]
    assert rate[delinquent].mean() > rate[~delinquent].mean() + 1.0
    assert (
        np.corrcoef(
            rate[frame["revolving_utilization"].notna()], frame["revolving_utilization"].dropna()
        )[0, 1]
        > 0.3
    )


def test_target_rate(frame: pd.DataFrame) -> None:
    assert set(frame[TARGET_COLUMN].unique()) == {0, 1}
    assert 0.15 <= frame[TARGET_COLUMN].mean() <= 0.22


def test_probabilities_are_valid_and_calibrated(book: SyntheticLoanBook) -> None:
    probability, target = book.default_probability, book.frame[TARGET_COLUMN].to_numpy()
    assert probability.shape == (N_ROWS,) and probability.dtype == np.float64
    assert ((probability > 0) & (probability < 1)).all()
    bins = pd.qcut(probability, 10, labels=False)
    for b in range(10):
        in_bin = bins == b
        expected = probability[in_bin].mean()
        tolerance = 4 * np.sqrt(expected * (1 - expected) / in_bin.sum()) + 0.005
        assert abs(target[in_bin].mean() - expected) < tolerance, b


def test_documented_nonlinear_effects(frame: pd.DataFrame, book: SyntheticLoanBook) -> None:
    probability = pd.Series(book.default_probability)
    dti = frame["debt_to_income"]
    below, above = dti.between(0.40, 0.43), dti.between(0.431, 0.46)
    assert probability[above].mean() - probability[below].mean() > 0.08
    assert probability[frame["annual_income"].isna()].mean() > probability.mean()
    by_age = probability.groupby(pd.cut(frame["age"], [17, 25, 40, 55, 80])).mean()
    assert by_age.iloc[0] > by_age.iloc[2] < by_age.iloc[3]  # U-shape in age


def test_bayes_auc_beats_logistic_regression(book: SyntheticLoanBook) -> None:
    frame = book.frame
    target = frame[TARGET_COLUMN].to_numpy()
    features = frame.drop(columns=[ID_COLUMN, TARGET_COLUMN])
    numeric = [column for column in features if column not in CATEGORICAL_COLUMNS]
    model = make_pipeline(
        ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    numeric,
                ),
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    list(CATEGORICAL_COLUMNS),
                ),
            ]
        ),
        LogisticRegression(max_iter=1_000),
    )
    half = N_ROWS // 2
    model.fit(features.iloc[:half], target[:half])
    logistic_auc = roc_auc_score(target[half:], model.predict_proba(features.iloc[half:])[:, 1])
    bayes_auc = roc_auc_score(target[half:], book.default_probability[half:])
    assert 0.80 <= bayes_auc <= 0.88
    assert bayes_auc - logistic_auc >= 0.01
