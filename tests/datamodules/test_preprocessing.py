import numpy as np
import pandas as pd
import pytest
import torch

from contracts.errors import ConfigurationError
from datamodules.preprocessing import (
    FIRST_LEVEL_CODE,
    MISSING_CODE,
    UNKNOWN_CODE,
    TabularPreprocessor,
    category_strings,
)

NUMERIC = ("income", "age")
CATEGORICAL = ("grade",)


def _standard(**options) -> TabularPreprocessor:
    """Standard scaling without value counts: the simplest block to check by hand."""
    return TabularPreprocessor(
        NUMERIC, CATEGORICAL, **({"scaling": "standard", "value_counts": False} | options)
    )


def _numeric(rows):
    return np.array(rows, dtype=np.float64)


@pytest.fixture
def train():
    numeric = _numeric([[10.0, 30.0], [20.0, np.nan], [30.0, 50.0], [40.0, 40.0]])
    categorical = pd.DataFrame({"grade": ["A", "B", "A", "C"]})
    return numeric, categorical


def test_fit_learns_from_training_rows_only(train):
    numeric, categorical = train
    pre = _standard().fit(numeric, categorical)
    np.testing.assert_allclose(pre.medians_, [25.0, 40.0])
    assert pre.indicator_columns_ == ["age"]
    assert pre.vocabularies_ == {"grade": ["A", "B", "C"]}
    # New rows with extreme values do not change what was learned.
    other = _numeric([[1e6, 1e6]])
    block = pre.transform(other, pd.DataFrame({"grade": ["A"]}))
    assert block.numeric[0, 0] > 1000


def test_transform_imputes_adds_indicators_and_scales(train):
    numeric, categorical = train
    pre = _standard().fit(numeric, categorical)
    block = pre.transform(numeric, categorical)
    assert block.numeric.dtype == np.float32 and block.numeric.shape == (4, 3)
    np.testing.assert_allclose(block.numeric[:, :2].mean(axis=0), 0.0, atol=1e-6)
    assert block.numeric[:, 2].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert pre.n_numeric_features == 3


def test_unseen_missing_and_rare_categories_get_reserved_codes(train):
    numeric, categorical = train
    pre = _standard(min_level_count=2).fit(numeric, categorical)
    assert pre.vocabularies_ == {"grade": ["A"]}
    new = pd.DataFrame({"grade": ["A", "B", "Z", None]})
    codes = pre.transform(_numeric([[1.0, 1.0]] * 4), new).categorical[:, 0]
    assert codes.tolist() == [FIRST_LEVEL_CODE, UNKNOWN_CODE, UNKNOWN_CODE, MISSING_CODE]
    assert pre.cardinalities == [FIRST_LEVEL_CODE + 1]
    assert pre.count_unknown(new) == {"grade": 2}


def test_integer_codes_match_whether_read_as_int_or_float():
    as_int = category_strings(pd.Series([1, 2, 3]))
    as_float = category_strings(pd.Series([1.0, 2.0, np.nan]))
    assert as_int.tolist() == ["1", "2", "3"]
    assert as_float.tolist()[:2] == ["1", "2"] and pd.isna(as_float.iloc[2])


def test_value_counts_count_exact_training_values():
    """A heaped income (60,000 three times) stands out from its neighbours; unseen values,
    missing ones and rows outside training count 0."""
    incomes = _numeric([[60000.0], [60000.0], [60000.0], [61234.0], [np.nan], [59999.0]])
    pre = TabularPreprocessor(
        ("income",), (), scaling="standard", value_counts=True, min_value_count=1
    ).fit(incomes, pd.DataFrame(index=range(6)))
    assert pre.n_numeric_features == 3  # income, its value count, its missing indicator
    new = _numeric([[60000.0], [61234.0], [60001.0], [np.nan], [1e9]])
    block = pre.transform(new, pd.DataFrame(index=range(5))).numeric
    count = block[:, 1]
    # Standard-scaled log(1 + count): the order of the counts 3 > 1 > 0 = 0 = 0 survives.
    assert count[0] > count[1] > count[2]
    assert count[2] == count[3] == count[4]
    assert block[:, 2].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    # With a minimum count of 2, the single 61,234 is no heap: it counts 0 like an unseen value.
    heaps_only = TabularPreprocessor(
        ("income",), (), scaling="standard", value_counts=True, min_value_count=2
    ).fit(incomes, pd.DataFrame(index=range(6)))
    count = heaps_only.transform(new, pd.DataFrame(index=range(5))).numeric[:, 1]
    assert count[0] > count[1] and count[1] == count[2]
    without = TabularPreprocessor(("income",), (), value_counts=False).fit(
        incomes, pd.DataFrame(index=range(6))
    )
    assert without.n_numeric_features == 2


