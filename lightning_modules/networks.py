"""The network as plain `nn.Module`s: feature embeddings, then an MLP, then one logit per
ensemble member."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, Literal

import torch
from torch import nn

from contracts.choices import check_choice, check_range
from contracts.errors import ConfigurationError
from contracts.features import FEW_TRAINING_CASES, SMALL_TRAINING_ROWS, FeatureSpec
from lightning_modules.dropout import ByteMaskDropout
from lightning_modules.numeric_embedding import (
    BinEdges,
    NumericEmbeddingKind,
    PeriodicAndPiecewise,
    PiecewiseLinearEncoding,
    build_numeric_embedding,
)
from lightning_modules.tree_leaves import TreeLeaves

# `ensemble_size: auto`: a TabM-mini ensemble of this many members below SMALL_TRAINING_ROWS
# training rows or FEW_TRAINING_CASES training rows of the rarer class (where the default
# bags), one network otherwise. On the robustness suite's 1k and 3k samples and german (5
# seeds) it halved the default's mean gap to CatBoost (-0.027 to -0.012); in the bags of
# the seven larger sets with few defaulters it gained +0.0037 on average (2 % and 5 %
# default rates +0.003 to +0.007) for 5-6x their fit time; on sets with many defaulters
# k = 4 gained 0.001-0.004 for 1.8-5.6x the fit time (docs/model-options.md).
SMALL_DATA_ENSEMBLE_SIZE = 8
# `hidden_sizes: auto`: the MLP's blocks below SMALL_TRAINING_ROWS training rows and from
# there. Below it the 8-member ensemble passes every row through the MLP 8 times, so the
# width sets a small set's cost: on the 1k and 3k samples and german (5 seeds) 128-wide
# blocks fitted 22-37 % faster at -0.0005 to +0.006 ROC-AUC; on the larger sets they lost
# up to 0.003 on the credit_risk family, and 0.007 in credit_risk@10k's ensembles (the
# experiment pages 2026-12-03-fit-costs.md and 2026-12-03-few-defaulters-ensemble.md).
SMALL_DATA_HIDDEN_SIZES = (128, 128, 128)
HIDDEN_SIZES = (256, 256, 256)
# `tree_depth: auto`: wherever `ensemble_size: auto` trains an ensemble (few training rows
# or few defaulters) or a categorical is wide (WIDE_CATEGORICAL_LEVELS), the leaves of
# decision trees of this depth as extra inputs (lightning_modules/tree_leaves.py); none
# elsewhere. On the seven sets below SMALL_TRAINING_ROWS (5 seeds) one tree lifted the worst
# set, credit_risk@1k, by 0.009 and the seven by 0.0016 on average, the seven larger
# ensemble sets by 0.0013 (docs/experiments/2026-12-04-tree-leaves.md). On the wide
# stand-ins, where a tree cuts on the levels' out-of-fold rates as CatBoost's combinations
# do, 16 boosted trees gained +0.0053 (credit_risk_wide, 5 of 5 seeds) and +0.0017; on the
# other sets fitted as one network they lost (heloc -0.0019, taiwan -0.0015)
# (docs/experiments/2026-12-04-boosted-tree-leaves.md).
AUTO_TREE_DEPTH = 3
# `n_trees: auto`: wherever the tree is on and the training split has at least
# BOOSTED_TREES_MIN_ROWS rows, the leaves of this many boosted trees instead of one tree's.
# On the 3k samples (1,920 training rows) 16 trees gained +0.0027 on average, on the 10k
# samples and the rare-default bags +0.0026 (all seven up; credit_risk@10k +0.0047 on 5 of
# 5 seeds) for +12 % of a fit; on the 640 training rows of the 1k samples and german they
# lost 0.004 on average (gmsc@1k -0.011, taiwan@1k -0.006): later trees fit the residuals
# of a few hundred rows. The threshold lies between the sizes measured, not
# located more precisely (docs/experiments/2026-12-04-boosted-tree-leaves.md).
AUTO_BOOSTED_TREES = 16
BOOSTED_TREES_MIN_ROWS = 1_000
# `activation: auto`: SiLU in a single network without trees (from 5,120 training rows and
# 1,500 of the rarer class, no wide categorical), ReLU in the ensembles and wherever trees
# are on. On the five sets fitted so (5 seeds) SiLU gained +0.0004 on average, none below
# -0.0001, gmsc@2pct +0.0016 on 5 of 5 seeds; on four samples of the same regime no rule
# had been screened on (gmsc@50k, gmsc@5pct, taiwan@15k, credit_risk@20k) +0.0006, 17 of
# 20 seeds. In the small sets' ensembles it lost 0.0010 on average (credit_risk@3k -0.0019
# on 0 of 5 seeds, gmsc@1k -0.0042), GELU more, and in the bags of single networks on the
# wide stand-ins -0.0007 and -0.0004 (docs/experiments/2026-12-04-single-network-ensembles.md).
SINGLE_NETWORK_ACTIVATION = "silu"
# `cut_min_chi2`: a numeric column keeps its tree bins only if its tree's first cut is
# significant at the 0.1 % level (chi-square 10.83, one degree of freedom), else it is one
# linear bin. The impurity threshold alone asks a cut for a chi-square of about 0.2 on 640
# rows, and a column of pure noise has a best cut of 3.4 at the median, so on the small
# samples every noise column brought bins of its own. With 35 uninformative columns added
# (the suite's @noise samples, 5 seeds) the floor gained +0.016 on credit_risk@1k@noise and
# +0.010 on taiwan@3k@noise (4 of 5 seeds each); on the 21 clean sets it moved the
# default by about -0.0002 on average, none outside its noise
# (docs/experiments/2026-12-04-noisy-samples.md).
CUT_MIN_CHI2 = 10.83
# `scalar_embedding_above_p`: a categorical whose levels' chi-square test against default
# on the training rows has a p-value above this keeps one embedding dimension (one number
# a level) instead of fastai's size. With the floor on, the 5 noise categoricals of
# credit_risk@1k@noise still cost it 0.015, in their embeddings; narrowed they cost 0.003
# (+0.0149, 5 of 5 seeds; taiwan@3k@noise +0.0028). At the 0.1 % level the test also
# narrowed weak real factors and lost (german -0.011, taiwan@1k -0.006); at 0.1 german
# -0.0004, taiwan@1k -0.0018, the other clean sets it touches within +-0.001, and most sets
# have no categorical above it (docs/experiments/2026-12-04-noisy-samples.md).
SCALAR_EMBEDDING_ABOVE_P = 0.1

Normalization = Literal["batchnorm", "layernorm", "none"]
Activation = Literal["relu", "gelu", "silu"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def embedding_dim(cardinality: int, max_dim: int) -> int:
    """fastai's rule of thumb, min(max_dim, round(1.6 * cardinality ** 0.56)).

    It grows sub-linearly with the number of codes (the levels, the missing and the
    unknown code): a yes/no flag gets 3 dimensions, a 7-level grade 5, a 50-level region 15,
    so small vocabularies do not overfit.
    """
    return max(1, min(max_dim, round(1.6 * cardinality**0.56)))


class CategoricalEmbeddings(nn.Module):
    """One embedding table per categorical column, outputs concatenated.

    `fit` narrows a column whose levels fail a chi-square test against the target to its
    first dimension: its other outputs are multiplied by 0, so the tables keep their shapes
    and a checkpoint loads before any data is seen.

    A code no training row holds (a level seen only after training, or missing where
    training had no gaps) would keep its random initial row and score the applicant with an
    arbitrary vector; out of training it takes the training rows' average embedding instead,
    as a numeric gap takes the training median. Training itself never meets such a code.

    Shape: x_cat (B, n_cat) int32 or int64 -> (B, sum of embedding dims).
    """

    def __init__(
        self,
        cardinalities: list[int],
        *,
        max_dim: int,
        scalar_above_p: float = SCALAR_EMBEDDING_ABOVE_P,
    ) -> None:
        super().__init__()
        self.tables = nn.ModuleList(
            nn.Embedding(cardinality, embedding_dim(cardinality, max_dim))
            for cardinality in cardinalities
        )
        self.scalar_above_p = scalar_above_p
        self.output_dim = sum(table.embedding_dim for table in self.tables)
        self.register_buffer("output_mask", torch.ones(self.output_dim))
        # Each code's share of the training rows, the columns' tables end to end; until
        # `fit` every code counts as trained.
        self.register_buffer("level_shares", torch.ones(sum(self.cardinalities)))

    @property
    def cardinalities(self) -> list[int]:
        return [table.num_embeddings for table in self.tables]

    def fit(self, x_cat: torch.Tensor, y: torch.Tensor | None) -> None:
        """Record each code's share of the training rows x_cat, and test each column's
        levels against their 0/1 targets `y`: a column with a p-value above
        `scalar_above_p` keeps one number a level, enough for any main effect, without the
        room to fit each level's noise in several directions."""
        if not self.tables:
            return
        codes = x_cat.detach().cpu().long()
        self.level_shares.copy_(
            torch.cat(
                [
                    torch.bincount(codes[:, i], minlength=cardinality) / max(len(codes), 1)
                    for i, cardinality in enumerate(self.cardinalities)
                ]
            )
        )
        if self.scalar_above_p >= 1:
            return
        if y is None:
            raise ValueError("testing the categoricals' levels needs the training targets")
        p_values = levels_chi2_p_values(codes, y.detach().cpu())
        narrowed_columns = p_values > self.scalar_above_p
        widths = torch.tensor([table.embedding_dim for table in self.tables])
        first = torch.zeros(self.output_dim, dtype=torch.bool)
        first[torch.cumsum(widths, 0) - widths] = True
        narrowed = torch.repeat_interleave(narrowed_columns, widths)
        self.output_mask.copy_((~narrowed | first).float())

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A checkpoint written before the mask existed embeds every column at full size;
        # one written before the shares existed scores every code with its own row.
        state_dict.setdefault(f"{prefix}output_mask", torch.ones(self.output_dim))
        state_dict.setdefault(f"{prefix}level_shares", torch.ones(sum(self.cardinalities)))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        if not self.tables:
            return x_cat.new_zeros((x_cat.shape[0], 0), dtype=torch.float32)
        shares = self.level_shares.split(self.cardinalities)
        embedded = [
            self._embed(table, x_cat[:, i], shares[i]) for i, table in enumerate(self.tables)
        ]
        return torch.cat(embedded, dim=1) * self.output_mask

    def _embed(
        self, table: nn.Embedding, codes: torch.Tensor, shares: torch.Tensor
    ) -> torch.Tensor:
        vectors = table(codes)
        if self.training:  # the training rows hold trained codes only
            return vectors
        untrained = (shares[codes] == 0).unsqueeze(1)
        return torch.where(untrained, shares @ table.weight, vectors)


