"""A search space as data: a YAML file of parameters, each one training-CLI option with a range.

The file (`configs/search/default.yaml` is the example; `docs/tuning.md` the reference):

    fixed:                      # options every trial gets, e.g. a cap on epochs
      trainer.max_epochs: 30
    parameters:
      lr:                       # the name Optuna, the plots and trials.csv use
        key: model.optimizer.init_args.lr   # the option the value goes to (--<key>=<value>)
        type: float             # float | int | categorical | layers
        low: 3.0e-5
        high: 3.0e-3
        log: true

A parameter may also have `step` (float and int), `off_value` (float, int and layers: each
trial first draws `<name>.off`, and "off" sets this value: weight decay "0 or log-uniform",
blocks "auto or drawn"),
and `when` ({other parameter: [values]}: drawn only when an earlier categorical took one of
them, e.g. `n_bins` only for piecewise embeddings). `layers` draws `<name>.depth` blocks of
one width `<name>.width` (`depth: [1, 4]`, `width: [64, 1024]`, optional `log`) and sets the
list `[width] * depth`, as TabM's `n_blocks` x `d_block`.

Loading checks the file alone; `check_keys` checks the keys against the training CLI.
Mistakes raise `ConfigurationError` naming the file and the parameter.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from jsonargparse import ArgumentError, Namespace

from contracts.errors import ConfigurationError

KINDS = ("float", "int", "categorical", "layers")
_FIELDS = {
    "float": {"key", "type", "low", "high", "log", "step", "off_value", "when"},
    "int": {"key", "type", "low", "high", "log", "step", "off_value", "when"},
    "categorical": {"key", "type", "choices", "when"},
    "layers": {"key", "type", "depth", "width", "log", "off_value", "when"},
}
_TOP_LEVEL = {"fixed", "parameters"}
_Fail = Callable[[str], ConfigurationError]  # builds the error for one parameter


@dataclass(frozen=True)
class Parameter:
    """One searched option. `low`/`high` bound the value (the width, for `layers`)."""

    name: str
    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    depth: tuple[int, int] = (1, 1)
    off_value: float | str | None = None
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this parameter's value for the trial (its condition already holds)."""
        if self.off_value is not None and trial.suggest_categorical(
            f"{self.name}.off", [False, True]
        ):
            return self.off_value
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            step = 1 if self.step is None else int(self.step)
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), log=self.log, step=step
            )
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        depth = trial.suggest_int(f"{self.name}.depth", *self.depth)
        width = trial.suggest_int(f"{self.name}.width", int(self.low), int(self.high), log=self.log)
        return [width] * depth

    def describe(self) -> str:
        """The key and what the parameter draws, in one line: how a study records its space,
        so that a run with an edited space file is refused rather than mixed into it."""
        return f"{self.key}: {self.draws()}"

    def draws(self) -> str:
        """What the parameter draws: `float in [0.0001, 0.003] log`."""
        scale = " log" if self.log else ""
        if self.kind == "categorical":
            drawn = f"one of {list(self.choices)}"
        elif self.kind == "layers":
            drawn = f"{self.depth[0]}-{self.depth[1]} layers of width [{self.low}, {self.high}]"
        else:
            drawn = f"{self.kind} in [{self.low}, {self.high}]"
            drawn += f" step {self.step}" if self.step is not None else ""
        drawn += scale
        drawn += f", or {self.off_value}" if self.off_value is not None else ""
        drawn += f", when {dict(self.when)}" if self.when else ""
        return drawn

    def candidate_values(self) -> list[Any]:
        """Values that stand for everything the parameter can draw (its bounds, a float
        between them, every choice): what the training CLI must accept before any trial."""
        if self.kind == "categorical":
            values: list[Any] = list(self.choices)
        elif self.kind == "layers":
            values = [[int(self.low)] * self.depth[0], [int(self.high)] * self.depth[1]]
        elif self.kind == "int":
            values = [int(self.low), int(self.high)]
        else:
            values = [float(self.low), float(self.high), (self.low + self.high) / 2]
        return values + ([self.off_value] if self.off_value is not None else [])

    def params_for(self, value: Any) -> dict[str, Any] | None:
        """The Optuna parameters that give `value`, or None if the space cannot express it."""
        if self.off_value is not None and value == self.off_value:
            return {f"{self.name}.off": True}
        params: dict[str, Any] | None = None
        if self.kind == "categorical":
            params = {self.name: value} if value in self.choices else None
        elif self.kind == "layers":
            if isinstance(value, list) and value and len(set(value)) == 1:
                width, depth = value[0], len(value)
                if self.depth[0] <= depth <= self.depth[1] and self.low <= width <= self.high:
                    params = {f"{self.name}.depth": depth, f"{self.name}.width": width}
        elif (
            _is_number(value)
            and self.low <= value <= self.high
            and (self.kind == "float" or float(value).is_integer())
        ):
            params = {self.name: value}
        if params is not None and self.off_value is not None:
            params[f"{self.name}.off"] = False
        return params


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of one space file, in file order, and the options every trial gets."""

    path: Path
    parameters: tuple[Parameter, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """{CLI key: value} for the trial: each parameter whose condition holds, in order."""
        drawn: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for parameter in self.parameters:
            if self._active(parameter, drawn):
                drawn[parameter.name] = values[parameter.key] = parameter.suggest(trial)
        return values

    def config_values(self, config: Namespace) -> dict[str, Any]:
        """{CLI key: value} of a parsed config's searched keys."""
        return {parameter.key: config.get(parameter.key) for parameter in self.parameters}

    def params_for(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The Optuna parameters that reproduce a config's values ({CLI key: value}), or None
        when one lies outside the space: how a study's first trial can be the config as it is."""
        return self._expressed(config)[0]

    def outside(self, config: Mapping[str, Any]) -> str | None:
        """Why the space cannot express a config ({CLI key: value}), or None if it can."""
        return self._expressed(config)[1]

    def _expressed(self, config: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        drawn: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for parameter in self.parameters:
            if not self._active(parameter, drawn):
                continue
            value = config.get(parameter.key)
            found = parameter.params_for(value)
            if found is None:
                return None, (
                    f"{parameter.key} = {value!r} is not among what parameter "
                    f"{parameter.name!r} draws ({parameter.draws()})"
                )
            drawn[parameter.name] = value
            params |= found
        return params, None

    def fixed_overrides(self) -> list[str]:
        return cli_overrides(self.fixed)

    def trial_args(self, config: str | Path, cli_args: Iterable[str]) -> list[str]:
        """What every trial passes the training CLI before its own values: the config, one
        network (a trial is scored on the protocol's validation rows; on a small set the
        default would bag eight, at eight times the cost), the space's fixed settings, then
        the user's overrides, which win over both (a user's --trainer.max_epochs=5 holds
        in every trial). The best trial's config refits that one network; add
        `--data.folds auto` to bag it as the default would."""
        return ["--config", str(config), "--data.folds=1", *self.fixed_overrides(), *cli_args]

    def searched_in(self, cli_args: Iterable[str]) -> list[str]:
        """The options among `cli_args` (a user's overrides) that this space searches, as
        written: a trial's drawn value comes after them and replaces them."""
        keys = {parameter.key for parameter in self.parameters}
        given = (arg.split("=", 1)[0] for arg in cli_args if arg.startswith("--"))
        return [option for option in dict.fromkeys(given) if option.removeprefix("--") in keys]

    def check_keys(self, known: Iterable[str]) -> None:
        """Every key must be an option of the training CLI (`known`: the parsed config's keys)."""
        known = set(known)
        named = [("fixed", key) for key in self.fixed]
        named += [(f"parameter {p.name!r}", p.key) for p in self.parameters]
        for where, key in named:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigurationError(
                    f"{self.path}: {where}: {key!r} is not an option of the training CLI{hint}; "
                    "`python scripts/main.py fit --config <config> --print_config` lists them"
                )

    def check_values(self, parse: Callable[[list[str]], object]) -> None:
        """Every fixed value, and every kind of value a parameter draws, must be one the
        training CLI takes (its type, one of its choices): refused now, not in the trial
        that first draws it, hours into a search. `parse` parses overrides on top of the
        config and raises `ArgumentError` on one it refuses."""
        checks = [("fixed", key, value) for key, value in self.fixed.items()]
        checks += [
            (f"parameter {p.name!r}", p.key, value)
            for p in self.parameters
            for value in p.candidate_values()
        ]
        for where, key, value in checks:
            try:
                parse(cli_overrides({key: value}))
            except ArgumentError as error:
                cause = " ".join(str(error).split())
                raise ConfigurationError(
                    f"{self.path}: {where}: {key} = {value!r} is not a value the training CLI "
                    f"takes: {cause}"
                ) from None

    @staticmethod
    def _active(parameter: Parameter, drawn: Mapping[str, Any]) -> bool:
        return all(
            name in drawn and drawn[name] in allowed for name, allowed in parameter.when.items()
        )


def cli_overrides(values: Mapping[str, Any]) -> list[str]:
    """`--key=value` arguments, each value as the CLI parses it (lists, booleans: JSON)."""
    return [f"--{key}={_cli_value(value)}" for key, value in values.items()]


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a space file; mistakes name the file and the parameter."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"search space {path} cannot be read: {error}") from error
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path}: expected a mapping with `parameters:` (and `fixed:`)")
    unknown = set(document) - _TOP_LEVEL
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(_TOP_LEVEL)}"
        )
    fixed = document.get("fixed") or {}
    entries = document.get("parameters") or {}
    if (
        not isinstance(fixed, dict)
        or not all(isinstance(key, str) for key in fixed)
        or not isinstance(entries, dict)
        or not entries
    ):
        raise ConfigurationError(
            f"{path}: `parameters` must be a non-empty mapping of name -> settings, and "
            "`fixed` a mapping of CLI key -> value"
        )
    parameters: list[Parameter] = []
    for name, settings in entries.items():
        parameter = _parse_parameter(path, str(name), settings, parameters)
        if parameter.key in fixed or any(p.key == parameter.key for p in parameters):
            raise ConfigurationError(
                f"{path}: parameter {name!r}: {parameter.key!r} is set twice in this file"
            )
        parameters.append(parameter)
    return SearchSpace(path=path, parameters=tuple(parameters), fixed=fixed)


