"""Bad training files: each one stops with a message naming the file, the column and the fix.

Most cases run at the data-module level (read, validate, split, fit the preprocessor: well
under a second each); two go through the real command line.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from contracts.errors import ConfigurationError, DataValidationError
from datamodules.io import DATA_DIR_ENV, ReadOptions
from datamodules.loan_datamodule import LoanDataModule
from datamodules.preprocessing import FIRST_LEVEL_CODE
from datamodules.synthetic import generate_loan_book
from tests.conftest import CONFIGS, FAST_TRAINER


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    """400 synthetic applicants: 17 columns of every kind, about 18 % defaults."""
    return generate_loan_book(400, seed=3).frame


def _setup(path: Path | str, **overrides) -> LoanDataModule:
    """Read, validate, split and fit the preprocessing, as `fit` does before its first batch."""
    args = {"target": "default", "id_column": "loan_id"} | overrides
    datamodule = LoanDataModule(str(path), **args)
    datamodule.setup("fit")
    return datamodule


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "loans.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _fails(path: Path | str, *fragments: str, **overrides) -> str:
    """Assert setup raises DataValidationError whose message holds every fragment."""
    with pytest.raises(DataValidationError) as raised:
        _setup(path, **overrides)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    return message


# Files that cannot be read --------------------------------------------------------------


def test_missing_file_names_it_and_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "datasets"))
    _fails("taiwan/credit.csv", "'taiwan/credit.csv' not found", "datasets", DATA_DIR_ENV)
    _fails(tmp_path / "gone.csv", str(tmp_path / "gone.csv"), "not found")


def test_a_folder_given_as_the_file_is_unreadable(tmp_path):
    folder = tmp_path / "loans.csv"
    folder.mkdir()
    _fails(folder, str(folder), "cannot be read", "Is a directory")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file regardless"
)
def test_a_file_without_read_permission_is_unreadable(tmp_path, book):
    path = _csv(tmp_path, book)
    path.chmod(0)
    _fails(path, str(path), "cannot be read", "Permission denied")


def test_wrong_encoding_names_the_encoding_option(tmp_path, book):
    frame = book.copy()
    frame["region"] = "Zürich"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    _fails(path, str(path), "utf-8", "--data.read_options.encoding")
    datamodule = _setup(path, read_options=ReadOptions(encoding="latin-1"))
    assert datamodule.labelled_table().frame["region"].iloc[0] == "Zürich"


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage", "plain text"],
)
def test_corrupt_gzip_is_named_as_such(tmp_path, book, damage):
    text = book.to_csv(index=False).encode()
    packed = gzip.compress(text)
    content = {
        "truncated": packed[: len(packed) // 2],
        "garbage": packed[:10] + bytes(range(256)) * 4,
        "plain text": text,
    }[damage]
    path = tmp_path / "loans.csv.gz"
    path.write_bytes(content)
    _fails(path, str(path), "not a valid gzip archive")


def test_a_parquet_file_gives_the_tensors_its_csv_gives(tmp_path, book):
    """Parquet is read one column at a time; the model must not see the difference."""
    parquet = tmp_path / "loans.parquet"
    book.to_parquet(parquet, index=False)
    from_parquet, from_csv = _setup(parquet), _setup(_csv(tmp_path, book))
    for split in ("train", "val", "test"):
        a, b = from_parquet.split_tensors(split), from_csv.split_tensors(split)
        assert torch.equal(a.numeric, b.numeric) and torch.equal(a.categorical, b.categorical)
        assert torch.equal(a.target, b.target)


@pytest.mark.parametrize("damage", ["truncated", "not parquet"])
def test_corrupt_parquet_is_named_as_such(tmp_path, book, damage):
    path = tmp_path / "loans.parquet"
    book.to_parquet(path, index=False)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"a,b\n1,2\n")
    _fails(path, str(path), "not a readable Parquet file")


def test_duplicate_column_names_in_parquet(tmp_path, book):
    path = tmp_path / "loans.parquet"
    table = pa.Table.from_pandas(book, preserve_index=False)
    names = ["age" if name == "annual_income" else name for name in table.column_names]
    pq.write_table(table.rename_columns(names), path)
    _fails(path, str(path), "duplicate column names ['age']")


def test_empty_and_header_only_files(tmp_path, book):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails(empty, str(empty), "empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(book.columns) + "\n")
    _fails(header_only, str(header_only), "header (17 columns) but no data rows")


def test_a_headerless_file_must_have_as_many_fields_as_names(tmp_path, book):
    """pandas would fill a column the file lost with gaps, and read a column it gained as
    an index, shifting every column by one."""
    names = list(book.columns)
    read = {"read_options": ReadOptions(header=None, names=names)}
    shorter = tmp_path / "shorter.csv"
    book.iloc[:, :-1].to_csv(shorter, index=False, header=False)
    _fails(
        shorter,
        str(shorter),
        "16 fields but read_options.names lists 17",
        f"['{names[-1]}']",
        **read,
    )
    longer = tmp_path / "longer.csv"
    book.assign(row=range(len(book))).to_csv(longer, index=False, header=False)
    _fails(longer, str(longer), "18 fields", "name the 1 more (an appended id", **read)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _fails(empty, str(empty), "the file is empty (no rows)", **read)
    exact = tmp_path / "exact.csv"
    book.to_csv(exact, index=False, header=False)
    assert len(_setup(exact, **read).labelled_table().frame) == len(book)


def test_a_delimiter_at_the_end_of_every_row_is_read_without_shifting_columns(tmp_path, book):
    """pandas reads rows with one field more than the header with the first field as an
    index, so every column would hold its right-hand neighbour's values."""
    plain = _csv(tmp_path, book)
    trailing = tmp_path / "trailing.csv"
    lines = plain.read_text().splitlines()
    trailing.write_text("\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n")
    both = tmp_path / "both.csv"  # the header ends in the delimiter too
    both.write_text("\n".join(line + "," for line in lines) + "\n")
    expected = _setup(plain).labelled_table().frame
    for path in (trailing, both):
        pd.testing.assert_frame_equal(_setup(path).labelled_table().frame, expected)
    spaced = tmp_path / "spaced.csv"  # a blank after the last delimiter is no value either
    spaced.write_text("\n".join(line + ", " for line in lines) + "\n")
    pd.testing.assert_frame_equal(_setup(spaced).labelled_table().frame, expected)
    named = tmp_path / "named.csv"  # the unnamed last column holds a value in one row
    named.write_text("\n".join([lines[0] + ",", lines[1] + ",7", *(x + "," for x in lines[2:])]))
    _fails(named, str(named), "the header ends in the delimiter", "1 rows hold a value there")
    valued = tmp_path / "valued.csv"
    valued.write_text("\n".join([lines[0], lines[1] + ",7", *lines[2:]]) + "\n")
    _fails(valued, str(valued), "more fields than the header names columns (17)")


