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
