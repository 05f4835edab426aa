"""Column roles (target, id, numeric, categorical): inferred or configured, then validated.

The schema is decided once, on the labelled file, and travels inside the checkpoint so
that a prediction file is checked against exactly the columns the model was trained on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contracts.errors import ConfigurationError, DataValidationError

# bool: YAML reads an unquoted `Yes`, `No`, `true` or `on` as a boolean, and the parser would
# refuse it with a page of usage; accepted here, it gets a message that says to quote it
# (or matches a column pandas read as booleans).
Label = str | int | float | bool
_TRUE_TEXT = ("true", "1")
_FALSE_TEXT = ("false", "0")

# Amounts written with their currency: read as text, they are numbers all the same.
CURRENCY_SIGNS = re.compile(r"[$€£¥₹]")


@dataclass(frozen=True)
class TableSchema:
    """Which column plays which role. Plain strings only, so it stores in a safe checkpoint."""

    target: str
    positive_label: str
    numeric_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...]
    id_column: str | None = None
    # Categoricals the training file held as text, not numbers. A file to score reads them
    # as text too: pandas reads a column of digits only as numbers, so codes written "007"
    # would become 7 and match no training level.
    text_categoricals: tuple[str, ...] = ()

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.numeric_columns + self.categorical_columns

    def to_state(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "positive_label": self.positive_label,
            "numeric_columns": list(self.numeric_columns),
            "categorical_columns": list(self.categorical_columns),
            "id_column": self.id_column,
            "text_categoricals": list(self.text_categoricals),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableSchema:
        return cls(
            target=state["target"],
            positive_label=state["positive_label"],
            numeric_columns=tuple(state["numeric_columns"]),
            categorical_columns=tuple(state["categorical_columns"]),
            id_column=state["id_column"],
            text_categoricals=tuple(state.get("text_categoricals", ())),
        )


def build_schema(
    frame: pd.DataFrame,
    *,
    source: str,
    target: str,
    positive_label: Label,
    id_column: str | None = None,
    drop_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] | None = None,
    max_inferred_levels: int = 10,
) -> TableSchema:
    """Assign every column a role; infer categoricals when they are not configured.

    Inferred categoricals are strings, booleans and integer columns with at most
    `max_inferred_levels` distinct values (codes such as grades or status flags), since
    an embedding can learn a non-monotone effect that a single scaled input cannot. Text
    columns whose cells are mostly numbers ("1,000", "12%", "7" beside an "N/A") are
    numbers stored as text, not categories: they stay numeric, so that `numeric_block`
    stops on them with examples instead of learning a thousand-level vocabulary.
    """
    configured = {"target": [target], "id_column": [id_column] if id_column else []}
    configured["drop_columns"] = list(drop_columns)
    configured["categorical_columns"] = list(categorical_columns or [])
    for option, names in configured.items():
        require_columns(frame, names, source=source, what=f"configured {option}")
    require_label_as_written(frame[target], positive_label, source=source)

    excluded = {target, *drop_columns} | ({id_column} if id_column else set())
    candidates = [name for name in frame.columns if name not in excluded]
    if categorical_columns is None:
        categorical = [
            name for name in candidates if _looks_categorical(frame[name], max_inferred_levels)
        ]
    else:
        overlap = sorted(set(categorical_columns) & excluded)
        if overlap:
            raise DataValidationError(
                f"{source}: columns {overlap} are both categorical and target/id/dropped; "
                "give each column one role."
            )
        categorical = [name for name in candidates if name in set(categorical_columns)]
    numeric = [name for name in candidates if name not in set(categorical)]
    if not numeric and not categorical:
        raise DataValidationError(
            f"{source}: no feature columns left after removing target {target!r}, "
            f"id and dropped columns."
        )
    return TableSchema(
        target=target,
        positive_label=str(positive_label),
        numeric_columns=tuple(numeric),
        categorical_columns=tuple(categorical),
        id_column=id_column,
        text_categoricals=tuple(
            name for name in categorical if not pd.api.types.is_numeric_dtype(frame[name])
        ),
    )


def require_columns(
    frame: pd.DataFrame, names: Sequence[str], *, source: str, what: str, hint: str = ""
) -> None:
    """Raise naming each absent column and the closest existing names (typos are common)."""
    missing = [name for name in names if name not in frame.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in frame.columns], n=3)
        hints.append(f"{name!r}" + (f" (did you mean {close}?)" if close else ""))
    hint = _separator_hint(frame) or hint
    raise DataValidationError(
        f"{source}: {what} not found in the file: {', '.join(hints)}. "
        f"The file has columns {list(frame.columns)[:30]}.{' ' + hint if hint else ''}"
    )


def _separator_hint(frame: pd.DataFrame) -> str:
    """Where the whole header is one column holding another separator, the file was read
    with the wrong `sep`; that, not the column names, is what to fix."""
    if len(frame.columns) != 1:
        return ""
    header = str(frame.columns[0])
    found = next((sep for sep in (";", "\t", "|", ",") if sep in header), None)
    if found is None:
        return ""
    return (
        f"The header was read as one column holding {found!r}: the file is separated by "
        f"{found!r}; set --data.read_options.sep (--data.predict_read_options.sep for the "
        "file predict reads)."
    )


def require_trained_columns(frame: pd.DataFrame, schema: TableSchema, *, source: str) -> None:
    """Refuse a file that lacks any feature the checkpoint was trained on, saying how many.

    A file of another dataset lacks most of them; saying so stops a checkpoint from being
    applied to data it has never seen the like of.
    """
    features = schema.feature_columns
    missing = [name for name in features if name not in frame.columns]
    hint = (
        f"The checkpoint was trained on {len(features)} feature columns and needs all of them "
        f"({len(missing)} missing here); other columns are ignored."
    )
    if len(missing) > len(features) / 2:
        hint += (
            " Most are missing: this file does not have the schema the checkpoint was trained "
            "on (a checkpoint of another dataset?)."
        )
    require_columns(frame, features, source=source, what="feature columns", hint=hint)


def _looks_categorical(column: pd.Series, max_levels: int) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return True
    if not pd.api.types.is_numeric_dtype(column):
        return not _mostly_numbers_as_text(column)
    values = column.dropna().to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return False
    is_integral = pd.api.types.is_integer_dtype(column) or bool(np.all(np.mod(values, 1.0) == 0.0))
    return is_integral and len(np.unique(values)) <= max_levels


def _mostly_numbers_as_text(column: pd.Series) -> bool:
    """True when most present cells read as numbers once separators, "%" and currency signs
    are removed."""
    text = column.dropna().astype(str).str.strip()
    if text.empty:
        return False
    cleaned = text.str.replace(CURRENCY_SIGNS, "", regex=True).str.replace(
        r"[,%\s]", "", regex=True
    )
    return bool(pd.to_numeric(cleaned, errors="coerce").notna().mean() > 0.5)


def encode_target(column: pd.Series, positive_label: Label, *, source: str) -> np.ndarray:
    """Map the target to 0/1, insisting on exactly two classes and a present positive label."""
    name = column.name
    require_label_as_written(column, positive_label, source=source)
    missing = column.isna()
    if missing.any():
        rows = np.flatnonzero(missing.to_numpy())[:5].tolist()
        raise DataValidationError(
            f"{source}: target column {name!r} has {int(missing.sum())} missing values "
            f"(first data rows {rows}, counting from 0 after the header); remove or label "
            "those rows."
        )
    # Text labels compare stripped (`label_matches`): "Charged Off " is "Charged Off".
    is_text = not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    levels = pd.unique(column.astype(str).str.strip() if is_text else column)
    if len(levels) > 2:
        raise DataValidationError(
            f"{source}: target column {name!r} has {len(levels)} distinct values "
            f"({sorted(map(str, levels))[:10]}); binary default prediction needs exactly two."
        )
    positive = label_matches(column, positive_label)
    if not positive.any():
        raise DataValidationError(
            f"{source}: positive label {positive_label!r} never occurs in target column "
            f"{name!r}, whose values are {sorted(map(str, levels))}; set --data.positive_label."
        )
    if positive.all():
        raise DataValidationError(
            f"{source}: target column {name!r} holds only the positive label "
            f"{positive_label!r} in all {len(column)} rows; a classifier needs rows of both "
            "classes (defaulted and repaid)."
        )
    return positive.to_numpy(dtype=np.int64)


def require_label_as_written(column: pd.Series, label: Label, *, source: str) -> None:
    """A boolean label only names a column pandas read as booleans: anywhere else it is an
    unquoted YAML word (`Yes`) that reached the parser as True."""
    if isinstance(label, bool) and not pd.api.types.is_bool_dtype(column):
        values = sorted(map(str, pd.unique(column.dropna())))[:10]
        raise ConfigurationError(
            f"{source}: positive_label was read as the boolean {label}: YAML reads an unquoted "
            f"Yes, No, true, false, on or off as one. Target column {column.name!r} holds "
            f'{values}: quote the label as the file writes it, e.g. positive_label: "Yes".'
        )


def same_label(first: Label, second: Label) -> bool:
    """Whether two labels name the same class as `label_matches` reads a column: 1, 1.0
    and "1" agree, as do True, true and "TRUE"."""
    texts = [str(label).strip() for label in (first, second)]
    folded = [text.lower() for text in texts]
    if all(text in (*_TRUE_TEXT, *_FALSE_TEXT) for text in folded):
        return (folded[0] in _TRUE_TEXT) == (folded[1] in _TRUE_TEXT)
    try:
        return float(texts[0]) == float(texts[1])
    except ValueError:
        return texts[0] == texts[1]


def label_matches(column: pd.Series, label: Label) -> pd.Series:
    """Compare by number when both sides are numbers (so 1, 1.0 and "1" agree), as booleans
    when pandas read the column as booleans (so TRUE, true and True agree), else by text."""
    if pd.api.types.is_bool_dtype(column):
        text = str(label).strip().lower()
        if text in (*_TRUE_TEXT, *_FALSE_TEXT):
            return column == (text in _TRUE_TEXT)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        try:
            return column == float(label)
        except ValueError:
            pass
    return column.astype(str).str.strip() == str(label).strip()