@pytest.mark.parametrize(
    ("scaling", "value_counts"),
    [("standard", False), ("quantile", False), ("quantile", True)],
)
def test_state_dict_round_trip_gives_identical_outputs(train, scaling, value_counts, tmp_path):
    numeric, categorical = train
    pre = TabularPreprocessor(
        NUMERIC,
        CATEGORICAL,
        scaling=scaling,
        value_counts=value_counts,
        min_value_count=1,
    ).fit(numeric, categorical)
    path = tmp_path / "state.pt"
    torch.save(pre.state_dict(), path)
    restored = TabularPreprocessor.from_state_dict(torch.load(path, weights_only=True))
    new_numeric = _numeric([[15.0, np.nan], [99.0, 20.0], [30.0, 50.0]])
    new_categorical = pd.DataFrame({"grade": ["B", "Q", "A"]})
    original = pre.transform(new_numeric, new_categorical)
    again = restored.transform(new_numeric, new_categorical)
    np.testing.assert_array_equal(original.numeric, again.numeric)
    np.testing.assert_array_equal(original.categorical, again.categorical)
    assert original.numeric.shape[1] == pre.n_numeric_features == restored.n_numeric_features
    if value_counts:
        for (values, counts), (values_again, counts_again) in zip(
            pre.value_count_tables_, restored.value_count_tables_, strict=True
        ):
            np.testing.assert_array_equal(values, values_again)
            np.testing.assert_array_equal(counts, counts_again)
        assert all(len(values) > 0 for values, _ in pre.value_count_tables_)


def test_quantile_scaling_maps_training_rows_to_normal_scores():
    rng = np.random.default_rng(0)
    heavy_tailed = rng.lognormal(sigma=2.0, size=(5000, 1))
    pre = TabularPreprocessor(("x",), (), scaling="quantile").fit(heavy_tailed, pd.DataFrame())
    scores = pre.transform(heavy_tailed, pd.DataFrame()).numeric[:, 0]
    assert abs(scores.mean()) < 0.05 and abs(scores.std() - 1.0) < 0.1


def test_transform_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularPreprocessor(NUMERIC, CATEGORICAL).transform(_numeric([[1.0, 2.0]]), pd.DataFrame())


def test_training_distributions_travel_in_a_safe_checkpoint(tmp_path):
    """Each column's training distribution (deciles + missing bin; codes) survives
    `weights_only` loading, and new rows are counted on the same bins."""
    rng = np.random.default_rng(0)
    income = rng.lognormal(10, 1, 1_000)
    income[:50] = np.nan
    numeric = np.column_stack([income, rng.integers(18, 80, 1_000).astype(float)])
    categorical = pd.DataFrame({"grade": rng.choice(["A", "B", "C"], 1_000, p=[0.2, 0.5, 0.3])})
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL).fit(numeric, categorical)
    income_bins = pre.distributions_["income"]
    assert income_bins.counts.sum() == 1_000 and income_bins.counts[-1] == 50
    assert pre.distributions_["grade"].labels == ("<missing>", "<unknown>", "A", "B", "C")
    path = tmp_path / "state.pt"
    torch.save(pre.state_dict(), path)
    restored = TabularPreprocessor.from_state_dict(torch.load(path, weights_only=True))
    for name, distribution in pre.distributions_.items():
        again = restored.distributions_[name]
        np.testing.assert_array_equal(distribution.counts, again.counts)
        assert distribution.labels == again.labels
    recounted = restored.feature_counts(numeric, categorical)
    for name, distribution in pre.distributions_.items():
        np.testing.assert_array_equal(recounted[name], distribution.counts)
    new_grades = pd.DataFrame({"grade": ["A", "Z", None]})
    counts = restored.feature_counts(_numeric([[1.0, 20.0]] * 3), new_grades)["grade"]
    assert counts.tolist() == [1, 1, 1, 0, 0]  # missing, unknown, A, B, C


