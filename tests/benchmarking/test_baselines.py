"""The protocol's baselines on the synthetic loan book: they learn, early-stop on the rows
they are given, and handle levels that training never showed (or too many levels)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from benchmarking.baselines import (
    BASELINES,
    MAX_TREES,
    BaselineInputs,
    Fitted,
    MissingExtraError,
    RareLevelPooling,
    feature_frame,
    fit_hgb,
)
from tests.helpers.books import baseline_book


@pytest.fixture(scope="module")
def book() -> tuple[pd.DataFrame, np.ndarray, object]:
    return baseline_book(4000)


def _fit(name, book):
    features, targets, split = book
    return BASELINES[name](BaselineInputs.from_split(features, targets, split, seed=0, threads=1))


@pytest.fixture(scope="module")
def fit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The empty working folder every baseline is fitted in, to see whether it writes files."""
    return tmp_path_factory.mktemp("fits")


@pytest.fixture(scope="module")
def fitted(book, fit_folder: Path) -> Callable[[str], Fitted]:
    """Each baseline fitted once on the book (in `fit_folder`), shared by the tests."""
    fits: dict[str, Fitted] = {}

    def fit(name: str) -> Fitted:
        if name not in fits:
            with contextlib.chdir(fit_folder):
                fits[name] = _fit(name, book)
        return fits[name]

    return fit


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
def test_every_baseline_learns_the_synthetic_book(name, book, fitted):
    features, targets, split = book
    model = fitted(name)
    probabilities = model.predict_proba(features.iloc[split.test])

    assert probabilities.shape == (len(split.test),)
    assert np.all((probabilities > 0) & (probabilities < 1))
    assert roc_auc_score(targets[split.test], probabilities) > 0.75
    assert model.iterations >= 1


@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_boosting_stops_early_within_the_protocol_budget(name, fitted):
    # Early stopping ran 100 rounds past the best one and then stopped, far below 2,000.
    assert 100 < fitted(name).iterations < MAX_TREES


def test_hgb_early_stops_on_the_validation_rows_it_is_given(book, fitted):
    features, targets, split = book
    hgb = fitted("hgb")
    model = hgb.model
    val_loss = log_loss(targets[split.val], hgb.predict_proba(features.iloc[split.val]))

    # Its last validation score is the log-loss on exactly our validation rows.
    assert -model.validation_score_[-1] == pytest.approx(val_loss, rel=1e-6)
    assert hgb.iterations == model.n_iter_ < model.max_iter


def test_catboost_stops_early_keeps_its_best_round_and_writes_no_files(fitted, fit_folder):
    catboost = fitted("catboost")
    model = catboost.model

    # 100 rounds past the best one, within CatBoost's default budget of 1,000.
    assert catboost.iterations == model.best_iteration_ + 1 + 100 < 1_000
    assert model.tree_count_ == model.best_iteration_ + 1  # predictions use the best round
    assert list(fit_folder.iterdir()) == []  # no catboost_info/, nor any baseline's file


def test_rare_levels_are_pooled_most_frequent_first_and_ties_by_name():
    # Level "a" 4 times, "b" and "c" 2 times each (a tie), "d" once; room for 3 levels.
    train = pd.DataFrame({"code": pd.Categorical(list("aaaabbccd"))})
    pooling = RareLevelPooling(max_levels=3).fit(train)
    new = pd.DataFrame({"code": pd.Categorical(["a", "c", "d", None], categories=list("abcd"))})

    assert pooling.levels_ == {"code": ["a", "b", "<rare levels>"]}
    pooled = pooling.transform(new)["code"]
    assert pooled.tolist()[:3] == ["a", "<rare levels>", "<rare levels>"]
    assert pd.isna(pooled.iloc[3])  # missing stays missing
    assert RareLevelPooling(max_levels=4).fit(train).levels_ == {}  # within the cap: untouched


def test_hgb_fits_a_column_with_more_levels_than_it_accepts():
    rng = np.random.default_rng(0)
    # 40 frequent levels that carry the signal (60 rows each), then 600 levels seen once:
    # 640 in all, where HistGradientBoosting accepts 255.
    frequent = np.repeat(np.arange(40), 60)
    levels = rng.permutation(np.concatenate([frequent, np.arange(40, 640)]))
    rate = np.where(levels >= 40, 0.4, np.where(levels % 2 == 0, 0.8, 0.1))
    targets = (rng.random(len(levels)) < rate).astype(np.int64)
    features = feature_frame(
        np.empty((len(levels), 0)), [], pd.DataFrame({"merchant": levels}), np.arange(2_000)
    )
    data = BaselineInputs(
        features.iloc[:2_000], targets[:2_000], features.iloc[2_000:], targets[2_000:], seed=0
    )
    fitted = fit_hgb(data)

    assert fitted.model.is_categorical_.tolist() == [True]
    assert roc_auc_score(targets[2_000:], fitted.predict_proba(features.iloc[2_000:])) > 0.75


@pytest.mark.parametrize(
    ("name", "package"),
    [("lightgbm", "lightgbm"), ("xgboost", "xgboost"), ("catboost", "catboost")],
)
def test_missing_optional_library_names_the_install_command(name, package, book, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[benchmark\]"'):
        _fit(name, book)
