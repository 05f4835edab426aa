"""Population stability: how far a new file's distribution has moved from training.

Each variable's training distribution is kept on fixed bins: a numeric one on its
training deciles plus a bin for missing values, a categorical one by code (missing,
unknown, then each level), the score on the deciles of a reference set of scores. A new
file is counted on the same bins, and the population stability index

    PSI = sum over bins of (new share - training share) x ln(new share / training share)

says how far it moved; the usual bands are < 0.1 stable, 0.1-0.25 watch, > 0.25 shifted.
A bin empty on one side would make the logarithm infinite, so shares are floored at
`EMPTY_SHARE` (1e-4, one row in 10,000): a bin holding share s on one side only then adds
s x ln(s / 1e-4), e.g. 0.046 for 1 %. Bins empty on both sides add nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd

QUANTILE_LEVELS = np.linspace(0.1, 0.9, 9)  # decile cuts: 10 bins, the field's usual choice
EMPTY_SHARE = 1e-4
WATCH, SHIFTED = 0.1, 0.25
# Below this many scored rows no band is a verdict: with 10 bins, sampling alone gives a
# PSI of about 9/n (a chi-square of 9 degrees of freedom over n), 0.045 at 200 rows, half
# the watch line; more on smaller files, whose empty bins count at the floor share (about
# 1.1 at 20 rows), and a one-row file lands in "shifted" whatever it holds.
MIN_JUDGED_ROWS = 200
TOO_FEW_ROWS = "too few rows"  # the band below MIN_JUDGED_ROWS
Band = Literal["stable", "watch", "shifted", "too few rows"]
Kind = Literal["numeric", "categorical", "score"]


@dataclass(frozen=True)
class BinnedDistribution:
    """A variable's counts on fixed bins, and what each bin holds.

    Shape: counts (n_bins,) int64. Numeric variables (and the score): `cuts` (9,) the
    training deciles, bins "<= c0", "(c0, c1]", ..., "> c8", then "missing". Repeated cuts
    (a heaped value such as 0) leave bins that are empty whatever the data, and keep a
    heap apart from the values above it. Categorical variables: `cuts` None, one bin per
    code. `missing_bin`: the index of the bin of missing values.
    """

    counts: np.ndarray
    labels: tuple[str, ...]
    cuts: np.ndarray | None = None
    missing_bin: int = -1

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.labels):
            raise ValueError(f"{len(self.counts)} counts for {len(self.labels)} bin labels")

    def count(self, values: np.ndarray) -> np.ndarray:
        """New values on these bins: raw numbers (NaN = missing) for a numeric variable,
        codes for a categorical one. Shape: (n,) -> (n_bins,)."""
        if self.cuts is None:
            return np.bincount(np.asarray(values, dtype=np.int64), minlength=len(self.counts))
        return count_on_cuts(values, self.cuts)


def numeric_distribution(values: np.ndarray) -> BinnedDistribution:
    """Training deciles of the present values and the counts on them. Shape: (n,) float."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    # "lower" keeps cuts on observed values, so a heap lands in one bin with its value.
    cuts = (
        np.quantile(present, QUANTILE_LEVELS, method="lower")
        if len(present)
        else np.zeros(len(QUANTILE_LEVELS))
    )
    return BinnedDistribution(count_on_cuts(values, cuts), numeric_labels(cuts), cuts)


def count_on_cuts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts per bin (x <= c0, c0 < x <= c1, ..., x > c_last, missing). Shape: (len(cuts) + 2,)."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    bins = np.searchsorted(cuts, values[~missing], side="left")
    counts = np.bincount(bins, minlength=len(cuts) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def numeric_labels(cuts: np.ndarray) -> tuple[str, ...]:
    edges = [f"{cut:.4g}" for cut in cuts]
    inner = [f"({low}, {high}]" for low, high in pairwise(edges)]
    return (f"<= {edges[0]}", *inner, f"> {edges[-1]}", "missing")


def psi_terms(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Each bin's term of the PSI, shares floored at `EMPTY_SHARE`. Shape: (n_bins,) twice ->
    (n_bins,)."""
    expected_share = _shares(expected)
    actual_share = _shares(actual)
    return (actual_share - expected_share) * np.log(actual_share / expected_share)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of counts `actual` against counts `expected`."""
    return float(psi_terms(expected, actual).sum())


def psi_band(value: float) -> Band:
    if value < WATCH:
        return "stable"
    return "watch" if value <= SHIFTED else "shifted"


def stability_table(
    reference: Mapping[str, BinnedDistribution],
    current: Mapping[str, np.ndarray],
    kinds: Mapping[str, Kind],
    *,
    first: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per variable: its PSI, band and the bin that moved most (its shares in
    training and in the new file). The variables in `first` (the score) lead, the others
    follow sorted by PSI, the most shifted first."""
    rows = [_row(name, reference[name], current[name], kinds[name]) for name in reference]
    table = pd.DataFrame(rows)
    leading = table["variable"].isin(list(first))
    return pd.concat(
        [table[leading], table[~leading].sort_values("psi", ascending=False, kind="stable")],
        ignore_index=True,
    )


def distribution_summary(
    reference: Mapping[str, BinnedDistribution], kinds: Mapping[str, Kind]
) -> pd.DataFrame:
    """What the training rows looked like, one line per variable: rows, missing share,
    and the deciles 1, 5 and 9 of a number or the most frequent level of a category."""
    rows = []
    for name, distribution in reference.items():
        shares = _plain_shares(distribution.counts)
        present = np.arange(len(shares)) != np.arange(len(shares))[distribution.missing_bin]
        if distribution.cuts is None:
            top = int(np.argmax(np.where(present, shares, -1.0)))
            seen = int((distribution.counts[present] > 0).sum())
            shape = f"most frequent {distribution.labels[top]} ({shares[top]:.1%}), {seen} levels"
        else:  # the cuts are QUANTILE_LEVELS: deciles 1, 5 and 9 are cuts 0, 4 and 8
            p10, p50, p90 = (f"{distribution.cuts[i]:.4g}" for i in (0, 4, 8))
            shape = f"p10 {p10}, median {p50}, p90 {p90}"
        rows.append(
            {
                "variable": name,
                "kind": kinds[name],
                "rows": int(distribution.counts.sum()),
                "missing": float(shares[distribution.missing_bin]),
                "distribution": shape,
            }
        )
    return pd.DataFrame(rows)


def _row(name: str, reference: BinnedDistribution, actual: np.ndarray, kind: Kind) -> dict:
    terms = psi_terms(reference.counts, actual)
    moved = int(np.argmax(terms))
    value = float(terms.sum())
    return {
        "variable": name,
        "kind": kind,
        "psi": value,
        "band": psi_band(value) if actual.sum() >= MIN_JUDGED_ROWS else TOO_FEW_ROWS,
        "bin_moved_most": reference.labels[moved],
        "train_share": _plain_shares(reference.counts)[moved],
        "new_share": _plain_shares(actual)[moved],
    }


def _plain_shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / max(counts.sum(), 1.0)


def _shares(counts: np.ndarray) -> np.ndarray:
    return np.maximum(_plain_shares(counts), EMPTY_SHARE)