def levels_chi2_p_values(x_cat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per categorical column of x_cat (n, n_cat), the p-value of Pearson's chi-square test
    of its levels against the 0/1 targets y (n,): levels x class, df = levels seen - 1. A
    column with one level seen gets 1."""
    positives = y.double()
    rate = positives.mean().item()
    p_values = []
    for codes in x_cat.long().T:
        rows = torch.bincount(codes).double()
        cases = torch.bincount(codes, weights=positives, minlength=len(rows))
        seen = rows > 0
        levels = int(seen.sum())
        if levels < 2 or rate in (0.0, 1.0):
            p_values.append(1.0)
            continue
        expected = rows[seen] * rate
        statistic = ((cases[seen] - expected) ** 2 / (expected * (1 - rate))).sum().item()
        # The chi-square survival function: the regularised upper incomplete gamma.
        degrees = torch.tensor((levels - 1) / 2, dtype=torch.float64)
        p_values.append(torch.special.gammaincc(degrees, torch.tensor(statistic / 2)).item())
    return torch.tensor(p_values)


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
        layers.append(ByteMaskDropout(dropout))
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

    def forward(
        self, x0: torch.Tensor, x: torch.Tensor, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`active`: the input columns present in x0 and x (the others are 0 in every row,
        and stay 0: x0 is 0 there)."""
        if active is None:
            return x0 * self.linear(x) + x
        weight = self.linear.weight[active][:, active]
        return x0 * nn.functional.linear(x, weight, self.linear.bias[active]) + x


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

    def forward(self, x: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        scale = self.scale if active is None else self.scale[:, active]
        return (x[:, None, :] * scale).flatten(0, 1)


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


@dataclass(frozen=True)
class NetworkSettings:
    """The network's architecture; the defaults are the recommended network.

    Piecewise-linear encoding of each numeric feature on decision-tree bins (Gorishniy et
    al. 2022, "PLE-T"; one linear bin where no cut is significant), categorical embeddings
    (one dimension where the levels show no significant link to default), then an MLP of
    three 256-wide blocks (128 below 5,120 training rows) with batch norm, ReLU (SiLU in a
    single network without trees) and dropout 0.25: the setup measured best across the
    public credit sets and the robustness suite (BENCHMARKS.md).

    Args:
        hidden_sizes: width of each MLP block. "auto": three blocks of 128 below 5,120
            training rows, of 256 from there, resolved by `resolved`.
        dropout, normalization: per-block regularisation.
        activation: per-block non-linearity. "auto": ReLU wherever `tree_depth: auto`
            puts trees on (an ensemble, or a wide categorical), SiLU in the single
            networks of larger sets, resolved by `resolved`.
        categorical_embedding_max_dim: cap of the categorical embedding size rule.
        numeric_embedding: "none" (raw scalars), "periodic" (PLR, `periodic_sigma`),
            "piecewise" (PLE on at most `n_bins` bins of the training rows, cut at quantiles
            or, with `bin_edges: tree`, where a per-feature decision tree on the target
            cuts) or "periodic_piecewise" (both); see `lightning_modules/numeric_embedding.py`.
        cut_min_chi2: with tree bins, a numeric column keeps its tree's cuts only if the
            first cut's chi-square (side x class) reaches this, and is one linear bin
            otherwise (`CUT_MIN_CHI2`: the 0.1 % level); 0 keeps every cut.
        scalar_embedding_above_p: a categorical whose levels' chi-square test against the
            target (on the training rows) has a p-value above this gets one embedding
            dimension instead of fastai's size (`SCALAR_EMBEDDING_ABOVE_P`); 1 keeps every
            size.
        periodic_sigma: initial scale of the periodic embedding's frequencies.
        ensemble_size: k > 1 trains a TabM-mini ensemble of k members in one network (mean of
            the members' losses; predictions are the mean of their probabilities). "auto":
            8 members below 5,120 training rows or 1,500 of the rarer class, else 1,
            resolved by `resolved` once the training set is known.
        cross_layers: DCN-v2 cross layers (explicit feature products) before the MLP.
        tree_depth: d > 0 adds the one-hot leaves of depth-d decision trees, fitted on the
            training rows' inputs, to the first layer's inputs; 0 adds none. "auto": depth 3
            where `ensemble_size: auto` trains an ensemble (below 5,120 training rows or
            1,500 of the rarer class) or a categorical has 20 or more levels, else 0,
            resolved by `resolved`.
        n_trees: how many trees give their leaves: 1 is a classification tree, more are
            the trees of gradient boosting (lightning_modules/tree_leaves.py). "auto": 16
            where there is a tree and at least 1,000 training rows, else 1.
    """

    hidden_sizes: list[int] | Literal["auto"] = "auto"
    dropout: float = 0.25
    normalization: Normalization = "batchnorm"
    activation: Activation | Literal["auto"] = "auto"
    categorical_embedding_max_dim: int = 16
    numeric_embedding: NumericEmbeddingKind = "piecewise"
    n_bins: int = 48
    bin_edges: BinEdges = "tree"
    cut_min_chi2: float = CUT_MIN_CHI2
    scalar_embedding_above_p: float = SCALAR_EMBEDDING_ABOVE_P
    periodic_sigma: float = 0.1
    ensemble_size: int | Literal["auto"] = "auto"
    cross_layers: int = 0
    tree_depth: int | Literal["auto"] = "auto"
    n_trees: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.hidden_sizes != "auto" and (
            not self.hidden_sizes or any(size < 1 for size in self.hidden_sizes)
        ):
            raise ConfigurationError(
                "hidden_sizes must be 'auto' or a non-empty list of positive ints, "
                f"got {self.hidden_sizes}"
            )
        check_range("dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False)
        check_choice("normalization", self.normalization, Normalization)
        if self.activation != "auto":
            check_choice("activation", self.activation, Activation)
        check_choice("numeric_embedding", self.numeric_embedding, NumericEmbeddingKind)
        check_choice("bin_edges", self.bin_edges, BinEdges)
        check_range("categorical_embedding_max_dim", self.categorical_embedding_max_dim, low=1)
        check_range("n_bins", self.n_bins, low=2)
        check_range("cut_min_chi2", self.cut_min_chi2, low=0.0)
        check_range(
            "scalar_embedding_above_p",
            self.scalar_embedding_above_p,
            low=0.0,
            high=1.0,
            low_inclusive=False,
        )
        check_range("periodic_sigma", self.periodic_sigma, low=0.0, low_inclusive=False)
        if self.ensemble_size != "auto":
            check_range("ensemble_size", self.ensemble_size, low=1)
        check_range("cross_layers", self.cross_layers, low=0)
        if self.tree_depth != "auto":
            check_range("tree_depth", self.tree_depth, low=0)
        if self.n_trees != "auto":
            check_range("n_trees", self.n_trees, low=1)

    def unused_settings(self) -> set[str]:
        """The settings that this network's other choices leave without effect (the periodic
        scale of a network without periodic embeddings...), which a model card leaves out
        rather than list as if they had shaped the model."""
        unused = set()
        if "periodic" not in self.numeric_embedding:
            unused.add("periodic_sigma")
        if "piecewise" not in self.numeric_embedding:
            unused |= {"n_bins", "bin_edges", "cut_min_chi2"}
        elif self.bin_edges != "tree":
            unused.add("cut_min_chi2")
        if self.tree_depth == 0:
            unused.add("n_trees")
        return unused

    def resolved(
        self, training_rows: int, training_cases: int, wide_categorical: bool = False
    ) -> NetworkSettings:
        """These settings with "auto" replaced by what suits a training set of this many
        rows, `training_cases` of them of its rarer class, with or without a wide
        categorical; a checkpoint keeps the resolved values, so it rebuilds without the
        data."""
        small = training_rows < SMALL_TRAINING_ROWS
        ensemble = small or training_cases < FEW_TRAINING_CASES
        resolved = self
        if self.ensemble_size == "auto":
            resolved = replace(resolved, ensemble_size=SMALL_DATA_ENSEMBLE_SIZE if ensemble else 1)
        if self.hidden_sizes == "auto":
            sizes = SMALL_DATA_HIDDEN_SIZES if small else HIDDEN_SIZES
            resolved = replace(resolved, hidden_sizes=list(sizes))
        trees = ensemble or wide_categorical
        if self.tree_depth == "auto":
            resolved = replace(resolved, tree_depth=AUTO_TREE_DEPTH if trees else 0)
        if self.activation == "auto":
            resolved = replace(resolved, activation="relu" if trees else SINGLE_NETWORK_ACTIVATION)
        if self.n_trees == "auto":
            boosted = resolved.tree_depth > 0 and training_rows >= BOOSTED_TREES_MIN_ROWS
            resolved = replace(resolved, n_trees=AUTO_BOOSTED_TREES if boosted else 1)
        return resolved


class LoanDefaultNet(nn.Module):
    """MLP over [embedded numerics, missing indicators, categorical embeddings, tree leaf].

    Shape: x_num (B, n_numeric) float32, x_cat (B, n_cat) int32 or int64 -> (B, k) member logits.

    The first `n_numeric - n_missing_indicators` numeric inputs are real features and go
    through the numeric embedding ("none" keeps the scalars); the last
    `n_missing_indicators` (0/1 flags) are used as they are; with `tree_depth` d > 0 the
    one-hot leaf of a depth-d tree on the training rows comes last. Cross layers, if any, come
    before the MLP (stacked DCN-v2). With `ensemble_size` k > 1 the network is a TabM-mini
    ensemble: each member sees the input through its own adapter and has its own output,
    all share the MLP; k = 1 is the plain MLP. Output biases start at the training
    log-odds, so the first steps learn features instead of the base rate.
    """

    def __init__(self, inputs: FeatureSpec, settings: NetworkSettings | None = None) -> None:
        super().__init__()
        settings = settings or NetworkSettings()
        automatic = [
            name
            for name in ("ensemble_size", "hidden_sizes", "tree_depth", "n_trees", "activation")
            if getattr(settings, name) == "auto"
        ]
        if automatic:
            raise ConfigurationError(
                f"'auto' ({', '.join(automatic)}) depends on the training set's size: build "
                "the network from NetworkSettings.resolved(rows, cases), or set a value"
            )
        _check_inputs(inputs)
        self.n_embedded = inputs.n_numeric - inputs.n_missing_indicators
        self.numeric_embedding = build_numeric_embedding(
            settings.numeric_embedding,
            self.n_embedded,
            n_bins=settings.n_bins,
            sigma=settings.periodic_sigma,
            cut_min_chi2=settings.cut_min_chi2,
        )
        numeric_width = (
            inputs.n_numeric
            if self.numeric_embedding is None
            else self.n_embedded * self.numeric_embedding.d_embedding + inputs.n_missing_indicators
        )
        self.embeddings = CategoricalEmbeddings(
            list(inputs.cardinalities),
            max_dim=settings.categorical_embedding_max_dim,
            scalar_above_p=settings.scalar_embedding_above_p,
        )
        self.tree_leaves = (
            TreeLeaves(settings.tree_depth, settings.n_trees) if settings.tree_depth else None
        )
        leaf_width = 0 if self.tree_leaves is None else self.tree_leaves.n_leaves
        widths = [numeric_width + self.embeddings.output_dim + leaf_width, *settings.hidden_sizes]
        self.cross = nn.ModuleList(CrossLayer(widths[0]) for _ in range(settings.cross_layers))
        k = settings.ensemble_size
        self.adapter = EnsembleAdapter(widths[0], k=k) if k > 1 else None
        self.blocks = nn.Sequential(
            *(
                mlp_block(
                    fan_in,
                    fan_out,
                    normalization=settings.normalization,
                    activation=settings.activation,
                    dropout=settings.dropout,
                )
                for fan_in, fan_out in pairwise(widths)
            )
        )
        log_odds = torch.logit(torch.tensor(inputs.positive_rate)).item()
        self.head = EnsembleHead(widths[-1], k=k, bias=log_odds)

    @property
    def ensemble_size(self) -> int:
        return self.head.k

    def fit_to_training_rows(
        self,
        x_num: torch.Tensor,
        x_cat: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        edges: BinEdges = "quantile",
    ) -> None:
        """Fit what the training rows set, before training: the piecewise-linear bins on the
        numeric block x_num (n, n_numeric), cut where a tree on the targets `y` cuts when
        `edges` is "tree", the tree whose leaves are inputs (x_cat (n, n_cat) codes), and
        which categoricals' embeddings keep one dimension (their levels' test against `y`).
        Embeddings without bins (none, periodic) have no bins to fit."""
        if isinstance(self.numeric_embedding, PiecewiseLinearEncoding | PeriodicAndPiecewise):
            self.numeric_embedding.fit_bins(x_num[:, : self.n_embedded], y, edges=edges)
        if self.tree_leaves is not None:
            if y is None:
                raise ValueError("the tree whose leaves are inputs needs the training targets")
            self.tree_leaves.fit(tree_inputs(x_num, x_cat), y)
        self.embeddings.fit(x_cat, y)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        x, active = self._first_layer_inputs(x_num, x_cat)
        x0 = x
        for layer in self.cross:
            x = layer(x0, x, active)
        if self.adapter is not None:
            x = self.adapter(x, active)
        first_linear, *first_block_rest = self.blocks[0]
        weight = first_linear.weight if active is None else first_linear.weight[:, active]
        h = nn.functional.linear(x, weight, first_linear.bias)
        for layer in first_block_rest:
            h = layer(h)
        return self.head(self.blocks[1:](h))

    def _first_layer_inputs(
        self, x_num: torch.Tensor, x_cat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first layer's inputs and which of its columns they are (None: all of them).

        With the piecewise encoding only the used bins are passed on: an unused bin is 0
        for every row, so leaving it out changes no output or gradient, and it makes the
        first layer 3-15x narrower on the public sets (a default fit 2-3x faster). The
        weights keep their full shape, so checkpoints do not depend on the bins used.
        """
        categorical = self.embeddings(x_cat)
        if self.tree_leaves is not None:
            categorical = torch.cat([categorical, self.tree_leaves(tree_inputs(x_num, x_cat))], 1)
        if self.numeric_embedding is None:
            return torch.cat([x_num, categorical], dim=1), None
        numeric, passthrough = x_num[:, : self.n_embedded], x_num[:, self.n_embedded :]
        if not isinstance(self.numeric_embedding, PiecewiseLinearEncoding):
            embedded = self.numeric_embedding(numeric).flatten(1)
            return torch.cat([embedded, passthrough, categorical], dim=1), None
        used = self.numeric_embedding.used_positions()
        embedded_width = self.n_embedded * self.numeric_embedding.d_embedding
        rest = torch.arange(
            embedded_width,
            embedded_width + passthrough.shape[1] + categorical.shape[1],
            device=used.device,
        )
        x = torch.cat([self.numeric_embedding.forward_used(numeric), passthrough, categorical], 1)
        return x, torch.cat([used, rest])


def tree_inputs(x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
    """The tree's view of a row: the numeric block, then the categorical codes as numbers
    (a few cuts on the codes isolate a level, as on any ordinal)."""
    return torch.cat([x_num, x_cat.to(x_num.dtype)], dim=1)


class NetworkBag(nn.ModuleList):
    """Independent networks side by side, e.g. one per bagging fold.

    Shape: x_num (B, n_numeric), x_cat (B, n_cat) -> (B, K * k): the member logits of its K
    networks of k members each, so the mean of all members' probabilities weighs each
    network 1/K.
    """

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return torch.cat([network(x_num, x_cat) for network in self], dim=1)


def _check_inputs(inputs: FeatureSpec) -> None:
    if inputs.n_numeric < 0 or (inputs.n_numeric == 0 and not inputs.cardinalities):
        raise ConfigurationError(f"the network needs at least one input, got {inputs}")
    if any(c < 2 for c in inputs.cardinalities):
        raise ConfigurationError(
            f"each categorical needs >= 2 codes (missing, unknown), got {inputs.cardinalities}"
        )
    if not 0 <= inputs.n_missing_indicators <= inputs.n_numeric:
        raise ConfigurationError(
            f"n_missing_indicators must be in [0, {inputs.n_numeric}], "
            f"got {inputs.n_missing_indicators}"
        )
    check_range(
        "positive_rate",
        inputs.positive_rate,
        low=0.0,
        high=1.0,
        low_inclusive=False,
        high_inclusive=False,
    )
