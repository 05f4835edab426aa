import numpy as np
import pytest

from risk.stability import (
    EMPTY_SHARE,
    BinnedDistribution,
    distribution_summary,
    numeric_distribution,
    psi,
    psi_band,
    stability_table,
)


def test_psi_by_hand_with_the_floor_for_an_empty_bin():
    expected = np.array([50, 50, 0])
    actual = np.array([50, 40, 10])
    by_hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.1 - EMPTY_SHARE) * np.log(0.1 / EMPTY_SHARE)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected * 3) == 0.0


def test_bands():
    assert [psi_band(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501)] == [
        "stable",
        "stable",
        "watch",
        "watch",
        "shifted",
    ]


def test_numeric_bins_are_training_deciles_plus_a_missing_bin():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000)
    values[:500] = np.nan
    reference = numeric_distribution(values)
    assert len(reference.counts) == 11 and reference.counts.sum() == 10_000
    assert reference.counts[-1] == 500 and reference.labels[-1] == "missing"
    np.testing.assert_allclose(reference.counts[:-1], 950, atol=1)
    same = np.where(rng.random(5_000) < 0.05, np.nan, rng.normal(size=5_000))
    moved = np.where(rng.random(5_000) < 0.05, np.nan, rng.normal(loc=1.0, size=5_000))
    assert psi(reference.counts, reference.count(same)) < 0.01
    assert psi(reference.counts, reference.count(moved)) > 0.25
    # Gaps that vanish are a shift too (an upstream system started imputing, say).
    assert psi(reference.counts, reference.count(rng.normal(size=5_000))) > 0.25


def test_a_heaped_value_keeps_its_own_bin():
    """60 % zeros: zeros and positives must not share a bin, or a move from 0 to 1 is invisible."""
    values = np.concatenate([np.zeros(600), np.arange(1, 401, dtype=float)])
    reference = numeric_distribution(values)
    assert reference.counts[0] == 600 and reference.labels[0] == "<= 0"
    more_positive = np.concatenate([np.zeros(300), np.arange(1, 701, dtype=float)])
    assert psi(reference.counts, reference.count(more_positive)) > 0.25


def test_table_leads_with_the_score_then_sorts_by_psi():
    labels = ("a", "b")
    reference = {
        name: BinnedDistribution(np.array([50, 50]), labels) for name in ("score", "x", "y", "z")
    }
    current = {
        "score": np.array([100, 100]),
        "x": np.array([120, 80]),
        "y": np.array([190, 10]),
        "z": np.array([100, 100]),
    }
    kinds = {"score": "score", "x": "categorical", "y": "categorical", "z": "categorical"}
    table = stability_table(reference, current, kinds, first=["score"])
    assert table["variable"].tolist() == ["score", "y", "x", "z"]
    assert table["band"].tolist() == ["stable", "shifted", "stable", "stable"]
    # The same shares on 100 rows: the figures, but no band (sampling alone gives ~9/n).
    halved = {name: counts // 2 for name, counts in current.items()}
    small = stability_table(reference, halved, kinds, first=["score"])
    assert small["psi"].tolist() == table["psi"].tolist()
    assert set(small["band"]) == {"too few rows"}
    top = table.iloc[1]
    assert (top["bin_moved_most"], top["train_share"], top["new_share"]) == ("b", 0.5, 0.05)


def test_summary_describes_numbers_and_levels():
    categorical = BinnedDistribution(
        np.array([5, 0, 70, 25]), ("<missing>", "<unknown>", "RENT", "OWN"), missing_bin=0
    )
    reference = {"income": numeric_distribution(np.arange(1.0, 101.0)), "home": categorical}
    summary = distribution_summary(reference, {"income": "numeric", "home": "categorical"})
    rows = summary.set_index("variable")
    assert rows.loc["income", "distribution"] == "p10 10, median 50, p90 90"
    assert rows.loc["home", "distribution"] == "most frequent RENT (70.0%), 2 levels"
    assert rows.loc["home", "missing"] == pytest.approx(0.05)
