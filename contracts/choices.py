"""Option checks derived from the `Literal` types that declare the choices, so the allowed
values are written once: in the type the CLI also reads."""

from __future__ import annotations

from typing import Any, get_args

from contracts.errors import ConfigurationError


def check_choice(option: str, value: object, choices: Any) -> None:
    """Raise `ConfigurationError` unless `value` is one of the `Literal` type's values."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ConfigurationError(f"{option} must be one of {list(allowed)}, got {value!r}")


def check_range(
    option: str,
    value: float,
    *,
    low: float,
    high: float = float("inf"),
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise `ConfigurationError` unless low <= value <= high (each bound inclusive or not)."""
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        upper = "inf" if high == float("inf") else f"{high:g}"
        raise ConfigurationError(f"{option} must be in {left}{low:g}, {upper}{right}, got {value}")
