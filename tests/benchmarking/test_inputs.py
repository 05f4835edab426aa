"""The digest of a run's inputs follows the contents of its config, the YAML files named
from it or its overrides, and its data file; not their paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarking.inputs import inputs_digest


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A config naming a shared trainer file, a model file for overrides, and a data file."""
    configs = tmp_path / "configs"
    (configs / "shared").mkdir(parents=True)
    (configs / "shared" / "trainer.yaml").write_text("max_epochs: 50\n")
    (configs / "shared" / "model_fast.yaml").write_text("net:\n  dropout: 0.1\n")
    (configs / "loans.yaml").write_text(
        "trainer: shared/trainer.yaml\ndata:\n  path: loans.csv\n  target: default\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "loans.csv").write_text("income,default\n1,0\n2,1\n")
    return tmp_path


def _digest(root: Path, *args: str) -> str:
    return inputs_digest(
        root / "configs" / "loans.yaml", [f"--data.data_dir={root / 'data'}", *args]
    )


def test_an_edit_to_any_file_the_run_reads_changes_the_digest(checkout):
    before = _digest(checkout)
    assert _digest(checkout) == before
    edits = {
        "configs/loans.yaml": ("target: default", "target: paid"),
        "configs/shared/trainer.yaml": ("50", "200"),  # sizes change: a coarse clock
        "data/loans.csv": ("2,1", "30,1"),  # leaves the modification time alone
    }
    for path, (old, new) in edits.items():
        original = (checkout / path).read_text()
        (checkout / path).write_text(original.replace(old, new))
        assert _digest(checkout) != before, path
        (checkout / path).write_text(original)
        assert _digest(checkout) == before, path


def test_a_comment_or_the_order_of_keys_in_a_yaml_file_changes_no_digest(checkout):
    before = _digest(checkout)
    config = checkout / "configs" / "loans.yaml"
    config.write_text(
        "# my loans\ndata:\n  target: default  # 1 = defaulted\n  path: loans.csv\n"
        "trainer: shared/trainer.yaml\n"
    )
    assert _digest(checkout) == before


def test_a_model_file_named_in_an_override_counts_and_a_moved_checkout_does_not(
    checkout, tmp_path_factory
):
    model = f"--model={checkout / 'configs' / 'shared' / 'model_fast.yaml'}"
    with_model = _digest(checkout, model)
    assert with_model != _digest(checkout)
    (checkout / "configs" / "shared" / "model_fast.yaml").write_text("net:\n  dropout: 0.2\n")
    assert _digest(checkout, model) != with_model

    moved = shutil.copytree(checkout, tmp_path_factory.mktemp("worktree") / "repo")
    assert _digest(moved) == _digest(checkout)


def test_a_missing_data_file_still_has_a_digest(checkout):
    (checkout / "data" / "loans.csv").unlink()
    assert len(_digest(checkout)) == 64  # the data check reports the file, not this


def test_a_yaml_file_that_does_not_read_back_is_digested_by_its_bytes(checkout):
    trainer = checkout / "configs" / "shared" / "trainer.yaml"
    trainer.write_bytes(b"max_epochs: 50 # caf\xe9\n")  # Latin-1, not UTF-8
    before = _digest(checkout)
    trainer.write_bytes(b"max_epochs: 50 # caf\xe8\n")
    assert _digest(checkout) != before


def test_the_data_file_counts_however_its_path_is_given(checkout):
    """`--data.path x` as well as `--data.path=x`, and a data section in a file of its own."""
    other = checkout / "data" / "other.csv"
    other.write_text("income,default\n1,0\n2,1\n")
    spaced = _digest(checkout, "--data.path", str(other))
    assert spaced == _digest(checkout, f"--data.path={other}")
    other.write_text("income,default\n1,1\n2,0\n")
    assert _digest(checkout, "--data.path", str(other)) != spaced

    config = checkout / "configs" / "loans.yaml"
    config.write_text("trainer: shared/trainer.yaml\ndata: data.yaml\n")
    (checkout / "configs" / "data.yaml").write_text("path: other.csv\ntarget: default\n")
    before = _digest(checkout)
    other.write_text("income,default\n1,0\n2,1\n")
    assert _digest(checkout) != before