def test_an_index_column_with_a_delimiter_at_the_end_of_every_row_keeps_the_columns(tmp_path, book):
    """Given an index column, pandas took a row's first field for the index there too, so
    every column, the target's included, held its right-hand neighbour's values."""
    plain = _csv(tmp_path, book[["loan_id", *book.columns.drop("loan_id")]])
    lines = plain.read_text().splitlines()
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n")
    both = tmp_path / "both.csv"
    both.write_text("\n".join(line + "," for line in lines) + "\n")
    for index in (0, "loan_id"):
        indexed = {"read_options": ReadOptions(index_col=index), "id_column": None}
        expected = _setup(plain, **indexed).labelled_table().frame
        assert "loan_id" not in expected.columns
        for path in (trailing, both):
            pd.testing.assert_frame_equal(_setup(path, **indexed).labelled_table().frame, expected)
    _fails(
        plain,
        "read_options.index_col 'loan' is not a column",
        read_options=ReadOptions(index_col="loan"),
        id_column=None,
    )
    _fails(
        plain,
        "read_options.index_col 40 is not a column position (the file has 17",
        read_options=ReadOptions(index_col=40),
        id_column=None,
    )


# The target ---------------------------------------------------------------------------


def test_missing_target_is_named(tmp_path, book):
    path = _csv(tmp_path, book.rename(columns={"default": "defaulted"}))
    _fails(path, str(path), "target not found", "'default'", "did you mean ['defaulted']")


def test_target_with_three_values(tmp_path, book):
    frame = book.assign(default=np.arange(len(book)) % 3)
    path = _csv(tmp_path, frame)
    _fails(path, str(path), "'default'", "3 distinct values", "['0', '1', '2']", "exactly two")


