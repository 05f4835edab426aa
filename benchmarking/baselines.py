"""The benchmark protocol's baselines: the models a user would otherwise pick.

Each is fitted on the training rows, with early stopping (where the model has it) on the
protocol's validation rows, and predicts P(default). All of them read one feature frame:
the schema's numeric columns as float64 (NaN for missing) and its categorical columns as
pandas `category` columns whose levels are the training rows' levels, so a level that
training never showed becomes missing rather than an error.

Categorical handling: logistic regression one-hot encodes (missing is its own column,
an unseen level is all zeros); LightGBM, XGBoost and HistGradientBoosting use their native
categorical splits, read from the `category` dtype, and route missing values natively.

LightGBM and XGBoost come from the optional `benchmark` extra; without it their fitting
raises `MissingExtraError` naming the install command.

`threads` caps each library's thread pool (None keeps the library's default, all cores):
a fixed count keeps the cost columns comparable between models and machines.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

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

# The protocol's boosting budget for LightGBM and XGBoost.
MAX_TREES = 2_000
LEARNING_RATE = 0.05
EARLY_STOPPING_ROUNDS = 100
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


@dataclass(frozen=True)
class Fitted:
    """A fitted baseline.

    iterations: passes the fit made over the training rows: boosting rounds actually run
    (including the early-stopping patience past the best round), or solver iterations.
    """

    model: Any
    iterations: int

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Shape: features (n, n_features) -> (n,) P(default)."""
        return np.asarray(self.model.predict_proba(features)[:, 1], dtype=np.float64)


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


def fit_lightgbm(data: BaselineInputs) -> Fitted:
    """LightGBM defaults, 2,000 trees at 0.05, stopped after 100 rounds without a better
    validation log-loss; predictions use the best round."""
    lightgbm = _require("lightgbm")
    model = lightgbm.LGBMClassifier(
        n_estimators=MAX_TREES,
        learning_rate=LEARNING_RATE,
        random_state=data.seed,
        n_jobs=data.threads,
        verbose=-1,
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
    stopping on the protocol's validation rows passed explicitly, not an internal split."""
    model = HistGradientBoostingClassifier(early_stopping=True, random_state=data.seed)
    try:
        with threadpool_limits(data.threads):
            model.fit(data.x_train, data.y_train, X_val=data.x_val, y_val=data.y_val)
    except TypeError as error:
        if "X_val" not in str(error):
            raise
        raise RuntimeError(
            "HistGradientBoostingClassifier.fit has no X_val: scikit-learn >= 1.7 is needed "
            "to early-stop on the protocol's validation rows"
        ) from error
    return Fitted(model, int(model.n_iter_))


BASELINES: dict[str, Callable[[BaselineInputs], Fitted]] = {
    "logreg": fit_logreg,
    "lightgbm": fit_lightgbm,
    "xgboost": fit_xgboost,
    "hgb": fit_hgb,
}


def _categorical_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)]


def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise MissingExtraError(f"{package} is not installed: {INSTALL_HINT}") from error
