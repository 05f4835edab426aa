"""The EDA profile: its numbers against pandas and scikit-learn, its warnings on planted flaws."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from analysis.profiling import (
    MISSING_LEVEL,
    DatasetProfile,
    profile_dataset,
    sentinel_codes,
    wilson_interval,
)
from analysis.report import write_report
from contracts.errors import ConfigurationError, DataValidationError
from datamodules.io import ReadOptions
from datamodules.loan_datamodule import LoanDataModule


def _profile(dm: LoanDataModule, **kwargs) -> DatasetProfile:
    return profile_dataset(dm.labelled_table(), dm.schema, source=dm.source, **kwargs)


@pytest.fixture(scope="module")
def synthetic() -> tuple[LoanDataModule, DatasetProfile]:
    dm = LoanDataModule(None, target="default", id_column="loan_id", synthetic_rows=3_000)
    return dm, _profile(dm)


def test_overview_matches_the_labelled_table(synthetic):
    dm, profile = synthetic
    table = dm.labelled_table()
    assert profile.n_rows == len(table.frame) == 3_000
    assert profile.positives == table.targets.sum()
    assert profile.positive_rate == pytest.approx(table.targets.mean())
    assert profile.split_balance == {
        name: (len(rows), int(table.targets[rows].sum()))
        for name in ("train", "val", "test")
        for rows in [getattr(table.split, name)]
    }
    roles = {info.name: info.role for info in profile.columns}
    assert roles["default"] == "target" and roles["loan_id"] == "id"
    assert [n for n, r in roles.items() if r == "numeric"] == list(dm.schema.numeric_columns)
    assert [n for n, r in roles.items() if r == "categorical"] == list(
        dm.schema.categorical_columns
    )


def test_missing_and_distinct_counts_match_pandas(synthetic):
    dm, profile = synthetic
    frame = dm.labelled_table().frame
    assert {info.name: info.missing for info in profile.columns} == frame.isna().sum().to_dict()
    assert {info.name: info.distinct for info in profile.columns} == frame.nunique().to_dict()
    assert any(info.missing for info in profile.columns)


def test_histograms_hold_every_present_value_of_each_class(synthetic):
    dm, profile = synthetic
    table = dm.labelled_table()
    for dist in profile.numeric:
        values = table.frame[dist.name]
        for label in (0, 1):
            assert dist.counts[label].sum() == values[table.targets == label].notna().sum()
        assert dist.quantiles["median"] == pytest.approx(values.median())
        assert dist.mean_by_class[1] == pytest.approx(values[table.targets == 1].mean())
        assert len(dist.edges) == dist.counts.shape[1] + 1


def test_level_rates_add_up_and_their_intervals_cover_them(synthetic):
    dm, profile = synthetic
    table = dm.labelled_table()
    for rates in profile.categorical:
        assert rates.counts.sum() == profile.n_rows
        assert rates.defaults.sum() == profile.positives
        assert np.all((rates.ci_low <= rates.rates) & (rates.rates <= rates.ci_high))
        first = rates.levels[0]
        column = table.frame[rates.column].astype(str)
        assert rates.counts[0] == (column == first).sum()
        assert rates.n_levels == table.frame[rates.column].nunique()
    ownership = next(r for r in profile.categorical if r.column == "home_ownership")
    assert ownership.levels[-1] == MISSING_LEVEL  # the synthetic book blanks 1 % of it
    assert ownership.counts[-1] == table.frame["home_ownership"].isna().sum()


def test_univariate_auc_and_spearman_match_scikit_learn_and_pandas(synthetic):
    dm, profile = synthetic
    table = dm.labelled_table()
    signals = {signal.name: signal for signal in profile.signals}
    income = table.frame["annual_income"]
    present = income.notna().to_numpy()
    auc = roc_auc_score(table.targets[present], income[present])
    assert auc < 0.5  # richer applicants default less...
    assert signals["annual_income"].roc_auc == pytest.approx(1 - auc)  # ...direction-agnostic
    assert signals["annual_income"].direction == "lower → more defaults"
    assert signals["annual_income"].coverage == pytest.approx(present.mean())
    aucs = [signal.roc_auc for signal in profile.signals]
    assert aucs == sorted(aucs, reverse=True)
    assert min(s.roc_auc for s in profile.signals if s.role == "numeric") >= 0.5
    assert all(signal.mutual_information >= 0 for signal in profile.signals)
    numeric = list(dm.schema.numeric_columns)
    expected = table.frame[numeric].corr(method="spearman")
    pd.testing.assert_frame_equal(profile.spearman, expected)


def test_many_random_levels_do_not_outrank_a_real_signal(tmp_path):
    # In-sample level rates rank the outcome by each row's own target wherever levels hold
    # a few rows: this column of 400 random levels scored about 0.75 and ranked first.
    rng = np.random.default_rng(0)
    rows = 1_000
    income = rng.lognormal(10, 0.5, rows)
    default = (rng.random(rows) < 1 / (1 + np.exp((np.log(income) - 10) * 3 + 1))).astype(int)
    frame = pd.DataFrame(
        {
            "branch": rng.integers(0, 400, rows).astype(str),
            "annual_income": income,
            "default": default,
        }
    )
    path = tmp_path / "noise_levels.csv"
    frame.to_csv(path, index=False)
    dm = LoanDataModule(str(path), target="default", categorical_columns=["branch"])
    ranking = _profile(dm).signals
    assert [signal.name for signal in ranking] == ["annual_income", "branch"]
    signals = {signal.name: signal for signal in ranking}
    assert signals["branch"].roc_auc < 0.56
    assert signals["annual_income"].roc_auc > 0.7


def test_train_rows_only(synthetic):
    dm, _ = synthetic
    table = dm.labelled_table()
    profile = _profile(dm, rows="train")
    assert profile.n_rows == len(table.split.train)
    assert profile.positives == table.targets[table.split.train].sum()
    assert list(profile.split_balance) == ["train"]


def test_wilson_interval_known_values():
    low, high = wilson_interval(np.array([5, 0, 10]), np.array([10, 10, 10]))
    np.testing.assert_allclose(low, [0.2366, 0.0, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.7634, 0.2775, 1.0], atol=1e-4)
    # Every level of 0 % or 100 % defaults, whatever its size (42 of 42 missed 1.0 by 1e-16):
    # the bounds hold the rate, so the report's error bars are never negative.
    sizes = np.arange(1, 2001)
    for defaults in (np.zeros_like(sizes), sizes):
        low, high = wilson_interval(defaults, sizes)
        rate = defaults / sizes
        assert (low <= rate).all() and (rate <= high).all()


def test_sentinel_codes_need_a_gap_from_the_real_values():
    past_due = np.array([0, 0, 1, 2, 13, 96, 98, 98, np.nan])
    assert sentinel_codes(past_due) == {96.0: 1, 98.0: 2}
    ages = np.array([25, 40, 71, 96, 98, 101], dtype=float)
    assert sentinel_codes(ages) == {}
    fico = np.array([-9, -8, -7, -7, 0, 55, 80], dtype=float)
    assert sentinel_codes(fico) == {-9.0: 1, -8.0: 1, -7.0: 2}
    balance = np.array([-9, -500, 20, 300], dtype=float)  # negatives are real here
    assert sentinel_codes(balance) == {}


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> DatasetProfile:
    """A loan file with one of each problem the report must warn about."""
    rng = np.random.default_rng(0)
    n = 2_000
    score = rng.normal(size=n)
    target = (rng.random(n) < 1 / (1 + np.exp(3.5 + 1.5 * score))).astype(int)  # ~7 %
    months = rng.integers(0, 60, n).astype(float)
    months[:150] = -9
    late = rng.poisson(0.3, n).astype(float)
    late[150:170] = 98
    income = np.exp(rng.normal(10.5, 0.4, n))
    income[5] = 5e7
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(n),
            "score": score,
            "score_copy": 2 * score + 1,
            "months_since_delinquency": months,
            "times_late": late,
            "income": income,
            "member_number": rng.permutation(n) + 10_000,
            "branch": [f"b{i}" for i in rng.integers(0, 80, n)],
            "country": "NL",
            "notes_length": np.where(rng.random(n) < 0.7, np.nan, rng.random(n)),
            "applied_on": pd.date_range("2015-01-01", periods=n).strftime("%Y-%m-%d"),
            "collateral": np.where(np.arange(n) < 2, score, np.nan),  # two values present
            "default": target,
        }
    )
    frame = pd.concat([frame, frame.iloc[:7].assign(loan_id=np.arange(n, n + 7))])
    path = tmp_path_factory.mktemp("planted") / "loans.csv"
    frame.to_csv(path, index=False)
    dm = LoanDataModule(
        str(path),
        target="default",
        id_column="loan_id",
        categorical_columns=["branch", "country", "applied_on"],
    )
    return _profile(dm)


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        ("imbalance", ()),
        ("constant", ("country",)),
        ("duplicate", ("score", "score_copy")),
        ("duplicate", ()),
        ("identifier", ("member_number",)),
        ("sentinel", ("months_since_delinquency",)),
        ("sentinel", ("times_late",)),
        ("outlier", ("income",)),
        ("cardinality", ("branch",)),
        ("missing", ("notes_length",)),
        ("dates", ("applied_on",)),
        ("missing", ("collateral",)),
    ],
)
def test_planted_problems_are_warned_about(planted, kind, columns):
    assert (kind, columns) in {(f.kind, f.columns) for f in planted.findings}


def test_clean_columns_raise_no_warning(planted):
    flagged = {column for finding in planted.findings for column in finding.columns}
    assert "loan_id" not in flagged  # an id column in its proper role, unrelated to the target
    sentinel = next(f for f in planted.findings if f.columns == ("times_late",))
    assert re.search(r"98 \(20 rows, \d+\.\d% defaulted\)", sentinel.message)
    assert planted.duplicate_rows == 7
    # A date's levels each hold one row: scored out of fold they rank nothing, so no leak
    # (in-sample they ranked the outcome perfectly); nor is a date an identifier.
    assert not any(f.kind == "leak" for f in planted.findings)
    assert ("identifier", ("applied_on",)) not in {(f.kind, f.columns) for f in planted.findings}
    # Two present values always correlate at +-1, and missing cells are not a value.
    collateral = {f.kind for f in planted.findings if "collateral" in f.columns}
    assert collateral == {"missing"}


def test_an_identifier_that_tracks_the_outcome_is_a_leak(tmp_path):
    rng = np.random.default_rng(1)
    target = np.sort(rng.random(600) < 0.3).astype(int)  # file sorted by outcome
    frame = pd.DataFrame({"id": np.arange(600), "x": rng.normal(size=600), "y": target})
    path = tmp_path / "sorted.csv"
    frame.to_csv(path, index=False)
    profile = _profile(LoanDataModule(str(path), target="y", id_column="id"))
    leaks = {f.columns for f in profile.findings if f.kind == "leak"}
    assert leaks == {("id",), ()}
    # Left as a feature it is still one leak (in the id's words), besides the identifier.
    as_feature = _profile(LoanDataModule(str(path), target="y"))
    leaks = [f.columns for f in as_feature.findings if f.kind == "leak"]
    assert sorted(leaks) == [(), ("id",)]
    assert [f.columns for f in as_feature.findings if f.kind == "identifier"] == [("id",)]


# Constant features, missing cells aside: numeric, numeric 60 % missing, categoricals, one
# categorical 20 % missing. Two of the categoricals are constant without gaps, a pair the
# "same grouping of rows" check used to report as duplicates.
CONSTANT = ("currency_rate", "fee", "country", "product", "channel")


@pytest.fixture(scope="module")
def constants(tmp_path_factory) -> tuple[LoanDataModule, DatasetProfile]:
    """A loan file with constant columns beside real near-duplicates, an almost-constant
    flag and an empty column."""
    rng = np.random.default_rng(2)
    n = 600
    score = rng.normal(size=n)
    region = rng.integers(0, 5, n)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(n),
            "score": score,
            "score_copy": 2 * score + 1,
            "income": rng.normal(size=n),
            "region": [f"r{i}" for i in region],
            "region_code": [f"code-{9 - i}" for i in region],
            "currency_rate": 1.0,
            "fee": np.where(rng.random(n) < 0.6, np.nan, 2.5),
            "country": "NL",
            "product": "loan",
            "channel": np.where(rng.random(n) < 0.2, None, "web"),
            "flag": ["Y"] + ["N"] * (n - 1),
            "notes": np.nan,
            "default": (rng.random(n) < 1 / (1 + np.exp(1 + score))).astype(int),
        }
    )
    path = tmp_path_factory.mktemp("constants") / "loans.csv"
    frame.to_csv(path, index=False)
    categorical = ["region", "region_code", "country", "product", "channel", "flag"]
    dm = LoanDataModule(
        str(path), target="default", id_column="loan_id", categorical_columns=categorical
    )
    return dm, _profile(dm)


def test_a_constant_column_gets_one_warning_that_says_training_keeps_it(constants):
    _, profile = constants
    kept = [f.columns for f in profile.findings if "training keeps it" in f.message]
    assert sorted(kept) == sorted((name,) for name in CONSTANT)
    for name in CONSTANT:
        (finding,) = [f for f in profile.findings if name in f.columns]
        assert finding.kind == "constant" and finding.columns == (name,)
        assert finding.message.startswith(f"{name!r} is constant")
        assert finding.message.endswith("drop it with --data.drop_columns.")
    messages = {f.columns[0]: f.message for f in profile.findings if f.kind == "constant"}
    assert "'NL' in every row" in messages["country"]
    assert "(it carries no signal)" in messages["currency_rate"]
    assert "2.5 wherever present, missing in" in messages["fee"]
    for gappy in ("fee", "channel"):
        assert "whether it is missing is all the model can learn" in messages[gappy]


def test_constant_columns_are_left_out_of_the_duplicate_checks(constants):
    _, profile = constants
    duplicates = {f.columns for f in profile.findings if f.kind == "duplicate"}
    assert duplicates == {("score", "score_copy"), ("region", "region_code")}


def test_an_almost_constant_or_empty_column_is_warned_about_once(constants):
    _, profile = constants
    (flag,) = [f for f in profile.findings if "flag" in f.columns]
    assert (flag.kind, flag.columns) == ("constant", ("flag",))
    assert "almost constant: one value fills 99.83% of rows" in flag.message
    (notes,) = [f for f in profile.findings if "notes" in f.columns]
    assert notes.message == (
        "'notes' is missing in every row: training stops on it (it is entirely missing in the "
        "training rows); drop it with --data.drop_columns."
    )


def test_a_constant_present_only_outside_the_training_rows_stops_training(constants):
    dm, _ = constants
    table = dm.labelled_table()
    frame = table.frame.copy()
    frame.loc[frame.index[table.split.train], "product"] = np.nan
    profile = profile_dataset(dataclasses.replace(table, frame=frame), dm.schema, source=dm.source)
    (finding,) = [f for f in profile.findings if "product" in f.columns]
    assert finding.message.startswith("'product' is constant apart from missing cells ('loan'")
    assert "training stops on it" in finding.message


def test_what_the_warnings_say_is_what_training_does(constants):
    dm, _ = constants
    options = {
        "target": "default",
        "id_column": "loan_id",
        "categorical_columns": dm.categorical_columns,
    }
    with pytest.raises(DataValidationError, match="'notes' is entirely missing"):
        LoanDataModule(dm.path, **options).setup("fit")
    trained = LoanDataModule(dm.path, drop_columns=["notes"], **options)
    trained.setup("fit")
    fitted = trained.preprocessor
    assert set(CONSTANT) <= {*fitted.numeric_columns, *fitted.categorical_columns}
    assert "fee" in fitted.indicator_columns_ and "currency_rate" not in fitted.indicator_columns_


@pytest.mark.real_data
def test_give_me_some_credit_figures(real_data_dir):
    dm = LoanDataModule(
        "give_me_some_credit/cs-training.csv.gz",
        target="SeriousDlqin2yrs",
        categorical_columns=[],
        read_options=ReadOptions(index_col=0, na_values=["NA"]),
        data_dir=str(real_data_dir),
    )
    profile = _profile(dm)
    # The published figures (shared/data/README.md).
    assert (profile.n_rows, round(profile.positive_rate, 4)) == (150_000, 0.0668)
    missing = {info.name: info.missing for info in profile.columns if info.missing}
    assert missing == {"MonthlyIncome": 29_731, "NumberOfDependents": 3_924}
    sentinels = {f.columns[0]: f.message for f in profile.findings if f.kind == "sentinel"}
    assert set(sentinels) == {
        "NumberOfTime30-59DaysPastDueNotWorse",
        "NumberOfTimes90DaysLate",
        "NumberOfTime60-89DaysPastDueNotWorse",
    }
    assert all(
        "96 (5 rows, 80.0% defaulted), 98 (264 rows, 54.2% defaulted), against 6.6% elsewhere"
        in message
        for message in sentinels.values()
    )
    assert profile.signals[0].name == "RevolvingUtilizationOfUnsecuredLines"


def test_a_report_folder_that_cannot_hold_it_is_one_message(planted, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match=f"--output {blocker}: the report cannot be"):
        write_report(planted, blocker)
    assert blocker.read_text() == "not a folder"


def test_a_column_with_nothing_to_rank_gets_no_score(tmp_path):
    rng = np.random.default_rng(0)
    rows = 600
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "x": x,
            "empty": np.nan,
            "one": "A",
            "y": (rng.random(rows) < 1 / (1 + np.exp(-x))).astype(int),
        }
    )
    path = tmp_path / "nothing_to_rank.csv"
    frame.to_csv(path, index=False)
    profile = _profile(LoanDataModule(str(path), target="y"))
    assert [s.name for s in profile.signals] == ["x", "empty", "one"]
    assert np.isnan(profile.signals[1].roc_auc) and np.isnan(profile.signals[2].roc_auc)
    page = write_report(profile, tmp_path / "report").read_text()
    assert "one (1 level)" in page
    ranking = page[page.index("Single-feature ranking") : page.index("Numeric distributions")]
    assert "nan" not in ranking and ranking.count("<td>–</td>") == 2


def test_each_special_code_gets_its_own_default_rate(tmp_path):
    rng = np.random.default_rng(0)
    months = rng.integers(0, 60, 600).astype(float)
    default = (rng.random(600) < 0.2).astype(int)
    months[:40], default[:40] = -9, 1  # e.g. "refused to answer": every one defaulted
    months[40:80], default[40:80] = -8, 0  # "not asked": none did
    path = tmp_path / "codes.csv"
    pd.DataFrame({"months": months, "default": default}).to_csv(path, index=False)
    (finding,) = [
        f
        for f in _profile(LoanDataModule(str(path), target="default")).findings
        if f.kind == "sentinel"
    ]
    elsewhere = default[80:].mean()
    assert (
        f"-9 (40 rows, 100.0% defaulted), -8 (40 rows, 0.0% defaulted), against "
        f"{elsewhere:.1%} elsewhere"
    ) in finding.message
