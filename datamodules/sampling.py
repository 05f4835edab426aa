"""Deterministic stratified samples of a labelled file: fewer rows, or rarer defaults.

The benchmark's robustness suite derives datasets from the protocol's own: the same file
with fewer rows (`sample_rows`) or fewer defaulters (`sample_positive_rate`), the shapes
that credit data nobody here has tuned on tends to have. The sample is drawn right after
reading, before the schema and the protocol split, so a derived dataset behaves exactly as
a file that held only those rows: the protocol split of a seed then applies to them.

A sample is a pure function of the file, the two options and the seed. Each class is drawn
as a prefix of one seeded permutation of that class's rows, so with one seed a smaller
sample is a subset of a larger one (a learning curve adds rows, it does not redraw them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contracts.choices import check_range
from contracts.errors import DataValidationError
from datamodules.schema import Label, encode_target, require_columns

CLASS_NAMES = ("repaid", "defaulted")


def check_sample_options(rows: int | None, positive_rate: float | None) -> None:
    """Refuse a sample size below one row or a default rate outside (0, 1) up front."""
    if rows is not None:
        check_range("sample_rows", rows, low=1)
    if positive_rate is not None:
        check_range(
            "sample_positive_rate",
            positive_rate,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
        )


def sample_labelled_rows(
    frame: pd.DataFrame,
    default_probability: np.ndarray | None,
    *,
    target: str,
    positive_label: Label,
    rows: int | None,
    positive_rate: float | None,
    seed: int,
    source: str,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The sampled rows of a labelled file (in file order) and their true probabilities.

    rows: the sample's size (None: as many as the rate allows, or the whole file).
    positive_rate: the sample's default rate (None: the file's, i.e. a stratified sample).
    default_probability: the synthetic book's true probabilities, sampled alike (or None).
    With neither option set the file is returned as read.
    """
    if rows is None and positive_rate is None:
        return frame, default_probability
    require_columns(frame, [target], source=source, what="target column")
    targets = encode_target(frame[target], positive_label, source=source)
    positions = sample_positions(
        targets, rows=rows, positive_rate=positive_rate, seed=seed, source=source
    )
    sampled = default_probability[positions] if default_probability is not None else None
    return frame.iloc[positions], sampled


def sample_positions(
    targets: np.ndarray,
    *,
    rows: int | None,
    positive_rate: float | None,
    seed: int,
    source: str,
) -> np.ndarray:
    """Sorted positions of the sampled rows among `targets` (0/1), drawn class by class.

    Shape: targets (n,) -> (sample size,).
    """
    check_sample_options(rows, positive_rate)
    available = np.bincount(targets, minlength=2)
    wanted = class_counts(available, rows=rows, positive_rate=positive_rate, source=source)
    rng = np.random.default_rng(seed)
    drawn = [
        rng.permutation(np.flatnonzero(targets == label))[:count]
        for label, count in enumerate(wanted)
    ]
    return np.sort(np.concatenate(drawn))


def class_counts(
    available: np.ndarray, *, rows: int | None, positive_rate: float | None, source: str
) -> tuple[int, int]:
    """How many repaid and defaulted rows the sample takes from the `available` ones.

    Without `rows`, the sample is the largest one at `positive_rate`: every row of the class
    in short supply, and as many of the other as the rate allows.
    """
    negatives, positives = (int(count) for count in available)
    rate = positives / (negatives + positives) if positive_rate is None else positive_rate
    if rows is not None:
        if rows > negatives + positives:
            raise DataValidationError(
                f"{source}: a sample of {rows} rows asks for more rows than the file's "
                f"{negatives + positives} labelled rows; lower --data.sample_rows."
            )
        wanted_positives = round(rows * rate)
        wanted = (rows - wanted_positives, wanted_positives)
    elif rate < positives / (negatives + positives):
        wanted = (negatives, round(negatives * rate / (1 - rate)))
    else:
        wanted = (round(positives * (1 - rate) / rate), positives)
    for name, count, have in zip(CLASS_NAMES, wanted, (negatives, positives), strict=True):
        problem = f"needs {count} {name} rows, but the file has {have}" if count > have else ""
        if count == 0:
            problem = f"holds no {name} rows"
        if problem:
            raise DataValidationError(
                f"{source}: a sample of {sum(wanted)} rows at default rate {rate:.4g} "
                f"{problem}; change --data.sample_rows or --data.sample_positive_rate."
            )
    return wanted
