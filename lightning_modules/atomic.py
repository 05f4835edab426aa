"""Write-then-rename: an interrupted run leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd
import torch


def _read_umask() -> int:
    """The process's umask: reading it means setting it, so it is set straight back, once,
    at import (not while other threads, such as TensorBoard's writer, create files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_csv_atomically(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    return _write_atomically(path, lambda stream: frame.to_csv(stream, index=False))


def write_text_atomically(text: str, path: str | os.PathLike[str]) -> Path:
    """The same guarantee for text: JSON reports and Markdown tables."""
    return _write_atomically(path, lambda stream: stream.write(text))


def write_bytes_atomically(
    write: Callable[[IO[bytes]], object], path: str | os.PathLike[str]
) -> Path:
    """The same guarantee for any writer of bytes, such as a figure's `savefig`."""
    return _write_atomically(path, write, binary=True)


def save_torch_atomically(state: Any, path: str | os.PathLike[str]) -> Path:
    """The same guarantee for `torch.save`: a checkpoint written outside Lightning."""
    return _write_atomically(path, lambda stream: torch.save(state, stream), binary=True)


def _write_atomically(
    path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = False
) -> Path:
    """Write into a hidden temporary file beside the target, then rename it over the target."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        options: dict[str, Any] = (
            {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8", "newline": ""}
        )
        with os.fdopen(handle, **options) as stream:
            write(stream)
        # mkstemp makes the file private (0600); give it the mode `open` would have (a
        # file system without modes keeps its own).
        with contextlib.suppress(OSError):
            os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
