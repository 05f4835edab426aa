"""Columns that carry no signal, appended to a file to test a model's robustness to them.

Every column of the public sets is a known risk factor; real credit files also carry many
columns with little or no signal, which trees shrug off and MLPs on small data overfit
(Grinsztajn et al., NeurIPS 2022). The benchmark's `@noise` datasets append them to check
that the default holds there too; a user can do the same with `--data.noise_columns` as a
placebo check of their own data.

The columns cycle through the shapes credit files have: of every seven, six numeric
(normal scores, log-normal amounts, Poisson counts, uniform ratios with 10 % missing) and
one categorical (3, 5, 8, 15 and 30 levels in turn, the last wide enough to count as a
high-cardinality categorical). They are a pure function of the row count and the seed,
drawn independently of every other column and of the target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.errors import DataValidationError

PREFIX = "noise_"
# The robustness suite's `@noise` modifier: 30 numeric and 5 categorical columns.
SUITE_NOISE_COLUMNS = 35
_CATEGORICAL_EVERY = 7
_CATEGORICAL_LEVELS = (3, 5, 8, 15, 30)
_MISSING_SHARE = 0.1
# Kept apart from the split's and the sample's streams, so noise never moves their draws.
_STREAM = 0x6E6F697365


def noise_column_names(count: int) -> tuple[list[str], list[str]]:
    """The numeric and the categorical names among `count` noise columns."""
    names = _names(count)
    categorical = [name for index, name in enumerate(names) if _is_categorical(index)]
    return [name for name in names if name not in categorical], categorical


def append_noise_columns(
    frame: pd.DataFrame, count: int, *, seed: int, source: str
) -> pd.DataFrame:
    """`frame` with `count` noise columns after its own (the same draw for the same row
    count and seed)."""
    if count == 0:
        return frame
    names = _names(count)
    if clashes := [name for name in names if name in frame.columns]:
        raise DataValidationError(
            f"{source}: --data.noise_columns would add columns {clashes}, which the file "
            "already has; rename them or drop the option."
        )
    rng = np.random.default_rng([_STREAM, seed])
    rows = len(frame)
    columns = {name: _draw(index, rows, rng) for index, name in enumerate(names)}
    return pd.concat([frame, pd.DataFrame(columns, index=frame.index)], axis=1)


def _names(count: int) -> list[str]:
    return [f"{PREFIX}{index:02d}" for index in range(count)]


def _is_categorical(index: int) -> bool:
    return index % _CATEGORICAL_EVERY == _CATEGORICAL_EVERY - 1


def _draw(index: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    if _is_categorical(index):
        levels = _CATEGORICAL_LEVELS[(index // _CATEGORICAL_EVERY) % len(_CATEGORICAL_LEVELS)]
        codes = rng.integers(levels, size=rows)
        return np.array([f"level_{code}" for code in range(levels)], dtype=object)[codes]
    kind = (index - index // _CATEGORICAL_EVERY) % 4
    if kind == 0:
        return rng.normal(size=rows)
    if kind == 1:
        return np.round(rng.lognormal(mean=8.0, sigma=1.0, size=rows), 2)
    if kind == 2:
        return rng.poisson(2.0, size=rows).astype(float)
    values = rng.uniform(size=rows)
    values[rng.uniform(size=rows) < _MISSING_SHARE] = np.nan
    return values
