"""Numeric embeddings, the TabM-mini ensemble and temperature scaling."""

from __future__ import annotations

import pytest
import torch
from sklearn.tree import DecisionTreeClassifier

from datamodules.synthetic import generate_loan_book
from lightning_modules import numeric_embedding
from lightning_modules.calibration import fit_temperature, mean_probability_logit
from lightning_modules.loan_model import LoanDefaultModel, _warmup_cosine, auto_epochs
from lightning_modules.networks import CrossLayer, tree_inputs
from lightning_modules.numeric_embedding import (
    PeriodicEmbeddings,
    PiecewiseLinearEncoding,
    build_numeric_embedding,
)
from tests.conftest import CONFIGS, FAST_TRAINER
from tests.helpers.networks import small_net


def test_periodic_embeddings_map_each_feature_to_a_vector():
    torch.manual_seed(0)
    out = PeriodicEmbeddings(3, n_frequencies=5, d_embedding=7, sigma=0.5)(torch.randn(4, 3))
    assert out.shape == (4, 3, 7)
    assert (out >= 0).all()  # ReLU output
    with pytest.raises(ValueError, match="sigma"):
        PeriodicEmbeddings(3, sigma=0.0)


def test_piecewise_encoding_uses_training_quantiles_and_is_ordered():
    torch.manual_seed(0)
    train = torch.cat([torch.randn(1000, 1), torch.randint(0, 3, (1000, 1)).float()], dim=1)
    encoding = PiecewiseLinearEncoding(2, n_bins=8)
    encoding.fit_bins(train)
    assert encoding.edges[0, 0] == train[:, 0].min() and encoding.edges[0, -1] == train[:, 0].max()
    # A count with 3 distinct values gets 2 bins, the others are masked.
    assert encoding.bin_mask[1].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    x = torch.linspace(-6, 6, 101)[:, None].expand(-1, 2)
    encoded = encoding(x)
    assert encoded.shape == (101, 2, 8) and torch.isfinite(encoded).all()
    # Sum over bins = position among the edges: strictly increasing in x, also outside the
    # training range (open first and last bins), and exactly the bin count at the maximum.
    position = encoded[:, 0].sum(dim=1)
    assert (position.diff() > 0).all()
    at_max = encoding(train[:, 0].max().expand(1, 2))[0, 0].sum()
    assert at_max == pytest.approx(8.0)


