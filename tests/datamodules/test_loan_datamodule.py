import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

from datamodules.loan_datamodule import LoanDataModule


def _datamodule(path, **overrides) -> LoanDataModule:
    args = {"target": "default", "id_column": "loan_id", "batch_size": 64} | overrides
    return LoanDataModule(str(path), **args)


def test_protocol_split_sizes_and_stratification(loan_csv):
    dm = _datamodule(loan_csv)
    dm.setup("fit")
    split = dm.labelled_table().split
    assert (len(split.train), len(split.val), len(split.test)) == (1280, 320, 400)
    assert not set(split.train) & set(split.val) | set(split.train) & set(split.test)
    rates = [
        dm.labelled_table().targets[getattr(split, s)].mean() for s in ("train", "val", "test")
    ]
    assert max(rates) - min(rates) < 0.01


def test_preprocessing_is_fitted_on_training_rows_only(loan_csv):
    dm = _datamodule(loan_csv)
    dm.setup("fit")
    table = dm.labelled_table()
    income = dm.schema.numeric_columns.index("annual_income")
    train_median = np.nanmedian(table.numeric[table.split.train, income])
    assert dm.preprocessor.medians_[income] == train_median
    assert train_median != np.nanmedian(table.numeric[:, income])
    assert dm.positive_rate == table.targets[table.split.train].mean()


def test_batches_come_from_a_standard_dataloader_by_index(loan_csv):
    dm = _datamodule(loan_csv)
    dm.setup("fit")
    train = dm.train_dataloader()
    assert isinstance(train.batch_sampler, BatchSampler)
    assert isinstance(train.sampler, RandomSampler)
    assert isinstance(dm.val_dataloader().sampler, SequentialSampler)
    x_num, x_cat, target = next(iter(train))
    spec = dm.feature_spec
    assert x_num.shape == (64, spec.n_numeric) and x_num.dtype == torch.float32
    assert x_cat.shape == (64, len(spec.cardinalities)) and x_cat.dtype == torch.int32
    assert (x_cat.max(dim=0).values < torch.tensor(spec.cardinalities)).all()
    assert set(target.unique().tolist()) <= {0.0, 1.0}
    assert sum(len(batch[2]) for batch in train) == 1280


def test_restored_state_encodes_new_rows_like_the_fitted_one(loan_csv, loan_frame, tmp_path):
    fitted = _datamodule(loan_csv)
    fitted.setup("fit")
    state = fitted.state_dict()
    unlabelled = tmp_path / "new.csv"
    loan_frame.drop(columns=["default"]).to_csv(unlabelled, index=False)

    restored = _datamodule(tmp_path / "absent.csv", predict_path=str(unlabelled))
    restored.setup("predict")  # must not read the (absent) training file
    restored.load_state_dict(state)
    x_num, x_cat, _ = next(iter(restored.predict_dataloader()))
    expected = fitted.preprocessor.transform(
        fitted.labelled_table().numeric, loan_frame[list(fitted.schema.categorical_columns)]
    )
    torch.testing.assert_close(x_num, torch.from_numpy(expected.numeric))
    torch.testing.assert_close(x_cat, torch.from_numpy(expected.categorical))
    name, ids = restored.predict_ids()
    assert name == "loan_id" and ids.tolist() == loan_frame["loan_id"].astype(str).tolist()


def test_ids_are_copied_as_written(loan_csv, loan_frame, tmp_path, caplog):
    """Not as numbers: "007" keeps its zeros, and a blank id leaves the others integers."""
    state = _datamodule(loan_csv)
    state.setup("fit")
    unlabelled = loan_frame.drop(columns=["default"]).head(4).astype({"loan_id": object})
    unlabelled["loan_id"] = ["007", None, "0100", "0100"]
    written = {"csv": tmp_path / "new.csv", "parquet": tmp_path / "new.parquet"}
    unlabelled.to_csv(written["csv"], index=False)
    unlabelled.assign(loan_id=[7.0, None, 100.0, 101.0]).to_parquet(written["parquet"])
    expected = {"csv": ["007", None, "0100", "0100"], "parquet": [7, None, 100, 101]}
    for kind, path in written.items():
        restored = _datamodule(tmp_path / "absent.csv", predict_path=str(path))
        restored.setup("predict")
        restored.load_state_dict(state.state_dict())
        _, ids = restored.predict_ids()
        assert [None if pd.isna(value) else value for value in ids] == expected[kind]
    assert "1 row has no id" in caplog.text
    assert "1 id occurs more than once (e.g. ['0100'])" in caplog.text


def test_synthetic_book_exposes_true_probabilities_for_the_bayes_ceiling():
    dm = LoanDataModule(synthetic_rows=1_000)  # as the README's Python example builds it
    dm.setup("fit")
    # The book's row number is its id, not a feature, without a config saying so.
    assert dm.schema.id_column == "loan_id" and "loan_id" not in dm.schema.feature_columns
    truth = dm.true_default_probability("test")
    assert truth.shape == (len(dm.split_tensors("test")),)
    assert ((truth > 0) & (truth < 1)).all()


def test_training_rows_get_out_of_fold_target_statistics_also_after_a_restore(loan_csv):
    """The training split's statistics are out of fold, the validation split's come from
    the fitted table; a datamodule restored from a checkpoint's state (a resumed fit)
    serves the very same training inputs."""
    fitted = _datamodule(loan_csv, target_statistics=True, folds=1)
    fitted.setup("fit")
    pre = fitted.preprocessor
    n_categorical = len(pre.categorical_columns)
    assert n_categorical and fitted.feature_spec.n_numeric == pre.n_numeric_features
    table = fitted.labelled_table()
    statistics = slice(pre.n_numeric_features - len(pre.indicator_columns_) - n_categorical, None)
    for split, out_of_fold in (("train", True), ("val", False)):
        rows = getattr(table.split, split)
        served = fitted.split_tensors(split).numeric.numpy()
        from_table = pre.transform(table.numeric, table.frame, rows).numeric
        assert np.array_equal(served, from_table) != out_of_fold
        assert np.array_equal(served[:, : statistics.start], from_table[:, : statistics.start])

    restored = _datamodule(loan_csv, target_statistics=True, folds=1)
    restored.setup("validate")
    restored.load_state_dict(fitted.state_dict())
    torch.testing.assert_close(
        restored.split_tensors("train").numeric, fitted.split_tensors("train").numeric
    )


def test_a_test_split_of_few_defaulters_is_called_rough(loan_frame, tmp_path, caplog):
    small = tmp_path / "small.csv"
    loan_frame.groupby("default").head(40).to_csv(small, index=False)  # 8 + 8 test rows
    _datamodule(small).setup("fit")
    assert "the test split holds 8 defaulters and 8 others" in caplog.text
    assert "by up to 0.12" in caplog.text
