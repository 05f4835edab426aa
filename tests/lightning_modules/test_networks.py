import pandas as pd
import pytest
import torch
from scipy.stats import chi2_contingency

from contracts.errors import ConfigurationError
from contracts.features import FeatureSpec
from lightning_modules.bagging import average
from lightning_modules.loan_model import LoanDefaultModel
from lightning_modules.networks import (
    CategoricalEmbeddings,
    NetworkSettings,
    embedding_dim,
    levels_chi2_p_values,
)
from tests.helpers.networks import small_net


def test_embedding_size_rule_grows_sublinearly_and_is_capped():
    assert [embedding_dim(c, max_dim=16) for c in (2, 7, 50, 10_000)] == [2, 5, 14, 16]


def test_embeddings_concatenate_one_table_per_column():
    embeddings = CategoricalEmbeddings([3, 9], max_dim=16)
    out = embeddings(torch.tensor([[0, 8], [2, 1]]))
    assert out.shape == (2, embedding_dim(3, 16) + embedding_dim(9, 16))


def test_the_levels_test_is_pearsons_chi_square_of_levels_by_class():
    generator = torch.Generator().manual_seed(0)
    y = torch.bernoulli(torch.full((640,), 0.22), generator=generator)
    noise = torch.randint(0, 30, (640,), generator=generator)
    signal = torch.where(y > 0, torch.randint(0, 3, (640,)), torch.randint(0, 5, (640,)))
    constant = torch.zeros(640, dtype=torch.long)
    p_values = levels_chi2_p_values(torch.stack([noise, signal, constant], 1), y)
    for column, p_value in zip((noise, signal), p_values, strict=False):
        table = pd.crosstab(column.numpy(), y.numpy()).to_numpy()
        expected = chi2_contingency(table, correction=False).pvalue
        assert p_value.item() == pytest.approx(expected, rel=1e-6)
    assert p_values[0] > 0.1 and p_values[1] < 1e-10 and p_values[2] == 1.0


def test_a_categorical_without_signal_keeps_one_embedding_dimension_in_the_checkpoint():
    generator = torch.Generator().manual_seed(0)
    y = torch.bernoulli(torch.full((640,), 0.22), generator=generator)
    signal = torch.where(y > 0, torch.randint(0, 3, (640,)), torch.randint(0, 8, (640,)))
    x_cat = torch.stack([torch.randint(0, 30, (640,), generator=generator), signal], 1)
    net = small_net(1, (30, 8))  # the default narrows above p = 0.1
    net.fit_to_training_rows(torch.randn(640, 1), x_cat, y)
    noise_width, signal_width = embedding_dim(30, 16), embedding_dim(8, 16)
    out = net.embeddings(x_cat[:5])
    assert (out[:, 1:noise_width] == 0).all() and (out[:, 0] != 0).all()
    assert (out[:, noise_width:] != 0).all()  # the real one keeps all its dimensions
    # The narrowing is part of the state: a network rebuilt from it embeds the same way.
    rebuilt = small_net(1, (30, 8))
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt.embeddings(x_cat[:5]), out)
    assert signal_width > 1
    # A checkpoint from before the narrowing existed loads at full size.
    older = {k: v for k, v in net.state_dict().items() if not k.endswith("output_mask")}
    rebuilt.load_state_dict(older)
    assert (rebuilt.embeddings(x_cat[:5]) != 0).all()
    # Off, every column keeps fastai's size.
    plain = small_net(1, (30, 8), scalar_embedding_above_p=1.0)
    plain.fit_to_training_rows(torch.randn(640, 1), x_cat, y)
    assert (plain.embeddings(x_cat[:5]) != 0).all()