def test_tree_bins_cut_where_the_default_rate_steps():
    """A policy cut-off (default rate 60 % below 20, 5 % above) gets an edge right at it."""
    generator = torch.Generator().manual_seed(0)
    income = torch.rand(4000, 1, generator=generator) * 100
    default = torch.bernoulli(torch.where(income[:, 0] < 20, 0.6, 0.05), generator=generator)
    tree = PiecewiseLinearEncoding(1, n_bins=8)
    tree.fit_bins(income, default, edges="tree")
    used = tree.edges[0, : int(tree.bin_mask[0].sum()) + 1]
    assert (used - 20).abs().min() < 0.5
    # Quantile bins on the same feature ignore the target: their nearest edge is ~5 away.
    quantile = PiecewiseLinearEncoding(1, n_bins=8)
    quantile.fit_bins(income)
    assert (quantile.edges[0] - 20).abs().min() > 3
    # A 0/1 flag can be cut only once: one edge at 0.5, the unused bins masked to zero.
    flag = (income >= 50).float()
    binary = PiecewiseLinearEncoding(1, n_bins=8)
    binary.fit_bins(flag, default, edges="tree")
    assert binary.bin_mask[0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert binary.edges[0, :3].tolist() == [0.0, 0.5, 1.0]
    assert binary(flag[:5])[:, 0, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match="one target per training row"):
        tree.fit_bins(income, edges="tree")


def test_tree_bins_keep_a_step_where_defaults_are_rare():
    """At a 2 % default rate every split lowers the Gini impurity ten times less than at
    22 %: the threshold shrinks with it, so a real step keeps its edge."""
    generator = torch.Generator().manual_seed(0)
    income = torch.rand(100_000, 1, generator=generator) * 100
    default = torch.bernoulli(torch.where(income[:, 0] < 20, 0.03, 0.0175), generator=generator)
    encoding = PiecewiseLinearEncoding(1, n_bins=4)
    encoding.fit_bins(income, default, edges="tree")
    assert encoding.bin_mask[0].tolist() == [1, 1, 0, 0]
    assert encoding.edges[0, 1] == pytest.approx(20, abs=3)
    # The unscaled threshold finds no split worth it: the feature would be one bin.
    unscaled = DecisionTreeClassifier(
        max_leaf_nodes=4,
        min_samples_leaf=numeric_embedding.TREE_MIN_SAMPLES_LEAF,
        min_impurity_decrease=numeric_embedding.TREE_MIN_IMPURITY_DECREASE,
    ).fit(income.numpy(), default.numpy())
    assert unscaled.get_n_leaves() == 1
    # From a 20 % rate of either class the threshold is the tuned one, as it was; and on
    # a few thousand rows a 6.7 % rate keeps it too, since a weaker split is not
    # significant at the 1 % level there.
    for rate, rows in ((0.2, 1000), (0.5, 1000), (0.8, 1000), (0.067, 6400)):
        targets = (torch.arange(rows) < rate * rows).float()
        threshold = numeric_embedding.tree_min_impurity_decrease(targets)
        assert threshold == pytest.approx(numeric_embedding.TREE_MIN_IMPURITY_DECREASE)


def test_a_noise_column_stays_one_linear_bin_under_the_significance_floor():
    """On 640 rows a column independent of the target still gets cuts that pass the
    impurity threshold; with `cut_min_chi2` (the default) it is one bin, while a real step
    keeps its."""
    generator = torch.Generator().manual_seed(0)
    rows = 640
    step = torch.rand(rows, generator=generator) * 100
    default = torch.bernoulli(torch.where(step < 30, 0.45, 0.1), generator=generator)
    noise = torch.randn(rows, 6, generator=generator)
    columns = torch.cat([step[:, None], noise], dim=1)
    plain = PiecewiseLinearEncoding(7, n_bins=16)
    plain.fit_bins(columns, default, edges="tree")
    floored = PiecewiseLinearEncoding(7, n_bins=16, cut_min_chi2=10.83)
    floored.fit_bins(columns, default, edges="tree")
    assert plain.bin_mask[1:].sum(dim=1).max() > 1  # noise cut without the floor
    assert floored.bin_mask[1:].sum(dim=1).tolist() == [1.0] * 6
    assert floored.bin_mask[0].tolist() == plain.bin_mask[0].tolist()
    # One bin spans the column's training range, open on both sides: a linear input.
    assert floored.edges[1, :2].tolist() == [noise[:, 0].min().item(), noise[:, 0].max().item()]
    assert floored(columns[:4])[:, 1, 0].tolist() == pytest.approx(
        ((noise[:4, 0] - noise[:, 0].min()) / (noise[:, 0].max() - noise[:, 0].min())).tolist()
    )
    with pytest.raises(ValueError, match="cut_min_chi2"):
        PiecewiseLinearEncoding(1, cut_min_chi2=-1.0)
    # The network's default applies the floor.
    network = small_net(7, numeric_embedding="piecewise", n_bins=16)
    network.fit_to_training_rows(columns, torch.zeros(rows, 0).long(), default, edges="tree")
    assert network.numeric_embedding.bin_mask.tolist() == floored.bin_mask.tolist()


def test_root_cut_chi2_is_pearsons_statistic_of_the_cut():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(500, 1, generator=generator)
    y = torch.bernoulli(0.2 + 0.2 * (x[:, 0] > 0.6), generator=generator)
    tree = DecisionTreeClassifier(max_depth=1, min_samples_leaf=64).fit(x.numpy(), y.numpy())
    right = x[:, 0] > float(tree.tree_.threshold[0])
    table = torch.tensor(
        [
            [((~right) & (y == c)).sum().item() for c in (0, 1)],
            [(right & (y == c)).sum().item() for c in (0, 1)],
        ],
        dtype=torch.float64,
    )
    expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / table.sum()
    pearson = ((table - expected) ** 2 / expected).sum().item()
    assert numeric_embedding._root_cut_chi2(tree.tree_) == pytest.approx(pearson)


def test_bins_of_a_large_training_set_come_from_a_fixed_sample(monkeypatch):
    """Above the row cap the trees see a sample: the same one every time, found without
    touching the random stream that training draws from."""
    monkeypatch.setattr(numeric_embedding, "BIN_FIT_MAX_ROWS", 1_000)
    generator = torch.Generator().manual_seed(1)
    income = torch.rand(4000, 1, generator=generator) * 100
    default = torch.bernoulli(torch.where(income[:, 0] < 20, 0.6, 0.05), generator=generator)
    state = torch.get_rng_state()
    fits = [PiecewiseLinearEncoding(1, n_bins=8) for _ in range(2)]
    for encoding in fits:
        encoding.fit_bins(income, default, edges="tree")
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(fits[0].edges, fits[1].edges)
    used = fits[0].edges[0, : int(fits[0].bin_mask[0].sum()) + 1]
    assert (used - 20).abs().min() < 1.0  # the sample still finds the cut-off
    # The edges span the sample's range, not all rows': the range's ends are edges.
    assert income.min() < used[0] and used[-1] < income.max()


def test_periodic_and_piecewise_embeds_both_views_side_by_side():
    torch.manual_seed(0)
    x = torch.randn(500, 2)
    y = (x[:, 0] > 0.5).float()
    both = build_numeric_embedding("periodic_piecewise", 2, n_bins=8, sigma=0.1)
    both.fit_bins(x, y, edges="tree")
    piecewise = PiecewiseLinearEncoding(2, n_bins=8)
    piecewise.fit_bins(x, y, edges="tree")
    out = both(x[:4])
    assert out.shape == (4, 2, both.periodic.d_embedding + 8)
    torch.testing.assert_close(out[..., : both.periodic.d_embedding], both.periodic(x[:4]))
    torch.testing.assert_close(out[..., both.periodic.d_embedding :], piecewise(x[:4]))


def test_edges_closer_than_float32_resolution_do_not_make_empty_bins():
    """float64 quantiles between two neighbouring float32 values round onto one of them."""
    low = torch.tensor(1.0)
    high = torch.nextafter(low, torch.tensor(2.0))
    x = torch.cat([low.repeat(300), high.repeat(300)])[:, None]
    encoding = PiecewiseLinearEncoding(1, n_bins=8)
    encoding.fit_bins(x)
    used = encoding.edges[0, : int(encoding.bin_mask[0].sum()) + 1]
    assert (used.diff() > 0).all()
    assert torch.isfinite(encoding(x)).all()


def test_bins_are_fitted_on_the_cpu_whatever_the_default_device():
    """Lightning calls configure_model with the accelerator as torch's default device."""
    torch.manual_seed(0)
    x = torch.randn(500, 2)
    y = (x[:, 0] > 0.5).float()
    reference = PiecewiseLinearEncoding(2, n_bins=8)
    reference.fit_bins(x, y, edges="tree")
    for edges in ("tree", "quantile"):
        encoding = PiecewiseLinearEncoding(2, n_bins=8)
        with torch.device("meta"):
            encoding.fit_bins(x, y, edges=edges)
        assert encoding.edges.device.type == "cpu" and torch.isfinite(encoding.edges).all()
        if edges == "tree":
            torch.testing.assert_close(encoding.edges, reference.edges)


def test_constant_feature_encodes_to_zeros():
    encoding = PiecewiseLinearEncoding(1, n_bins=4)
    encoding.fit_bins(torch.full((10, 1), 3.0))
    assert encoding(torch.tensor([[3.0], [9.0]])).abs().sum() == 0


def test_embedding_network_leaves_missing_indicators_as_they_are():
    torch.manual_seed(0)
    net = small_net(
        5, (4,), hidden_sizes=[8], n_missing_indicators=2, numeric_embedding="piecewise", n_bins=6
    )
    assert net.blocks[0][0].in_features == 3 * 6 + 2 + net.embeddings.output_dim
    train = torch.randn(50, 5)
    net.fit_to_training_rows(train, torch.zeros(50, 1, dtype=torch.long), torch.rand(50) < 0.3)
    assert net.numeric_embedding.edges[:, 0].tolist() == train[:, :3].min(dim=0).values.tolist()
    assert net(torch.randn(4, 5), torch.randint(0, 4, (4, 1))).shape == (4, 1)


@pytest.mark.parametrize(
    "extra", [{}, {"cross_layers": 2, "ensemble_size": 3}, {"tree_depth": 2, "ensemble_size": 3}]
)
def test_network_on_used_bins_only_equals_the_full_encoding(extra):
    """The first layer multiplies only the used bins; the full (masked) encoding through the
    full weights must give the same logits and the same gradients."""
    torch.manual_seed(0)
    net = small_net(
        4,
        (5,),
        hidden_sizes=[8, 8],
        n_missing_indicators=1,
        numeric_embedding="piecewise",
        n_bins=16,
        bin_edges="tree",
        **extra,
    )
    train = torch.cat([torch.randn(400, 2), torch.randint(0, 3, (400, 1)).float()], 1)
    target = (train[:, 0] + train[:, 2] > 0.5).float()
    codes = torch.randint(0, 5, (400, 1))
    net.fit_to_training_rows(
        torch.cat([train, torch.zeros(400, 1)], 1), codes, target, edges="tree"
    )
    encoding = net.numeric_embedding
    assert 0 < encoding.bin_mask.sum() < encoding.bin_mask.numel() / 2  # most bins unused
    x_num = torch.cat([torch.randn(6, 3) * 3, torch.randint(0, 2, (6, 1)).float()], 1)
    x_cat = torch.randint(0, 5, (6, 1))
    net.eval()
    fast = net(x_num, x_cat)
    fast.sum().backward()
    fast_grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()

    parts = [encoding(x_num[:, :3]).flatten(1), x_num[:, 3:], net.embeddings(x_cat)]
    if net.tree_leaves is not None:
        parts.append(net.tree_leaves(tree_inputs(x_num, x_cat)))
    full = torch.cat(parts, dim=1)
    x = full
    for layer in net.cross:
        x = layer(full, x)
    if net.adapter is not None:
        x = net.adapter(x)
    reference = net.head(net.blocks(x))
    reference.sum().backward()
    torch.testing.assert_close(fast, reference)
    for fast_grad, parameter in zip(fast_grads, net.parameters(), strict=True):
        torch.testing.assert_close(fast_grad, parameter.grad)


def test_ensemble_members_differ_and_all_learn():
    torch.manual_seed(0)
    net = small_net(4, (3,), hidden_sizes=[16], ensemble_size=5)
    logits = net(torch.randn(8, 4), torch.randint(0, 3, (8, 1)))
    assert logits.shape == (8, 5)
    assert logits.std(dim=1).min() > 1e-4  # the members' predictions are not copies
    logits.mean().backward()
    assert net.adapter.scale.grad.abs().sum() > 0 and net.head.weight.grad.shape == (5, 16)


def test_cross_layers_start_as_the_identity_and_learn_products():
    torch.manual_seed(0)
    x0 = torch.randn(4, 3)
    layer = CrossLayer(3)
    torch.testing.assert_close(layer(x0, x0), x0)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.eye(3))
    torch.testing.assert_close(layer(x0, x0), x0 * x0 + x0)  # a degree-2 term per feature
    net = small_net(3, hidden_sizes=[8], cross_layers=2)
    net(x0, torch.zeros(4, 0, dtype=torch.long)).sum().backward()
    assert all(cross.linear.weight.grad.abs().sum() > 0 for cross in net.cross)


