"""The synthetic files of many coded fields: their shape, and signal where their docs put it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from contracts.errors import ConfigurationError
from datamodules.coded_fields import (
    N_CATEGORICALS,
    N_NUMBERS,
    generate_coded_fields,
    generate_weak_coded_fields,
)
from datamodules.loan_datamodule import LoanDataModule
from datamodules.synthetic import TARGET_COLUMN, SyntheticLoanBook
from lightning_modules.cli import build_cli
from tests.conftest import CONFIGS

N_ROWS = 20_000
GENERATORS = (generate_coded_fields, generate_weak_coded_fields)


@pytest.fixture(scope="module")
def strong() -> SyntheticLoanBook:
    return generate_coded_fields(N_ROWS, seed=0)


@pytest.fixture(scope="module")
def weak() -> SyntheticLoanBook:
    return generate_weak_coded_fields(N_ROWS, seed=1)


def _rate_gap(frame: pd.DataFrame, groups: pd.Series) -> float:
    """The default rate of one group of rows minus the other's."""
    rates = frame[TARGET_COLUMN].groupby(groups.to_numpy()).mean()
    return float(rates.loc[True] - rates.loc[False])


def _code(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].str.slice(1).astype(int)


@pytest.mark.parametrize("generate", GENERATORS)
def test_same_seed_is_identical_and_other_seed_differs(generate) -> None:
    first, again, other = generate(2_000, seed=3), generate(2_000, seed=3), generate(2_000, seed=4)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    np.testing.assert_array_equal(first.default_probability, again.default_probability)
    assert not first.frame.equals(other.frame)


@pytest.mark.parametrize("generate", GENERATORS)
@pytest.mark.parametrize("n_rows", [0, -5, 2.5, True])
def test_invalid_row_count_is_rejected(generate, n_rows: object) -> None:
    with pytest.raises(ValueError, match="n_rows must be an integer >= 1"):
        generate(n_rows)


@pytest.mark.parametrize("book", ["strong", "weak"])
def test_columns_are_coded_fields_numbers_and_a_binary_target(book: str, request) -> None:
    frame = request.getfixturevalue(book).frame
    categoricals = [f"c{j:02d}" for j in range(N_CATEGORICALS)]
    numbers = [f"x{k}" for k in range(N_NUMBERS)]
    assert list(frame.columns) == [*categoricals, *numbers, TARGET_COLUMN]
    assert all(frame[column].str.fullmatch(r"L\d+").all() for column in categoricals)
    assert frame[numbers].notna().all().all()
    assert set(frame[TARGET_COLUMN].unique()) == {0, 1}
    levels = frame[categoricals].nunique()
    # Wide columns are Zipf-distributed: hundreds of levels seen, most of them rare.
    assert levels.max() > 500
    widest = frame[levels.idxmax()].value_counts()
    assert (widest == 1).sum() > len(widest) / 3
    assert levels.min() <= 3


def test_strong_signal_lies_in_pairs_without_main_effects(strong: SyntheticLoanBook) -> None:
    frame = strong.frame
    # About 44 % at 50,000 rows; the few common levels of the wide columns move it by draw.
    assert 0.38 < frame[TARGET_COLUMN].mean() < 0.52
    even = (_code(frame, "c08") + _code(frame, "c09")) % 2 == 0
    # Log-odds +0.5 where the pair's codes sum to an even number: about 12 points of rate,
    # while either column's parity alone moves it by about nothing.
    assert _rate_gap(frame, even) > 0.08
    assert abs(_rate_gap(frame, _code(frame, "c08") % 2 == 0)) < 0.03
    assert abs(_rate_gap(frame, _code(frame, "c09") % 2 == 0)) < 0.03
    assert 0.78 < roc_auc_score(frame[TARGET_COLUMN], strong.default_probability) < 0.88


def test_weak_signal_has_its_documented_rate_and_ceiling(weak: SyntheticLoanBook) -> None:
    # The intercept is solved for the mean probability, so the rate is exact before the draw.
    assert weak.default_probability.mean() == pytest.approx(0.26, abs=1e-6)
    targets = weak.frame[TARGET_COLUMN]
    assert 0.68 < roc_auc_score(targets, weak.default_probability) < 0.74
    # Columns 20-31 but c20 (paired with c00) carry no risk: their level rates are noise.
    noise = _code(weak.frame, "c25") % 2 == 0
    assert abs(_rate_gap(weak.frame, noise)) < 0.02


@pytest.mark.parametrize("name", ["coded_fields", "coded_fields_weak"])
def test_each_config_loads_its_file_through_the_cli(name: str) -> None:
    cli = build_cli(["--config", str(CONFIGS / f"{name}.yaml"), "--data.synthetic_rows=3000"])
    datamodule = cli.datamodule
    assert isinstance(datamodule, LoanDataModule)
    table = datamodule.labelled_table()
    assert datamodule.schema is not None
    assert len(datamodule.schema.categorical_columns) == N_CATEGORICALS
    assert len(datamodule.schema.numeric_columns) == N_NUMBERS
    assert len(table.targets) == 3000
    assert table.default_probability is not None
    assert datamodule.source == f"synthetic {name.replace('_', ' ')} (3000 rows)"


def test_an_unknown_synthetic_file_is_named_in_the_error() -> None:
    with pytest.raises(ConfigurationError, match=r"synthetic must be one of .*'coded_fields'"):
        LoanDataModule(None, synthetic="coded_field")