def test_a_code_no_training_row_holds_is_scored_with_the_training_rows_average_embedding():
    generator = torch.Generator().manual_seed(0)
    y = torch.bernoulli(torch.full((400,), 0.3), generator=generator)
    # Column 0 never uses codes 0 (missing) or 1 (unknown) in training; 3 is 3x as common as 2.
    x_cat = torch.stack([torch.tensor([2, 3, 3, 3]).repeat(100), torch.randint(0, 5, (400,))], 1)
    net = small_net(1, (4, 5), scalar_embedding_above_p=1.0)
    net.fit_to_training_rows(torch.randn(400, 1), x_cat, y)
    embeddings = net.embeddings.eval()
    table = embeddings.tables[0].weight
    width = embeddings.tables[0].embedding_dim
    average = 0.25 * table[2] + 0.75 * table[3]
    out = embeddings(torch.tensor([[0, 1], [1, 1], [2, 1], [3, 1]]))
    assert torch.allclose(out[0, :width], average) and torch.allclose(out[1, :width], average)
    assert torch.equal(out[2, :width], table[2]) and torch.equal(out[3, :width], table[3])
    assert torch.equal(out[:, width:], embeddings.tables[1].weight[[1, 1, 1, 1]])
    # Training meets only trained codes and keeps the plain lookup; the shares are state.
    assert torch.equal(embeddings.train()(x_cat[:4]), embeddings.eval()(x_cat[:4]))
    rebuilt = small_net(1, (4, 5), scalar_embedding_above_p=1.0)
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt.embeddings.eval()(torch.tensor([[0, 1]])), out[:1])
    # A checkpoint from before the shares existed scores every code with its own row.
    older = {k: v for k, v in net.state_dict().items() if not k.endswith("level_shares")}
    rebuilt.load_state_dict(older)
    assert torch.equal(rebuilt.embeddings.eval()(torch.tensor([[0, 1]]))[0, :width], table[0])


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm", "none"])
def test_network_maps_a_batch_to_one_logit_per_row(normalization):
    torch.manual_seed(0)
    net = small_net(4, (5, 3), hidden_sizes=[8, 8], normalization=normalization)
    logits = net(torch.randn(6, 4), torch.randint(0, 3, (6, 2)))
    assert logits.shape == (6, 1)  # one member: the plain MLP
    logits.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_network_without_categoricals_or_without_numerics():
    assert small_net(3, hidden_sizes=[4])(
        torch.randn(2, 3), torch.zeros(2, 0, dtype=torch.long)
    ).shape == (2, 1)
    assert small_net(0, (4,), hidden_sizes=[4])(
        torch.zeros(2, 0), torch.tensor([[1], [3]])
    ).shape == (2, 1)


