"""The synthetic loan book as the baselines read it: one feature frame, targets and split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarking.baselines import feature_frame
from datamodules.loan_datamodule import LoanDataModule
from datamodules.splits import SplitIndices


def baseline_book(rows: int) -> tuple[pd.DataFrame, np.ndarray, SplitIndices]:
    """`rows` synthetic applicants through the data module, as the benchmark's baselines
    get them (`feature_frame` of the protocol split)."""
    datamodule = LoanDataModule(None, target="default", id_column="loan_id", synthetic_rows=rows)
    table = datamodule.labelled_table()
    schema = datamodule.schema
    assert schema is not None
    features = feature_frame(
        table.numeric,
        schema.numeric_columns,
        table.frame[list(schema.categorical_columns)],
        table.split.train,
    )
    return features, table.targets, table.split


def pair_risk_book(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Applicants whose risk lies only in the pair of two categoricals of six levels (50 %
    where `grade` and `purpose` are both even or both odd, 5 % elsewhere; 27 % defaults),
    beside a noise number, and the rows of the risky pairs."""
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, 6, n_rows), rng.integers(0, 6, n_rows)
    risky = (first + second) % 2 == 0
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(n_rows),
            "grade": [f"g{level}" for level in first],
            "purpose": [f"p{level}" for level in second],
            "noise": rng.normal(size=n_rows),
            "default": (rng.random(n_rows) < np.where(risky, 0.5, 0.05)).astype(int),
        }
    )
    return frame, risky
