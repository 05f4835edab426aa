import numpy as np
import pandas as pd
import pytest

from contracts.errors import ConfigurationError, DataValidationError
from datamodules.schema import (
    TableSchema,
    build_schema,
    encode_target,
    label_matches,
    require_columns,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "income": [10.5, 20.0, 30.1, np.nan, 50.0, 60.0],
            "grade": ["A", "B", "A", "C", None, "B"],
            "term": [36, 60, 36, 60, 36, 36],
            "accounts": [1, 2, 3, 4, 5, 6],
            "flag": [True, False, True, True, False, False],
            "status": ["good", "bad", "good", "bad", "good", "good"],
        }
    )


def test_infers_strings_booleans_and_low_cardinality_integers_as_categorical(frame):
    schema = build_schema(
        frame,
        source="f.csv",
        target="status",
        positive_label="bad",
        id_column="id",
        max_inferred_levels=5,
    )
    assert schema.categorical_columns == ("grade", "term", "flag")
    assert schema.numeric_columns == ("income", "accounts")
    assert schema.feature_columns == ("income", "accounts", "grade", "term", "flag")


def test_configured_categoricals_and_drops_override_inference(frame):
    schema = build_schema(
        frame,
        source="f.csv",
        target="status",
        positive_label="bad",
        drop_columns=["id", "flag"],
        categorical_columns=["accounts"],
    )
    assert schema.categorical_columns == ("accounts",)
    assert schema.numeric_columns == ("income", "grade", "term")


def test_missing_configured_column_is_named_with_a_suggestion(frame):
    with pytest.raises(DataValidationError, match=r"f\.csv.*'grde'.*did you mean \['grade'\]"):
        build_schema(
            frame,
            source="f.csv",
            target="status",
            positive_label="bad",
            categorical_columns=["grde"],
        )
    with pytest.raises(DataValidationError, match=r"target.*'label'"):
        build_schema(frame, source="f.csv", target="label", positive_label=1)


def test_schema_round_trips_through_plain_state(frame):
    schema = build_schema(
        frame, source="f.csv", target="status", positive_label="bad", id_column="id"
    )
    assert TableSchema.from_state(schema.to_state()) == schema


def test_encode_target_maps_the_positive_label_to_one(frame):
    assert encode_target(frame["status"], "bad", source="f.csv").tolist() == [0, 1, 0, 1, 0, 0]


@pytest.mark.parametrize(
    ("values", "label"),
    [([0, 1, 1], "1"), ([0.0, 1.0, 1.0], "1"), (["0", "1", "1"], "1"), ([1, 2, 2], "2.0")],
)
def test_numeric_labels_match_across_representations(values, label):
    assert label_matches(pd.Series(values), label).tolist() == [False, True, True]


def test_target_errors_name_the_problem():
    with pytest.raises(DataValidationError, match=r"3 distinct values"):
        encode_target(pd.Series(["a", "b", "c"], name="y"), "a", source="f.csv")
    with pytest.raises(DataValidationError, match=r"positive label 'Y' never occurs.*'N'"):
        encode_target(pd.Series(["N", "M"], name="y"), "Y", source="f.csv")
    with pytest.raises(DataValidationError, match=r"'y' has 1 missing values"):
        encode_target(pd.Series([1.0, np.nan, 0.0], name="y"), "1", source="f.csv")


def test_a_label_yaml_read_as_a_boolean_says_to_quote_it():
    """`positive_label: Yes` arrives as True; the file writes "Yes"."""
    with pytest.raises(ConfigurationError, match=r"holds \['No', 'Yes'\]: quote the label"):
        encode_target(pd.Series(["Yes", "No"], name="y"), True, source="f.csv")


@pytest.mark.parametrize("label", [True, "TRUE", "true", "True", 1])
def test_a_target_pandas_read_as_booleans_matches_its_label_in_any_spelling(label):
    """A file writing TRUE/FALSE is read as booleans, whose text is "True"."""
    column = pd.Series([True, False, True], name="y")
    assert encode_target(column, label, source="f.csv").tolist() == [1, 0, 1]


def test_a_header_read_as_one_column_names_the_separator():
    frame = pd.DataFrame({"id;age;income": ["1;30;100"]})
    with pytest.raises(DataValidationError, match=r"separated by ';'; set --data.read_options"):
        require_columns(frame, ["age"], source="f.csv", what="feature columns", hint="other")
