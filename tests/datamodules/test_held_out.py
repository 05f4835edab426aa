"""The held-out rows' digest: it follows the validation and test rows' values only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contracts.errors import ConfigurationError
from datamodules.held_out import (
    HeldOutRows,
    held_out_rows,
    require_same_held_out,
    require_same_rows,
)
from datamodules.splits import SplitIndices

SPLIT = SplitIndices(train=np.array([0, 1, 2]), val=np.array([3]), test=np.array([4, 5]))
SETTINGS = {"seed": 0, "test_size": 0.2}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"income": [1.0, 2.0, 3.0, 4.0, np.nan, 6.0], "grade": list("abcdef"), "y": [0, 1] * 3}
    )


def _digest(frame: pd.DataFrame, split: SplitIndices = SPLIT) -> str:
    return held_out_rows(frame, ["income", "grade", "y"], split, SETTINGS).digest


def test_the_digest_changes_with_a_held_out_value_and_not_with_a_training_one():
    before = _digest(_frame())
    assert _digest(_frame()) == before
    training_row = _frame()
    training_row.loc[0, "income"] = 100.0
    assert _digest(training_row) == before
    for column, value in (("income", 5.0), ("grade", "z"), ("y", 1)):
        held_out = _frame()
        held_out.loc[4, column] = value
        assert _digest(held_out) != before, column
    other_split = SplitIndices(train=np.array([0, 1, 3]), val=np.array([2]), test=np.array([4, 5]))
    assert _digest(_frame(), other_split) != before


def test_a_mismatch_names_the_setting_that_differs_or_else_the_file():
    fitted = held_out_rows(_frame(), ["income", "y"], SPLIT, SETTINGS)
    require_same_held_out(fitted, HeldOutRows.from_state(fitted.to_state()), source="loans.csv")
    reseeded = HeldOutRows("other", {**SETTINGS, "seed": 3})
    with pytest.raises(ConfigurationError, match=r"--data\.seed 0 \(this run: 3\)"):
        require_same_held_out(fitted, reseeded, source="loans.csv")
    with pytest.raises(ConfigurationError, match=r"loans\.csv is not the file the checkpoint"):
        require_same_held_out(fitted, HeldOutRows("other", SETTINGS), source="loans.csv")


def test_a_continued_fit_needs_its_training_rows_unchanged_too():
    fitted = held_out_rows(_frame(), ["income", "grade", "y"], SPLIT, SETTINGS)
    require_same_rows(fitted, fitted, source="loans.csv", continued="last.ckpt")
    training_row = _frame()
    training_row.loc[0, "y"] = 1
    current = held_out_rows(training_row, ["income", "grade", "y"], SPLIT, SETTINGS)
    assert current.digest == fitted.digest and current.all_rows != fitted.all_rows
    require_same_held_out(fitted, current, source="loans.csv")  # `test` scores the same rows
    with pytest.raises(ConfigurationError, match=r"^last\.ckpt: loans\.csv is not the file"):
        require_same_rows(fitted, current, source="loans.csv", continued="last.ckpt")
    older = HeldOutRows.from_state({"digest": fitted.digest, "settings": SETTINGS})
    require_same_rows(older, current, source="loans.csv", continued="last.ckpt")
