"""Dataset profiling for the EDA report: the numbers only, rendered by `analysis/report.py`.

The input is the data module's own `labelled_table()` and `schema`, so the profile
describes exactly the rows, columns and roles the model trains on (no second loader,
no second guess at which columns are categorical).

Which rows: by default every labelled row (train, validation and test together),
because the report describes the data set, the way its publisher's figures do. Looking
at target rates and feature rankings of all rows does peek at the test split;
`rows="train"` profiles the protocol's training split only, for an analyst who will
make modelling choices (feature drops, sentinel handling) from what the report shows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import mutual_info_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from contracts.choices import check_choice
from datamodules.loan_datamodule import LabelledTable
from datamodules.preprocessing import category_strings
from datamodules.schema import TableSchema
from datamodules.validation import looks_like_dates, looks_like_identifier

RowSelection = Literal["all", "train"]
Role = Literal["target", "id", "dropped", "numeric", "categorical"]
FindingKind = Literal[
    "constant",
    "duplicate",
    "identifier",
    "dates",
    "leak",
    "sentinel",
    "outlier",
    "cardinality",
    "missing",
    "imbalance",
]

MISSING_LEVEL = "<missing>"
QUANTILES = {"min": 0, "p01": 1, "p25": 25, "median": 50, "p75": 75, "p99": 99, "max": 100}
HISTOGRAM_BINS = 30
TOP_LEVELS = 15
MI_BINS = 20
OUT_OF_FOLD_SPLITS = 5  # folds of the categoricals' out-of-fold default rates
CONFIDENCE = 0.95
# Thresholds of the warnings; each one's message states the figure that crossed it.
NEAR_DUPLICATE_RHO = 0.98
ALMOST_CONSTANT_SHARE = 0.995
MIN_SHARED_ROWS = 30  # rows two numeric columns must share to be called near-duplicates
LEAK_AUC = 0.6
NEAR_PERFECT_AUC = 0.98
HIGH_CARDINALITY = 50
RARE_LEVEL_COUNT = 10
MOSTLY_MISSING = 0.5
IMBALANCE = 0.1
OUTLIER_SPANS = 3.0
# Codes that files use for "not applicable / refused / no record" in numeric columns:
# negative ones (FICO's -7/-8/-9) are codes when the column is otherwise non-negative;
# all-nines ones (96/98 in Give Me Some Credit) when they sit far above every other value.
NEGATIVE_SENTINELS = (-9.0, -8.0, -7.0, -99.0, -999.0, -9999.0)
POSITIVE_SENTINELS = tuple(float(10**k - j) for k in range(2, 10) for j in (1, 2, 3, 4))
SENTINEL_GAP = 2.0


@dataclass(frozen=True)
class ColumnInfo:
    """One column of the file as the schema sees it. `missing` counts what the model sees as
    missing (for numeric columns, after text coercion)."""

    name: str
    role: Role
    dtype: str
    missing: int
    distinct: int


@dataclass(frozen=True)
class NumericDistribution:
    """A numeric feature's summary and its histogram per class.

    `counts` is (2, bins): row 0 non-defaulters, row 1 defaulters. The histogram spans the
    1st to 99th percentile; the `clipped` values outside are counted in the end bins, so
    each row of `counts` sums to that class's present values.
    """

    name: str
    quantiles: dict[str, float]
    mean: float
    std: float
    mean_by_class: tuple[float, float]
    edges: np.ndarray
    counts: np.ndarray
    clipped: int


@dataclass(frozen=True)
class LevelRates:
    """Default rate per level of one categorical, with Wilson confidence intervals.

    Levels: the `TOP_LEVELS` most frequent, then the rest pooled as "<other: N levels>",
    then `<missing>` when any value is missing.
    """

    column: str
    levels: tuple[str, ...]
    counts: np.ndarray
    defaults: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_levels: int

    @property
    def rates(self) -> np.ndarray:
        return self.defaults / np.maximum(self.counts, 1)


@dataclass(frozen=True)
class FeatureSignal:
    """How well one feature alone separates defaulters.

    roc_auc is NaN for a column with no value or a categorical of a single level; numeric
    features are scored direction-agnostic (max(AUC, 1 - AUC)) by their raw value on rows
    where present, categoricals by their levels' default rates computed out of fold
    (`out_of_fold_level_rates`: about 0.5, or a little below, without signal). Mutual
    information (bits) bins numeric values by quantile and keeps missing as its own bin; a
    categorical's is in-sample, so it grows with the number of levels whatever they hold.
    """

    name: str
    role: Role
    roc_auc: float
    direction: str
    mutual_information: float
    coverage: float


@dataclass(frozen=True)
class Finding:
    """Something in the data that will hurt a model, with what to do about it."""

    kind: FindingKind
    columns: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class DatasetProfile:
    """Everything the EDA report shows. `split_balance`: split -> (rows, positives)."""

    source: str
    rows_used: RowSelection
    n_rows: int
    target: str
    positive_label: str
    positives: int
    split_balance: dict[str, tuple[int, int]]
    duplicate_rows: int
    columns: tuple[ColumnInfo, ...]
    numeric: tuple[NumericDistribution, ...]
    categorical: tuple[LevelRates, ...]
    spearman: pd.DataFrame
    signals: tuple[FeatureSignal, ...]
    findings: tuple[Finding, ...]

    @property
    def positive_rate(self) -> float:
        return self.positives / self.n_rows


def profile_dataset(
    table: LabelledTable, schema: TableSchema, *, source: str, rows: RowSelection = "all"
) -> DatasetProfile:
    """Profile the labelled table (all rows, or the training split only)."""
    check_choice("rows", rows, RowSelection)
    selected = np.arange(len(table.frame)) if rows == "all" else table.split.train
    frame = table.frame.iloc[selected]
    numeric = table.numeric[selected]
    targets = table.targets[selected]
    splits = ("train", "val", "test") if rows == "all" else ("train",)
    split_balance = {
        name: (len(idx), int(table.targets[idx].sum()))
        for name in splits
        for idx in [getattr(table.split, name)]
    }

    numeric_names = list(schema.numeric_columns)
    categorical_text = {
        name: category_strings(frame[name]).to_numpy(dtype=object)
        for name in schema.categorical_columns
    }
    columns = _column_infos(frame, numeric, schema)
    features = {**dict(zip(numeric_names, numeric.T, strict=True)), **categorical_text}
    constant = [
        info.name for info in columns if info.name in features and _is_constant(features[info.name])
    ]
    training_frame = table.frame.iloc[table.split.train]
    sentinels = {
        name: codes
        for name, values in zip(numeric_names, numeric.T, strict=True)
        if (codes := sentinel_codes(values))
    }
    distributions = tuple(
        _distribution(name, values, targets)
        for name, values in zip(numeric_names, numeric.T, strict=True)
    )
    levels = tuple(
        level_rates(name, text, targets, top=TOP_LEVELS) for name, text in categorical_text.items()
    )
    # Two rows where both columns hold a value always correlate at +-1: a pair is compared
    # on enough shared rows or not at all.
    spearman = pd.DataFrame(numeric, columns=numeric_names).corr(
        method="spearman", min_periods=MIN_SHARED_ROWS
    )
    signals = tuple(
        sorted(
            [
                *(
                    _numeric_signal(name, values, targets)
                    for name, values in zip(numeric_names, numeric.T, strict=True)
                ),
                *(
                    _categorical_signal(name, text, targets)
                    for name, text in categorical_text.items()
                ),
            ],
            key=lambda signal: -np.nan_to_num(signal.roc_auc, nan=0.0),
        )
    )
    feature_columns = list(schema.feature_columns)
    duplicate_rows = int(frame[[*feature_columns, schema.target]].duplicated().sum())
    identifier_findings = _identifier_findings(frame, targets, schema, columns)
    # A feature that is an id in outcome order is a leak once, in the id's words.
    ordered_ids = {f.columns for f in identifier_findings if f.kind == "leak"}
    findings = (
        *_target_findings(targets),
        *(_constant_finding(name, features[name], training_frame[name]) for name in constant),
        *_column_findings(frame, columns, constant),
        *_duplicate_findings(spearman, categorical_text, constant),
        *identifier_findings,
        *(
            _leak_finding(signal)
            for signal in signals
            if signal.roc_auc >= NEAR_PERFECT_AUC and (signal.name,) not in ordered_ids
        ),
        *(
            _sentinel_finding(name, values, targets, sentinels[name])
            for name, values in zip(numeric_names, numeric.T, strict=True)
            if name in sentinels
        ),
        *_outlier_findings(numeric_names, numeric, sentinels),
        *(_cardinality_finding(rates) for rates in levels if rates.n_levels > HIGH_CARDINALITY),
    )
    if duplicate_rows:
        findings = (
            *findings,
            Finding(
                "duplicate",
                (),
                f"{duplicate_rows} rows repeat an earlier row exactly (features and target); "
                "after a random split the same applicant can sit in train and test.",
            ),
        )
    return DatasetProfile(
        source=source,
        rows_used=rows,
        n_rows=len(frame),
        target=schema.target,
        positive_label=schema.positive_label,
        positives=int(targets.sum()),
        split_balance=split_balance,
        duplicate_rows=duplicate_rows,
        columns=columns,
        numeric=distributions,
        categorical=levels,
        spearman=spearman,
        signals=signals,
        findings=findings,
    )


def wilson_interval(
    successes: np.ndarray, trials: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial rate; unlike p ± z·se it stays in [0, 1] and
    keeps a sensible width for rare levels with 0 or all defaults."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n = np.maximum(np.asarray(trials, dtype=np.float64), 1.0)
    p = np.asarray(successes, dtype=np.float64) / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    # The interval holds the rate exactly; in floating point a bound can miss a rate of 0
    # or 1 by 1e-16 (42 defaults of 42), which a figure's error bar cannot draw.
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    return np.minimum(low, p), np.maximum(high, p)


def level_rates(column: str, text: np.ndarray, targets: np.ndarray, *, top: int) -> LevelRates:
    """Counts, defaults and Wilson intervals per level (`text`: category strings, None missing)."""
    missing = pd.isna(text)
    present = pd.DataFrame({"level": text[~missing], "y": targets[~missing]})
    grouped = present.groupby("level", sort=False)["y"].agg(["size", "sum"])
    grouped = grouped.sort_values("size", ascending=False, kind="stable")
    kept, rest = grouped.iloc[:top], grouped.iloc[top:]
    labels = [str(level) for level in kept.index]
    counts = [*kept["size"].tolist()]
    defaults = [*kept["sum"].tolist()]
    if len(rest):
        labels.append(f"<other: {len(rest)} levels>")
        counts.append(int(rest["size"].sum()))
        defaults.append(int(rest["sum"].sum()))
    if missing.any():
        labels.append(MISSING_LEVEL)
        counts.append(int(missing.sum()))
        defaults.append(int(targets[missing].sum()))
    count_array = np.asarray(counts, dtype=np.int64)
    default_array = np.asarray(defaults, dtype=np.int64)
    low, high = wilson_interval(default_array, count_array)
    return LevelRates(column, tuple(labels), count_array, default_array, low, high, len(grouped))


def sentinel_codes(values: np.ndarray) -> dict[float, int]:
    """Special codes in a numeric column and how often each occurs (empty when none).

    A negative code counts only when every other value is non-negative, an all-nines
    code only when it is more than `SENTINEL_GAP` times every other value: an age
    column with a few 96-year-olds has no sentinel, a past-due count with 96/98 does.
    """
    present = values[~np.isnan(values)]
    candidates = np.asarray(NEGATIVE_SENTINELS + POSITIVE_SENTINELS)
    is_candidate = np.isin(present, candidates)
    rest = present[~is_candidate]
    if not is_candidate.any() or not len(rest):
        return {}
    codes, counts = np.unique(present[is_candidate], return_counts=True)
    found = {}
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        is_negative_code = code < 0 and rest.min() >= 0
        is_nines_code = code > 0 and rest.max() > 0 and code > SENTINEL_GAP * rest.max()
        if is_negative_code or is_nines_code:
            found[code] = count
    return found


def _column_infos(
    frame: pd.DataFrame, numeric: np.ndarray, schema: TableSchema
) -> tuple[ColumnInfo, ...]:
    numeric_missing = dict(
        zip(schema.numeric_columns, np.isnan(numeric).sum(axis=0).tolist(), strict=True)
    )
    roles: dict[str, Role] = {name: "numeric" for name in schema.numeric_columns}
    roles |= {name: "categorical" for name in schema.categorical_columns}
    roles[schema.target] = "target"
    if schema.id_column:
        roles[schema.id_column] = "id"
    return tuple(
        ColumnInfo(
            name=name,
            role=roles.get(name, "dropped"),
            dtype=str(frame[name].dtype),
            missing=int(numeric_missing.get(name, frame[name].isna().sum())),
            distinct=int(frame[name].nunique()),
        )
        for name in frame.columns
    )


def _distribution(name: str, values: np.ndarray, targets: np.ndarray) -> NumericDistribution:
    present = ~np.isnan(values)
    x, y = values[present], targets[present]
    if not len(x):
        nan = float("nan")
        return NumericDistribution(
            name,
            dict.fromkeys(QUANTILES, nan),
            nan,
            nan,
            (nan, nan),
            np.array([0.0, 1.0]),
            np.zeros((2, 1), dtype=np.int64),
            0,
        )
    quantiles = dict(zip(QUANTILES, np.percentile(x, list(QUANTILES.values())), strict=True))
    edges = _histogram_edges(x, quantiles)
    folded = np.clip(x, edges[0], edges[-1])
    counts = np.stack([np.histogram(folded[y == label], bins=edges)[0] for label in (0, 1)])
    class_means = [
        float(x[y == label].mean()) if (y == label).any() else np.nan for label in (0, 1)
    ]
    return NumericDistribution(
        name=name,
        quantiles={key: float(value) for key, value in quantiles.items()},
        mean=float(x.mean()),
        std=float(x.std()),
        mean_by_class=(class_means[0], class_means[1]),
        edges=edges,
        counts=counts,
        clipped=int(((x < edges[0]) | (x > edges[-1])).sum()),
    )


def _histogram_edges(x: np.ndarray, quantiles: dict[str, float]) -> np.ndarray:
    """1st-99th percentile range (full range if that is one point); one bin per value for
    integer columns with few values, so counts such as dependants read as bars."""
    low, high = quantiles["p01"], quantiles["p99"]
    if low == high:
        low, high = quantiles["min"], quantiles["max"]
    if bool(np.all(np.mod(x, 1.0) == 0.0)) and high - low <= HISTOGRAM_BINS:
        return np.arange(low - 0.5, high + 1.5)
    if low == high:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, HISTOGRAM_BINS + 1)


def _auc(targets: np.ndarray, scores: np.ndarray) -> float:
    if len(np.unique(targets)) < 2:
        return float("nan")
    return float(roc_auc_score(targets, scores))


def _numeric_signal(name: str, values: np.ndarray, targets: np.ndarray) -> FeatureSignal:
    present = ~np.isnan(values)
    auc = _auc(targets[present], values[present])
    edges = (
        np.unique(np.nanquantile(values, np.linspace(0, 1, MI_BINS + 1))) if present.any() else []
    )
    bins = np.where(present, np.searchsorted(edges[1:-1], values, side="right"), -1)
    direction = "higher → more defaults" if auc >= 0.5 else "lower → more defaults"
    return FeatureSignal(
        name=name,
        role="numeric",
        roc_auc=max(auc, 1 - auc) if not np.isnan(auc) else auc,
        direction=direction if not np.isnan(auc) else "n/a",
        mutual_information=float(mutual_info_score(targets, bins) / np.log(2)),
        coverage=float(present.mean()),
    )


def _categorical_signal(name: str, text: np.ndarray, targets: np.ndarray) -> FeatureSignal:
    codes, _ = pd.factorize(text, use_na_sentinel=False)
    return FeatureSignal(
        name=name,
        role="categorical",
        # One level (missing included) ranks nothing: no score, as for an empty column.
        roc_auc=_auc(targets, out_of_fold_level_rates(codes, targets)) if codes.any() else np.nan,
        direction="by level",
        mutual_information=float(mutual_info_score(targets, codes) / np.log(2)),
        coverage=float(1 - pd.isna(text).mean()),
    )


def out_of_fold_level_rates(codes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each row's level default rate from the other folds' rows (scikit-learn's
    `TargetEncoder`, cross-fitted and shrunk toward the overall rate).

    A rate that counts a row's own outcome ranks the outcome by itself wherever levels hold
    few rows: in-sample, a column of 373 random levels ranked first on a 1,000-row file.
    Out of fold, a level seen in no other fold scores the overall rate, so such a column
    scores about 0.5 and only levels that repeat their default rate across folds count.
    """
    smallest_class = int(min(targets.sum(), len(targets) - targets.sum()))
    if smallest_class < 2:
        return np.full(len(targets), targets.mean() if len(targets) else np.nan)
    folds = StratifiedKFold(min(OUT_OF_FOLD_SPLITS, smallest_class), shuffle=True, random_state=0)
    encoder = TargetEncoder(target_type="binary", cv=folds)
    return encoder.fit_transform(codes.reshape(-1, 1), targets)[:, 0]