def test_ensemble_logit_is_the_logit_of_the_mean_probability():
    logits = torch.tensor([[-2.0, 0.5, 3.0], [1.0, 1.0, 1.0]])
    expected = torch.logit(torch.sigmoid(logits).mean(dim=1))
    torch.testing.assert_close(mean_probability_logit(logits), expected)
    large = torch.tensor([[40.0], [-40.0]])  # a single member passes through exactly
    torch.testing.assert_close(mean_probability_logit(large), large[:, 0])


def test_temperature_scaling_undoes_overconfidence():
    torch.manual_seed(0)
    true_logits = torch.randn(5000) * 1.5
    targets = torch.bernoulli(torch.sigmoid(true_logits))
    overconfident = 3.0 * true_logits
    temperature = fit_temperature(overconfident, targets)
    assert temperature == pytest.approx(3.0, rel=0.15)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert bce(overconfident / temperature, targets) < bce(overconfident, targets) - 0.05


def test_warmup_then_cosine_schedule():
    factor = _warmup_cosine(100, 0.1, "cosine")
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0)
    assert _warmup_cosine(100, 0.0, "constant")(50) == 1.0


def test_auto_training_budget_is_about_1500_steps_within_8_to_16_epochs():
    assert auto_epochs(2) == 16  # a tiny set: the most epochs
    assert auto_epochs(100) == 15
    assert auto_epochs(188) == 8  # 96,000 training rows at batch 512
    assert auto_epochs(10_000) == 8  # a huge set: the fewest


