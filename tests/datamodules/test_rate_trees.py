"""The per-column rate trees: their split threshold, and the test that keeps a column's
exact-value default rates only where they say more than the tree's leaves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from datamodules import rate_trees
from datamodules.rate_trees import frequent_values_stand_out, rate_tree, tree_min_impurity_decrease


def test_threshold_shrinks_with_a_rare_default_rate():
    """At a 2 % default rate the fixed threshold finds no split worth it; the scaled one
    keeps the step at 20."""
    rng = np.random.default_rng(0)
    income = rng.uniform(0, 100, 100_000)
    default = (rng.random(len(income)) < np.where(income < 20, 0.03, 0.0175)).astype(float)
    unscaled = DecisionTreeClassifier(
        max_leaf_nodes=4,
        min_samples_leaf=rate_trees.TREE_MIN_SAMPLES_LEAF,
        min_impurity_decrease=rate_trees.TREE_MIN_IMPURITY_DECREASE,
    ).fit(income[:, None], default)
    assert unscaled.get_n_leaves() == 1
    tree = rate_tree(income, default, 4)
    assert tree.get_n_leaves() >= 2
    assert tree.tree_.threshold[0] == pytest.approx(20, abs=3)
    # From a 20 % rate of either class the threshold is the tuned one, as it was; and on
    # a few thousand rows a 6.7 % rate keeps it too, since a weaker split is not
    # significant at the 1 % level there.
    for rate, rows in ((0.2, 1000), (0.5, 1000), (0.8, 1000), (0.067, 6400)):
        targets = (np.arange(rows) < rate * rows).astype(float)
        assert tree_min_impurity_decrease(targets) == pytest.approx(
            rate_trees.TREE_MIN_IMPURITY_DECREASE
        )


def _heaped_incomes(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Incomes on a smooth range, a third of them heaped on round thousands."""
    income = rng.uniform(20_000, 80_000, rows).round()
    heaped = rng.random(rows) < 1 / 3
    income[heaped] = (income[heaped] / 1_000).round() * 1_000
    return income


def _frequent(column: np.ndarray, min_count: int = 20) -> np.ndarray:
    values, counts = np.unique(column, return_counts=True)
    return values[counts >= min_count]


def test_values_whose_rate_is_their_neighbourhoods_do_not_stand_out():
    """Default rate a smooth function of income: the round values' rates are their
    leaves' (up to noise), on any seed."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        income = _heaped_incomes(rng, 20_000)
        default = (rng.random(len(income)) < 0.4 - income / 250_000).astype(float)
        assert not frequent_values_stand_out(income, default, _frequent(income))


def test_values_with_their_own_rate_stand_out():
    """Every fifth round income belongs to a riskier kind of applicant, 30 % against its
    neighbours' 15 %: no leaf of 64 rows can hold one such value alone, the test sees it."""
    rng = np.random.default_rng(0)
    income = _heaped_incomes(rng, 20_000)
    risky = income % 5_000 == 0
    default = (rng.random(len(income)) < np.where(risky, 0.30, 0.15)).astype(float)
    assert frequent_values_stand_out(income, default, _frequent(income))
    # Without frequent values, or with each alone in its leaf, there is nothing to test.
    assert not frequent_values_stand_out(income, default, np.array([]))
    flag = (income > 50_000).astype(float)
    assert not frequent_values_stand_out(flag, default, np.array([0.0, 1.0]))