def _target_findings(targets: np.ndarray) -> list[Finding]:
    rate = float(targets.mean())
    if IMBALANCE <= rate <= 1 - IMBALANCE:
        return []
    majority = max(rate, 1 - rate)
    return [
        Finding(
            "imbalance",
            (),
            f"only {min(rate, 1 - rate):.1%} of rows are in the minority class: always "
            f"predicting the majority already scores accuracy {majority:.3f}; judge models by "
            "ROC-AUC or PR-AUC.",
        )
    ]


def _is_constant(values: np.ndarray) -> bool:
    """Whether a feature has at most one distinct present value, missing cells aside.

    `values` are as the model reads them (numbers after text coercion, categories as
    `category_strings`), so "5" and "5.0", or "NL" and " NL", are one value. A column that
    holds one value wherever present is constant even with missing cells: its missingness
    is then all it tells, and `_constant_finding` says so. An entirely missing column is
    constant too (no value at all).
    """
    return len(pd.unique(values[~pd.isna(values)])) <= 1


def _constant_finding(name: str, values: np.ndarray, training_column: pd.Series) -> Finding:
    """The one warning of a constant column, saying what training does with it.

    Training keeps it: `check_training_columns` only logs a warning for a single-level
    categorical, and the preprocessor imputes a constant numeric and scales it to a
    constant. A constant with missing cells still feeds the model whether it is missing
    (the numeric's missing indicator, the categorical's missing code). Training stops only
    on a feature entirely missing in the training rows (judged on the file's cells, as
    `check_training_columns` does), which a constant column can be.
    """
    missing = pd.isna(values)
    present = pd.unique(values[~missing])
    if not len(present):
        held = f"{name!r} is missing in every row"
    elif missing.any():
        held = (
            f"{name!r} is constant apart from missing cells ({_value_text(present[0])} wherever "
            f"present, missing in {missing.mean():.1%} of rows)"
        )
    else:
        held = f"{name!r} is constant ({_value_text(present[0])} in every row)"
    if training_column.isna().all():
        verdict = "training stops on it (it is entirely missing in the training rows); drop it"
    elif len(present) and missing.any():
        verdict = (
            "training keeps it, and whether it is missing is all the model can learn from it; "
            "unless that matters, drop it"
        )
    else:
        verdict = "training keeps it (it carries no signal); drop it"
    return Finding("constant", (name,), f"{held}: {verdict} with --data.drop_columns.")


