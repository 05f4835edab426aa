"""Did-you-mean for a refused option or config key: a typo costs one line naming the option
meant, not a usage page of a hundred lines (`run_entry_point` prints the line)."""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import re
import sys
from argparse import ArgumentError, ArgumentParser, _SubParsersAction
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

# difflib's similarity for a suggestion: at its default 0.6, `--lr` suggested `--help`.
SUGGESTION_CUTOFF = 0.75

# jsonargparse's refusals of a config key, each pattern with how its groups spell the key:
# "Subcommand 'fit' does not accept option 'data.targt'"; "Group 'data' does not accept
# option 'targt'" and "Option 'dat.path' is not accepted" where the parser has no
# subcommands (the tools that build the training CLI without running it); and a class's
# argument, "Parser key "model.optimizer": ... Option 'lrr' is not accepted", which is set
# as `model.optimizer.init_args.lr`.
_REFUSED_KEYS = (
    (
        re.compile(r"""^Parser key "([^"]+)":.* Option '([^']+)' is not accepted"""),
        "{}.init_args.{}",
    ),
    (re.compile(r"Group '([^']+)' does not accept option '([^']+)'"), "{}.{}"),
    (re.compile(r"does not accept option '([^']+)'"), "{}"),
    (re.compile(r"^Option '([^']+)' is not accepted"), "{}"),
)


def _refused_key(message: str) -> str | None:
    for pattern, key in _REFUSED_KEYS:
        if found := pattern.search(message):
            return key.format(*found.groups())
    return None


def closest_option(option: str, known: Iterable[str], others: Iterable[str] = ()) -> str | None:
    """The option `option` most likely meant, among `known` and `others`, or None.

    Among `known`, one whose last part is the same name comes first where the option
    names a group and exactly one has that name (`--model.lr` ->
    `--model.optimizer.init_args.lr`: the right setting in the wrong group); else the
    closest spelling among both. `others` (a tool's own options beside the training CLI's)
    count by spelling only: their names mean something else there (eda's `--rows` is not
    `--data.rows`). Never the option itself (another subcommand's) nor its own group
    (`--model` for `--model.lr`), which names a class, not the setting meant."""
    known, others = list(known), list(others)
    candidates = [
        name for name in [*known, *others] if name != option and not option.startswith(f"{name}.")
    ]
    if "." in option:
        same_name = [
            name for name in known if name in candidates and _last_part(name) == _last_part(option)
        ]
        if len(same_name) == 1:
            return same_name[0]
    close = difflib.get_close_matches(option, candidates, n=1, cutoff=SUGGESTION_CUTOFF)
    return close[0] if close else None


def _last_part(option: str) -> str:
    return option.rsplit(".", 1)[-1].lstrip("-")


def with_suggestions(
    message: str, known: Iterable[str], args: Sequence[str] = (), others: Iterable[str] = ()
) -> str:
    """The parser's message on one line, with the closest option (`closest_option`) of each
    one it refused on the command line, or of the config key it refused, naming the
    `--config` files in `args` that hold that key."""
    message = " ".join(message.split())
    known, others = sorted(set(known)), sorted(set(others))
    if message.startswith("unrecognized arguments:"):
        refused = message.removeprefix("unrecognized arguments:").split()
        return message + _hints(refused, known, others)
    if key := _refused_key(message):
        files = [str(path) for path in _config_files(args) if _holds_key(path, key)]
        meant = closest_option(f"--{key}", known, others)
        # Written as a key: a config file's (or a nested file's, not named here).
        notes = [
            *([f"in {', '.join(files)}"] if files else []),
            *([f"did you mean {meant.removeprefix('--')}?"] if meant else []),
        ]
        return message + (f" ({'; '.join(notes)})" if notes else "")
    return message


def _hints(words: Sequence[str], known: Sequence[str], others: Sequence[str] = ()) -> str:
    """The hints for the options among `words`, as one parenthesis, or nothing."""
    hints = [
        f"{option}: did you mean {meant}?"
        for option in (word.split("=", 1)[0] for word in words if word.startswith("--"))
        if (meant := closest_option(option, known, others))
    ]
    return f" ({' '.join(hints)})" if hints else ""


def parser_options(parser: ArgumentParser, args: Sequence[str] = ()) -> Iterator[str]:
    """The options `parser` takes, and those of the subcommand named in `args`, if any.
    Not the `.help` options that print a class's arguments; with the arguments of the class
    an option holds by default (`--model.optimizer.init_args.lr` for AdamW's `lr`), which
    the parser only learns of when the option is given."""
    for action in parser._actions:  # argparse keeps its actions only here
        names = [name for name in action.option_strings if not name.endswith(".help")]
        yield from names
        for name in names:
            yield from (f"{name}.init_args.{arg}" for arg in _default_class_arguments(action))
    for subcommands in subcommand_actions(parser):
        named = next((arg for arg in args if arg in subcommands.choices), None)
        if named is not None:
            yield from parser_options(subcommands.choices[named])


def subcommand_actions(parser: ArgumentParser) -> list[_SubParsersAction]:
    return [action for action in parser._actions if isinstance(action, _SubParsersAction)]


def _default_class_arguments(action: argparse.Action) -> list[str]:
    """The constructor's arguments of the class an option's default names by class path."""
    default = action.default
    class_path = default.get("class_path") if isinstance(default, dict) else None
    class_path = class_path or getattr(default, "class_path", None)
    if not isinstance(class_path, str) or "." not in class_path:
        return []
    module, name = class_path.rsplit(".", 1)
    try:
        cls = getattr(importlib.import_module(module), name)
        parameters = inspect.signature(cls).parameters.values()
    except (ImportError, AttributeError, TypeError, ValueError):
        return []
    return [
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and parameter.name != "params"  # the optimiser's parameters, which the model passes
    ]


def _config_files(args: Sequence[str]) -> Iterator[Path]:
    for index, arg in enumerate(args):
        if arg in ("--config", "-c") and index + 1 < len(args):
            yield Path(args[index + 1])
        elif arg.startswith("--config="):
            yield Path(arg.removeprefix("--config="))


def _holds_key(path: Path, key: str) -> bool:
    try:
        node: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse's parser for the scripts' own options: a refusal raises `ArgumentError`
    with the closest option (`--dataset: did you mean --datasets?`) for `run_entry_point`
    to print as one line, instead of the usage page and an exit; options are written whole
    (argparse would otherwise take `--dataset` for `--datasets`, or an option meant for the
    training CLI for an abbreviation of the script's own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._given: list[str] = []
        self._refusal = ""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        # argparse passes an error raised inside parsing to `error` again: once is enough.
        if message != self._refusal:
            known = list(parser_options(self))
            self._refusal = with_suggestions(message, known)
            if message.startswith("the following arguments are required"):
                # argparse names the missing option before any it did not know, so the one
                # misspelt (`--dataset` for the required `--datasets`) is named here.
                unknown = [word for word in self._given if word.split("=", 1)[0] not in known]
                self._refusal += _hints(unknown, known)
        raise ArgumentError(None, self._refusal)