def test_positive_label_absent_lists_the_values_present(tmp_path, book):
    frame = book.assign(default=np.where(book["default"] == 1, "Charged Off", "Fully Paid"))
    path = _csv(tmp_path, frame)
    _fails(
        path,
        str(path),
        "positive label '1' never occurs",
        "['Charged Off', 'Fully Paid']",
        "--data.positive_label",
    )
    datamodule = _setup(path, positive_label="Charged Off")
    assert datamodule.positive_rate == pytest.approx(book["default"].mean(), abs=0.02)


def test_text_labels_with_stray_spaces_are_the_same_labels(tmp_path, book):
    words = book["default"].map({1: "Charged Off", 0: "Fully Paid"})
    words.iloc[::7] = words.iloc[::7] + " "
    path = _csv(tmp_path, book.assign(default=words))
    datamodule = _setup(path, positive_label="Charged Off")
    np.testing.assert_array_equal(datamodule.labelled_table().targets, book["default"])


def test_target_with_a_single_class(tmp_path, book):
    only_defaults = _csv(tmp_path, book.assign(default=1), "defaults.csv")
    _fails(only_defaults, str(only_defaults), "only the positive label '1'", "both classes")
    only_repaid = _csv(tmp_path, book.assign(default=0), "repaid.csv")
    _fails(only_repaid, str(only_repaid), "never occurs", "['0']")


def test_a_split_left_with_one_class(tmp_path, book):
    """Two defaults among 400 rows: stratification cannot give every split both classes."""
    frame = book.assign(default=0)
    frame.loc[[5, 50], "default"] = 1
    path = _csv(tmp_path, frame)
    message = _fails(path, str(path), "too few rows for the split", "(only one class)")
    assert "about 13 labelled rows of each class" in message


def test_too_few_rows_for_the_split(tmp_path, book):
    """Eight of each class: validation gets three rows, so one class has a single row there."""
    frame = pd.concat([book[book["default"] == label].head(8) for label in (0, 1)])
    path = _csv(tmp_path, frame)
    _fails(path, str(path), "too few rows for the split", "about 13 labelled rows of each class")


# Configured columns and the header ------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "missing", "suggestion"),
    [
        ("categorical_columns", ["region", "home_ownershp"], "home_ownershp", "home_ownership"),
        ("id_column", "loan_no", "loan_no", "loan_id"),
        ("drop_columns", ["regoin"], "regoin", "region"),
    ],
)
def test_configured_column_not_in_file(tmp_path, book, option, value, missing, suggestion):
    path = _csv(tmp_path, book)
    _fails(
        path,
        str(path),
        f"configured {option} not found",
        repr(missing),
        f"did you mean ['{suggestion}'",
        **{option: value},
    )


def test_duplicate_column_names(tmp_path, book):
    path = tmp_path / "loans.csv"
    text = book.to_csv(index=False)
    path.write_text(text.replace("annual_income", "age", 1))
    _fails(path, str(path), "duplicate column names ['age']")


# Values in feature columns --------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "remedy"),
    [
        ("N/A", "--data.read_options.na_values"),
        ("1,000", "--data.read_options.thousands ','"),
        ("1,000", "--data.read_options.decimal ','"),
        ("12%", "without the % sign"),
        ("$46,500", "without the currency sign"),
        ("$46,500", "--data.read_options.thousands ','"),
    ],
)
def test_text_in_a_numeric_column(tmp_path, book, token, remedy):
    frame = book.astype({"loan_amount": object})
    frame.loc[frame.index[::40], "loan_amount"] = token  # 10 of 400 cells
    path = _csv(tmp_path, frame)
    _fails(
        path,
        str(path),
        "numeric column 'loan_amount'",
        "10 values that are not numbers",
        f"['{token}']",
        remedy,
        "--data.coerce_numeric true",
    )