def _value_text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else repr(value)


def _column_findings(
    frame: pd.DataFrame, columns: tuple[ColumnInfo, ...], constant: Collection[str]
) -> list[Finding]:
    """Almost-constant and mostly-missing features; constant ones have their own warning."""
    findings = []
    for info in columns:
        if info.role not in ("numeric", "categorical") or info.name in constant:
            continue
        # One value, not the missing cells, that fills the column (those have their own
        # finding below).
        counts = frame[info.name].value_counts(dropna=True)
        top_share = float(counts.iloc[0]) / len(frame) if len(counts) else 0.0
        if top_share >= ALMOST_CONSTANT_SHARE:
            findings.append(
                Finding(
                    "constant",
                    (info.name,),
                    f"{info.name!r} is almost constant: one value fills {top_share:.2%} of rows.",
                )
            )
        missing_share = info.missing / len(frame)
        if missing_share >= MOSTLY_MISSING:
            findings.append(
                Finding(
                    "missing",
                    (info.name,),
                    f"{info.name!r} is missing in {missing_share:.1%} of rows; its missing "
                    "indicator may say more than its values.",
                )
            )
    return findings


def _duplicate_findings(
    spearman: pd.DataFrame, categorical_text: dict[str, np.ndarray], constant: Collection[str]
) -> list[Finding]:
    """Pairs of features that say the same thing, constant features left out.

    Any two constant categoricals "group rows identically" (N of them gave N(N-1)/2
    warnings on top of their own), a constant numeric has no rank correlation, and each
    constant already has its warning.
    """
    numeric = [name for name in spearman.columns if name not in constant]
    categorical = {name: text for name, text in categorical_text.items() if name not in constant}
    return [
        *_numeric_duplicates(spearman.loc[numeric, numeric]),
        *_categorical_duplicates(categorical),
    ]


