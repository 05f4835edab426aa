"""The network as plain `nn.Module`s: feature embeddings, then an MLP, then one logit per
ensemble member."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from torch import nn

from lightning_modules.numeric_embeddings import (
    BinEdges,
    NumericEmbedding,
    PeriodicAndPiecewise,
    PiecewiseLinearEncoding,
    numeric_embeddings,
)

Normalization = Literal["batchnorm", "layernorm", "none"]
Activation = Literal["relu", "gelu", "silu"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def embedding_dim(cardinality: int, max_dim: int) -> int:
    """fastai's rule of thumb, min(max_dim, round(1.6 * cardinality ** 0.56)).

    It grows sub-linearly with the number of levels: a yes/no flag gets 2 dimensions, a
    7-level grade 5, a 50-level region 14, so small vocabularies do not overfit.
    """
    return max(1, min(max_dim, round(1.6 * cardinality**0.56)))


class CategoricalEmbeddings(nn.Module):
    """One embedding table per categorical column, outputs concatenated.

    Shape: x_cat (B, n_cat) int64 -> (B, sum of embedding dims).
    """

    def __init__(self, cardinalities: list[int], *, max_dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(
            nn.Embedding(cardinality, embedding_dim(cardinality, max_dim))
            for cardinality in cardinalities
        )
        self.output_dim = sum(table.embedding_dim for table in self.tables)

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        if not self.tables:
            return x_cat.new_zeros((x_cat.shape[0], 0), dtype=torch.float32)
        return torch.cat([table(x_cat[:, i]) for i, table in enumerate(self.tables)], dim=1)


def mlp_block(
    in_features: int,
    out_features: int,
    *,
    normalization: Normalization,
    activation: Activation,
    dropout: float,
) -> nn.Sequential:
    """Linear -> normalisation -> activation -> dropout."""
    layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
    if normalization == "batchnorm":
        layers.append(nn.BatchNorm1d(out_features))
    elif normalization == "layernorm":
        layers.append(nn.LayerNorm(out_features))
    layers.append(_ACTIVATIONS[activation]())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class CrossLayer(nn.Module):
    """DCN-v2's cross layer (Wang et al. 2021): x_next = x0 * (W x + b) + x.

    Shape: x0, x (B, d) -> (B, d).

    Each layer multiplies the input by a learned linear function of itself, so l layers
    express explicit feature products up to degree l + 1 (grade x income share), which an
    MLP of ReLUs only approximates piece by piece.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, d)
        nn.init.zeros_(self.linear.weight)  # starts as the identity: x_next = x
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class EnsembleAdapter(nn.Module):
    """TabM-mini's input adapter: k members share every weight but one multiplicative vector.

    Shape: x (B, d) -> (B * k, d), member-major within each row (row i, member j at i*k + j).

    The vectors start as random signs (Gorishniy et al. 2024, "TabM"), so the members differ
    from the first step while sharing the MLP's cost.
    """

    def __init__(self, d: int, *, k: int) -> None:
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.randint(0, 2, (k, d)).float() * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, None, :] * self.scale).flatten(0, 1)


class EnsembleHead(nn.Module):
    """One linear output per member. Shape: h (B * k, d) -> (B, k) logits."""

    def __init__(self, d: int, *, k: int, bias: float) -> None:
        super().__init__()
        self.k = k
        bound = 1 / d**0.5
        self.weight = nn.Parameter(torch.empty(k, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.full((k,), bias))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h.unflatten(0, (-1, self.k)) * self.weight).sum(dim=-1) + self.bias


