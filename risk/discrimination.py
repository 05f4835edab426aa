"""Discrimination as credit-risk teams report it: Gini and the Kolmogorov-Smirnov statistic.

Scores are risk scores (higher = riskier, e.g. the default probability) and targets are
0/1 (1 = defaulted). Every measure is computed from `GroupCounts`, the (weighted) defaulters
and non-defaulters at each distinct score, riskiest first: the bootstrap
(`risk/bootstrap.py`) passes one row of weights per resample, so hundreds of resamples
share one sort and cost a few cumulative sums each.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KolmogorovSmirnov:
    """The largest gap between the score distributions of defaulters and non-defaulters,
    and the cut-off where it is reached: rows scoring at least `cutoff` against the rest.

    Shape: statistic and cutoff (...,), one per row of weights.
    """

    statistic: torch.Tensor
    cutoff: torch.Tensor


@dataclass(frozen=True)
class KSCurve:
    """What the KS chart draws, one point per distinct score, riskiest first.

    Shape: each (G + 1,): the share of applicants with a score at least `cutoffs[g]`, and
    the shares of all defaulters and of all non-defaulters among them; the first point is
    the origin (cut-off +inf: nobody).
    """

    population: torch.Tensor
    defaulters: torch.Tensor
    non_defaulters: torch.Tensor
    cutoffs: torch.Tensor


@dataclass(frozen=True)
class RankedScores:
    """Scores grouped by distinct value, riskiest first: the one sort every measure shares.

    Shape: group (n,) the group of each row (in the rows' own order), cutoffs (G,) the
    distinct scores in descending order, targets (n,) float64.
    """

    group: torch.Tensor
    cutoffs: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(cls, scores: torch.Tensor, targets: torch.Tensor) -> RankedScores:
        """Sort once. Shape: scores (n,), targets (n,) 0/1."""
        scores = scores.detach().double().flatten().cpu()
        cutoffs, group = torch.unique(scores, sorted=True, return_inverse=True)
        descending = len(cutoffs) - 1 - group
        return cls(descending, cutoffs.flip(0), targets.detach().double().flatten().cpu())

    def counts(self, weights: torch.Tensor | None = None) -> GroupCounts:
        """Weighted defaulters and non-defaulters per score group.

        Shape: weights (..., n) in the rows' order (None: each row once) -> (..., G) each.
        """
        if weights is None:
            weights = torch.ones_like(self.targets)
        weights = weights.double()
        shape, dim = (*weights.shape[:-1], len(self.cutoffs)), weights.ndim - 1
        rows = weights.new_zeros(shape).index_add_(dim, self.group, weights)
        bad = weights.new_zeros(shape).index_add_(dim, self.group, weights * self.targets)
        return GroupCounts(bad, rows - bad, self.cutoffs)

    def roc_auc(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.counts(weights).roc_auc()

    def ks(self, weights: torch.Tensor | None = None) -> KolmogorovSmirnov:
        return self.counts(weights).ks()

    def average_precision(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.counts(weights).average_precision()


@dataclass(frozen=True)
class GroupCounts:
    """Defaulters (`bad`) and non-defaulters (`good`) per score group, riskiest group first,
    from which every ranking measure follows. Shape: bad, good (..., G), cutoffs (G,)."""

    bad: torch.Tensor
    good: torch.Tensor
    cutoffs: torch.Tensor

    def roc_auc(self) -> torch.Tensor:
        """P(a defaulter scores above a non-defaulter), ties counting one half. Shape: (...,)."""
        total_good = self.good.sum(-1, keepdim=True)
        good_below = total_good - self.good.cumsum(-1)
        pairs = (self.bad.sum(-1) * total_good[..., 0]).clamp_min(1e-300)
        return (self.bad * (good_below + 0.5 * self.good)).sum(-1) / pairs

    def ks(self) -> KolmogorovSmirnov:
        """max over cut-offs of |share of defaulters above - share of non-defaulters above|,
        which equals the two-sample KS statistic of the two groups' scores. 0 when either
        group is empty (as torchmetrics' ROC-AUC is then 0). Shape: (...,)."""
        gap = (_shares(self.bad) - _shares(self.good)).abs()
        statistic, best = gap.max(-1)
        both_groups = (self.bad.sum(-1) > 0) & (self.good.sum(-1) > 0)
        return KolmogorovSmirnov(statistic * both_groups, self.cutoffs[best])

    def average_precision(self) -> torch.Tensor:
        """PR-AUC as scikit-learn and torchmetrics compute it: precision at each cut-off,
        weighted by the defaulters it adds. Shape: (...,)."""
        bad_above = self.bad.cumsum(-1)
        precision = bad_above / (bad_above + self.good.cumsum(-1)).clamp_min(1e-300)
        return (self.bad * precision).sum(-1) / self.bad.sum(-1).clamp_min(1e-300)


def gini(roc_auc: torch.Tensor) -> torch.Tensor:
    """The Gini coefficient (accuracy ratio) of a score: 2 x ROC-AUC - 1."""
    return 2 * roc_auc - 1


def kolmogorov_smirnov(scores: torch.Tensor, targets: torch.Tensor) -> KolmogorovSmirnov:
    """KS of one set of scores. Shape: scores (n,), targets (n,) -> two scalars."""
    return RankedScores.of(scores, targets).ks()


def ks_curve(scores: torch.Tensor, targets: torch.Tensor) -> KSCurve:
    """The cumulative shares the KS chart plots, over cut-offs from the riskiest score down."""
    counts = RankedScores.of(scores, targets).counts()
    start = torch.zeros(1, dtype=torch.float64)
    return KSCurve(
        population=torch.cat([start, _shares(counts.bad + counts.good)]),
        defaulters=torch.cat([start, _shares(counts.bad)]),
        non_defaulters=torch.cat([start, _shares(counts.good)]),
        cutoffs=torch.cat([torch.full((1,), torch.inf, dtype=torch.float64), counts.cutoffs]),
    )


def _shares(counts: torch.Tensor) -> torch.Tensor:
    """Cumulative share of the total along the last dimension (0 when the total is 0)."""
    return counts.cumsum(-1) / counts.sum(-1, keepdim=True).clamp_min(1e-300)
