import pytest
import torch
from sklearn.tree import DecisionTreeClassifier

from contracts.features import FeatureSpec
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.networks import NetworkSettings
from lightning_modules.numeric_embedding import tree_min_impurity_decrease
from lightning_modules.tree_leaves import TREE_LEAF_MIN_ROWS, TreeLeaves


def renters_with_large_loans(rows: int = 2_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Column 0: the loan's share of income, column 1: noise, column 2: a home-ownership
    code; every renter (code 3) with a share above 0.3 defaults, others at 10 %."""
    generator = torch.Generator().manual_seed(0)
    x = torch.stack(
        [
            torch.rand(rows, generator=generator) * 0.6,
            torch.randn(rows, generator=generator),
            torch.randint(0, 4, (rows,), generator=generator).float(),
        ],
        dim=1,
    )
    noise = torch.rand(rows, generator=generator) < 0.1
    return x, (((x[:, 0] > 0.3) & (x[:, 2] == 3)) | noise).float()


def test_a_depth_2_tree_gives_the_conjunction_a_leaf_of_its_own():
    x, y = renters_with_large_loans()
    tree = TreeLeaves(2)
    tree.fit(x, y)
    leaves = tree(x)
    assert leaves.shape == (len(x), 4) and torch.equal(leaves.sum(dim=1), torch.ones(len(x)))
    group = (x[:, 0] > 0.31) & (x[:, 2] == 3)
    (group_leaf,) = leaves[group].argmax(dim=1).unique().tolist()
    others = leaves[(x[:, 0] < 0.29) | (x[:, 2] != 3)].argmax(dim=1)
    assert (others != group_leaf).all()
    assert y[leaves[:, group_leaf] == 1].mean() > 0.98


def test_leaves_partition_the_rows_as_scikit_learns_tree_does():
    """Heap-ordered buffers reproduce the fitted tree, including leaves above the full depth
    (a pure root child stops early) and the slots they leave empty."""
    x, y = renters_with_large_loans()
    x[:, 1] = torch.where(x[:, 1] > 1.5, 10.0, x[:, 1])
    y = torch.where(x[:, 1] > 1.5, 1.0, y)  # a pure group: its leaf stops at depth 1
    tree = TreeLeaves(3)
    tree.fit(x, y)
    ours = tree.leaf_index(x)[:, 0]
    reference = DecisionTreeClassifier(
        max_depth=3,
        min_samples_leaf=TREE_LEAF_MIN_ROWS,
        min_impurity_decrease=tree_min_impurity_decrease(y),
        random_state=0,
    ).fit(x.numpy(), y.numpy())
    theirs = torch.from_numpy(reference.apply(x.numpy()))
    pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
    assert len(pairs) == len(ours.unique()) == len(theirs.unique()) < 8


def test_boosted_trees_cut_where_the_first_leaves_the_error():
    """Two additive causes and stumps: a single stump can cut only one of them; the second
    boosted stump cuts the other, and both trees' leaves reach the network."""
    x, y = renters_with_large_loans()
    y = ((x[:, 0] > 0.3) | (x[:, 1] > 0.5)).float()
    stumps = TreeLeaves(1, n_trees=2)
    stumps.fit(x, y)
    assert sorted(stumps.feature[:, 0].tolist()) == [0, 1]
    leaves = stumps(x)
    assert leaves.shape == (len(x), 4)
    torch.testing.assert_close(leaves.unflatten(1, (2, 2)).sum(dim=2), torch.ones(len(x), 2))


def test_the_trees_travel_in_the_state_dict():
    x, y = renters_with_large_loans()
    fitted, restored = TreeLeaves(2, n_trees=3), TreeLeaves(2, n_trees=3)
    fitted.fit(x, y)
    restored.load_state_dict(fitted.state_dict())
    assert torch.equal(restored(x), fitted(x))
    with pytest.raises(ValueError, match="depth >= 1"):
        TreeLeaves(0)


def test_a_leaf_attribution_moves_onto_the_cuts_the_reference_fails():
    x, y = renters_with_large_loans()
    tree = TreeLeaves(2)
    tree.fit(x, y)
    reference = torch.tensor([[0.1, 0.0, 3.0]])  # a renter with a small loan
    rows = torch.tensor([[0.5, 0.0, 3.0], [0.5, 0.0, 0.0]])  # a large loan; not renting too
    leaf = tree.leaf_index(rows)[:, 0]
    assert leaf[0] != leaf[1] != tree.leaf_index(reference)[0, 0]
    leaf_attributions = torch.zeros(2, 4)
    leaf_attributions[:, tree.leaf_index(reference)[0]] = -0.5
    leaf_attributions[torch.arange(2), leaf] = 2.0
    by_feature = tree.attributions_by_feature(leaf_attributions, rows, reference)
    # Renting like the reference, the first row is in its leaf by the loan's share alone.
    torch.testing.assert_close(by_feature[0], torch.tensor([1.5, 0.0, 0.0]))
    # Contributions are moved, not made: each row's add up to its leaves' attributions.
    torch.testing.assert_close(by_feature.sum(dim=1), torch.tensor([1.5, 1.5]))
    assert by_feature[1, 1] == 0 and by_feature[1, 2] != 0


def test_reason_codes_with_a_tree_still_add_up_to_the_logit():
    """Integrated gradients cannot see a leaf flip on a path through the inputs, so the
    leaves are attributed at their one-hot inputs: completeness holds."""
    torch.manual_seed(0)
    x, y = renters_with_large_loans()
    inputs = FeatureSpec(2, (5,), positive_rate=float(y.mean()))
    settings = NetworkSettings(
        hidden_sizes=[16],
        ensemble_size=2,
        tree_depth=2,
        n_trees=3,
        numeric_embedding="none",
        activation="relu",
    )
    model = LoanDefaultModel(net=settings, inputs=inputs).eval()
    x_num, x_cat = x[:, :2], x[:, 2:].long()
    model.net.fit_to_training_rows(x_num, x_cat, y, edges="tree")
    with torch.no_grad():  # leaf weights large enough that missing one would show
        model.net.blocks[0][0].weight[:, -12:] = 3.0 * torch.randn(16, 12)
    reference_num, reference_cat = torch.tensor([[0.1, 0.0]]), torch.tensor([[3]])
    numeric, categorical, gap = model.input_attributions(
        x_num[:64], x_cat[:64], reference_num, reference_cat
    )
    with torch.no_grad():
        difference = model(x_num[:64], x_cat[:64]) - model(reference_num, reference_cat)
    total = numeric.sum(dim=1) + categorical.sum(dim=1)
    # Moving the leaves' attributions onto columns keeps their sum: the columns' total misses
    # the logit difference by integrated gradients' own discretisation gap, and only by it.
    torch.testing.assert_close(total - difference, gap, atol=1e-4, rtol=0)
    assert float((total - difference).abs().max()) < 0.02 + 0.02 * float(difference.abs().max())
