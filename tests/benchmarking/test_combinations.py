"""`scripts/combinations.py`: the combinations of categoricals the default keeps, on a
bag's rows and on one network's, one JSON line per dataset and seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarking.combinations import main
from tests.conftest import CONFIGS
from tests.helpers.books import pair_risk_book


def _pair_file(tmp_path: Path, n_rows: int) -> Path:
    path = tmp_path / "train.csv"
    pair_risk_book(n_rows)[0].to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("n_rows", "default_bags"),
    # 64 % of the rows train: about 700 defaulters bag (below 1,500), about 1,600 do not.
    [(4000, True), (9000, False)],
)
def test_each_seed_lists_the_pair_on_both_kinds_of_rows(tmp_path, capsys, n_rows, default_bags):
    path = _pair_file(tmp_path, n_rows)
    arguments = ["--datasets", "default", "--seeds", "2", f"--config-dir={CONFIGS}"]
    assert main([*arguments, f"--data-args=--data.path={path}"]) == 0

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(record["dataset"], record["seed"]) for record in records] == [
        ("default", 0),
        ("default", 1),
    ]
    for record in records:
        assert record["default_bags"] is default_bags
        assert record["bag"] == record["one_network"] == [["grade", "purpose"]]


def test_a_dataset_without_a_config_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no config for dataset 'missing@3k'"):
        main(["--datasets", "missing@3k", f"--config-dir={tmp_path}"])
