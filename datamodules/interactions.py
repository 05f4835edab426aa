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
columns' own rates (each as a rate and as log-odds), at `PAIR_TEST_LEVEL` over all
candidate pairs (Bonferroni). A triple is a candidate only where it holds a kept pair, as
CatBoost extends the combinations its trees already split on, and is kept where its rate
adds to its three columns' and its three pairs' rates, at the same level over the
candidate triples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from math import prod

import numpy as np
from scipy.special import expit
from scipy.stats import chi2
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
# Newton's steps at most per regression; a few suffice on these small problems.
_NEWTON_STEPS = 50
# The fall in the loss (a sum over the rows) below which a Newton step is not taken.
_NEWTON_TOLERANCE = 1e-9


def joint_keys(
    codes: np.ndarray, cardinalities: Sequence[int], columns: Sequence[int]
) -> np.ndarray:
    """One integer per joint level of the categoricals `columns` of the code block `codes`
    (`cardinalities`: each column's number of codes). Shape: (n, k) -> (n,) int64."""
    keys = codes[:, columns[0]].astype(np.int64)
    for column in columns[1:]:
        keys = keys * cardinalities[column] + codes[:, column].astype(np.int64)
    return keys


def significant_combinations(
    codes: np.ndarray,
    cardinalities: list[int],
    targets: np.ndarray,
    encoder: Callable[[], TargetEncoder],
    *,
    triples: bool = True,
    seed: int = 0,
) -> list[tuple[int, ...]]:
    """The pairs of columns of `codes` whose joint level's default rate adds to their own,
    most significant first, at most `MAX_PAIRS`; then (with `triples`) the triples that
    hold one of those pairs and whose joint level's rate adds to the rates of their three
    columns and of their three pairs, at most `MAX_TRIPLES`.

    Every rate is computed out of fold by `encoder()` (the preprocessor's cross-fitting), so
    that no row's rate holds its own target. A combination passes where adding its rate to
    a logistic regression on the rates below it lowers the deviance beyond the chi-square
    (1 degree of freedom) quantile at `PAIR_TEST_LEVEL` over its candidates, with a
    positive coefficient: a joint level's rate that predicts the target backwards is the
    cross-fitting's artefact (a level of two rows gets the other row's target), not a risk.
    The candidate's rate enters as a rate, not log-odds, for the same reason: a level seen
    once gets a rate of exactly 0 or 1. The rates below it enter on both scales
    (`_both_scales`): risks that add on the log-odds scale do not add as rates, so a base
    of rates alone leaves a misfit that any joint rate of a strong column with another
    corrects, and such pairs passed without an interaction (on 32 synthetic categoricals,
    12 of 15 spurious pairs held the widest column).

    Beyond `TEST_ROWS` rows, a random sample of them (drawn with `seed`) is tested, the
    same rows for pairs and triples. One candidate's rate is computed at a time, so that
    the test holds one column of them, not one per candidate.

    Shape: codes (n, k) int, cardinalities (k,), targets (n,) 0/1.
    """
    if codes.shape[1] < 2:
        return []
    codes, targets = _test_rows(codes, targets, seed)
    own = encoder().fit_transform(codes, targets)

    def joint_rate(columns: tuple[int, ...]) -> np.ndarray:
        keys = joint_keys(codes, cardinalities, columns)
        return encoder().fit_transform(keys[:, None], targets)

    pairs = _kept(
        list(combinations(range(codes.shape[1]), 2)),
        lambda pair: (_both_scales(own[:, list(pair)]), joint_rate(pair)),
        targets,
        MAX_PAIRS,
    )
    if not triples:
        return pairs
    return [*pairs, *_significant_triples(own, cardinalities, pairs, joint_rate, targets)]


