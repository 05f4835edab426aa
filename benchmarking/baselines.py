"""The benchmark protocol's baselines: the models a user would otherwise pick.

Each is fitted on the training rows, with early stopping (where the model has it) on the
protocol's validation rows, and predicts P(default). All of them read one feature frame:
the schema's numeric columns as float64 (NaN for missing) and its categorical columns as
pandas `category` columns whose levels are the training rows' levels, so a level that
training never showed becomes missing rather than an error.

Categorical handling: logistic regression one-hot encodes (missing is its own column,
an unseen level is all zeros); LightGBM, XGBoost and HistGradientBoosting use their native
categorical splits, read from the `category` dtype, and route missing values natively.
HistGradientBoosting accepts at most 255 levels per column, so a column with more has its
rarest training levels pooled into one (`RareLevelPooling`); the others keep every level.
CatBoost takes categoricals as text without missing values, so missing (and unseen) is
one more level of its own.

LightGBM, XGBoost and CatBoost come from the optional `benchmark` extra; without it their
fitting raises `MissingExtraError` naming the install command.

`threads` caps each library's thread pool (None keeps the library's default, all cores):
a fixed count keeps the cost columns comparable between models and machines.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from datamodules.preprocessing import category_strings
from datamodules.splits import SplitIndices

# The protocol's boosting budget for LightGBM and XGBoost (CatBoost keeps its own defaults).
MAX_TREES = 2_000
LEARNING_RATE = 0.05
EARLY_STOPPING_ROUNDS = 100
# What a categorical cell becomes where a model needs a name for it rather than a gap.
MISSING_LEVEL = "<missing>"
POOLED_LEVEL = "<rare levels>"
# lbfgs' default of 100 iterations stops short of convergence on some datasets.
LOGREG_MAX_ITER = 1_000
INSTALL_HINT = 'install the benchmark extra: pip install -e ".[benchmark]"'


class MissingExtraError(ImportError):
    """A baseline's library is not installed."""


@dataclass(frozen=True)
class BaselineInputs:
    """What every baseline is fitted on: training rows, the protocol's validation rows for
    early stopping, the run's seed and thread cap."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_val: pd.DataFrame
    y_val: np.ndarray
    seed: int
    threads: int | None = None

    @classmethod
    def from_split(
        cls,
        features: pd.DataFrame,
        targets: np.ndarray,
        split: SplitIndices,
        *,
        seed: int,
        threads: int | None = None,
    ) -> BaselineInputs:
        """The protocol split's training and validation rows of `feature_frame`'s output."""
        return cls(
            features.iloc[split.train],
            targets[split.train],
            features.iloc[split.val],
            targets[split.val],
            seed=seed,
            threads=threads,
        )


def _unchanged(features: pd.DataFrame) -> pd.DataFrame:
    return features


@dataclass(frozen=True)
class Fitted:
    """A fitted baseline.

    iterations: passes the fit made over the training rows: boosting rounds actually run
    (including the early-stopping patience past the best round), or solver iterations.
    prepare: what the model needs done to `feature_frame`'s output before it predicts (the
    same as was done to its training rows).
    """

    model: Any
    iterations: int
    prepare: Callable[[pd.DataFrame], pd.DataFrame] = _unchanged

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Shape: features (n, n_features) -> (n,) P(default)."""
        probabilities = self.model.predict_proba(self.prepare(features))[:, 1]
        return np.asarray(probabilities, dtype=np.float64)


class RareLevelPooling:
    """Pools each categorical column's rarest training levels into one, so that at most
    `max_levels` remain: the most frequent `max_levels - 1` levels and the pooled one.

    For models that cap a column's levels (HistGradientBoosting: 255). Ties in frequency
    are broken by the level's text, so the kept levels depend on the training rows only.
    Columns within the cap, missing values and unseen levels (already missing in
    `feature_frame`'s output) pass through unchanged.
    """

    def __init__(self, max_levels: int) -> None:
        self.max_levels = max_levels

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn, per column over the cap, the levels to keep (`levels_`: kept, then pooled)."""
        self.levels_: dict[str, list[str]] = {}
        for name in _categorical_columns(frame):
            counts = frame[name].value_counts()
            if (counts > 0).sum() <= self.max_levels:
                continue
            by_frequency = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            kept = [level for level, _ in by_frequency[: self.max_levels - 1]]
            self.levels_[name] = [*kept, _free_level(POOLED_LEVEL, kept)]
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with every folded level of a capped column replaced by the pooled one."""
        pooled = frame.copy()
        for name, levels in self.levels_.items():
            text = frame[name].astype(object)
            folded = text.where(text.isin(levels[:-1]) | text.isna(), levels[-1])
            pooled[name] = folded.astype(pd.CategoricalDtype(levels))
        return pooled


