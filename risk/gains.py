"""The gains (decile) table and what a decision cut-off trades, on one scored sample.

Credit teams read a score by bands of equal size, riskiest first: how many defaulters the
riskiest 10 % hold ("captured"), and how much riskier each band is than the book
("lift"). The cut-off summary says what the decision threshold means for the business:
how many applicants it approves and how many defaulters it turns away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def gains_table(scores: np.ndarray, targets: np.ndarray, n_bands: int = 10) -> pd.DataFrame:
    """Rows ranked riskiest first, cut into `n_bands` bands of equal size (deciles for 10).

    Shape: scores (n,) risk scores (higher = riskier), targets (n,) 0/1 -> one row per
    band: band (1 = riskiest), score_from, score_to (the band's lowest and highest score),
    rows, defaults, default_rate, captured (cumulative share of all defaults in this band
    and the riskier ones) and lift (the band's default rate over the overall rate).

    Bands are cut by rank, so rows tied on the score can fall on both sides of a band's
    edge. Their order in the file says nothing about them (a file sorted by outcome would
    put every tied defaulter in the riskier band), so each tied row counts its group's
    default rate, as ROC-AUC counts a tie as half: a band's defaults are fractional where a
    tied group straddles its edge, and the table does not depend on the rows' order.
    """
    if n_bands < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands}")
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    _, tie_group = np.unique(ranked, return_inverse=True)
    group_rate = np.bincount(tie_group, weights=targets[order]) / np.bincount(tie_group)
    band = np.arange(len(scores)) * n_bands // max(len(scores), 1) + 1
    frame = pd.DataFrame({"band": band, "score": ranked, "target": group_rate[tie_group]})
    table = frame.groupby("band").agg(
        score_from=("score", "min"),
        score_to=("score", "max"),
        rows=("target", "size"),
        defaults=("target", "sum"),
    )
    # Sums of tied groups' rates: whole numbers but for a rounding error, or fractions.
    defaults = table["defaults"].round(6)
    whole = (defaults % 1 == 0).all()
    table["defaults"] = defaults.astype(np.int64) if whole else defaults
    table["default_rate"] = table["defaults"] / table["rows"]
    table["captured"] = table["defaults"].cumsum() / max(table["defaults"].sum(), 1)
    overall = targets.mean() if len(targets) else np.nan
    table["lift"] = table["default_rate"] / overall if overall > 0 else np.nan
    return table.reset_index()


def defaults_format(gains: pd.DataFrame) -> str:
    """How to print a gains table's defaults: whole counts as such, and with one decimal
    where a tied group straddles a band's edge."""
    return "{:,.0f}" if (gains["defaults"] % 1 == 0).all() else "{:,.1f}"


@dataclass(frozen=True)
class CutoffTradeoff:
    """What declining every applicant with a default probability >= threshold does.

    approval_rate: share of applicants approved; defaults_caught: share of the defaulters
    declined (recall); approved_default_rate / declined_default_rate: the default rate
    of each side (NaN when a side is empty).
    """

    threshold: float
    approval_rate: float
    defaults_caught: float
    approved_default_rate: float
    declined_default_rate: float


def cutoff_tradeoff(probs: np.ndarray, targets: np.ndarray, threshold: float) -> CutoffTradeoff:
    """The trade made by a cut-off. Shape: probs (n,), targets (n,) 0/1."""
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    declined = probs >= threshold
    return CutoffTradeoff(
        threshold=threshold,
        approval_rate=float(1 - declined.mean()),
        defaults_caught=float(targets[declined].sum() / max(targets.sum(), 1)),
        approved_default_rate=_mean(targets[~declined]),
        declined_default_rate=_mean(targets[declined]),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
