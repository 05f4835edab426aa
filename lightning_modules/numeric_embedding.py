"""Embeddings for numerical features (Gorishniy et al. 2022, "On Embeddings for Numerical
Features in Tabular Deep Learning").

An MLP fed raw scalars is biased towards smooth functions of each feature; credit data is
full of steps and kinks (a delinquency count of 0 vs 1, utilisation above 90 %). Mapping
each scalar to a vector first lets the first layer express such shapes:

- `PeriodicEmbeddings` ("PLR"): per feature, [cos(2 pi c x), sin(2 pi c x)] with trainable
  frequencies c ~ N(0, sigma), then a per-feature Linear and ReLU.
- `PiecewiseLinearEncoding` ("PLE", parameter-free): per feature, one value per bin of the
  training data: 0 left of the bin, 1 right of it, linear inside. Bins are cut at
  quantiles, or ("PLE-T") where a decision tree on that feature and the target cuts.
- `PeriodicAndPiecewise`: both side by side.

All map (B, n_features) -> (B, n_features, d); the network flattens the result.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from contracts.choices import check_choice

if TYPE_CHECKING:
    from sklearn.tree._tree import Tree  # a fitted estimator's `tree_`

NumericEmbeddingKind = Literal["none", "periodic", "piecewise", "periodic_piecewise"]
BinEdges = Literal["quantile", "tree"]
# Target-aware bins as in Gorishniy et al. 2022 and TabM's recommended setting: leaves of at
# least 64 rows, and a split only where it lowers the impurity noticeably.
TREE_MIN_SAMPLES_LEAF = 64
TREE_MIN_IMPURITY_DECREASE = 1e-4
# Where the rarer class is below this share of the training rows, the impurity decrease a
# split needs shrinks with the root's Gini impurity, so that bins keep their resolution as
# defaulters get rarer. The fixed 1e-4 suits rates of 20-50 %; at a 2 % default rate the
# root's impurity is a tenth of a 22 % set's, and the same threshold gave credit_risk's 14
# embedded columns 22 bins in all instead of the full set's 209 (taiwan: 62 instead of
# 263); with this rule and the floor below, 74 and 95
# (docs/experiments/2026-12-03-rare-default-bins.md).
TREE_FULL_THRESHOLD_RATE = 0.2
# ... but never below the decrease of a root split that is significant at the 1 % level
# (chi-square 6.63, one degree of freedom): with 427 defaulters among 6,400 rows (gmsc@10k)
# the scaled threshold alone let noise cut bins and cost 0.005 ROC-AUC.
TREE_MIN_SPLIT_CHI2 = 6.63
# Bins are fitted on at most this many training rows (a fixed random sample beyond it): at
# 6.4M training rows the 20 per-feature trees held up the first batch for 53 s
# (docs/scaling.md), and edges at this many rows are already as fine as 48 bins can be.
# Every public set is far below it, so its bins are those of all its rows.
BIN_FIT_MAX_ROWS = 1_048_576


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
    """PLE on quantile or decision-tree bins of the training data; no trainable parameters.

    Shape: x (B, n_features) -> (B, n_features, n_bins).

    The bin edges are buffers, so they travel in the checkpoint as plain tensors; they are
    placeholders until `fit_bins` sees the training rows (a checkpoint restores them). A
    feature with fewer distinct quantiles or tree cuts than `n_bins` (a count with few
    values) uses fewer bins; the unused ones are masked to 0. The first bin is open to the
    left and a feature's last used bin open to the right, so values outside the training
    range stay ordered.
    """

    def __init__(self, n_features: int, *, n_bins: int = 48, cut_min_chi2: float = 0.0) -> None:
        super().__init__()
        _check_positive(n_features=n_features, n_bins=n_bins)
        if n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        if cut_min_chi2 < 0:
            raise ValueError(f"cut_min_chi2 must be >= 0, got {cut_min_chi2}")
        self.d_embedding = n_bins
        self.cut_min_chi2 = cut_min_chi2
        edges = torch.arange(n_bins + 1, dtype=torch.float32).repeat(n_features, 1)
        self.register_buffer("edges", edges)
        self.register_buffer("bin_mask", torch.ones(n_features, n_bins))
        self._used_cache: tuple[tuple, tuple[torch.Tensor, ...]] | None = None

    @torch.no_grad()
    def fit_bins(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, edges: BinEdges = "quantile"
    ) -> None:
        """Set the edges from the training rows x (n, n_features), and targets y for "tree"."""
        n_features = self.bin_mask.shape[0]
        if x.ndim != 2 or x.shape[1] != n_features or len(x) < 2:
            raise ValueError(
                f"fit_bins needs training rows (n >= 2, {n_features}), got {tuple(x.shape)}"
            )
        check_choice("edges", edges, BinEdges)
        if edges == "tree" and (y is None or len(y) != len(x)):
            raise ValueError("tree bins need one target per training row")
        # Lightning builds the model under the accelerator's default device; the edges are
        # computed on the CPU (scikit-learn needs it) and then copied into the buffers.
        with torch.device("cpu"):
            x, y = x.cpu(), None if y is None else y.cpu()
            if len(x) > BIN_FIT_MAX_ROWS:
                # Its own generator: the sample is the same in every run, and training's
                # random stream is not advanced by it.
                generator = torch.Generator().manual_seed(0)
                rows = torch.randperm(len(x), generator=generator)[:BIN_FIT_MAX_ROWS]
                x, y = x[rows], None if y is None else y[rows]
            fitted = [
                self._fitted_edges(x[:, feature].double(), y, edges)
                for feature in range(n_features)
            ]
        for feature, (feature_edges, mask) in enumerate(fitted):
            self.edges[feature] = feature_edges
            self.bin_mask[feature] = mask

    def _fitted_edges(
        self, column: torch.Tensor, y: torch.Tensor | None, edges: BinEdges
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One feature's n_bins + 1 edges (unused ones padded above) and its bin mask."""
        n_bins = self.bin_mask.shape[1]
        candidates = (
            _quantile_edges(column, n_bins)
            if edges == "quantile"
            else _tree_edges(column, y, n_bins, self.cut_min_chi2)
        )
        # Sorted and deduplicated as float32, the dtype the edges are stored in: two float64
        # edges that round to the same float32 value would make a zero-width bin.
        distinct = torch.unique(candidates.float()).double()
        used = len(distinct) - 1
        padding = distinct[-1] + torch.arange(1, n_bins - used + 1, dtype=torch.float64)
        return torch.cat([distinct, padding]).float(), (torch.arange(n_bins) < used).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.edges[:, :-1], self.edges[:, 1:]
        ratio = (x[..., None] - left) / (right - left)
        lower, upper = self._clamp_bounds()
        return torch.clamp(ratio, lower, upper) * self.bin_mask

    def used_positions(self) -> torch.Tensor:
        """Where the used bins sit in the flattened (n_features * n_bins) output, in order."""
        return self._used_bins()[0]

    def forward_used(self, x: torch.Tensor) -> torch.Tensor:
        """Only the used bins: `forward(x).flatten(1)[:, used_positions()]`, computed directly.

        Shape: x (B, n_features) -> (B, n_used).

        Tree bins leave most of the n_bins slots empty (on the public sets 7-29 % are used:
        taiwan 263 of 1,920, gmsc 64 of 960), and an empty bin is 0 for every row, so the
        network's first layer multiplies by the used bins alone.
        """
        _, feature, left, width, lower, upper = self._used_bins()
        return torch.clamp((x[:, feature] - left) / width, lower, upper)

    def _clamp_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per (feature, bin): the first bin is open to the left, the last used one to the
        right; the others clamp to [0, 1]."""
        n_bins = self.bin_mask.shape[1]
        last_used = (self.bin_mask.sum(dim=1, keepdim=True) - 1).clamp_min(0)
        bins = torch.arange(n_bins, device=self.edges.device)
        lower = torch.where(bins == 0, -torch.inf, 0.0).expand_as(self.bin_mask)
        upper = torch.where(bins == last_used, torch.inf, 1.0)
        return lower, upper

    def _used_bins(self) -> tuple[torch.Tensor, ...]:
        """Positions, feature index, left edge, width and clamp bounds of each used bin.

        Cached until the buffers change (`fit_bins`, a loaded checkpoint, a device move):
        the gather indices come from `nonzero`, which would stall a GPU on every step. Made
        outside inference mode, so that a cache filled while predicting also serves a
        forward pass that autograd records (the reason codes' attributions).
        """
        key = tuple((t.data_ptr(), t._version) for t in (self.edges, self.bin_mask))
        if self._used_cache is None or self._used_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                self._used_cache = (key, self._compute_used_bins())
        return self._used_cache[1]

    def _compute_used_bins(self) -> tuple[torch.Tensor, ...]:
        positions = self.bin_mask.flatten().nonzero().squeeze(1)
        n_bins = self.bin_mask.shape[1]
        left = self.edges[:, :-1].flatten()[positions]
        width = (self.edges[:, 1:] - self.edges[:, :-1]).flatten()[positions]
        lower, upper = (bound.flatten()[positions] for bound in self._clamp_bounds())
        return positions, positions // n_bins, left, width, lower, upper


class PeriodicAndPiecewise(nn.Module):
    """Both views of each feature side by side: PLR's smooth shapes and PLE's sharp cuts.

    Shape: x (B, n_features) -> (B, n_features, d_periodic + n_bins).
    """

    def __init__(
        self, n_features: int, *, n_bins: int, sigma: float, cut_min_chi2: float = 0.0
    ) -> None:
        super().__init__()
        self.periodic = PeriodicEmbeddings(n_features, sigma=sigma)
        self.piecewise = PiecewiseLinearEncoding(
            n_features, n_bins=n_bins, cut_min_chi2=cut_min_chi2
        )
        self.d_embedding = self.periodic.d_embedding + self.piecewise.d_embedding

    def fit_bins(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, edges: BinEdges = "quantile"
    ) -> None:
        self.piecewise.fit_bins(x, y, edges=edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.periodic(x), self.piecewise(x)], dim=-1)


def build_numeric_embedding(
    kind: NumericEmbeddingKind,
    n_features: int,
    *,
    n_bins: int,
    sigma: float,
    cut_min_chi2: float = 0.0,
) -> PeriodicEmbeddings | PiecewiseLinearEncoding | PeriodicAndPiecewise | None:
    """The embedding module a network option names, or None for raw scalars."""
    check_choice("numeric_embedding", kind, NumericEmbeddingKind)
    if kind == "none" or n_features == 0:
        return None
    if kind == "periodic":
        return PeriodicEmbeddings(n_features, sigma=sigma)
    if kind == "periodic_piecewise":
        return PeriodicAndPiecewise(
            n_features, n_bins=n_bins, sigma=sigma, cut_min_chi2=cut_min_chi2
        )
    return PiecewiseLinearEncoding(n_features, n_bins=n_bins, cut_min_chi2=cut_min_chi2)


def _quantile_edges(column: torch.Tensor, n_bins: int) -> torch.Tensor:
    levels = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    return torch.quantile(column, levels)


def _tree_edges(
    column: torch.Tensor, y: torch.Tensor, n_bins: int, cut_min_chi2: float
) -> torch.Tensor:
    """The feature's range cut at the thresholds of a tree fitted on it alone.

    A decision tree puts its cuts where the default rate changes most, e.g. at a lender's
    policy cut-off (income 20,000, loan share 30 %), which quantile bins blur. With
    `cut_min_chi2` > 0 the feature keeps its cuts only if the tree's first one is that
    significant, and is otherwise one bin, a linear input: on a few hundred rows a column
    of pure noise passes the impurity threshold with cuts of its own, which the network
    then fits.
    """
    tree = DecisionTreeClassifier(
        max_leaf_nodes=n_bins,
        min_samples_leaf=TREE_MIN_SAMPLES_LEAF,
        min_impurity_decrease=tree_min_impurity_decrease(y),
        random_state=0,
    ).fit(column.numpy()[:, None], y.numpy())
    if cut_min_chi2 > 0 and _root_cut_chi2(tree.tree_) < cut_min_chi2:
        return torch.stack([column.min(), column.max()])
    is_split = tree.tree_.children_left != tree.tree_.children_right
    thresholds = torch.from_numpy(tree.tree_.threshold[is_split])
    return torch.cat([column.min()[None], thresholds, column.max()[None]])


def _root_cut_chi2(nodes: Tree) -> float:
    """Pearson's chi-square of the 2 x 2 table (side of the root cut x class), 0 without a
    cut: n (1 - G_children / G_root), with G the Gini impurities, is exactly that
    statistic for a binary target."""
    left, right = int(nodes.children_left[0]), int(nodes.children_right[0])
    if left == right:
        return 0.0
    rows, impurity = nodes.weighted_n_node_samples, nodes.impurity
    children = (rows[left] * impurity[left] + rows[right] * impurity[right]) / rows[0]
    return float(rows[0] * (1 - children / impurity[0]))  # a node with a cut has impurity > 0


def tree_min_impurity_decrease(y: torch.Tensor) -> float:
    """TREE_MIN_IMPURITY_DECREASE, scaled by the Gini impurity of targets y relative to
    that of a TREE_FULL_THRESHOLD_RATE default rate where y's rarer class is rarer, but
    not below the decrease of a significant split (TREE_MIN_SPLIT_CHI2).

    scikit-learn's threshold is absolute, while a split's impurity decrease is
    proportional to the root's Gini impurity G = 2p(1 - p) at a default rate p: without
    the scaling, rare defaults alone would flatten every feature to one or two bins. A root
    split of n rows with chi-square statistic c lowers the impurity by c * G / n, which
    sets the floor; from a 20 % rate the threshold is the tuned one, as it was.
    """
    rate = float(y.double().mean())
    impurity, full = rate * (1 - rate), TREE_FULL_THRESHOLD_RATE * (1 - TREE_FULL_THRESHOLD_RATE)
    scaled = TREE_MIN_IMPURITY_DECREASE * min(1.0, impurity / full)
    significant = TREE_MIN_SPLIT_CHI2 * 2 * impurity / len(y)
    return min(TREE_MIN_IMPURITY_DECREASE, max(scaled, significant))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