def test_reference_applicant_is_the_medians_and_most_frequent_levels(train):
    numeric, _ = train
    pre = _standard().fit(numeric, pd.DataFrame({"grade": ["B", "B", "A", None]}))
    reference = pre.reference_applicant()
    by_hand = pre.transform(pre.medians_[None, :], pd.DataFrame({"grade": ["B"]}))
    np.testing.assert_array_equal(reference.numeric, by_hand.numeric)
    assert reference.categorical.tolist() == [[FIRST_LEVEL_CODE + 1]]  # "B"
    assert reference.numeric[0, -1] == 0.0  # present, so its missing indicator is off
    assert pre.numeric_input_owners() == [("income",), ("age",), ("age",)]


def test_value_counts_saved_in_float64_still_match_float32_columns():
    """A checkpoint from before the numeric block was float32 keeps its value-count table in
    float64: 0.1 there must still match the float32 0.1 a new file is read as."""
    rates = np.array([[0.1]] * 3 + [[0.7]], dtype=np.float64)
    pre = TabularPreprocessor(
        ("rate",), (), scaling="standard", value_counts=True, min_value_count=1
    ).fit(rates, pd.DataFrame(index=range(4)))
    assert pre.value_count_tables_[0][0].dtype == np.float64
    new = np.array([[0.1], [0.7], [0.3]], dtype=np.float32)
    count = pre.transform(new, pd.DataFrame(index=range(3))).numeric[:, 1]
    assert count[0] > count[1] > count[2]


def _levels_with_rates(n_rows: int = 4000, seed: int = 0):
    """A categorical of 40 levels whose default rates rise from 5 % to 60 %, one noise number."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 40, n_rows)
    rates = np.linspace(0.05, 0.6, 40)
    targets = (rng.random(n_rows) < rates[levels]).astype(np.int64)
    numeric = rng.normal(size=(n_rows, 2))
    categorical = pd.DataFrame({"grade": [f"L{level:02d}" for level in levels]})
    return numeric, categorical, targets, rates[levels]


def test_target_statistics_rank_levels_by_their_default_rate():
    numeric, categorical, targets, true_rate = _levels_with_rates()
    pre = _standard(target_statistics=True).fit(numeric, categorical, targets=targets)
    assert pre.n_numeric_features == 3
    assert pre.numeric_input_owners() == [("income",), ("age",), ("grade",)]
    statistic = pre.transform(numeric, categorical).numeric[:, 2]
    assert np.corrcoef(statistic, true_rate)[0, 1] > 0.9


def test_a_training_rows_statistic_never_sees_its_own_target():
    """A level held by one training row, a defaulter: the fitted table (for other files)
    leans towards default, but the row's own out-of-fold statistic knows nothing of the
    level and is the other folds' overall rate."""
    numeric, categorical, targets, _ = _levels_with_rates()
    categorical.loc[0, "grade"], targets[0] = "only-once", 1
    pre = _standard(target_statistics=True).fit(numeric, categorical, targets=targets)
    rows = np.arange(len(targets))
    out_of_fold = pre.out_of_fold_statistics(numeric, categorical, targets, rows)
    rate = targets.mean()
    table = pre.target_statistic_tables_[0][pre._codes(categorical["grade"], "grade")[0]]
    assert table > rate + 0.01
    assert abs(out_of_fold[0, 0] - rate) < 0.01
    np.testing.assert_array_equal(
        out_of_fold, pre.out_of_fold_statistics(numeric, categorical, targets, rows)
    )
    # transform uses what it is given for the rows it was fitted on, the table elsewhere.
    given = pre.transform(numeric, categorical, rows[:1], out_of_fold[:1]).numeric[0, 2]
    fitted = pre.transform(numeric, categorical, rows[:1]).numeric[0, 2]
    assert given < fitted


