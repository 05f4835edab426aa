"""Embeddings for numerical features (Gorishniy et al. 2022, "On Embeddings for Numerical
Features in Tabular Deep Learning").

An MLP fed raw scalars is biased towards smooth functions of each feature; credit data is
full of steps and kinks (a delinquency count of 0 vs 1, utilisation above 90 %). Mapping
each scalar to a vector first lets the first layer express such shapes:

- `PeriodicEmbeddings` ("PLR"): per feature, [cos(2 pi c x), sin(2 pi c x)] with trainable
  frequencies c ~ N(0, sigma), then a per-feature Linear and ReLU.
- `PiecewiseLinearEncoding` ("PLE", parameter-free): per feature, one value per quantile bin
  of the training data: 0 left of the bin, 1 right of it, linear inside.

Both map (B, n_features) -> (B, n_features, d); the network flattens the result.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

NumericEmbedding = Literal["none", "periodic", "piecewise"]
NUMERIC_EMBEDDINGS: tuple[str, ...] = ("none", "periodic", "piecewise")


class PeriodicEmbeddings(nn.Module):
    """PLR: periodic features, then a per-feature Linear -> ReLU.

    Shape: x (B, n_features) -> (B, n_features, d_embedding).

    `sigma` sets the initial frequency scale and is the one hyperparameter that matters:
    too small and cos/sin are nearly constant over the inputs' range, too large and the
    embedding is noise. Inputs here are standardised or quantile-normal, so their range is
    a few units.
    """

    def __init__(
        self, n_features: int, *, n_frequencies: int = 48, d_embedding: int = 24, sigma: float
    ) -> None:
        super().__init__()
        _check_positive(n_features=n_features, n_frequencies=n_frequencies, d_embedding=d_embedding)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.frequencies = nn.Parameter(torch.randn(n_features, n_frequencies) * sigma)
        bound = 1 / math.sqrt(2 * n_frequencies)
        self.weight = nn.Parameter(
            torch.empty(n_features, 2 * n_frequencies, d_embedding).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_features, d_embedding).uniform_(-bound, bound))
        self.d_embedding = d_embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * self.frequencies * x[..., None]
        periodic = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        return torch.relu(torch.einsum("bfi,fio->bfo", periodic, self.weight) + self.bias)


class PiecewiseLinearEncoding(nn.Module):
    """PLE on quantile bins of the training data; no trainable parameters.

    Shape: x (B, n_features) -> (B, n_features, n_bins).

    The bin edges are buffers, so they travel in the checkpoint as plain tensors; they are
    placeholders until `fit_bins` sees the training rows (a checkpoint restores them). A
    feature with fewer distinct quantiles than `n_bins` (a count with few values) uses fewer
    bins; the unused ones are masked to 0. The first bin is open to the left and a feature's
    last used bin open to the right, so values outside the training range stay ordered.
    """

    def __init__(self, n_features: int, *, n_bins: int = 48) -> None:
        super().__init__()
        _check_positive(n_features=n_features, n_bins=n_bins)
        self.d_embedding = n_bins
        edges = torch.arange(n_bins + 1, dtype=torch.float32).repeat(n_features, 1)
        self.register_buffer("edges", edges)
        self.register_buffer("bin_mask", torch.ones(n_features, n_bins))

    @torch.no_grad()
    def fit_bins(self, x: torch.Tensor) -> None:
        """Set the edges to the distinct quantiles of the training rows x (n, n_features)."""
        n_features, n_bins = self.bin_mask.shape
        if x.ndim != 2 or x.shape[1] != n_features or len(x) < 2:
            raise ValueError(
                f"fit_bins needs training rows (n >= 2, {n_features}), got {tuple(x.shape)}"
            )
        levels = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
        quantiles = torch.quantile(x.double(), levels, dim=0).T
        for feature, values in enumerate(quantiles):
            distinct = torch.unique(values)
            used = len(distinct) - 1
            padding = distinct[-1] + torch.arange(1, n_bins - used + 1, dtype=torch.float64)
            self.edges[feature] = torch.cat([distinct, padding]).float()
            self.bin_mask[feature] = (torch.arange(n_bins) < used).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.edges[:, :-1], self.edges[:, 1:]
        ratio = (x[..., None] - left) / (right - left)
        n_bins = self.bin_mask.shape[1]
        last_used = (self.bin_mask.sum(dim=1, keepdim=True) - 1).clamp_min(0)
        bins = torch.arange(n_bins, device=x.device)
        lower = torch.where(bins == 0, -torch.inf, 0.0).expand_as(left)
        upper = torch.where(bins == last_used, torch.inf, 1.0)
        return torch.clamp(ratio, lower, upper) * self.bin_mask


def numeric_embeddings(
    kind: NumericEmbedding, n_features: int, *, n_bins: int, sigma: float
) -> PeriodicEmbeddings | PiecewiseLinearEncoding | None:
    """The embedding module a network option names, or None for raw scalars."""
    if kind not in NUMERIC_EMBEDDINGS:
        raise ValueError(f"numeric_embedding must be one of {NUMERIC_EMBEDDINGS}, got {kind!r}")
    if kind == "none" or n_features == 0:
        return None
    if kind == "periodic":
        return PeriodicEmbeddings(n_features, sigma=sigma)
    return PiecewiseLinearEncoding(n_features, n_bins=n_bins)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
