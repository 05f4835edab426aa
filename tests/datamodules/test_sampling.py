"""Derived datasets: deterministic per seed, the size and default rate asked for, drawn
before the protocol split so that the split of a seed applies to the sampled rows."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import ConfigurationError, DataValidationError
from datamodules.loan_datamodule import LoanDataModule
from datamodules.sampling import sample_positions

# 20,000 rows at a 22 % default rate, the shape of the protocol's taiwan file.
TARGETS = (np.random.default_rng(7).random(20_000) < 0.22).astype(np.int64)


def _sample(rows=None, positive_rate=None, seed=0, targets=TARGETS):
    return sample_positions(
        targets, rows=rows, positive_rate=positive_rate, seed=seed, source="loans.csv"
    )


def test_a_seed_draws_the_same_rows_every_time_and_another_seed_others():
    first = _sample(rows=3_000, seed=1)

    np.testing.assert_array_equal(first, _sample(rows=3_000, seed=1))
    assert len(np.intersect1d(first, _sample(rows=3_000, seed=2))) < 1_000
    assert np.all(np.diff(first) > 0)  # distinct rows, in file order


@pytest.mark.parametrize("rows", [1_000, 3_000, 10_000])
def test_a_row_sample_has_the_size_and_the_files_default_rate(rows):
    for seed in range(3):
        sample = _sample(rows=rows, seed=seed)
        assert len(sample) == rows
        # Stratified: the rate is the file's, up to rounding to whole rows.
        assert abs(TARGETS[sample].mean() - TARGETS.mean()) <= 1 / rows


def test_a_smaller_sample_of_a_seed_is_part_of_a_larger_one():
    assert np.isin(_sample(rows=1_000, seed=4), _sample(rows=3_000, seed=4)).all()


@pytest.mark.parametrize("rate", [0.05, 0.02])
def test_a_rate_keeps_every_repaid_row_and_down_samples_the_defaulters(rate):
    sample = _sample(positive_rate=rate, seed=0)
    negatives = int((TARGETS == 0).sum())

    assert int((TARGETS[sample] == 0).sum()) == negatives
    assert TARGETS[sample].mean() == pytest.approx(rate, abs=1e-4)


def test_a_rate_above_the_files_down_samples_the_repaid_rows():
    sample = _sample(positive_rate=0.5)
    assert int(TARGETS[sample].sum()) == int(TARGETS.sum())
    assert TARGETS[sample].mean() == pytest.approx(0.5, abs=1e-4)


def test_rows_and_rate_together():
    sample = _sample(rows=2_000, positive_rate=0.05, seed=3)
    assert len(sample) == 2_000 and int(TARGETS[sample].sum()) == 100


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rows": 30_000}, "a sample of 30000 rows asks for more rows than the file's 20000"),
        ({"rows": 20, "positive_rate": 0.01}, "holds no defaulted rows"),
        ({"rows": 10_000, "positive_rate": 0.9}, "needs 9000 defaulted rows, but the file has"),
    ],
)
def test_a_sample_the_file_cannot_supply_names_the_file_and_the_option(options, message):
    with pytest.raises(DataValidationError, match=message) as raised:
        _sample(**options)
    assert "loans.csv" in str(raised.value) and "--data.sample_" in str(raised.value)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"sample_rows": 0}, "sample_rows"),
        ({"sample_positive_rate": 1.0}, "sample_positive_rate"),
        ({"sample_positive_rate": 0.0}, "sample_positive_rate"),
    ],
)
def test_impossible_options_fail_when_the_data_module_is_built(options, name):
    with pytest.raises(ConfigurationError, match=name):
        LoanDataModule(None, target="default", **options)


def _table(**options):
    datamodule = LoanDataModule(
        None, target="default", id_column="loan_id", synthetic_rows=2_000, seed=5, **options
    )
    return datamodule.labelled_table()


def test_the_data_module_splits_the_sampled_rows_by_the_protocol():
    whole, sampled = _table(), _table(sample_rows=1_000)
    expected = _sample(rows=1_000, seed=5, targets=whole.targets)

    # The rows are the file's, drawn by the seed, then split 64/16/20 % like any file.
    assert sampled.frame["loan_id"].tolist() == whole.frame["loan_id"].iloc[expected].tolist()
    np.testing.assert_array_equal(sampled.targets, whole.targets[expected])
    np.testing.assert_array_equal(sampled.default_probability, whole.default_probability[expected])
    split = sampled.split
    assert (len(split.train), len(split.val), len(split.test)) == (640, 160, 200)
