"""Which combinations of categoricals carry risk beyond their columns: the pairs, then the
triples, whose joint level's out-of-fold default rate becomes one more network input.

Why: CatBoost forms combinations of categoricals inside its trees (`max_ctr_complexity`);
on the suite's all-categorical stand-in that alone is its lead over the network (with
combinations off it scores 0.0017 below it). A network can learn an interaction from
embeddings only where each joint level has rows enough, which the pairs of wide columns
never do; a joint level's default rate hands it over directly. Pairs are not all of it:
limited to pairs (`max_ctr_complexity=2`), CatBoost loses 0.004 there, 0.0008 with triples.

Why a test: on german's 640 training rows, all 78 pairs as inputs lost 0.009; most pairs
there add only noise (docs/experiments/2026-12-04-reseeds-and-wide-embeddings.md). A pair
is kept where a likelihood-ratio test says its rate predicts the target beyond its two
columns' own rates, at `PAIR_TEST_LEVEL` over all candidate pairs (Bonferroni). A triple
is a candidate only where it holds a kept pair, as CatBoost extends the combinations its
trees already split on, and is kept where its rate adds to its three columns' and its
three pairs' rates, at the same level over the candidate triples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from math import prod

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
# At most this many triples, the most significant first, on top of the pairs.
MAX_TRIPLES = 16
# The test reads at most this many training rows (a random sample beyond), which find any
# interaction worth an input; on ten million rows the whole test would take longer than
# the network's epoch.
TEST_ROWS = 200_000
# A combination whose codes' product reaches this has no int64 key; its levels would be
# nearly all seen once anyway.
_MAX_KEYS = 2**62
# Nearly unpenalised: the test compares likelihoods, which a strong penalty would bias.
_INVERSE_PENALTY = 1e4


def joint_keys(columns: Sequence[np.ndarray], cardinalities: Sequence[int]) -> np.ndarray:
    """One integer per joint level of several categoricals' codes (`cardinalities`: each
    column's number of codes). Shape: k arrays (n,) -> (n,) int64."""
    keys = columns[0].astype(np.int64)
    for codes, cardinality in zip(columns[1:], cardinalities[1:], strict=True):
        keys = keys * cardinality + codes.astype(np.int64)
    return keys


def significant_pairs(
    codes: np.ndarray,
    cardinalities: list[int],
    targets: np.ndarray,
    encoder: Callable[[], TargetEncoder],
    seed: int = 0,
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

    Beyond `TEST_ROWS` rows, a random sample of them (drawn with `seed`) is tested. One
    candidate's rate is computed at a time, so that the test holds one column of them, not
    one per candidate.

    Shape: codes (n, k) int, cardinalities (k,), targets (n,) 0/1.
    """
    candidates = list(combinations(range(codes.shape[1]), 2))
    if not candidates:
        return []
    codes, targets = _test_rows(codes, targets, seed)
    own = encoder().fit_transform(codes, targets)

    def rates(pair: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        return own[:, list(pair)], _joint_rate(codes, cardinalities, pair, targets, encoder)

    return _kept(candidates, rates, targets, MAX_PAIRS)


def significant_triples(
    codes: np.ndarray,
    cardinalities: list[int],
    targets: np.ndarray,
    encoder: Callable[[], TargetEncoder],
    pairs: list[tuple[int, int]],
    seed: int = 0,
) -> list[tuple[int, int, int]]:
    """The triples of columns of `codes` that hold one of the kept `pairs` and whose joint
    level's default rate adds to the rates of their three columns and of their three
    pairs, most significant first, at most `MAX_TRIPLES`; the test, its sample and its
    signs are the pairs' (`significant_pairs`).

    Shape: codes (n, k) int, cardinalities (k,), targets (n,) 0/1.
    """
    extended = {
        tuple(sorted((*pair, other)))
        for pair in pairs
        for other in range(codes.shape[1])
        if other not in pair
    }
    candidates = sorted(
        triple for triple in extended if prod(cardinalities[i] for i in triple) < _MAX_KEYS
    )
    if not candidates:
        return []
    codes, targets = _test_rows(codes, targets, seed)
    own = encoder().fit_transform(codes, targets)

    # Each pair's rate computed once, though most pairs are in several candidates (on
    # credit_risk_categorical 420 sub-pairs of 140 triples are 55 pairs). At most one
    # column per pair of categoricals, of at most `TEST_ROWS` rows.
    pair_rates: dict[tuple[int, ...], np.ndarray] = {}

    def rates(triple: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        for pair in combinations(triple, 2):
            if pair not in pair_rates:
                pair_rates[pair] = _joint_rate(codes, cardinalities, pair, targets, encoder)
        base = np.column_stack(
            [own[:, list(triple)], *(pair_rates[pair] for pair in combinations(triple, 2))]
        )
        return base, _joint_rate(codes, cardinalities, triple, targets, encoder)

    return _kept(candidates, rates, targets, MAX_TRIPLES)


def _test_rows(codes: np.ndarray, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows the test reads: all, or `TEST_ROWS` of them drawn with `seed`."""
    if len(codes) <= TEST_ROWS:
        return codes, targets
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), TEST_ROWS, replace=False))
    return codes[rows], targets[rows]


def _joint_rate(
    codes: np.ndarray,
    cardinalities: list[int],
    columns: Sequence[int],
    targets: np.ndarray,
    encoder: Callable[[], TargetEncoder],
) -> np.ndarray:
    """The out-of-fold default rate of each row's joint level of `columns`. Shape: (n, 1)."""
    keys = joint_keys([codes[:, i] for i in columns], [cardinalities[i] for i in columns])
    return encoder().fit_transform(keys[:, None], targets)


def _kept(
    candidates: list[tuple[int, ...]],
    rates: Callable[[tuple[int, ...]], tuple[np.ndarray, np.ndarray]],
    targets: np.ndarray,
    limit: int,
) -> list[tuple[int, ...]]:
    """The candidates whose rate (`rates(candidate)`: the base rates, the candidate's own)
    lowers the deviance beyond the Bonferroni-corrected chi-square quantile with a
    positive coefficient, the largest gains first, at most `limit`."""
    critical = chi2.isf(PAIR_TEST_LEVEL / len(candidates), df=1)
    gains = []
    for index, candidate in enumerate(candidates):
        gain, coefficient = _deviance_gain(*rates(candidate), targets)
        if gain > critical and coefficient > 0:
            gains.append((gain, index))
    gains.sort(key=lambda found: -found[0])
    return [candidates[index] for _, index in gains[:limit]]


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