def _significant_triples(
    own: np.ndarray,
    cardinalities: list[int],
    pairs: list[tuple[int, ...]],
    joint_rate: Callable[[tuple[int, ...]], np.ndarray],
    targets: np.ndarray,
) -> list[tuple[int, ...]]:
    """The triples that extend a kept pair by a third column and whose rate adds to their
    columns' (`own`) and pairs' rates."""
    extended = {
        tuple(sorted((*pair, other)))
        for pair in pairs
        for other in range(own.shape[1])
        if other not in pair
    }
    candidates = sorted(
        triple for triple in extended if prod(cardinalities[i] for i in triple) < _MAX_KEYS
    )
    if not candidates:
        return []
    # Each pair's rate computed once, though most pairs are in several candidates (on
    # credit_risk_categorical 420 sub-pairs of 140 triples are 55 pairs). At most one
    # column per pair of categoricals, of at most `TEST_ROWS` rows.
    pair_rates: dict[tuple[int, ...], np.ndarray] = {}

    def rates(triple: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        for pair in combinations(triple, 2):
            if pair not in pair_rates:
                pair_rates[pair] = joint_rate(pair)
        base = np.column_stack(
            [own[:, list(triple)], *(pair_rates[pair] for pair in combinations(triple, 2))]
        )
        return _both_scales(base), joint_rate(triple)

    return _kept(candidates, rates, targets, MAX_TRIPLES)


def _both_scales(rates: np.ndarray) -> np.ndarray:
    """Rates beside their log-odds, clipped to [0.01, 0.99] so that a rate of 0 or 1 (a
    level seen once) gets a finite value; the regression weighs each scale."""
    clipped = np.clip(rates, 0.01, 0.99)
    return np.column_stack([rates, np.log(clipped / (1 - clipped))])


def _test_rows(codes: np.ndarray, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows the test reads: all, or `TEST_ROWS` of them drawn with `seed`."""
    if len(codes) <= TEST_ROWS:
        return codes, targets
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), TEST_ROWS, replace=False))
    return codes[rows], targets[rows]


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
    deviance_base, weights = _logistic_fit(base, targets)
    # The extended fit starts from the base fit's optimum, with `extra`'s weight 0.
    deviance_extended, weights = _logistic_fit(
        np.column_stack([base, extra]), targets, start=np.append(weights, 0.0)
    )
    return deviance_base - deviance_extended, float(weights[-1])


def _logistic_fit(
    features: np.ndarray, targets: np.ndarray, start: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """The deviance of a logistic regression with an intercept, and its weights (intercept
    first), fitted by Newton's method with step halving on scikit-learn's objective (the
    log-loss plus the weights' squares over 2 `_INVERSE_PENALTY`, the intercept free),
    from `start` (default: the intercept of the targets' mean, the other weights 0).

    Written here for speed: the test fits two regressions of 4-13 columns per candidate,
    where scikit-learn's L-BFGS took 0.11 s a fit and most of the test's time
    (credit_risk_categorical's 140 triples: 32 of 50 s, two benchmark processes beside it);
    Newton converges in a few steps of one solve of at most 14 x 14 each, and to the
    optimum: at its default tolerance L-BFGS left gains about 0.001 off, which ordered
    near-equal combinations by chance.
    """
    design = np.column_stack([np.ones(len(features)), features])
    penalty = np.full(design.shape[1], 1 / _INVERSE_PENALTY)
    penalty[0] = 0.0
    if start is None:
        start = np.zeros(design.shape[1])
        rate = float(np.clip(targets.mean(), 1e-6, 1 - 1e-6))
        start[0] = np.log(rate / (1 - rate))
    weights = start

    def loss(logits: np.ndarray, candidate: np.ndarray) -> float:
        return float(
            np.logaddexp(0.0, logits).sum() - targets @ logits + 0.5 * penalty @ candidate**2
        )

    logits = design @ weights
    current = loss(logits, weights)
    for _ in range(_NEWTON_STEPS):
        probabilities = expit(logits)
        gradient = design.T @ (probabilities - targets) + penalty * weights
        curvature = (design * (probabilities * (1 - probabilities))[:, None]).T @ design
        step = np.linalg.solve(curvature + np.diag(penalty), gradient)
        # Half of Newton's decrement is the fall in the loss the full step promises; once
        # it is below rounding's reach, the fit is at its optimum.
        if gradient @ step < _NEWTON_TOLERANCE:
            break
        scale = 1.0
        while True:
            trial = weights - scale * step
            trial_logits = design @ trial
            if (trial_loss := loss(trial_logits, trial)) <= current or scale < 1e-8:
                break
            scale /= 2
        if trial_loss > current:
            break
        weights, logits, current = trial, trial_logits, trial_loss
    deviance = 2 * float(np.logaddexp(0.0, logits).sum() - targets @ logits)
    return deviance, weights