def _numeric_duplicates(spearman: pd.DataFrame) -> list[Finding]:
    findings = []
    names = list(spearman.columns)
    rho = spearman.to_numpy()
    for i, j in zip(*np.triu_indices(len(names), k=1), strict=True):
        if abs(rho[i, j]) >= NEAR_DUPLICATE_RHO:
            findings.append(
                Finding(
                    "duplicate",
                    (names[i], names[j]),
                    f"{names[i]!r} and {names[j]!r} are near-duplicates (Spearman "
                    f"{rho[i, j]:+.3f}); one of them adds almost nothing.",
                )
            )
    return findings


def _categorical_duplicates(categorical_text: dict[str, np.ndarray]) -> list[Finding]:
    """Pairs whose levels map one-to-one (missing counted as a level)."""
    findings = []
    codes = {
        name: pd.factorize(text, use_na_sentinel=False)[0]
        for name, text in categorical_text.items()
    }
    categorical = list(codes)
    for i, first in enumerate(categorical):
        for second in categorical[i + 1 :]:
            a, b = codes[first], codes[second]
            if a.max() == b.max() and len(np.unique(a * (b.max() + 1) + b)) == a.max() + 1:
                findings.append(
                    Finding(
                        "duplicate",
                        (first, second),
                        f"{first!r} and {second!r} hold the same grouping of rows under "
                        "different labels; keep one.",
                    )
                )
    return findings


