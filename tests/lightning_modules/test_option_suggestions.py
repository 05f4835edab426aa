"""The closest option to a refused one, on the command line and in a config file."""

from __future__ import annotations

from argparse import ArgumentError

import pytest

from lightning_modules.option_suggestions import (
    OneLineArgumentParser,
    closest_option,
    with_suggestions,
)

KNOWN = [
    "--data.path",
    "--data.batch_size",
    "--model.net",
    "--model.net.dropout",
    "--model.lr_schedule",
    "--model.optimizer",
    "--model.optimizer.init_args.lr",
    "--trainer.max_epochs",
    "--help",
]


@pytest.mark.parametrize(
    ("option", "meant"),
    [
        ("--data.pth", "--data.path"),
        ("--trainer.max_epoch", "--trainer.max_epochs"),
        # The right name in the wrong group: the one option of that name.
        ("--model.lr", "--model.optimizer.init_args.lr"),
        ("--batch_size", "--data.batch_size"),
        ("--model.dropout", "--model.net.dropout"),
        # An option without a group: by spelling only (`--seed` is not the split's seed).
        ("--seed", None),
        ("--verbose", None),
    ],
)
def test_the_closest_option_is_the_one_meant(option, meant):
    assert closest_option(option, KNOWN) == meant


def test_neither_the_options_own_group_nor_itself_is_offered():
    # The group names a class, not the setting meant; the option itself is another
    # subcommand's (fit --verbose, test's).
    assert closest_option("--model.net.depth", ["--model.net", "--help"]) is None
    assert closest_option("--verbose", ["--verbose", "--seed"]) is None


def test_a_tools_own_options_are_offered_by_spelling_only():
    # eda's --rows (all or train) is not a row count of the data's.
    assert closest_option("--data.rows", ["--data.path"], others=["--rows"]) is None
    assert closest_option("--row", ["--data.path"], others=["--rows"]) == "--rows"


def test_a_name_two_groups_share_falls_back_to_spelling():
    known = ["--data.seed", "--model.seed", "--trainer.seeds"]
    assert closest_option("--trainer.seed", known) == "--trainer.seeds"


def test_a_refused_config_key_names_its_file_and_the_key_meant(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("data:\n  path: loans.csv\n  batch_siz: 64\n")
    other = tmp_path / "other.yaml"
    other.write_text("trainer:\n  max_epochs: 3\n")
    args = ["fit", "--config", str(other), f"--config={config}"]
    message = "Subcommand 'fit' does not accept option 'data.batch_siz'"
    assert with_suggestions(message, KNOWN, args) == (
        f"{message} (in {config}; did you mean data.batch_size?)"
    )
    # The forms of the same refusal where the parser has no subcommands.
    assert with_suggestions(
        "Group 'data' does not accept option 'batch_siz'", KNOWN, args
    ).endswith(f"(in {config}; did you mean data.batch_size?)")
    assert with_suggestions("Option 'dat.path' is not accepted", KNOWN, []).endswith(
        "(did you mean data.path?)"
    )


def test_a_refused_argument_of_the_optimizer_names_the_one_meant():
    message = (
        'Parser key "model.optimizer": Type Callable expects a function or a callable class: '
        "Option 'lrr' is not accepted. Got value: Namespace(init_args=Namespace(lrr='3'))"
    )
    assert with_suggestions(message, KNOWN).endswith("(did you mean model.optimizer.init_args.lr?)")


def test_a_scripts_own_option_misspelt_is_one_message_naming_the_option_meant():
    parser = OneLineArgumentParser()
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--seeds", type=int)
    with pytest.raises(ArgumentError) as refused:
        parser.parse_args(["--dataset", "german"])  # argparse took it for --datasets
    assert str(refused.value) == (
        "unrecognized arguments: --dataset german (--dataset: did you mean --datasets?)"
    )
    with pytest.raises(ArgumentError, match="argument --seeds: invalid int value: 'x'"):
        parser.parse_args(["--seeds", "x"])


def test_a_misspelt_required_option_is_named_beside_the_missing_one():
    parser = OneLineArgumentParser()
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seeds", type=int)
    with pytest.raises(ArgumentError) as refused:
        parser.parse_args(["--dataset", "german", "--seeds", "1"])
    assert str(refused.value) == (
        "the following arguments are required: --datasets (--dataset: did you mean --datasets?)"
    )
