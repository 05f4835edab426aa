"""The protocol split's bagging folds: a stratified partition of the non-test rows."""

from __future__ import annotations

import numpy as np
import pytest

from contracts.errors import DataValidationError
from contracts.features import FEW_TRAINING_CASES
from datamodules.loan_datamodule import BAGGING_FOLDS, SMALL_DATA_BAGGING_FOLDS, LoanDataModule
from datamodules.splits import bagging_folds, protocol_split
from datamodules.synthetic import generate_loan_book


def _targets(rows: int, positives: int, seed: int = 0) -> np.ndarray:
    targets = np.zeros(rows, dtype=np.int64)
    targets[np.random.default_rng(seed).choice(rows, positives, replace=False)] = 1
    return targets


def test_folds_partition_the_non_test_rows_in_stratified_parts():
    targets = _targets(1_000, 100)
    split = protocol_split(targets, seed=3, source="book.csv")
    folds = bagging_folds(targets, split, folds=5, seed=3, source="book.csv")
    non_test = np.union1d(split.train, split.val)

    held_out = np.concatenate([fold.val for fold in folds])
    assert np.array_equal(np.sort(held_out), non_test)  # every row validates exactly once
    for fold in folds:
        assert np.array_equal(np.union1d(fold.train, fold.val), non_test)
        assert not np.intersect1d(fold.train, fold.val).size
        assert np.array_equal(fold.test, split.test)
        assert np.all(np.diff(fold.train) > 0) and np.all(np.diff(fold.val) > 0)
    positives = [int(targets[fold.val].sum()) for fold in folds]
    assert max(positives) - min(positives) <= 1 and sum(positives) == targets[non_test].sum()

    again = bagging_folds(targets, split, folds=5, seed=3, source="book.csv")
    assert all(np.array_equal(a.val, b.val) for a, b in zip(folds, again, strict=True))
    other = bagging_folds(targets, split, folds=5, seed=4, source="book.csv")
    assert not np.array_equal(folds[0].val, other[0].val)


def test_too_few_defaulters_for_the_folds_names_the_file_and_the_fix():
    targets = _targets(1_000, 10)
    split = protocol_split(targets, seed=0, source="book.csv")
    with pytest.raises(
        DataValidationError, match=r"book.csv: too few rows for 10 folds.*--data.folds"
    ):
        bagging_folds(targets, split, folds=10, seed=0, source="book.csv")


def test_a_bagging_data_module_encodes_with_all_non_test_rows_and_serves_each_fold():
    datamodule = LoanDataModule(None, synthetic_rows=1_000, folds=4)
    datamodule.select_fold(0)
    datamodule.setup("fit")
    protocol = datamodule.labelled_table().split
    non_test = len(protocol.train) + len(protocol.val)
    age = datamodule.feature_distributions()["age"]
    assert int(age.counts.sum()) == non_test  # the preprocessing saw every non-test row

    test_targets = datamodule.split_tensors("test").target
    for fold, rows in enumerate(datamodule.fold_splits()):
        datamodule.select_fold(fold)
        assert len(datamodule.split_tensors("train")) == len(rows.train)
        assert len(datamodule.split_tensors("val")) == len(rows.val)
        assert datamodule.split_tensors("test").target is test_targets
    datamodule.select_fold(None)
    assert len(datamodule.split_tensors("val")) == len(protocol.val)
    with pytest.raises(ValueError, match="fold 4 is not one of the 4 folds"):
        datamodule.select_fold(4)


def test_auto_folds_bag_where_defaulters_are_few_and_a_plain_fit_keeps_the_protocol_split():
    small = LoanDataModule(None, synthetic_rows=1_000)
    # 640 training rows, 123 defaulters: a bag, of 8 below 5,120 training rows.
    assert small.resolved_folds() == SMALL_DATA_BAGGING_FOLDS == small.bag_size()
    large = LoanDataModule(None, synthetic_rows=20_000)
    table = large.labelled_table()
    defaulters = int(table.targets[table.split.train].sum())
    assert defaulters > FEW_TRAINING_CASES and large.resolved_folds() == 1
    rarer = LoanDataModule(None, synthetic_rows=20_000, sample_positive_rate=0.1)
    table = rarer.labelled_table()
    assert int(table.targets[table.split.train].sum()) < FEW_TRAINING_CASES
    # As many rows (12,000 in training), fewer defaulters: a bag of 5.
    assert rarer.resolved_folds() == BAGGING_FOLDS == large.bag_size()
    assert LoanDataModule(None, synthetic_rows=1_000, folds=1).resolved_folds() == 1
    # The fit's summary line says why it bags (a bag costs several fits).
    assert small.auto_bagging_reason() == "123 training rows of the rarer class, below 1,500"
    assert large.auto_bagging_reason() is None

    # Without a fold served (a Python user's own `trainer.fit`), the preprocessing is the
    # protocol's: fitted on the training rows alone.
    small.setup("fit")
    age = small.feature_distributions()["age"]
    assert int(age.counts.sum()) == len(small.labelled_table().split.train)


def test_auto_folds_bag_where_a_categorical_has_20_training_levels(tmp_path):
    """Many defaulters, but a categorical of 40 levels: its levels' rates and embeddings
    vary from fit to fit, and the bag averages them; 19 levels stay one network. The
    network's inputs agree on which categorical is wide (where its trees go on)."""
    frame = generate_loan_book(20_000, seed=0).frame
    path = tmp_path / "branches.csv"
    for levels, folds in [(40, BAGGING_FOLDS), (19, 1)]:
        frame["branch"] = [f"b{i % levels}" for i in range(len(frame))]
        frame.to_csv(path, index=False)
        data = LoanDataModule(str(path), target="default", id_column="loan_id")
        assert data.resolved_folds() == folds
        reason = "'branch' has 40 training levels, a wide categorical" if levels == 40 else None
        assert data.auto_bagging_reason() == reason
        data.setup("fit")
        assert data.feature_spec.has_wide_categorical == (folds == BAGGING_FOLDS)