def test_target_statistics_travel_in_a_safe_checkpoint(tmp_path):
    numeric, categorical, targets, _ = _levels_with_rates()
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL, target_statistics=True).fit(
        numeric, categorical, targets=targets
    )
    path = tmp_path / "state.pt"
    torch.save(pre.state_dict(), path)
    restored = TabularPreprocessor.from_state_dict(torch.load(path, weights_only=True))
    new = pd.DataFrame({"grade": ["L03", "L39", "never-seen", None]})
    rows = np.zeros((4, 2))
    np.testing.assert_array_equal(
        restored.transform(rows, new).numeric, pre.transform(rows, new).numeric
    )
    unseen, missing = pre._table_statistics(pre._code_block(new, np.arange(4)))[2:, 0]
    assert unseen == missing == pytest.approx(targets.mean())


def test_target_statistics_need_the_targets(train):
    numeric, categorical = train
    with pytest.raises(ValueError, match="targets"):
        _standard(target_statistics=True).fit(numeric, categorical)


def test_auto_target_statistics_only_for_wide_categoricals():
    numeric, categorical, targets, _ = _levels_with_rates()
    categorical["term"] = np.where(np.arange(len(targets)) % 3, "36", "60")
    pre = TabularPreprocessor(NUMERIC, ("grade", "term")).fit(numeric, categorical, targets=targets)
    assert pre.target_statistic_columns_ == ["grade"]
    assert pre.numeric_input_owners()[-1] == ("grade",)
    narrow = TabularPreprocessor(NUMERIC, ("term",)).fit(numeric, categorical)
    assert narrow.target_statistic_columns_ == [] and narrow.n_numeric_features == 4


def _heaped_rate(n_rows: int, seed: int = 0):
    """Incomes heaped at four round values plus a spread of exact ones; the round 3,000 is
    where defaulters concentrate (60 % against 20 %), as one lender's price point can be."""
    rng = np.random.default_rng(seed)
    income = rng.choice([1000.0, 2000.0, 3000.0, 5000.0], n_rows)
    exact = rng.random(n_rows) < 0.3
    income[exact] += rng.normal(0, 300, exact.sum())
    targets = (rng.random(n_rows) < np.where(income == 3000.0, 0.6, 0.2)).astype(np.int64)
    numeric = np.column_stack([income, rng.normal(size=n_rows)])
    return numeric, pd.DataFrame({"grade": rng.choice(list("ab"), n_rows)}), targets


def test_value_statistics_give_a_frequent_values_default_rate():
    numeric, categorical, targets = _heaped_rate(6000)
    pre = TabularPreprocessor(NUMERIC, CATEGORICAL, value_statistics=True).fit(
        numeric, categorical, np.arange(5000), targets
    )
    assert pre.value_statistic_columns_ == ["income"]
    owners = pre.numeric_input_owners()
    assert owners == [("income",), ("age",), ("income",), ("age",), ("income",)]
    statistic = pre.transform(numeric, categorical, np.arange(5000, 6000)).numeric[:, 4]
    at_price_point = numeric[5000:, 0] == 3000.0
    assert statistic[at_price_point].min() > statistic[~at_price_point].max()


def test_value_statistics_start_at_the_small_data_boundary():
    numeric, categorical, targets = _heaped_rate(6000)
    for rows, expected in ((5119, []), (5120, ["income"])):
        pre = TabularPreprocessor(NUMERIC, CATEGORICAL).fit(
            numeric, categorical, np.arange(rows), targets
        )
        assert pre.value_statistic_columns_ == expected
    with pytest.raises(ConfigurationError, match="value_counts"):
        TabularPreprocessor(NUMERIC, CATEGORICAL, value_counts=False, value_statistics=True)
    # Without value counts there are no values to rate: "auto" adds none at any size.
    without_counts = TabularPreprocessor(NUMERIC, CATEGORICAL, value_counts=False)
    assert without_counts.fit(numeric, categorical, targets=targets).value_statistic_columns_ == []