def test_output_bias_starts_at_the_training_log_odds():
    net = small_net(2, hidden_sizes=[4], positive_rate=0.1)
    assert net.head.bias.item() == pytest.approx(torch.logit(torch.tensor(0.1)).item())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_sizes": []}, "hidden_sizes"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"activation": "tanh"}, r"activation must be one of \['relu', 'gelu', 'silu'\]"),
        ({"numeric_embedding": "spline"}, "numeric_embedding must be one of"),
        ({"n_bins": 1}, "n_bins"),
        ({"cut_min_chi2": -1.0}, "cut_min_chi2"),
        ({"scalar_embedding_above_p": 0.0}, "scalar_embedding_above_p"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_option(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        NetworkSettings(**kwargs)


def test_auto_ensemble_is_eight_members_below_5120_rows_or_1500_cases_and_one_otherwise():
    assert NetworkSettings().resolved(640, 200).ensemble_size == 8
    assert NetworkSettings().resolved(5_119, 2_000).ensemble_size == 8
    assert NetworkSettings().resolved(5_120, 2_000).ensemble_size == 1
    assert NetworkSettings().resolved(20_000, 1_499).ensemble_size == 8
    assert NetworkSettings().resolved(20_000, 1_500).ensemble_size == 1
    assert NetworkSettings(ensemble_size=3).resolved(640, 200).ensemble_size == 3
    # Unresolved, the network cannot know its size: building it is an error, not a guess.
    with pytest.raises(ConfigurationError, match=r"'auto' \(ensemble_size\).*resolved"):
        small_net(2, ensemble_size="auto")


def test_auto_blocks_are_128_wide_on_small_training_sets_and_256_from_5120_rows():
    assert NetworkSettings().resolved(5_119, 2_000).hidden_sizes == [128, 128, 128]
    assert NetworkSettings().resolved(5_120, 2_000).hidden_sizes == [256, 256, 256]
    assert NetworkSettings().resolved(20_000, 1_499).hidden_sizes == [256, 256, 256]
    assert NetworkSettings(hidden_sizes=[64]).resolved(640, 200).hidden_sizes == [64]
    with pytest.raises(ConfigurationError, match=r"'auto' \(hidden_sizes\).*resolved"):
        small_net(2, hidden_sizes="auto")


def test_auto_tree_has_depth_3_where_the_ensemble_is_on_or_a_categorical_is_wide():
    assert NetworkSettings().resolved(5_119, 2_000).tree_depth == 3
    assert NetworkSettings().resolved(20_000, 1_499).tree_depth == 3
    assert NetworkSettings().resolved(5_120, 1_500).tree_depth == 0
    wide = NetworkSettings().resolved(20_000, 5_000, wide_categorical=True)
    assert (wide.tree_depth, wide.n_trees, wide.ensemble_size) == (3, 16, 1)
    assert NetworkSettings(tree_depth=0).resolved(640, 200).tree_depth == 0
    with pytest.raises(ConfigurationError, match=r"'auto' \(tree_depth\).*resolved"):
        small_net(2, tree_depth="auto")


def test_auto_activation_is_silu_in_a_single_network_without_trees_and_relu_elsewhere():
    assert NetworkSettings().resolved(5_120, 1_500).activation == "silu"
    assert NetworkSettings().resolved(5_119, 2_000).activation == "relu"
    assert NetworkSettings().resolved(20_000, 1_499).activation == "relu"
    wide = NetworkSettings().resolved(20_000, 5_000, wide_categorical=True)
    assert wide.activation == "relu"
    assert NetworkSettings(activation="gelu").resolved(20_000, 5_000).activation == "gelu"
    with pytest.raises(ConfigurationError, match=r"'auto' \(activation\).*resolved"):
        small_net(2, activation="auto")


def test_auto_trees_are_16_boosted_from_1000_training_rows_where_there_is_a_tree():
    assert NetworkSettings().resolved(999, 200).n_trees == 1
    assert NetworkSettings().resolved(1_000, 200).n_trees == 16
    assert NetworkSettings().resolved(20_000, 1_499).n_trees == 16
    assert NetworkSettings().resolved(20_000, 1_500).n_trees == 1  # one network, no tree
    assert NetworkSettings(tree_depth=0).resolved(3_000, 200).n_trees == 1
    assert NetworkSettings(n_trees=4).resolved(640, 200).n_trees == 4
    with pytest.raises(ConfigurationError, match=r"'auto' \(n_trees\).*resolved"):
        small_net(2, n_trees="auto")


def test_bad_inputs_fail_at_construction():
    with pytest.raises(ConfigurationError, match="codes"):
        small_net(2, (1,))
    with pytest.raises(ConfigurationError, match="n_missing_indicators"):
        small_net(2, n_missing_indicators=3)


def test_a_bag_of_identical_networks_predicts_and_explains_as_one():
    """A bag averages its networks' probabilities, and a categorical's (and a tree leaf's)
    attribution sums over the networks' own embeddings (and trees): two copies of one
    network change neither."""
    torch.manual_seed(0)
    inputs = FeatureSpec(3, (4, 3), positive_rate=0.3)
    settings = NetworkSettings(
        hidden_sizes=[8],
        numeric_embedding="none",
        ensemble_size=2,
        tree_depth=2,
        n_trees=3,
        activation="relu",
    )
    single = LoanDefaultModel(net=settings, inputs=inputs).eval()
    train_num, train_cat = torch.randn(400, 3), torch.randint(0, 3, (400, 2))
    target = ((train_num[:, 0] > 0) & (train_cat[:, 1] == 2)).float()
    single.net.fit_to_training_rows(train_num, train_cat, target)
    bag = average([single, single])
    assert bag.hparams["networks"] == 2 and len(bag.networks()) == 2

    x_num, x_cat = torch.randn(5, 3), torch.randint(0, 3, (5, 2))
    ref_num, ref_cat = torch.zeros(1, 3), torch.zeros(1, 2, dtype=torch.long)
    with torch.no_grad():
        assert bag.member_logits(x_num, x_cat).shape == (5, 4)
        torch.testing.assert_close(bag(x_num, x_cat), single(x_num, x_cat))
    one = single.input_attributions(x_num, x_cat, ref_num, ref_cat)
    two = bag.input_attributions(x_num, x_cat, ref_num, ref_cat)
    assert two[1].shape == (5, 2)
    for expected, actual in zip(one, two, strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_unused_settings_are_those_the_other_choices_leave_without_effect():
    one_network = NetworkSettings(tree_depth=0).unused_settings()
    assert one_network == {"periodic_sigma", "n_trees"}
    quantile = NetworkSettings(bin_edges="quantile", tree_depth=3).unused_settings()
    assert quantile == {"periodic_sigma", "cut_min_chi2"}
    periodic = NetworkSettings(numeric_embedding="periodic", tree_depth=0).unused_settings()
    assert periodic == {"n_bins", "bin_edges", "cut_min_chi2", "n_trees"}
    both = NetworkSettings(numeric_embedding="periodic_piecewise", tree_depth=3)
    assert both.unused_settings() == set()
