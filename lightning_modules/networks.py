"""The network as plain `nn.Module`s: categorical embeddings, then an MLP, then one logit."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from torch import nn

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


class LoanDefaultNet(nn.Module):
    """MLP over [numeric features, categorical embeddings], returning one default logit per row.

    Shape: x_num (B, n_numeric) float32, x_cat (B, n_cat) int64 -> (B,) logits.

    The output bias starts at the training log-odds, so the first steps learn features
    instead of the base rate (which matters at 7 % positives).
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
    ) -> None:
        super().__init__()
        _check_network_args(n_numeric, cardinalities, hidden_sizes, dropout, positive_rate)
        _check_choices(normalization, activation)
        self.embeddings = CategoricalEmbeddings(cardinalities, max_dim=embedding_max_dim)
        widths = [n_numeric + self.embeddings.output_dim, *hidden_sizes]
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
        self.head = nn.Linear(widths[-1], 1)
        with torch.no_grad():
            self.head.bias.fill_(torch.logit(torch.tensor(positive_rate)).item())

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x_num, self.embeddings(x_cat)], dim=1)
        return self.head(self.blocks(x)).squeeze(-1)


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