def _parse_parameter(path: Path, name: str, settings: Any, earlier: list[Parameter]) -> Parameter:
    def fail(message: str) -> ConfigurationError:
        return ConfigurationError(f"{path}: parameter {name!r}: {message}")

    if not isinstance(settings, dict):
        raise fail("expected a mapping with at least `key` and `type`")
    kind = settings.get("type")
    if kind not in KINDS:
        raise fail(f"type must be one of {list(KINDS)}, got {kind!r}")
    unknown = set(settings) - _FIELDS[kind]
    if unknown:
        raise fail(
            f"unknown field(s) {sorted(unknown)} for type {kind}; allowed: {sorted(_FIELDS[kind])}"
        )
    key = settings.get("key")
    if not isinstance(key, str) or not key:
        raise fail("`key` must name a training-CLI option, e.g. model.net.dropout")
    log = settings.get("log", False)
    if not isinstance(log, bool):
        raise fail(f"`log` must be true or false, got {log!r}")
    common: dict[str, Any] = {"name": name, "key": key, "kind": kind, "log": log}
    common["when"] = _parse_when(settings.get("when"), earlier, fail)

    if kind == "categorical":
        choices = settings.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail("`choices` must be a non-empty list")
        distinct = len({json.dumps(choice) for choice in choices}) == len(choices)
        if not distinct or not all(_is_choice(choice) for choice in choices):
            raise fail(f"`choices` must be distinct numbers, strings, booleans or null: {choices}")
        return Parameter(**common, choices=tuple(choices))

    if kind == "layers":
        depth = _pair(settings.get("depth"), "depth", integer=True, fail=fail)
        low, high = _pair(settings.get("width"), "width", integer=True, fail=fail)
        if depth[0] < 1 or low < 1:
            raise fail("depth and width must be at least 1")
        off_value = settings.get("off_value")
        if off_value is not None and not isinstance(off_value, str):
            raise fail(f"`off_value` of layers must be a word such as auto, got {off_value!r}")
        depths = (int(depth[0]), int(depth[1]))
        return Parameter(**common, low=low, high=high, depth=depths, off_value=off_value)

    integer = kind == "int"
    low, high = _pair([settings.get("low"), settings.get("high")], "low/high", integer, fail)
    if log and low <= 0:
        raise fail(f"a log scale needs low > 0, got low = {low}")
    step = settings.get("step")
    if step is not None:
        if log:
            raise fail("`step` and `log` cannot be combined (Optuna draws log scales unstepped)")
        if not _is_number(step) or step <= 0 or (integer and not float(step).is_integer()):
            raise fail(
                f"`step` must be a positive {'integer' if integer else 'number'}, got {step!r}"
            )
    off_value = settings.get("off_value")
    if off_value is not None and not _is_number(off_value):
        raise fail(f"`off_value` must be a number, got {off_value!r}")
    return Parameter(**common, low=low, high=high, step=step, off_value=off_value)


