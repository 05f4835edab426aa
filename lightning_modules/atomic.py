"""Write-then-rename: an interrupted run leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pandas as pd


def write_csv_atomically(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    return _write_atomically(path, lambda stream: frame.to_csv(stream, index=False))


def write_text_atomically(text: str, path: str | os.PathLike[str]) -> Path:
    """The same guarantee for text: JSON reports and Markdown tables."""
    return _write_atomically(path, lambda stream: stream.write(text))


def _write_atomically(path: str | os.PathLike[str], write: Callable[[TextIO], object]) -> Path:
    """Write into a hidden temporary file beside the target, then rename it over the target."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            write(stream)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
