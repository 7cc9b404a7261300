"""Small checks used by config dataclasses' ``__post_init__`` so every error names the value and the choices."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from autogai.core.errors import ConfigError


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    options = list(choices)
    if value not in options:
        valid = ", ".join(repr(c) for c in options)
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {valid}")


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ConfigError(f"{name}={value!r} must be {bound} {low}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        bound = "<=" if high_inclusive else "<"
        raise ConfigError(f"{name}={value!r} must be {bound} {high}")


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        need = "a non-negative integer" if allow_zero else "a positive integer"
        raise ConfigError(f"{name}={value!r} must be {need}")