def _identifier_findings(
    frame: pd.DataFrame, targets: np.ndarray, schema: TableSchema, columns: tuple[ColumnInfo, ...]
) -> list[Finding]:
    findings = []
    n_rows = len(frame)
    identifiers = []
    for info in columns:
        is_feature = info.role in ("numeric", "categorical")
        column = frame[info.name]
        if info.role == "numeric" and not pd.api.types.is_numeric_dtype(column):
            # Read as text, coerced to numbers for training (`coerce_numeric`): judged as
            # the numbers it trains on, whose few text cells are gaps.
            column = pd.to_numeric(column, errors="coerce")
        dates = is_feature and looks_like_dates(column)
        identifier = is_feature and not dates and looks_like_identifier(column)
        if dates:
            findings.append(
                Finding(
                    "dates",
                    (info.name,),
                    f"{info.name!r} holds dates (e.g. {column.dropna().iloc[0]!r}): read as a "
                    "categorical, every later date is an unknown level; derive numbers from it "
                    "(days since, month).",
                )
            )
        if info.role == "id" or identifier:
            identifiers.append(info.name)
        if identifier:
            findings.append(
                Finding(
                    "identifier",
                    (info.name,),
                    f"{info.name!r} looks like an identifier ({info.distinct} distinct values in "
                    f"{n_rows} rows) but is a feature: the model can memorise rows through it; "
                    "set it as --data.id_column or drop it.",
                )
            )
    for name in identifiers:
        # An id column is read as text (as written); numbers written as text still rank.
        column = pd.to_numeric(frame[name], errors="coerce")
        if column.isna().any():
            continue
        auc = _auc(targets, column.to_numpy(dtype=np.float64))
        if max(auc, 1 - auc) >= LEAK_AUC:
            findings.append(
                Finding(
                    "leak",
                    (name,),
                    f"identifier {name!r} separates defaulters (ROC-AUC {max(auc, 1 - auc):.3f}): "
                    "ids were assigned in an order tied to the outcome; never use it as a feature.",
                )
            )
    order_auc = _auc(targets, np.arange(n_rows, dtype=np.float64))
    if max(order_auc, 1 - order_auc) >= LEAK_AUC:
        findings.append(
            Finding(
                "leak",
                (),
                f"the file's row order separates defaulters (ROC-AUC "
                f"{max(order_auc, 1 - order_auc):.3f}): rows are sorted by something tied to "
                "the outcome (date, status); a random split hides the drift a time split shows.",
            )
        )
    return findings


