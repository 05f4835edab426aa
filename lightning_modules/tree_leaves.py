"""A decision tree on all of a row's inputs, its leaf given to the network as 0/1 inputs.

A tree isolates a small group by a conjunction of cuts on several columns: in the Kaggle
credit-risk data every renter whose loan takes more than 30 % of their income defaulted
(2,345 rows, a third of all defaults), a rule a depth-2 tree finds from the 50 such rows of
a 1,000-row sample. An MLP on a few hundred rows only approaches such an AND, and the
piecewise encoding's ramps blur the cut itself; given the leaf, the first layer can weight
the group directly. Where the default trains an ensemble (below 5,120 training rows or
1,500 defaulters) a depth-3 tree lifted credit_risk@1k by 0.009 and credit_risk@10k by
0.005 (docs/experiments/2026-12-04-tree-leaves.md).
"""

from __future__ import annotations

import torch
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from lightning_modules.numeric_embedding import tree_min_impurity_decrease

# Leaves of at least this many training rows: half the per-feature bins' 64, so that a group
# of 50 of 640 rows can be a leaf of its own.
TREE_LEAF_MIN_ROWS = 32
# A node above the full depth passes every row to its left child: a threshold no float32
# input exceeds. Finite, so that the checkpoint's buffers pass the non-finite-weights guard.
_PASS_LEFT = torch.finfo(torch.float32).max


class TreeLeaves(nn.Module):
    """One-hot leaf of a decision tree of depth `depth` fitted on the training rows.

    Shape: x (B, d) -> (B, 2 ** depth).

    The tree is stored as a complete binary tree in heap order (node i's children are 2i + 1
    and 2i + 2), a feature index and a threshold per inner node, so the buffers' shapes
    depend on the depth alone and a checkpoint loads before any data is seen. A leaf that
    scikit-learn's tree reaches above the full depth sends its rows down its left side; the
    leaf slots it leaves empty are 0 for every row.
    """

    def __init__(self, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"a tree needs depth >= 1, got {depth}")
        self.depth = depth
        self.n_leaves = 2**depth
        self.register_buffer("feature", torch.zeros(self.n_leaves - 1, dtype=torch.long))
        self.register_buffer("threshold", torch.full((self.n_leaves - 1,), _PASS_LEFT))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fit the tree on training rows x (n, d) and their 0/1 targets y (n,).

        Splits need the impurity decrease the per-feature bins need, which shrinks with the
        default rate, so rare defaults alone do not flatten the tree.
        """
        x, y = x.detach().cpu(), y.detach().cpu()
        tree = DecisionTreeClassifier(
            max_depth=self.depth,
            min_samples_leaf=TREE_LEAF_MIN_ROWS,
            min_impurity_decrease=tree_min_impurity_decrease(y),
            random_state=0,
        ).fit(x.numpy(), y.numpy())
        feature = torch.zeros_like(self.feature, device="cpu")
        threshold = torch.full_like(self.threshold, _PASS_LEFT, device="cpu")
        nodes = tree.tree_
        pending = [(0, 0, 0)]  # (scikit-learn node, heap position, depth)
        while pending:
            node, position, level = pending.pop()
            if level == self.depth:
                continue
            left, right = int(nodes.children_left[node]), int(nodes.children_right[node])
            if left == right:  # a leaf: its rows go left until the full depth
                pending.append((node, 2 * position + 1, level + 1))
                continue
            feature[position] = int(nodes.feature[node])
            threshold[position] = float(nodes.threshold[node])
            pending += [(left, 2 * position + 1, level + 1), (right, 2 * position + 2, level + 1)]
        self.feature.copy_(feature)
        self.threshold.copy_(threshold)

    def leaf_index(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, d) -> (B,) leaf in [0, 2 ** depth)."""
        return self._path(x)[1]

    def _path(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: x (B, d) -> the inner nodes on each row's path, root first (B, depth),
        as heap positions, and the row's leaf (B,)."""
        position = torch.zeros(len(x), dtype=torch.long, device=x.device)
        rows = torch.arange(len(x), device=x.device)
        nodes = []
        for _ in range(self.depth):
            nodes.append(position)
            goes_right = x[rows, self.feature[position]] > self.threshold[position]
            position = 2 * position + 1 + goes_right.long()
        return torch.stack(nodes, dim=1), position - (self.n_leaves - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(self.leaf_index(x), self.n_leaves).to(x.dtype)

    def attributions_by_feature(
        self, leaf_attributions: torch.Tensor, x: torch.Tensor, reference: torch.Tensor
    ) -> torch.Tensor:
        """Attributions to the one-hot leaf inputs, moved onto the tree's input features.

        Shape: leaf_attributions (n, 2 ** depth), x (n, d), reference (1, d) -> (n, d).

        Along the path from the reference's inputs to a row's, only two leaf inputs move:
        the row's leaf (0 -> 1) and the reference's (1 -> 0). Each one's attribution is split
        equally among the features whose cuts on that leaf's path the other one fails: the
        conditions that put the row, and not the reference, in its leaf (and the other way).
        """
        reference = reference.expand_as(x)
        rows = torch.arange(len(x), device=x.device)
        by_feature = torch.zeros_like(x)
        for own, other in ((x, reference), (reference, x)):
            leaf, failed = self._cuts_failed(own, other)
            share = leaf_attributions[rows, leaf] / failed.sum(dim=1).clamp_min(1)
            by_feature += failed * share[:, None]
        return by_feature

    def _cuts_failed(self, own: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Shape: own, other (B, d) -> own's leaf (B,) and (B, d) bool: the features whose
        cuts on own's path send `other` the other way (a node that passes every row left
        cuts nothing)."""
        nodes, leaf = self._path(own)
        feature, threshold = self.feature[nodes], self.threshold[nodes]
        parts = (own.gather(1, feature) > threshold) != (other.gather(1, feature) > threshold)
        parts &= threshold < _PASS_LEFT
        # Summed, not scattered: a feature cut twice on the path is failed if either cut is.
        failed = torch.zeros_like(own).scatter_add_(1, feature, parts.to(own.dtype))
        return leaf, failed > 0
