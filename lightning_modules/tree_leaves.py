"""Decision trees on all of a row's inputs, their leaves given to the network as 0/1 inputs.

A tree isolates a small group by a conjunction of cuts on several columns: in the Kaggle
credit-risk data every renter whose loan takes more than 30 % of their income defaulted
(2,345 rows, a third of all defaults), a rule a depth-2 tree finds from the 50 such rows of
a 1,000-row sample. An MLP on a few hundred rows only approaches such an AND, and the
piecewise encoding's ramps blur the cut itself; given the leaf, the first layer can weight
the group directly. Where the default trains an ensemble (below 5,120 training rows or
1,500 defaulters) a depth-3 tree lifted credit_risk@1k by 0.009 and credit_risk@10k by
0.005 (docs/experiments/2026-12-04-tree-leaves.md). Boosted trees add the groups the first
one leaves mixed: 16 of them instead of one gained another 0.003 on the ensembles of at
least 1,000 training rows (docs/experiments/2026-12-04-boosted-tree-leaves.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from lightning_modules.numeric_embedding import tree_min_impurity_decrease

if TYPE_CHECKING:
    from sklearn.tree._tree import Tree  # a fitted estimator's `tree_`

# Leaves of at least this many training rows: half the per-feature bins' 64, so that a group
# of 50 of 640 rows can be a leaf of its own.
TREE_LEAF_MIN_ROWS = 32
# A node above the full depth passes every row to its left child: a threshold no float32
# input exceeds. Finite, so that the checkpoint's buffers pass the non-finite-weights guard.
_PASS_LEFT = torch.finfo(torch.float32).max
# Several trees are boosted at the full Newton step: within each leaf of the trees before it
# the error is then about balanced, so a later tree cuts elsewhere rather than again.
BOOSTING_LEARNING_RATE = 1.0


class TreeLeaves(nn.Module):
    """One-hot leaves of `n_trees` boosted decision trees of depth `depth` fitted on the
    training rows.

    Shape: x (B, d) -> (B, n_trees * 2 ** depth), tree by tree.

    Each tree is stored as a complete binary tree in heap order (node i's children are
    2i + 1 and 2i + 2), a feature index and a threshold per inner node, so the buffers'
    shapes depend on the depth and the number of trees alone and a checkpoint loads before
    any data is seen. A leaf that scikit-learn's tree reaches above the full depth sends
    its rows down its left side; the leaf slots it leaves empty are 0 for every row.
    """

    def __init__(self, depth: int, n_trees: int = 1) -> None:
        super().__init__()
        if depth < 1 or n_trees < 1:
            raise ValueError(f"trees need depth >= 1 and n_trees >= 1, got {depth}, {n_trees}")
        self.depth = depth
        self.n_trees = n_trees
        self.leaves_per_tree = 2**depth
        self.n_leaves = n_trees * self.leaves_per_tree
        inner = self.leaves_per_tree - 1
        self.register_buffer("feature", torch.zeros(n_trees, inner, dtype=torch.long))
        self.register_buffer("threshold", torch.full((n_trees, inner), _PASS_LEFT))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fit the trees on training rows x (n, d) and their 0/1 targets y (n,).

        One tree is a classification tree on the targets; more are the trees of gradient
        boosting (log-loss, learning rate BOOSTING_LEARNING_RATE), each cutting where the
        ones before it leave the most error. Splits need the impurity decrease the
        per-feature bins need, which shrinks with the default rate, so rare defaults alone
        do not flatten the trees.
        """
        decrease = tree_min_impurity_decrease(y)
        x, y = x.detach().cpu().numpy(), y.detach().cpu().numpy()
        settings = {
            "max_depth": self.depth,
            "min_samples_leaf": TREE_LEAF_MIN_ROWS,
            "random_state": 0,
        }
        if self.n_trees == 1:
            tree = DecisionTreeClassifier(min_impurity_decrease=decrease, **settings)
            trees = [tree.fit(x, y).tree_]
        else:
            # A regression tree on the first residuals y - p cuts where the Gini tree does,
            # at half the impurity (p(1 - p) against 2p(1 - p)).
            boosting = GradientBoostingClassifier(
                n_estimators=self.n_trees,
                learning_rate=BOOSTING_LEARNING_RATE,
                min_impurity_decrease=decrease / 2,
                **settings,
            ).fit(x, y)
            trees = [estimator.tree_ for estimator in boosting.estimators_[:, 0]]
        feature = torch.zeros_like(self.feature, device="cpu")
        threshold = torch.full_like(self.threshold, _PASS_LEFT, device="cpu")
        for index, nodes in enumerate(trees):
            _store_in_heap_order(nodes, self.depth, feature[index], threshold[index])
        self.feature.copy_(feature)
        self.threshold.copy_(threshold)

    def leaf_index(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, d) -> (B, n_trees) each tree's leaf in [0, 2 ** depth)."""
        return self._path(x)[1]

    def _path(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: x (B, d) -> the inner nodes on each row's path in each tree, root first
        (B, n_trees, depth), as heap positions, and the row's leaf in each tree (B, n_trees)."""
        position = torch.zeros(len(x), self.n_trees, dtype=torch.long, device=x.device)
        trees = torch.arange(self.n_trees, device=x.device)
        nodes = []
        for _ in range(self.depth):
            nodes.append(position)
            feature, threshold = self.feature[trees, position], self.threshold[trees, position]
            goes_right = x.gather(1, feature) > threshold
            position = 2 * position + 1 + goes_right.long()
        return torch.stack(nodes, dim=2), position - (self.leaves_per_tree - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            nn.functional.one_hot(self.leaf_index(x), self.leaves_per_tree).flatten(1).to(x.dtype)
        )

    def attributions_by_feature(
        self, leaf_attributions: torch.Tensor, x: torch.Tensor, reference: torch.Tensor
    ) -> torch.Tensor:
        """Attributions to the one-hot leaf inputs, moved onto the trees' input features.

        Shape: leaf_attributions (n, n_trees * 2 ** depth), x (n, d), reference (1, d) ->
        (n, d).

        Along the path from the reference's inputs to a row's, only two leaf inputs of a
        tree move: the row's leaf (0 -> 1) and the reference's (1 -> 0). Each one's
        attribution is split equally among the features whose cuts on that leaf's path the
        other one fails: the conditions that put the row, and not the reference, in its leaf
        (and the other way).
        """
        reference = reference.expand_as(x)
        per_tree = leaf_attributions.unflatten(1, (self.n_trees, self.leaves_per_tree))
        by_feature = torch.zeros_like(x)
        for own, other in ((x, reference), (reference, x)):
            leaf, failed = self._cuts_failed(own, other)
            share = per_tree.gather(2, leaf[:, :, None])[:, :, 0] / failed.sum(2).clamp_min(1)
            by_feature += (failed * share[:, :, None]).sum(dim=1)
        return by_feature

    def _cuts_failed(self, own: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Shape: own, other (B, d) -> own's leaves (B, n_trees) and (B, n_trees, d): 1 for
        the features whose cuts on own's path in a tree send `other` the other way (a node
        that passes every row left cuts nothing)."""
        nodes, leaf = self._path(own)
        trees = torch.arange(self.n_trees, device=own.device)[:, None]
        feature, threshold = self.feature[trees, nodes], self.threshold[trees, nodes]
        columns, cuts = feature.flatten(1), threshold.flatten(1)
        parts = (own.gather(1, columns) > cuts) != (other.gather(1, columns) > cuts)
        parts &= cuts < _PASS_LEFT
        # Summed, not scattered: a feature cut twice on a path is failed if either cut is.
        failed = own.new_zeros(len(own), self.n_trees, own.shape[1])
        failed.scatter_add_(2, feature, parts.unflatten(1, feature.shape[1:]).to(own.dtype))
        return leaf, (failed > 0).to(own.dtype)


def _store_in_heap_order(
    nodes: Tree, depth: int, feature: torch.Tensor, threshold: torch.Tensor
) -> None:
    """Write scikit-learn's tree `nodes` into one tree's heap-ordered buffers."""
    pending = [(0, 0, 0)]  # (scikit-learn node, heap position, depth)
    while pending:
        node, position, level = pending.pop()
        if level == depth:
            continue
        left, right = int(nodes.children_left[node]), int(nodes.children_right[node])
        if left == right:  # a leaf: its rows go left until the full depth
            pending.append((node, 2 * position + 1, level + 1))
            continue
        feature[position] = int(nodes.feature[node])
        threshold[position] = float(nodes.threshold[node])
        pending += [(left, 2 * position + 1, level + 1), (right, 2 * position + 2, level + 1)]
