from pathlib import Path

from benchmarking.code_record import changed_code, code_digests, executed_code

MODULE = '''"""A module."""

# a comment
def rate(defaults, rows):
    """Defaults per row."""
    return defaults / rows
'''


def test_only_a_change_to_the_code_itself_counts(tmp_path: Path) -> None:
    module = tmp_path / "pkg" / "rates.py"
    module.parent.mkdir()
    module.write_text(MODULE)
    recorded = code_digests(["pkg/rates.py"], root=tmp_path)

    # Comments, docstrings and formatting are not a change...
    module.write_text(
        MODULE.replace("# a comment", "# another comment")
        .replace("Defaults per row.", "The default rate.")
        .replace("defaults / rows", "(defaults)/rows")
    )
    assert changed_code(recorded, root=tmp_path) == []
    # ...code is, and so is a file the checkout no longer has.
    module.write_text(MODULE.replace("defaults / rows", "defaults / max(rows, 1)"))
    assert changed_code(recorded, root=tmp_path) == ["pkg/rates.py"]
    module.unlink()
    assert changed_code(recorded, root=tmp_path) == ["pkg/rates.py"]


def test_a_process_records_the_project_modules_it_imported_and_no_library() -> None:
    code = executed_code()
    assert "benchmarking/code_record.py" in code
    assert not any("site-packages" in name or name.startswith("..") for name in code)
    assert changed_code(code) == []
