"""Reading tabular files (CSV, gzip-compressed CSV, Parquet) with errors a user can act on."""

from __future__ import annotations

import csv
import gzip
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contracts.errors import ConfigurationError, DataValidationError

DATA_DIR_ENV = "LOAN_DATA_DIR"
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class ReadOptions:
    """How to parse a delimited file; mirrors the `pandas.read_csv` options users need most.

    `header=None` with no `names` numbers the columns "1", "2", ... (1-based, as data
    dictionaries such as UCI's usually count them). Ignored for Parquet, which is typed.

    Only empty cells and the tokens in `na_values` are missing; pandas' own list ("NA",
    "N/A", "null", ...) is not applied, so a token nobody declared stops the run with the
    column's name instead of silently becoming missing. `thousands=","` reads "1,000";
    `decimal=","` reads "2,5" as 2.5 (with `sep=";"`, as spreadsheets in many languages
    export).
    """

    sep: str = ","
    header: int | None = 0
    names: list[str] | None = None
    index_col: int | str | None = None
    na_values: list[str] = field(default_factory=list)
    thousands: str | None = None
    decimal: str = "."
    encoding: str = "utf-8"


def data_dir(explicit: str | None = None) -> Path:
    """The folder relative data paths live in: explicit, else `$LOAN_DATA_DIR`, else `./data`."""
    return Path(explicit or os.environ.get(DATA_DIR_ENV) or "data")


def resolve_data_path(path: str | os.PathLike[str], directory: str | None = None) -> Path:
    """Find `path` as given (absolute or relative to the working directory), else in the data dir.

    Keeping dataset configs relative to a data folder lets the same config run on any
    machine where the data lives somewhere else.
    """
    candidate = Path(path).expanduser()
    if candidate.exists():
        return candidate
    if candidate.is_absolute():
        raise DataValidationError(f"data file {str(path)!r} not found; check the path.")
    in_data_dir = data_dir(directory) / candidate
    if in_data_dir.exists():
        return in_data_dir
    raise DataValidationError(
        f"data file {str(path)!r} not found: looked in the working directory ({Path.cwd()}) "
        f"and in the data directory {str(data_dir(directory))!r}. Set {DATA_DIR_ENV} (or "
        f"--data.data_dir) to the folder that holds it, or give an absolute path."
    )


def read_table(path: Path, options: ReadOptions, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a whole file into a DataFrame with string column names and at least one data row.

    `text_columns` (an id column, categoricals training read as text) keep their values as
    written: read as numbers, "00042" would lose its zeros, and a column of integer ids with
    one blank cell would turn into floats ("9000001.0"). A typed (Parquet) column of such
    floats becomes integers again.
    """
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
        for name in (name for name in text_columns if name in frame.columns):
            frame[name] = _integers_where_whole(frame[name])
    else:
        _check_unique_header(path, options)
        frame = _without_trailing_empty_fields(
            path, options, _read_delimited(path, options, text_columns)
        )
        frame = _with_index_column(path, options, frame)
    frame.columns = [str(name) for name in frame.columns]
    if frame.empty:
        raise DataValidationError(
            f"{path}: the file has a header ({len(frame.columns)} columns) but no data rows."
        )
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """The file one column at a time, each handed to pandas without a second copy.

    Decoding the whole file at once held the Arrow table, the decoder's buffers and the
    pandas copy together: measured on the benchmark's 1M-row table (20 numeric and 10
    text columns), a peak of 600 MB above the process against 260 MB this way, for the
    same frame.
    """
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        _raise_on_duplicates(path, [str(name) for name in names])
        columns = {}
        for name in names:
            columns[name] = parquet.read(columns=[name]).column(0)
            release_reader_memory()
        table = pa.table(columns).replace_schema_metadata(parquet.schema_arrow.metadata)
        del columns
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataValidationError(f"{path}: not a readable Parquet file ({error}).") from error
    release_reader_memory()
    return frame


def release_reader_memory() -> None:
    """Hand back to the system the pages Arrow's allocator keeps after the Parquet reader's
    buffers are freed.

    It keeps them for reuse that never comes, since everything after reading allocates
    through NumPy; measured: the RSS after reading falls from about 0.6 to 0.3 GB per
    million rows of the benchmark table.
    """
    pa.default_memory_pool().release_unused()


def _integers_where_whole(column: pd.Series) -> pd.Series:
    values = column.dropna()
    if pd.api.types.is_float_dtype(column) and (values == values.round()).all():
        return column.astype("Int64")
    return column


def _read_delimited(
    path: Path, options: ReadOptions, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    if options.thousands is not None and options.thousands == options.decimal:
        raise ConfigurationError(
            f"read_options: thousands and decimal are both {options.decimal!r}; a file uses "
            "one mark for each"
        )
    names = options.names
    if options.header is None and names is None:
        names = [str(i) for i in range(1, _count_fields(path, options) + 1)]
    elif options.header is None and options.index_col is None:
        _check_field_count(path, options, names)
    try:
        with _file_errors(path, options.encoding), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_csv(
                path,
                sep=options.sep,
                header=options.header,
                names=names,
                # Given an index column, or none named, pandas takes a row's first field for
                # an index when rows have more fields than the header (a delimiter at the
                # end of every line, as some exports write), shifting every column by one;
                # with `False` it drops trailing empty fields and warns when one holds a
                # value. A header row's index column is set after reading
                # (`_with_index_column`).
                index_col=(
                    options.index_col
                    if options.header is None and options.index_col is not None
                    else False
                ),
                na_values=["", *options.na_values],
                keep_default_na=False,
                dtype=dict.fromkeys(text_columns, str),
                thousands=options.thousands,
                decimal=options.decimal,
                encoding=options.encoding,
                low_memory=False,
            )
    except pd.errors.EmptyDataError as error:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows).") from error
    except pd.errors.ParserError as error:
        raise DataValidationError(
            f"{path}: cannot parse the file as delimited text with sep={options.sep!r} "
            f"({error}). Check --data.read_options.sep and header."
        ) from error
    for warning in caught:
        if issubclass(warning.category, pd.errors.ParserWarning) and "loss of data" in str(
            warning.message
        ):
            raise DataValidationError(
                f"{path}: some rows have more fields than the header names columns "
                f"({len(frame.columns)}), and the extra fields hold values: name every column "
                "in the header (or in read_options.names), or remove the extra fields."
            )
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return frame


def _without_trailing_empty_fields(
    path: Path, options: ReadOptions, frame: pd.DataFrame
) -> pd.DataFrame:
    """Drop the column of a delimiter at the end of the header and of every row (as some
    exports write): pandas names it "Unnamed: N", and, empty, it would stop the run as a
    feature with no values. Values in it stop the run, as extra fields do after a header
    without the delimiter: a column with no name is not a feature to guess at."""
    if options.header != 0 or options.names is not None:
        return frame
    header = _first_record(path, options)
    if len(header) != len(frame.columns) or header[-1].strip():
        return frame
    last = frame[frame.columns[-1]].astype("string").str.strip()
    held = last[last.fillna("") != ""]
    if held.empty:
        return frame.drop(columns=frame.columns[-1])
    raise DataValidationError(
        f"{path}: the header ends in the delimiter (a last column with no name), and "
        f"{len(held):,} rows hold a value there (e.g. {held.iloc[0]!r}): name that column in "
        "the header, or remove the extra fields."
    )


def _with_index_column(path: Path, options: ReadOptions, frame: pd.DataFrame) -> pd.DataFrame:
    """`index_col` of a file with a header, taken from the columns as read (by position or
    name), so that a delimiter at the end of every row cannot shift them. A blank header
    field, which pandas names "Unnamed: N", leaves the index unnamed, as pandas would."""
    index = options.index_col
    if options.header is None or index is None:
        return frame
    if isinstance(index, int):
        if not 0 <= index < len(frame.columns):
            raise DataValidationError(
                f"{path}: read_options.index_col {index} is not a column position (the "
                f"file has {len(frame.columns)} columns, from 0)."
            )
        index = frame.columns[index]
    elif index not in frame.columns:
        raise DataValidationError(
            f"{path}: read_options.index_col {index!r} is not a column of the file."
        )
    frame = frame.set_index(index)
    if str(frame.index.name).startswith("Unnamed: "):
        frame.index.name = None
    return frame


def _first_record(path: Path, options: ReadOptions) -> list[str]:
    """The first line's fields, read on their own because pandas silently renames duplicates."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with (
        _file_errors(path, options.encoding),
        opener(path, "rt", encoding=options.encoding, newline="") as handle,
    ):
        line = handle.readline()
    if not line.strip():
        return []
    if options.sep == r"\s+":
        return line.split()
    if len(options.sep) == 1:
        return next(csv.reader([line], delimiter=options.sep))
    return [part.strip() for part in pd.Series([line]).str.split(options.sep).iloc[0]]


