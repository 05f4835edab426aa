"""A digest of the files a run reads: its config, the YAML files the config and the run's
overrides name, and the data file.

A stored run is reused when its settings match; the settings name the config and the data
by path, so an edited config or another copy of the data behind the same path would
otherwise reuse results computed from the old ones. The digest goes into the run's
settings, so any such change makes the benchmark run it again. A YAML file counts by what
it says, not how: a comment or a reordering changes no run, as a run's code is digested
without its comments (`benchmarking/code_record.py`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from contracts.errors import DataValidationError
from datamodules.io import resolve_data_path

_YAML_SUFFIXES = (".yaml", ".yml")


def inputs_digest(config: Path, args: Sequence[str]) -> str:
    """The digest of `config`, every YAML file it or `args` (CLI overrides) name, and the
    data file the run reads (absent data hashes as absent: the data check reports it)."""
    digest = hashlib.sha256()
    files = [config, *_named_yaml(config), *_yaml_in_args(args)]
    for path in dict.fromkeys(files):
        digest.update(str(path.name).encode())
        digest.update(_yaml_digest(path).encode())
    digest.update(_data_digest(config, args).encode())
    return digest.hexdigest()


def _named_yaml(config: Path) -> Iterator[Path]:
    """The YAML files a config names (`trainer: shared/trainer.yaml`), relative to its
    folder as the CLI resolves them, and the ones those name."""
    for value in _strings(_load(config)):
        if value.endswith(_YAML_SUFFIXES):
            path = (config.parent / value).resolve()
            if path.is_file():
                yield path
                yield from _named_yaml(path)


def _yaml_in_args(args: Sequence[str]) -> Iterator[Path]:
    for arg in args:
        value = arg.split("=", 1)[-1]
        if value.endswith(_YAML_SUFFIXES) and Path(value).is_file():
            path = Path(value).resolve()
            yield path
            yield from _named_yaml(path)


def _data_digest(config: Path, args: Sequence[str]) -> str:
    data = _data_section(config)
    overrides = _overrides(args)
    path = overrides.get("data.path", data.get("path"))
    return data_file_digest(
        None if path == "null" else path, overrides.get("data.data_dir", data.get("data_dir"))
    )


def _data_section(config: Path) -> dict[str, Any]:
    """The config's data section, also where it is a file of its own (`data: data.yaml`,
    relative to the config's folder, as the CLI reads it)."""
    data = _load(config).get("data")
    if isinstance(data, str) and data.endswith(_YAML_SUFFIXES):
        data = _load(config.parent / data)
    return data if isinstance(data, dict) else {}


def _overrides(args: Sequence[str]) -> dict[str, str]:
    """CLI overrides by key, written `--key=value` or `--key value` (the CLI takes both)."""
    overrides = {}
    for index, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        if "=" in arg:
            key, value = arg.removeprefix("--").split("=", 1)
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            key, value = arg.removeprefix("--"), args[index + 1]
        else:
            continue
        overrides[key] = value
    return overrides


def data_file_digest(path: str | None, directory: str | None) -> str:
    """The digest of the data file a config's `data.path` and `data.data_dir` name
    ("synthetic" without a path; an absent file's says where it was looked for)."""
    if path is None:
        return "synthetic"
    try:
        return _file_digest(resolve_data_path(path, directory).resolve())
    except DataValidationError:
        return f"absent: {path} in {directory or os.environ.get('LOAN_DATA_DIR')}"


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _yaml_digest(path: Path) -> str:
    try:
        # Dumped again with sorted keys: 1 and "1" stay apart, sets and anchors are stable.
        canonical = yaml.safe_dump(yaml.safe_load(path.read_text()), sort_keys=True)
    except (yaml.YAMLError, UnicodeDecodeError, TypeError, ValueError):
        # Not YAML that reads back (the run itself will say why), or keys of mixed types.
        return _file_digest(path)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return _content_digest(path, stat.st_size, stat.st_mtime_ns)


@cache
def _content_digest(path: Path, size: int, mtime_ns: int) -> str:
    """The file's SHA-256, once per version of it (size and modification time) per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
