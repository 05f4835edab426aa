"""`scripts/throughput.py`'s command line: its own options, and the config's overrides."""

from __future__ import annotations

from argparse import ArgumentError

import pytest

from benchmarking.throughput import _parser


def test_overrides_reach_the_config_in_their_order():
    # A value given apart from its option stays behind it (a positional used to take it
    # first: ["1024", "--data.batch_size"]).
    options, overrides = _parser().parse_known_args(
        ["--epochs", "2", "--data.batch_size", "1024", "--model.net.dropout=0.1"]
    )
    assert options.epochs == 2
    assert overrides == ["--data.batch_size", "1024", "--model.net.dropout=0.1"]


def test_its_own_options_are_written_whole():
    with pytest.raises(ArgumentError, match=r"--epoch: did you mean --epochs\?"):
        _parser().parse_args(["--epoch", "2"])
