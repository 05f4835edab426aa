"""Bootstrap confidence intervals for the test metrics, vectorised over resamples.

A resample with replacement is a vector of weights: how often each row was drawn. Every
metric here is a weighted sum over the rows sorted once (`RankedScores`), so a chunk of
resamples is one (chunk, n) weight matrix and a few cumulative sums, not a Python loop
over resamples. The seed is fixed, so a card rebuilt from the same predictions shows the
same intervals.
"""

from __future__ import annotations

import pandas as pd
import torch

from risk.discrimination import RankedScores, gini

# As the protocol's metrics (`lightning_modules/metrics.py`): log-loss on probabilities
# clipped to [1e-7, 1 - 1e-7]; calibration error on equal-width bins, given by the caller.
PROBABILITY_FLOOR = 1e-7
CHUNK = 64  # resamples per weight matrix: 64 x 30,000 test rows is 15 MB of float64


def bootstrap_intervals(
    probs: torch.Tensor,
    targets: torch.Tensor,
    threshold: float,
    *,
    calibration_bins: int,
    resamples: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Each metric on all rows, and the percentile interval of `resamples` bootstrap draws.

    Shape: probs (n,) default probabilities, targets (n,) 0/1 -> one row per metric with
    columns metric, estimate, low, high (`level` two-sided, e.g. the 2.5th and 97.5th
    percentiles).
    """
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples}, {level}")
    metrics = WeightedMetrics(probs, targets, threshold, calibration_bins)
    estimate = metrics(torch.ones(1, len(metrics.probs), dtype=torch.float64))
    generator = torch.Generator().manual_seed(seed)
    draws = [
        metrics(_resample_weights(len(metrics.probs), size, generator))
        for size in _chunks(resamples)
    ]
    tail = (1 - level) / 2
    rows = []
    for name, value in estimate.items():
        values = torch.cat([draw[name] for draw in draws])
        low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=torch.float64))
        rows.append(
            {"metric": name, "estimate": float(value), "low": float(low), "high": float(high)}
        )
    return pd.DataFrame(rows)


class WeightedMetrics:
    """The protocol's metrics of one set of predictions under any row weights: weights of
    whole numbers give the metrics of the rows repeated that often, so one call scores a
    batch of bootstrap resamples.

    Shape: probs (n,), targets (n,); weights (B, n) -> {metric: (B,)}.
    """

    def __init__(
        self, probs: torch.Tensor, targets: torch.Tensor, threshold: float, calibration_bins: int
    ) -> None:
        self.probs = probs.detach().double().flatten().cpu()
        self.targets = targets.detach().double().flatten().cpu()
        self.ranked = RankedScores.of(self.probs, self.targets)
        predicted = (self.probs >= threshold).double()
        clipped = self.probs.clamp(PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        self.correct = (predicted == self.targets).double()
        self.caught = predicted * self.targets
        self.squared_error = (self.probs - self.targets) ** 2
        self.log_loss = -(self.targets * clipped.log() + (1 - self.targets) * (-clipped).log1p())
        bins = (self.probs * calibration_bins).long().clamp(0, calibration_bins - 1)
        # (n, bins): each row's signed calibration gap in its probability bin.
        self.gap_by_bin = (
            torch.nn.functional.one_hot(bins, calibration_bins).double()
            * (self.probs - self.targets)[:, None]
        )

    def __call__(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = weights.sum(-1)
        counts = self.ranked.counts(weights)
        roc_auc = counts.roc_auc()
        return {
            "roc_auc": roc_auc,
            "gini": gini(roc_auc),
            "ks": counts.ks().statistic,
            "pr_auc": counts.average_precision(),
            "accuracy": weights @ self.correct / rows,
            "recall": weights @ self.caught / (weights @ self.targets).clamp_min(1e-300),
            "brier": weights @ self.squared_error / rows,
            "log_loss": weights @ self.log_loss / rows,
            "calibration_error": (weights @ self.gap_by_bin).abs().sum(-1) / rows,
        }


def _resample_weights(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """`size` draws of n rows with replacement, as counts per row. Shape: (size, n)."""
    drawn = torch.randint(0, n, (size, n), generator=generator)
    return torch.zeros(size, n, dtype=torch.float64).scatter_add_(
        1, drawn, torch.ones(size, n, dtype=torch.float64)
    )


def _chunks(total: int) -> list[int]:
    return [min(CHUNK, total - start) for start in range(0, total, CHUNK)]