@pytest.mark.slow
def test_fit_with_embeddings_ensemble_and_temperature_round_trips_a_checkpoint(
    run_cli, loan_csv, tmp_path
):
    cli = run_cli(
        "fit",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={loan_csv}",
        *FAST_TRAINER,
        "--model.net.numeric_embedding=piecewise",
        "--model.net.n_bins=8",
        "--model.net.bin_edges=tree",
        "--model.net.ensemble_size=3",
        "--model.training_epochs=1",
    )
    assert cli.trainer.current_epoch == 1  # the planned epoch ends the fit before max_epochs 2
    assert cli.trainer.max_epochs == 1  # and the progress bar counts to it
    # Fewer than 5,120 training rows: `auto` keeps a constant learning rate.
    assert cli.model.resolved_lr_schedule() == "constant" and not cli.trainer.lr_scheduler_configs
    metrics = cli.trainer.callback_metrics
    # Temperature is fitted on the validation logits, so it cannot raise their log-loss.
    assert float(metrics["val/log_loss"]) <= float(metrics["val/log_loss_raw"]) + 1e-6
    assert "val/calibration_error_raw" in metrics and "val/calibration_error" in metrics

    train = cli.datamodule.split_tensors("train").numeric
    n_embedded = cli.model.net.n_embedded
    edges = cli.model.net.numeric_embedding.edges
    assert 0 < n_embedded < train.shape[1]  # the loan book has missing indicators
    # Bins come from the training split only: the first edge is each training minimum.
    assert torch.equal(edges[:, 0], train[:, :n_embedded].min(dim=0).values)

    last = tmp_path / "logs" / "default" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["hyper_parameters"]["net"]["bin_edges"] == "tree"
    state = checkpoint["state_dict"]
    assert torch.equal(state["net.numeric_embedding.edges"], edges)
    assert float(state["temperature"]) != 1.0
    restored = LoanDefaultModel.load_from_checkpoint(last, weights_only=True)
    restored.eval()
    x_num, x_cat, _ = next(iter(cli.datamodule.val_dataloader()))
    with torch.no_grad():
        logits = restored(x_num, x_cat)
        raw = restored.raw_logits(x_num, x_cat)
    torch.testing.assert_close(logits, raw / state["temperature"])


@pytest.mark.slow
def test_a_large_training_set_with_few_defaulters_gets_the_ensemble_and_keeps_its_width(
    run_cli, tmp_path
):
    """8,000 rows: 5,120 training rows, about 900 of them defaulters (under 1,500)."""
    path = tmp_path / "few_defaulters.csv"
    generate_loan_book(8_000, seed=3).frame.to_csv(path, index=False)
    cli = run_cli(
        "fit",
        f"--config={CONFIGS / 'default.yaml'}",
        f"--data.path={path}",
        *FAST_TRAINER,
        "--trainer.max_epochs=1",
    )
    train = cli.datamodule.split_tensors("train")
    assert len(train) == 5_120 and int(train.target.sum()) < 1_500
    assert cli.model.hparams.net["ensemble_size"] == 8
    # Width and schedule follow the row count.
    assert cli.model.hparams.net["hidden_sizes"] == [256, 256, 256]
    assert cli.model.resolved_lr_schedule() == "cosine"