def feature_frame(
    numeric: np.ndarray,
    numeric_columns: Sequence[str],
    categorical: pd.DataFrame,
    train_rows: np.ndarray,
) -> pd.DataFrame:
    """All rows as one frame: float64 numerics, then categoricals with training-only levels.

    Levels are written as text the way the network's preprocessor writes them, so a code
    read as 2 in one file and 2.0 in another is one level for every model.
    """
    columns: dict[str, pd.Series] = {
        name: pd.Series(numeric[:, index], index=categorical.index)
        for index, name in enumerate(numeric_columns)
    }
    for name in categorical.columns:
        text = category_strings(categorical[name])
        levels = sorted(text.iloc[train_rows].dropna().unique(), key=str)
        known = text.where(text.isin(levels))
        columns[name] = known.astype(pd.CategoricalDtype(levels))
    return pd.DataFrame(columns).reset_index(drop=True)


def fit_logreg(data: BaselineInputs) -> Fitted:
    """Median imputation and standard scaling of numerics, one-hot categoricals, then L2
    logistic regression with scikit-learn's defaults. No early stopping: validation unused."""
    categorical = _categorical_columns(data.x_train)
    numeric = [name for name in data.x_train.columns if name not in categorical]
    features = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = Pipeline(
        [("features", features), ("logreg", LogisticRegression(max_iter=LOGREG_MAX_ITER))]
    )
    with threadpool_limits(data.threads):
        model.fit(data.x_train, data.y_train)
    return Fitted(model, int(np.max(model["logreg"].n_iter_)))