class LoanDefaultNet(nn.Module):
    """MLP over [embedded numerics, other numeric inputs, categorical embeddings].

    Shape: x_num (B, n_numeric) float32, x_cat (B, n_cat) int64 -> (B, k) member logits.

    The first `n_numeric - n_passthrough` numeric inputs are real features and go through
    `numeric_embedding` ("none" keeps the scalars); the last `n_passthrough` (the 0/1
    missing indicators) are used as they are. `cross_layers` DCN-v2 cross layers, if any,
    come before the MLP (stacked DCN-v2). With `ensemble_size` k > 1 the network is a
    TabM-mini ensemble: each member sees the input through its own adapter and has its own
    output, all share the MLP; k = 1 is the plain MLP. Output biases start at the training
    log-odds, so the first steps learn features instead of the base rate.
    """

    def __init__(
        self,
        *,
        n_numeric: int,
        cardinalities: list[int],
        hidden_sizes: list[int],
        dropout: float = 0.0,
        normalization: Normalization = "batchnorm",
        activation: Activation = "relu",
        embedding_max_dim: int = 16,
        positive_rate: float = 0.5,
        n_passthrough: int = 0,
        numeric_embedding: NumericEmbedding = "none",
        n_bins: int = 48,
        frequency_sigma: float = 0.1,
        ensemble_size: int = 1,
        cross_layers: int = 0,
    ) -> None:
        super().__init__()
        _check_network_args(n_numeric, cardinalities, hidden_sizes, dropout, positive_rate)
        _check_choices(normalization, activation)
        if not 0 <= n_passthrough <= n_numeric:
            raise ValueError(f"n_passthrough must be in [0, {n_numeric}], got {n_passthrough}")
        if ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {ensemble_size}")
        if cross_layers < 0:
            raise ValueError(f"cross_layers must be >= 0, got {cross_layers}")
        self.n_embedded = n_numeric - n_passthrough
        self.numeric_embeddings = numeric_embeddings(
            numeric_embedding, self.n_embedded, n_bins=n_bins, sigma=frequency_sigma
        )
        numeric_width = (
            n_numeric
            if self.numeric_embeddings is None
            else self.n_embedded * self.numeric_embeddings.d_embedding + n_passthrough
        )
        self.embeddings = CategoricalEmbeddings(cardinalities, max_dim=embedding_max_dim)
        widths = [numeric_width + self.embeddings.output_dim, *hidden_sizes]
        self.cross = nn.ModuleList(CrossLayer(widths[0]) for _ in range(cross_layers))
        self.adapter = EnsembleAdapter(widths[0], k=ensemble_size) if ensemble_size > 1 else None
        self.blocks = nn.Sequential(
            *(
                mlp_block(
                    fan_in,
                    fan_out,
                    normalization=normalization,
                    activation=activation,
                    dropout=dropout,
                )
                for fan_in, fan_out in pairwise(widths)
            )
        )
        log_odds = torch.logit(torch.tensor(positive_rate)).item()
        self.head = EnsembleHead(widths[-1], k=ensemble_size, bias=log_odds)

    @property
    def ensemble_size(self) -> int:
        return self.head.k

    def fit_bins(
        self, x_num: torch.Tensor, y: torch.Tensor | None = None, *, edges: BinEdges = "quantile"
    ) -> None:
        """Fit the piecewise-linear bins on the training rows' numeric block (n, n_numeric);
        `y`, the training targets, places the cuts when `edges` is "tree". Embeddings without
        bins (none, periodic) have nothing to fit."""
        if isinstance(self.numeric_embeddings, PiecewiseLinearEncoding | PeriodicAndPiecewise):
            self.numeric_embeddings.fit_bins(x_num[:, : self.n_embedded], y, edges=edges)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        if self.numeric_embeddings is not None:
            embedded = self.numeric_embeddings(x_num[:, : self.n_embedded]).flatten(1)
            x_num = torch.cat([embedded, x_num[:, self.n_embedded :]], dim=1)
        x = x0 = torch.cat([x_num, self.embeddings(x_cat)], dim=1)
        for layer in self.cross:
            x = layer(x0, x)
        if self.adapter is not None:
            x = self.adapter(x)
        return self.head(self.blocks(x))


def _check_network_args(
    n_numeric: int,
    cardinalities: list[int],
    hidden_sizes: list[int],
    dropout: float,
    positive_rate: float,
) -> None:
    if n_numeric < 0 or (n_numeric == 0 and not cardinalities):
        raise ValueError(
            f"the network needs at least one input, got {n_numeric=}, {cardinalities=}"
        )
    if any(c < 2 for c in cardinalities):
        raise ValueError(
            f"each categorical needs >= 2 codes (missing, unknown), got {cardinalities}"
        )
    if not hidden_sizes or any(size < 1 for size in hidden_sizes):
        raise ValueError(
            f"hidden_sizes must be a non-empty list of positive ints, got {hidden_sizes}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not 0.0 < positive_rate < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")


def _check_choices(normalization: str, activation: str) -> None:
    if normalization not in ("batchnorm", "layernorm", "none"):
        raise ValueError(
            f"normalization must be 'batchnorm', 'layernorm' or 'none', got {normalization!r}"
        )
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
