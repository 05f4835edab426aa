"""Where one numeric column's default rate changes: a decision tree on that column alone.

Two consumers read it. The piecewise-linear encoding cuts its bins at the tree's thresholds
(`lightning_modules/numeric_embedding.py`), and the value statistics keep a column's
exact-value default rates only where they differ from the rate of the tree's leaf around
them (`frequent_values_stand_out`), i.e. where the value says more than its neighbourhood,
which the bins already give the network.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.tree import DecisionTreeClassifier

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
# The leaves the value statistics' test compares values with: the encoding's default bins.
NEIGHBOURHOOD_LEAVES = 48
# A column's frequent values get their own default rates only where the test rejects "each
# value's rate is its leaf's" at this level. Per column, so over a set's 10-20 columns about
# one in a hundred sets keeps one column by chance; at 1 % taiwan@10k, where the rates
# cost accuracy, would keep four (docs/experiments/2026-12-03-value-rate-test.md).
VALUE_RATE_SIGNIFICANCE = 1e-3


def rate_tree(column: np.ndarray, targets: np.ndarray, max_leaves: int) -> DecisionTreeClassifier:
    """A tree of at most `max_leaves` leaves on the column (n,) alone, fitted to targets (n,).

    A tree puts its cuts where the default rate changes most, e.g. at a lender's policy
    cut-off (income 20,000, loan share 30 %), which quantile bins blur.
    """
    return DecisionTreeClassifier(
        max_leaf_nodes=max_leaves,
        min_samples_leaf=TREE_MIN_SAMPLES_LEAF,
        min_impurity_decrease=tree_min_impurity_decrease(targets),
        random_state=0,
    ).fit(column[:, None], targets)


def tree_min_impurity_decrease(targets: np.ndarray) -> float:
    """TREE_MIN_IMPURITY_DECREASE, scaled by the Gini impurity of the targets relative to
    that of a TREE_FULL_THRESHOLD_RATE default rate where their rarer class is rarer, but
    not below the decrease of a significant split (TREE_MIN_SPLIT_CHI2).

    scikit-learn's threshold is absolute, while a split's impurity decrease is
    proportional to the root's Gini impurity G = 2p(1 - p) at a default rate p: without
    the scaling, rare defaults alone would flatten every feature to one or two bins. A root
    split of n rows with chi-square statistic c lowers the impurity by c * G / n, which
    sets the floor; from a 20 % rate the threshold is the tuned one, as it was.
    """
    rate = float(np.mean(targets, dtype=np.float64))
    impurity, full = rate * (1 - rate), TREE_FULL_THRESHOLD_RATE * (1 - TREE_FULL_THRESHOLD_RATE)
    scaled = TREE_MIN_IMPURITY_DECREASE * min(1.0, impurity / full)
    significant = TREE_MIN_SPLIT_CHI2 * 2 * impurity / len(targets)
    return min(TREE_MIN_IMPURITY_DECREASE, max(scaled, significant))


def frequent_values_stand_out(column: np.ndarray, targets: np.ndarray, values: np.ndarray) -> bool:
    """Whether the default rates of the column's frequent `values` differ from those of the
    rate tree's leaves that hold them (likelihood-ratio test at VALUE_RATE_SIGNIFICANCE).

    A value's rate that its leaf's explains is noise to the network: the piecewise encoding
    already places the value in that leaf. On gmsc@10k and taiwan's 2 % sample no column
    passes, and there the rates had cost up to 0.006 ROC-AUC; credit_risk's incomes and
    loan amounts (round figures that name a kind of applicant) pass with p < 1e-10.

    The statistic G = 2 sum_v [k_v log(p_v / p_l) + (n_v - k_v) log((1 - p_v) / (1 - p_l))]
    over the values v (n_v rows, k_v defaulters, rate p_v) in leaves l (rate p_l) is
    chi-square with one degree of freedom per value beyond the first in each leaf: a value
    that fills its leaf alone cannot differ from it. `column` (n,) holds the training
    rows without missing values, `targets` (n,) their 0/1 labels.
    """
    if len(values) == 0:
        return False
    leaves = rate_tree(column, targets, NEIGHBOURHOOD_LEAVES).apply(column[:, None])
    _, leaf_of_row = np.unique(leaves, return_inverse=True)
    leaf_rate = np.bincount(leaf_of_row, weights=targets) / np.bincount(leaf_of_row)
    position = np.searchsorted(values, column).clip(max=len(values) - 1)
    frequent = values[position] == column
    value_of_row = position[frequent]
    n = np.bincount(value_of_row, minlength=len(values)).astype(np.float64)
    k = np.bincount(value_of_row, weights=targets[frequent], minlength=len(values))
    held = n > 0
    value_leaf = np.zeros(len(values), dtype=np.int64)
    value_leaf[value_of_row] = leaf_of_row[frequent]
    n, k, p_leaf = n[held], k[held], leaf_rate[value_leaf[held]]
    freedom = len(n) - len(np.unique(value_leaf[held]))
    if freedom < 1:
        return False
    statistic = 2 * (
        _log_ratio_sum(k, k / n, p_leaf) + _log_ratio_sum(n - k, 1 - k / n, 1 - p_leaf)
    )
    return bool(stats.chi2.sf(statistic, freedom) < VALUE_RATE_SIGNIFICANCE)


def _log_ratio_sum(count: np.ndarray, rate: np.ndarray, reference: np.ndarray) -> float:
    """sum(count * log(rate / reference)), with 0 * log 0 = 0."""
    present = count > 0
    return float(np.sum(count[present] * np.log(rate[present] / reference[present])))
