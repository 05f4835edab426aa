import numpy as np
import pandas as pd
import pytest

from risk.gains import cutoff_tradeoff, defaults_format, gains_table


def test_gains_table_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    targets = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0, 0])
    table = gains_table(scores, targets, n_bands=5)
    assert table["band"].tolist() == [1, 2, 3, 4, 5]
    assert table["rows"].tolist() == [2] * 5
    assert table["defaults"].tolist() == [2, 1, 0, 1, 0]
    assert table["score_from"].tolist() == [0.8, 0.6, 0.4, 0.2, 0.05]
    assert table["captured"].tolist() == pytest.approx([0.5, 0.75, 0.75, 1.0, 1.0])
    assert table["lift"].tolist() == pytest.approx([2.5, 1.25, 0.0, 1.25, 0.0])


def test_tied_scores_share_their_defaults_whatever_the_rows_order():
    """Four rows tied at a band's edge, two of them defaulters: each band holds half of
    them, so one expected default each, in either order of the file."""
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1])
    targets = np.array([1, 1, 1, 0, 0, 0])
    first = gains_table(scores, targets, n_bands=2)
    assert first["defaults"].tolist() == [2.0, 1.0]
    flipped = np.array([1, 0, 0, 1, 1, 0])
    pd.testing.assert_frame_equal(gains_table(scores, flipped, n_bands=2), first)
    thirds = gains_table(np.array([0.5, 0.5, 0.5, 0.2]), np.array([1, 0, 0, 0]), n_bands=2)
    assert thirds["defaults"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert defaults_format(thirds) == "{:,.1f}" and defaults_format(first) == "{:,.0f}"


def test_gains_deciles_cover_every_row_and_average_to_lift_one():
    rng = np.random.default_rng(0)
    scores = rng.random(1_003)
    targets = (rng.random(1_003) < scores).astype(int)
    table = gains_table(scores, targets)
    assert len(table) == 10 and table["rows"].sum() == 1_003
    assert set(table["rows"]) <= {100, 101}
    assert np.average(table["lift"], weights=table["rows"]) == pytest.approx(1.0)
    assert table["default_rate"].iloc[0] > table["default_rate"].iloc[-1]
    assert (table["score_from"].iloc[:-1].to_numpy() >= table["score_to"].iloc[1:]).all()


def test_cutoff_tradeoff():
    probs = np.array([0.9, 0.6, 0.4, 0.2, 0.1])
    targets = np.array([1, 0, 1, 0, 0])
    trade = cutoff_tradeoff(probs, targets, threshold=0.5)
    assert trade.approval_rate == pytest.approx(0.6)
    assert trade.defaults_caught == pytest.approx(0.5)
    assert trade.approved_default_rate == pytest.approx(1 / 3)
    assert trade.declined_default_rate == pytest.approx(0.5)
    assert np.isnan(cutoff_tradeoff(probs, targets, threshold=0.95).declined_default_rate)