def fit_lightgbm(data: BaselineInputs, params: Mapping[str, Any] | None = None) -> Fitted:
    """LightGBM defaults, 2,000 trees at 0.05, stopped after 100 rounds without a better
    validation log-loss; predictions use the best round. `params` (a search's values, by
    `LGBMClassifier`'s names) replace any of these settings."""
    lightgbm = _require("lightgbm")
    settings = {"n_estimators": MAX_TREES, "learning_rate": LEARNING_RATE, **(params or {})}
    model = lightgbm.LGBMClassifier(
        **settings, random_state=data.seed, n_jobs=data.threads, verbose=-1
    )
    # LightGBM 4.7 renamed eval_set to eval_X/eval_y and deprecated the old name.
    renamed = "eval_X" in inspect.signature(model.fit).parameters
    validation = (
        {"eval_X": data.x_val, "eval_y": data.y_val}
        if renamed
        else {"eval_set": [(data.x_val, data.y_val)]}
    )
    model.fit(
        data.x_train,
        data.y_train,
        **validation,
        eval_metric="binary_logloss",
        callbacks=[lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    # The booster keeps only the best round's trees; the validation curve has every round run.
    return Fitted(model, len(model.evals_result_["valid_0"]["binary_logloss"]))


def fit_xgboost(data: BaselineInputs) -> Fitted:
    """XGBoost defaults (hist trees), 2,000 trees at 0.05, stopped after 100 rounds without
    a better validation log-loss; predictions use the best round."""
    xgboost = _require("xgboost")
    model = xgboost.XGBClassifier(
        n_estimators=MAX_TREES,
        learning_rate=LEARNING_RATE,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        eval_metric="logloss",
        enable_categorical=True,
        random_state=data.seed,
        n_jobs=data.threads,
    )
    model.fit(data.x_train, data.y_train, eval_set=[(data.x_val, data.y_val)], verbose=False)
    return Fitted(model, int(model.get_booster().num_boosted_rounds()))


def fit_hgb(data: BaselineInputs) -> Fitted:
    """HistGradientBoosting defaults (100 rounds at 0.1, patience 10 on log-loss), early
    stopping on the protocol's validation rows passed explicitly, not an internal split.
    A categorical column with more levels than its `max_bins` (255) has its rarest pooled."""
    model = HistGradientBoostingClassifier(early_stopping=True, random_state=data.seed)
    pooling = RareLevelPooling(model.max_bins).fit(data.x_train)
    x_train, x_val = pooling.transform(data.x_train), pooling.transform(data.x_val)
    try:
        with threadpool_limits(data.threads):
            model.fit(x_train, data.y_train, X_val=x_val, y_val=data.y_val)
    except TypeError as error:
        if "X_val" not in str(error):
            raise
        raise RuntimeError(
            "HistGradientBoostingClassifier.fit has no X_val: scikit-learn >= 1.7 is needed "
            "to early-stop on the protocol's validation rows"
        ) from error
    return Fitted(model, int(model.n_iter_), prepare=pooling.transform)


def fit_catboost(data: BaselineInputs, params: Mapping[str, Any] | None = None) -> Fitted:
    """CatBoost defaults (1,000 rounds, learning rate chosen by CatBoost for the data),
    native categoricals, stopped after 100 rounds without a better validation log-loss;
    predictions use the best round. It writes no files (no `catboost_info/`). `params` (a
    search's values, by `CatBoostClassifier`'s names) are set on top of the defaults."""
    catboost = _require("catboost")
    categorical = _categorical_columns(data.x_train)
    model = catboost.CatBoostClassifier(
        **(params or {}),
        eval_metric="Logloss",
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        use_best_model=True,
        cat_features=categorical,
        random_seed=data.seed,
        thread_count=data.threads,
        logging_level="Silent",
        allow_writing_files=False,
    )
    model.fit(
        catboost_features(data.x_train),
        data.y_train,
        eval_set=(catboost_features(data.x_val), data.y_val),
    )
    # The model keeps only the best round's trees; the validation curve has every round run.
    rounds = len(model.get_evals_result()["validation"]["Logloss"])
    return Fitted(model, rounds, prepare=catboost_features)


def catboost_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text with missing (and unseen) values as one level of their own:
    CatBoost refuses missing categorical values."""
    prepared = frame.copy()
    for name in _categorical_columns(frame):
        text = frame[name].astype(object)
        missing = _free_level(MISSING_LEVEL, frame[name].cat.categories)
        prepared[name] = text.where(text.notna(), missing)
    return prepared


BASELINES: dict[str, Callable[[BaselineInputs], Fitted]] = {
    "logreg": fit_logreg,
    "lightgbm": fit_lightgbm,
    "xgboost": fit_xgboost,
    "hgb": fit_hgb,
    "catboost": fit_catboost,
}
# `<baseline>-bagged`: the baseline fitted once per bagging fold, as the bagged network is.
BAGGED_SUFFIX = "-bagged"
# The baselines a search can tune: their fit takes the trial's values as `params`.
TUNABLE_BASELINES: dict[str, Callable[[BaselineInputs, Mapping[str, Any]], Fitted]] = {
    "lightgbm": fit_lightgbm,
    "catboost": fit_catboost,
}


def bagged_name(model: str) -> str:
    return f"{model}{BAGGED_SUFFIX}"


def unbagged_name(model: str) -> str | None:
    """The baseline a bagged row fits (`lightgbm-bagged` -> `lightgbm`); None if not one."""
    base = model.removesuffix(BAGGED_SUFFIX)
    return base if model.endswith(BAGGED_SUFFIX) and base in BASELINES else None


@dataclass(frozen=True)
class BaggedFitted:
    """One fitted baseline per fold; predictions are the mean of their probabilities."""

    members: tuple[Fitted, ...]

    @property
    def iterations(self) -> int:
        return sum(member.iterations for member in self.members)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Shape: features (n, n_features) -> (n,) P(default)."""
        return np.mean([member.predict_proba(features) for member in self.members], axis=0)


def _categorical_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)]


def _free_level(name: str, levels: Sequence[str] | pd.Index) -> str:
    """`name`, lengthened until no real level has it, so a made-up level never merges with one."""
    taken = {str(level) for level in levels}
    while name in taken:
        name += "_"
    return name


def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise MissingExtraError(f"{package} is not installed: {INSTALL_HINT}") from error