def test_coercion_reports_the_count_of_coerced_cells(tmp_path, book, caplog):
    frame = book.astype({"loan_amount": object})
    frame.loc[frame.index[::40], "loan_amount"] = "12%"
    path = _csv(tmp_path, frame)
    with caplog.at_level(logging.WARNING, logger="datamodules.validation"):
        datamodule = _setup(path, coerce_numeric=True)
    assert "column 'loan_amount': 10 non-numeric cells (e.g. ['12%']) coerced" in caplog.text
    column = datamodule.schema.numeric_columns.index("loan_amount")
    assert np.isnan(datamodule.labelled_table().numeric[:, column]).sum() == 10
    assert "loan_amount" in datamodule.preprocessor.indicator_columns_


def test_numbers_as_text_are_never_taken_for_categories(tmp_path, book):
    """A column where every amount is written "12,345" is numeric, not 400 category levels."""
    frame = book.assign(loan_amount=book["loan_amount"].map("{:,.0f}".format))
    assert frame["loan_amount"].str.contains(",").mean() > 0.9
    path = _csv(tmp_path, frame)
    _fails(path, "numeric column 'loan_amount'", "--data.read_options.thousands ','")
    datamodule = _setup(path, read_options=ReadOptions(thousands=","))
    assert "loan_amount" in datamodule.schema.numeric_columns
    column = datamodule.schema.numeric_columns.index("loan_amount")
    np.testing.assert_allclose(
        datamodule.labelled_table().numeric[:, column], book["loan_amount"].round(), atol=0.5
    )


@pytest.mark.parametrize("sign", ["$", "€", "£"])
def test_amounts_with_a_currency_sign_are_never_taken_for_categories(tmp_path, book, sign):
    frame = book.assign(loan_amount=book["loan_amount"].map(f"{sign}{{:.0f}}".format))
    path = _csv(tmp_path, frame)
    _fails(path, "numeric column 'loan_amount'", "without the currency sign")


def test_a_decimal_comma_is_named_as_such_and_read_with_its_option(tmp_path, book):
    """A semicolon-separated export writes 2.5 as "2,5": the message must not suggest the
    thousands separator, which would read it as 25."""
    frame = book.assign(loan_amount=book["loan_amount"].map("{:.2f}".format).str.replace(".", ","))
    path = tmp_path / "semicolons.csv"
    frame.to_csv(path, index=False, sep=";")
    message = _fails(
        path,
        "numeric column 'loan_amount'",
        "the decimal mark here: set --data.read_options.decimal ','",
        read_options=ReadOptions(sep=";"),
    )
    assert "thousands" not in message
    # From Python the options may be a dict, as a config writes them.
    datamodule = _setup(path, read_options={"sep": ";", "decimal": ","})
    column = datamodule.schema.numeric_columns.index("loan_amount")
    np.testing.assert_allclose(
        datamodule.labelled_table().numeric[:, column], book["loan_amount"], atol=0.01
    )
    with pytest.raises(ConfigurationError, match=r"unknown settings \['delimiter'\]"):
        LoanDataModule(str(path), read_options={"delimiter": ";"})
    with pytest.raises(ConfigurationError, match="na_values is a list, got 'n/a'"):
        LoanDataModule(str(path), read_options={"na_values": "n/a"})


def test_pandas_missing_tokens_are_not_silently_missing(tmp_path, book):
    """Only empty cells are missing unless the config lists the file's own token."""
    frame = book.astype({"annual_income": object})
    frame.loc[frame.index[::20], "annual_income"] = "NA"
    expected_missing = int(
        frame["annual_income"].isin(["NA"]).sum() + frame["annual_income"].isna().sum()
    )
    path = _csv(tmp_path, frame)
    _fails(path, "numeric column 'annual_income'", "['NA']", "--data.read_options.na_values")
    datamodule = _setup(path, read_options=ReadOptions(na_values=["NA"]))
    column = datamodule.schema.numeric_columns.index("annual_income")
    missing = np.isnan(datamodule.labelled_table().numeric[:, column]).sum()
    assert missing == expected_missing


def test_infinite_values_are_refused(tmp_path, book):
    frame = book.copy()
    frame.loc[[7, 9], "interest_rate"] = [np.inf, -np.inf]
    path = _csv(tmp_path, frame)
    _fails(path, str(path), "numeric column 'interest_rate'", "2 infinite values", "[7, 9]")


def test_numbers_beyond_float32_are_refused_not_turned_into_infinities(tmp_path, book):
    frame = book.copy()
    frame.loc[[3], "interest_rate"] = [1e39]
    path = _csv(tmp_path, frame)
    _fails(path, str(path), "numeric column 'interest_rate'", "1 values beyond", "[3]", "rescale")


