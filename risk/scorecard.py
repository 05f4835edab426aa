"""Scorecard points: the default probability on the scale credit teams quote.

    points = offset + factor x ln(odds of not defaulting),  odds = (1 - p) / p
    factor = pdo / ln 2,  offset = base_points - factor x ln(base_odds)

so an applicant at `base_odds` to 1 against default scores `base_points`, and every
`pdo` points double the odds (the industry's common default: 600 points at 50:1, 20
points to double the odds). Higher points mean lower risk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 1e-12  # keeps a probability of exactly 0 or 1 at finite points


@dataclass(frozen=True)
class ScorecardScaling:
    """Where the scale is anchored: base_points at base_odds (good:bad) to 1, and the
    points that double the odds. base_odds and pdo must be positive (the callers check
    them under their option names)."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_points - self.factor * math.log(self.base_odds)

    def points(self, probability: np.ndarray) -> np.ndarray:
        """Whole points, as printed on a scorecard; never increasing in the probability.

        Shape: (n,) default probabilities -> (n,) int64.
        """
        p = np.clip(
            np.asarray(probability, dtype=np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR
        )
        log_odds = np.log1p(-p) - np.log(p)
        return np.rint(self.offset + self.factor * log_odds).astype(np.int64)