@contextmanager
def _file_errors(path: Path, encoding: str) -> Iterator[None]:
    """Turn the ways a file fails to open or decode into errors that say what to do."""
    try:
        yield
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise DataValidationError(
            f"{path}: not a valid gzip archive, or a truncated one ({error}). Re-download or "
            "re-compress it (`gzip -t` checks a file), or drop the .gz suffix if it is plain "
            "text."
        ) from error
    except OSError as error:  # a folder, missing permission, a vanished file
        raise DataValidationError(
            f"{path}: the file cannot be read: {error.strerror or error}. Check that it is a "
            "regular file and that this user may read it."
        ) from error
    except UnicodeDecodeError as error:
        raise DataValidationError(
            f"{path}: cannot decode the file as {encoding} ({error}); set "
            "--data.read_options.encoding (e.g. latin-1), or, if it is not a text file (an "
            "Excel workbook, an archive), export it as CSV first."
        ) from error


def _check_field_count(path: Path, options: ReadOptions, names: Sequence[str]) -> None:
    """A headerless file's rows against `read_options.names`: pandas fills the columns of a
    shorter row with gaps and turns a longer row's first fields into an index, shifting
    every column, so a file that lost or gained a column would be read without a word."""
    fields = len(_first_record(path, options))
    if fields == 0:
        raise DataValidationError(f"{path}: the file is empty (no rows).")
    if fields < len(names):
        raise DataValidationError(
            f"{path}: its first row has {fields} fields but read_options.names lists "
            f"{len(names)} columns: {list(names[fields:])} are not in the file. Is it another "
            "export of the data (a column dropped)?"
        )
    if fields > len(names):
        raise DataValidationError(
            f"{path}: its first row has {fields} fields but read_options.names lists "
            f"{len(names)} columns: name the {fields - len(names)} more (an appended id or "
            "index?) in read_options.names, or remove them from the file."
        )


def _count_fields(path: Path, options: ReadOptions) -> int:
    fields = _first_record(path, options)
    if not fields:
        raise DataValidationError(f"{path}: the file is empty (no header, no rows).")
    return len(fields)


def _check_unique_header(path: Path, options: ReadOptions) -> None:
    if options.names is not None:
        _raise_on_duplicates(path, options.names)
    elif options.header == 0:
        _raise_on_duplicates(path, [name.strip() for name in _first_record(path, options)])


def _raise_on_duplicates(path: Path, names: list[str]) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataValidationError(
            f"{path}: duplicate column names {duplicates}; every column needs a unique name."
        )