def test_an_entirely_missing_column_is_refused(tmp_path, book):
    path = _csv(tmp_path, book.assign(debt_to_income=np.nan))
    _fails(
        path,
        str(path),
        "column 'debt_to_income' is entirely missing",
        "--data.drop_columns",
    )


def test_a_column_that_coercion_empties_is_refused_like_an_empty_one(tmp_path, book):
    """Every cell "5%", coerced to missing: the frame still holds the text, the model reads
    only missing values."""
    path = _csv(tmp_path, book.assign(fee_rate="5%"))
    categoricals = [
        name
        for name in book.columns
        if not pd.api.types.is_numeric_dtype(book[name]) and name != "loan_id"
    ]
    _fails(
        path,
        "column 'fee_rate' is entirely missing",
        "--data.drop_columns",
        coerce_numeric=True,
        categorical_columns=categoricals,
    )


def test_identifiers_and_dates_among_the_features_are_warned_about(tmp_path, book, caplog):
    """A row number sorted by outcome leaks it; an application number or a date is unseen
    for every new applicant. Whole-unit incomes, as distinct, are measurements."""
    ordered = book.sort_values("default").reset_index(drop=True)
    frame = ordered.assign(
        application=[f"APP{i:06d}" for i in range(len(book))],
        applied_on=pd.date_range("2021-01-01", periods=len(book)).strftime("%Y-%m-%d"),
        annual_income=np.random.default_rng(0).choice(range(10_000, 500_000), len(book), False),
    )
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)  # the index too, under a blank header
    assert frame["annual_income"].nunique() >= 0.95 * len(frame)
    with caplog.at_level(logging.WARNING, logger="datamodules.validation"):
        _setup(path)
    assert "'Unnamed: 0' looks like an identifier" in caplog.text
    assert "--data.read_options.index_col 0" in caplog.text
    assert "'application' looks like an identifier" in caplog.text
    assert "'applied_on' holds dates (e.g. '2021-" in caplog.text
    assert "annual_income" not in caplog.text


def test_single_level_categorical_warns_and_keeps_working(tmp_path, book, caplog):
    path = _csv(tmp_path, book.assign(region="north"))
    with caplog.at_level(logging.WARNING, logger="datamodules.validation"):
        datamodule = _setup(path)
    assert "categorical column 'region' has a single level" in caplog.text
    column = datamodule.schema.categorical_columns.index("region")
    codes = datamodule.split_tensors("train").categorical[:, column]
    assert codes.unique().tolist() == [FIRST_LEVEL_CODE]
    assert datamodule.feature_spec.cardinalities[column] == FIRST_LEVEL_CODE + 1


# Through the command line ---------------------------------------------------------------


@pytest.mark.slow
def test_cli_stops_on_text_in_a_numeric_column_and_coerces_when_asked(
    run_cli, tmp_path, book, caplog
):
    frame = pd.concat([book, generate_loan_book(400, seed=4).frame], ignore_index=True)
    frame = frame.astype({"interest_rate": object})
    frame.loc[frame.index[::100], "interest_rate"] = "12%"
    path = _csv(tmp_path, frame)
    args = ["fit", f"--config={CONFIGS / 'default.yaml'}", f"--data.path={path}", *FAST_TRAINER]
    with pytest.raises(DataValidationError, match=r"numeric column 'interest_rate' holds 8 values"):
        run_cli(*args)
    with caplog.at_level(logging.WARNING, logger="datamodules.validation"):
        cli = run_cli(*args, "--data.coerce_numeric=true", "--trainer.max_epochs=1")
    assert "column 'interest_rate': 8 non-numeric cells" in caplog.text
    assert 0.5 < float(cli.trainer.callback_metrics["val/roc_auc"]) <= 1.0


@pytest.mark.slow
def test_cli_names_a_missing_data_file(run_cli, tmp_path):
    with pytest.raises(DataValidationError, match=r"'nowhere/loans.csv' not found"):
        run_cli(
            "fit",
            f"--config={CONFIGS / 'default.yaml'}",
            "--data.path=nowhere/loans.csv",
            f"--data.data_dir={tmp_path}",
            *FAST_TRAINER,
        )
