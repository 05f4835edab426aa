"""Which pairs of categoricals carry risk beyond their two columns: the pairs whose joint
level's out-of-fold default rate becomes one more network input.

Why: CatBoost forms combinations of categoricals inside its trees (`max_ctr_complexity`);
on the suite's all-categorical stand-in that alone is its lead over the network (with
combinations off it scores 0.0017 below it). A network can learn an interaction from
embeddings only where each joint level has rows enough, which the pairs of wide columns
never do; a joint level's default rate hands it over directly.

Why a test: on german's 640 training rows, all 78 pairs as inputs lost 0.009; most pairs
there add only noise (docs/experiments/2026-12-04-reseeds-and-wide-embeddings.md). A pair
is kept where a likelihood-ratio test says its rate predicts the target beyond its two
columns' own rates, at `PAIR_TEST_LEVEL` over all candidate pairs (Bonferroni).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np
from scipy.stats import chi2
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import TargetEncoder

# The family-wise level of the pairs' test: each of n candidate pairs is tested at
# PAIR_TEST_LEVEL / n, so that on data with no interaction at all a pair is kept in about
# one fit of a hundred.
PAIR_TEST_LEVEL = 0.01
# At most this many pairs become inputs, the most significant first: a file of 30 such
# columns has 435 candidates, and every input widens the network.
MAX_PAIRS = 32
# Nearly unpenalised: the test compares likelihoods, which a strong penalty would bias.
_INVERSE_PENALTY = 1e4


def pair_keys(codes_a: np.ndarray, codes_b: np.ndarray, cardinality_b: int) -> np.ndarray:
    """One integer per joint level of two categoricals' codes. Shape: (n,), (n,) -> (n,) int64."""
    return codes_a.astype(np.int64) * cardinality_b + codes_b.astype(np.int64)


def significant_pairs(
    codes: np.ndarray,
    cardinalities: list[int],
    targets: np.ndarray,
    encoder: Callable[[], TargetEncoder],
) -> list[tuple[int, int]]:
    """The pairs of columns of `codes` whose joint level's default rate adds to their own,
    most significant first, at most `MAX_PAIRS`.

    Every rate is computed out of fold by `encoder()` (the preprocessor's cross-fitting), so
    that no row's rate holds its own target. A pair passes where adding its rate to a
    logistic regression on the two columns' rates lowers the deviance beyond the chi-square
    (1 degree of freedom) quantile at `PAIR_TEST_LEVEL` over the candidates, with a positive
    coefficient: a joint level's rate that predicts the target backwards is the cross-
    fitting's artefact (a level of two rows gets the other row's target), not a risk.
    The rates enter as rates, not log-odds, for the same reason: a level seen once gets a
    rate of exactly 0 or 1.

    Shape: codes (n, k) int, cardinalities (k,), targets (n,) 0/1.
    """
    candidates = list(combinations(range(codes.shape[1]), 2))
    if not candidates:
        return []
    own = encoder().fit_transform(codes, targets)
    keys = [pair_keys(codes[:, a], codes[:, b], cardinalities[b]) for a, b in candidates]
    joint = encoder().fit_transform(np.column_stack(keys), targets)
    critical = chi2.isf(PAIR_TEST_LEVEL / len(candidates), df=1)
    gains = []
    for index, (a, b) in enumerate(candidates):
        gain, coefficient = _deviance_gain(own[:, [a, b]], joint[:, [index]], targets)
        if gain > critical and coefficient > 0:
            gains.append((gain, index))
    gains.sort(key=lambda found: -found[0])
    return [candidates[index] for _, index in gains[:MAX_PAIRS]]


def _deviance_gain(base: np.ndarray, extra: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """How much the deviance of a logistic regression on `base` falls when `extra` joins it,
    and the coefficient `extra` gets."""
    extended = np.column_stack([base, extra])
    model = _fitted(extended, targets)
    gain = _deviance(_fitted(base, targets), base, targets) - _deviance(model, extended, targets)
    return gain, float(model.coef_[0, -1])


def _fitted(features: np.ndarray, targets: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=_INVERSE_PENALTY, max_iter=1000).fit(features, targets)


def _deviance(model: LogisticRegression, features: np.ndarray, targets: np.ndarray) -> float:
    return 2 * log_loss(targets, model.predict_proba(features)[:, 1], normalize=False)
