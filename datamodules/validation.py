"""Value checks on feature columns: text in numeric columns, infinities, empty columns.

A numeric column that pandas read as text would otherwise be silently turned into
categories or NaN; an infinity would poison the scaler. Both are stopped here with the
column name and example values.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from contracts.errors import DataValidationError
from datamodules.schema import CURRENCY_SIGNS, TableSchema

log = logging.getLogger(__name__)
# "1,234", "-12,500.5": a comma every three digits. "13,47", "0,5": a decimal comma.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
# A column distinct in this share of its rows is an identifier if it is text or integers
# packed in a range (row numbers, account numbers); integers spread over a wide range
# (incomes in whole units) are measurements.
IDENTIFIER_SHARE = 0.95
# 2024-03-15, 2024-03-15 10:30, 15/03/2024, 3.15.24: the text of dates, in most of a column.
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([ T].*)?|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
DATE_SHARE = 0.9
FLOAT32_MAX = float(np.finfo(np.float32).max)


def numeric_block(
    frame: pd.DataFrame, schema: TableSchema, *, source: str, coerce: bool = False
) -> np.ndarray:
    """The schema's numeric columns as one float32 array (n_rows, n_numeric), NaN for missing.

    With `coerce`, unparseable text becomes missing and the count is logged; without it,
    text is an error, because "1,000" or "12%" read as missing would bias the model.

    Column-major, because everything after reads it a column at a time: the preprocessor
    gathers a split's rows of each column (measured: 6x faster than from a row-major block)
    and the frame views its columns (`share_numeric_columns`).

    float32, the precision the network's inputs have anyway: a float64 block cost 76 MB
    more per million rows of the benchmark table (20 numeric columns); only one column at
    a time is float64, while it is checked.
    """
    block = np.empty((len(frame), len(schema.numeric_columns)), dtype=np.float32, order="F")
    for index, name in enumerate(schema.numeric_columns):
        column = frame[name]
        if pd.api.types.is_bool_dtype(column):
            column = column.astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(column):
            column = _parse_numbers(column, name, source=source, coerce=coerce)
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        for bad, problem, remedy in (
            (np.isinf(values), "infinite values", "replace them with a number"),
            (
                np.abs(values) > FLOAT32_MAX,
                f"values beyond ±{FLOAT32_MAX:.3g}, the largest number a float32 input holds",
                "rescale the column (e.g. to thousands)",
            ),
        ):
            if bad.any():
                raise DataValidationError(
                    f"{source}: numeric column {name!r} has {int(bad.sum())} {problem} (first "
                    f"data rows {np.flatnonzero(bad)[:5].tolist()}, counting from 0 after the "
                    f"header); {remedy} or leave the cells empty."
                )
        block[:, index] = values
    return block


def share_numeric_columns(
    frame: pd.DataFrame, numeric: np.ndarray, schema: TableSchema
) -> pd.DataFrame:
    """The frame with each floating-point numeric column replaced by a view of the same
    column of `numeric` (its float32 `numeric_block`), which becomes read-only.

    The numbers are then held once instead of twice (measured: 0.16 GB less per million
    rows of the benchmark table). Read-only, so that writing into the frame raises instead
    of changing the block the preprocessor fits on. Other columns, and numeric columns of
    other types (integers, text parsed as numbers), keep their own values.
    """
    numeric.flags.writeable = False
    position = {name: index for index, name in enumerate(schema.numeric_columns)}
    columns = {
        name: numeric[:, position[name]]
        if name in position and pd.api.types.is_float_dtype(frame[name])
        else frame[name]
        for name in frame.columns
    }
    shared = pd.DataFrame(columns, index=frame.index, copy=False)
    shared.columns.name = frame.columns.name
    return shared


def _parse_numbers(column: pd.Series, name: str, *, source: str, coerce: bool) -> pd.Series:
    parsed = pd.to_numeric(column, errors="coerce")
    bad = parsed.isna() & column.notna()
    if bad.any():
        examples = column[bad].astype(str).unique()[:5].tolist()
        if not coerce:
            raise DataValidationError(
                f"{source}: numeric column {name!r} holds {int(bad.sum())} values that are not "
                f"numbers, e.g. {examples}. {_remedy(examples)}"
            )
        log.warning(
            "%s: column %r: %d non-numeric cells (e.g. %s) coerced to missing "
            "(--data.coerce_numeric)",
            source,
            name,
            int(bad.sum()),
            examples,
        )
    return parsed


def _remedy(examples: list[str]) -> str:
    """The fix that matches the examples: a read option for the comma's role, else the
    generic ones. "13,47" can only be a decimal comma; "1,234" could be either, and reading
    a decimal comma as a thousands separator would make every such value 10-1,000x larger,
    so the message then names both options and the user decides."""
    currency = [value for value in examples if CURRENCY_SIGNS.search(value)]
    unsigned = [CURRENCY_SIGNS.sub("", value).strip() for value in examples]
    commas = [value for value in unsigned if "," in value]
    specific = "Write amounts without the currency sign. " if currency else ""
    if commas and all(_THOUSANDS.fullmatch(value) for value in commas):
        specific += (
            "If the comma separates thousands (1,000) set --data.read_options.thousands ','; "
            "if it is the decimal mark (2,5 for 2.5) set --data.read_options.decimal ','. "
        )
    elif commas and all(_DECIMAL_COMMA.fullmatch(value) for value in commas):
        specific += "The comma is the decimal mark here: set --data.read_options.decimal ','. "
    elif any("%" in value for value in examples):
        specific += "Write percentages without the % sign. "
    return (
        f"{specific}Clean the file, list missing-value tokens in --data.read_options.na_values, "
        "declare the column categorical, or set --data.coerce_numeric true to treat such cells "
        "as missing."
    )


def check_training_columns(
    frame: pd.DataFrame,
    numeric: np.ndarray,
    schema: TableSchema,
    *,
    source: str,
    rows: np.ndarray,
) -> None:
    """Refuse columns that carry nothing to learn from; warn on single-level categoricals.

    `numeric`: the numeric block, whose values are what the model reads (text coerced to
    missing is missing there, not in the frame). `rows`: the training rows' positions.
    Taking them one column at a time never copies the training rows as a whole frame.
    """
    position = {name: index for index, name in enumerate(schema.numeric_columns)}
    for name in schema.feature_columns:
        column = frame[name].iloc[rows]
        if name in position:
            missing = bool(np.isnan(numeric[rows, position[name]]).all())
        else:
            missing = bool(column.isna().all())
        if missing:
            raise DataValidationError(
                f"{source}: column {name!r} is entirely missing in the training rows (text "
                "that --data.coerce_numeric turned into missing values counts as missing); "
                "drop it with --data.drop_columns."
            )
        if name not in position and column.nunique(dropna=True) == 1:
            log.warning(
                "%s: categorical column %r has a single level; it carries no signal", source, name
            )
        _warn_on_identifier_or_dates(column, name, source=source)


def looks_like_identifier(column: pd.Series) -> bool:
    """Distinct in almost every row, and text or integers packed in a narrow range."""
    values = column.dropna()
    distinct = values.nunique()
    if not len(values) or distinct < IDENTIFIER_SHARE * len(column):
        return False
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    numbers = values.to_numpy(dtype=np.float64)
    integral = bool(np.all(np.mod(numbers, 1.0) == 0.0))
    return integral and numbers.max() - numbers.min() < 2 * distinct


def looks_like_dates(column: pd.Series) -> bool:
    """Text whose values are mostly dates (checked on up to 1,000 of them)."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    sample = column.dropna().astype(str).str.strip().head(1000)
    return bool(len(sample)) and sample.str.fullmatch(_DATE).mean() >= DATE_SHARE


def _warn_on_identifier_or_dates(column: pd.Series, name: str, *, source: str) -> None:
    """A feature the network cannot generalise from: each value seen about once in training,
    so every new applicant's value is unseen (and a row number sorted by outcome leaks it)."""
    if looks_like_dates(column):
        log.warning(
            "%s: column %r holds dates (e.g. %r): it is read as a categorical, and dates after "
            "the training rows' are unknown levels; derive numbers from it (days since, month) "
            "or drop it with --data.drop_columns",
            source,
            name,
            str(column.dropna().iloc[0]),
        )
    elif looks_like_identifier(column):
        index = (
            " (a blank header: the row index `to_csv` writes; read it with "
            "--data.read_options.index_col 0)"
            if name.startswith("Unnamed:")
            else ""
        )
        log.warning(
            "%s: column %r looks like an identifier, %d distinct values in %d training rows%s: "
            "the network can memorise rows through it, and new applicants' values are unseen; "
            "set it as --data.id_column or drop it with --data.drop_columns",
            source,
            name,
            column.nunique(),
            len(column),
            index,
        )