def _leak_finding(signal: FeatureSignal) -> Finding:
    return Finding(
        "leak",
        (signal.name,),
        f"{signal.name!r} alone separates defaulters almost perfectly (ROC-AUC "
        f"{signal.roc_auc:.3f}): check it is not recorded after the outcome.",
    )


def _sentinel_finding(
    name: str, values: np.ndarray, targets: np.ndarray, codes: dict[float, int]
) -> Finding:
    # Each code's own rate: codes such as -9 (refused) and -8 (not asked) can mean
    # different things, so one pooled rate would hide what sets them apart.
    described = ", ".join(
        f"{code:g} ({count} rows, {targets[values == code].mean():.1%} defaulted)"
        for code, count in codes.items()
    )
    elsewhere = ~np.isin(values, list(codes))
    return Finding(
        "sentinel",
        (name,),
        f"{name!r} holds special codes {described}, against {targets[elsewhere].mean():.1%} "
        "elsewhere: they are not magnitudes; turn them into flags (or missing) before scaling.",
    )


def _outlier_findings(
    names: list[str], numeric: np.ndarray, sentinels: dict[str, dict[float, int]]
) -> list[Finding]:
    findings = []
    for name, values in zip(names, numeric.T, strict=True):
        x = values[~np.isnan(values) & ~np.isin(values, list(sentinels.get(name, {})))]
        if not len(x):
            continue
        low, high = np.percentile(x, [1, 99])
        span = high - low
        if span == 0:
            continue
        far = (x < low - OUTLIER_SPANS * span) | (x > high + OUTLIER_SPANS * span)
        if far.any():
            findings.append(
                Finding(
                    "outlier",
                    (name,),
                    f"{name!r} has {int(far.sum())} extreme values (beyond {OUTLIER_SPANS:g} × "
                    f"the 1st-99th percentile range [{low:.4g}, {high:.4g}]; min {x.min():.4g}, "
                    f"max {x.max():.4g}): check them (the default quantile scaling bounds "
                    "their effect on the network; --data.scaling standard would not).",
                )
            )
    return findings


def _cardinality_finding(rates: LevelRates) -> Finding:
    return Finding(
        "cardinality",
        (rates.column,),
        f"{rates.column!r} has {rates.n_levels} levels: rare levels give their embeddings "
        f"little to learn from; pool them into the unknown code (--data.min_level_count "
        f"{RARE_LEVEL_COUNT}).",
    )
