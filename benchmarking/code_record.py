"""Which of the project's code a run executed, so that a stored run can say when that code
has changed since.

A stored run is reused on its settings and its inputs' contents (`benchmarking/inputs.py`),
not on the code that computed it: most changes (messages, logging, the tables) leave a
run's figures alone, and rerunning a thousand stored runs for each would make the
scoreboard unaffordable. So a run records its code, and the benchmark names the runs whose
code differs from the checkout's instead of silently presenting them as current.

Each file is digested on its syntax tree without docstrings, so that comments, docstrings
and formatting do not count as a change.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from benchmarking.machine import REPO

_LIBRARY_FOLDERS = frozenset({"site-packages", "dist-packages"})


def executed_code() -> dict[str, str]:
    """{path relative to the checkout: digest} of every project module this process imported."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path is None:
            continue
        path = Path(path).resolve()
        # Libraries, even in a virtual environment inside the checkout, are not its code.
        library = not _LIBRARY_FOLDERS.isdisjoint(path.parts)
        if path.suffix == ".py" and path.is_relative_to(REPO) and not library:
            files.add(path.relative_to(REPO).as_posix())
    return code_digests(files)


def code_digests(names: Iterable[str], root: Path = REPO) -> dict[str, str]:
    """{name: digest of the file's code} for these paths relative to `root`."""
    return {name: _digest(root / name) for name in sorted(names)}


def changed_code(recorded: Mapping[str, str], root: Path = REPO) -> list[str]:
    """The recorded files whose code differs under `root` (or that it no longer has)."""
    current = code_digests(recorded, root)
    return [name for name, digest in recorded.items() if current[name] != digest]


def _digest(path: Path) -> str:
    try:
        return _digest_of(path.read_bytes())
    except OSError:
        return "absent"


@cache  # every stored run names the same files: parse each version of one once
def _digest_of(source: bytes) -> str:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return "unreadable"
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]