def _parse_when(when: Any, earlier: list[Parameter], fail: _Fail) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, dict) or not when:
        raise fail("`when` must map an earlier categorical parameter to its allowed values")
    conditions = {}
    by_name = {p.name: p for p in earlier}
    for other, allowed in when.items():
        parent = by_name.get(other)
        if parent is None or parent.kind != "categorical":
            raise fail(
                f"`when` refers to {other!r}, which is not a categorical parameter listed earlier"
            )
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        outside = [value for value in allowed if value not in parent.choices]
        if outside:
            raise fail(f"`when` values {outside} are not among {other!r}'s choices")
        conditions[other] = allowed
    return conditions


def _pair(values: Any, what: str, integer: bool, fail: _Fail) -> tuple[float, float]:
    if (
        not isinstance(values, list | tuple)
        or len(values) != 2
        or not all(_is_number(v) and math.isfinite(v) for v in values)
    ):
        raise fail(f"{what} must be two finite numbers, got {values!r}")
    low, high = values
    if integer and not all(float(v).is_integer() for v in values):
        raise fail(f"{what} must be integers, got {values!r}")
    if low >= high:
        raise fail(
            f"{what}: low must be below high, got {low} >= {high} (use `fixed` for one value)"
        )
    return (int(low), int(high)) if integer else (float(low), float(high))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_choice(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
