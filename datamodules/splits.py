"""The benchmark protocol's split, shared by the data module and the benchmark baselines."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from contracts.choices import check_range
from contracts.errors import ConfigurationError, DataValidationError

MIN_ROWS_PER_CLASS = 2


@dataclass(frozen=True)
class SplitIndices:
    """Row positions of each split, sorted so tensors are gathered in file order."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def check_split_shares(test_size: float, val_size: float) -> None:
    """Both shares strictly between 0 and 1. A test share of 0 is what a user asks to train
    on every labelled row, so its message says what serves that instead."""
    if test_size == 0:
        raise ConfigurationError(
            "test_size must be above 0: the test rows are what `test` and the model card "
            "score, rows that no fitting choice saw. To train on more of the labelled rows, "
            "bag: --data.folds 5 trains five networks, each on 80 % of the non-test rows "
            "(the validation rows included), and averages them."
        )
    check_range("test_size", test_size, low=0, high=1, low_inclusive=False, high_inclusive=False)
    check_range("val_size", val_size, low=0, high=1, low_inclusive=False, high_inclusive=False)


def protocol_split(
    targets: np.ndarray, *, seed: int, test_size: float = 0.2, val_size: float = 0.2, source: str
) -> SplitIndices:
    """Stratified test split of all rows, then stratified validation split of the rest.

    Both use `random_state=seed`, exactly as `BENCHMARK_PROTOCOL.md` fixes, so a figure from
    this code is comparable with any other model measured on the same seed.
    """
    rows = np.arange(len(targets))
    smallest = min(test_size, (1 - test_size) * val_size, (1 - test_size) * (1 - val_size))
    needed = math.ceil(MIN_ROWS_PER_CLASS / smallest)
    try:
        rest, test = train_test_split(
            rows, test_size=test_size, random_state=seed, stratify=targets
        )
        train, val = train_test_split(
            rest, test_size=val_size, random_state=seed, stratify=targets[rest]
        )
    except ValueError as error:  # scikit-learn refuses to stratify a class of one row
        counts = np.bincount(targets, minlength=2)
        raise _too_few(source, "the file", counts, needed) from error
    split = SplitIndices(train=np.sort(train), val=np.sort(val), test=np.sort(test))
    for name in ("train", "val", "test"):
        counts = np.bincount(targets[getattr(split, name)], minlength=2)
        if counts.min() < MIN_ROWS_PER_CLASS:
            raise _too_few(source, f"the {name} split", counts, needed)
    return split


def bagging_folds(
    targets: np.ndarray, split: SplitIndices, *, folds: int, seed: int, source: str
) -> list[SplitIndices]:
    """The non-test rows of the protocol split in `folds` stratified folds: fold j validates
    on its own rows and trains on the others; every fold keeps the protocol's test rows.

    With 5 folds each network trains on 80 % of the non-test rows, the protocol's training
    share, so the size-dependent `auto` settings resolve as they do for a single network.
    Shuffled with `random_state=seed`, so the network and the bagged baselines of one seed
    share their folds.
    """
    rest = np.sort(np.concatenate([split.train, split.val]))
    counts = np.bincount(targets[rest], minlength=2)
    if counts.min() < folds:
        raise DataValidationError(
            f"{source}: too few rows for {folds} folds: the training and validation rows hold "
            f"{counts[0]} negatives and {counts[1]} positives, and each fold needs at least one "
            "of each class. Use fewer folds (--data.folds) or provide more labelled rows."
        )
    stratified = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        SplitIndices(train=rest[train], val=rest[val], test=split.test)
        for train, val in stratified.split(rest, targets[rest])
    ]


def _too_few(source: str, part: str, counts: np.ndarray, needed: int) -> DataValidationError:
    one_class = " (only one class)" if counts.min() == 0 else ""
    return DataValidationError(
        f"{source}: too few rows for the split: {part} has {counts[0]} negatives and "
        f"{counts[1]} positives{one_class}, but train, validation and test each need at least "
        f"{MIN_ROWS_PER_CLASS} of each class, i.e. about {needed} labelled rows of each class "
        "in the file. Provide more labelled rows."
    )
