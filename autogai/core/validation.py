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


# --- command-line values ---------------------------------------------------------------------------
# Every value a command takes goes through these checks before anything runs, so a mistyped number is
# refused (or priced) in one line instead of running until interrupted.

SEED_MAX = 2**32 - 1
"""Largest seed: NumPy's legacy ``np.random.seed`` and Gymnasium's ``Space.seed`` take 32-bit seeds."""

MAX_RUN_DAYS = 30
"""Longest a single command is meant to run; larger budgets are refused with their cost."""

OPTIMISTIC_STEPS_PER_S_PER_CORE = 20_000
"""Training steps (env step plus TD3 update) one CPU core could do at best. bench/results/population.txt
measures a TD3 update at 64x64 at about 0.65 ms per agent per step, i.e. about 1,500 steps/s per core;
this bound leaves a wide margin for tiny networks, so a budget it refuses is out of reach on this machine,
and a cost computed with it is a lower bound."""


def machine_steps_per_s() -> float:
    """The fastest this machine could train: the optimistic per-core rate times its CPU cores."""
    import os

    return float(OPTIMISTIC_STEPS_PER_S_PER_CORE * (os.cpu_count() or 1))


def max_env_steps() -> int:
    """Env steps of training this machine cannot finish within :data:`MAX_RUN_DAYS` even at best."""
    return int(machine_steps_per_s() * MAX_RUN_DAYS * 86_400)


def describe_duration(seconds: float) -> str:
    """``'3.2 hours'``, ``'41 days'``: the unit a person reads a cost in."""
    for unit, size in (("years", 365 * 86_400), ("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} seconds"


def check_count(name: str, value: Any, *, low: int = 1, high: int, why: str) -> int:
    """An integer option in ``[low, high]``; ``why`` says where the upper limit comes from."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} must be an integer")
    if value < low:
        need = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ConfigError(f"{name}={value} must be {need}")
    if value > high:
        raise ConfigError(f"{name}={value} is above the limit of {high:,} ({why})")
    return value


def check_steps(name: str, value: Any, *, runs: int = 1) -> int:
    """Env steps of one training run, of which ``runs`` are made: refused when the total is out of
    reach of this machine within :data:`MAX_RUN_DAYS` (the message gives the cost and the limit)."""
    limit = max_env_steps()
    check_count(name, value, high=limit, why=f"{MAX_RUN_DAYS} days of training on this machine")
    total = value * max(1, runs)
    if total > limit:
        cost = describe_duration(total / machine_steps_per_s())
        raise ConfigError(
            f"{name}={value} over {runs:,} training runs is {total:,} env steps: at least {cost} on this "
            f"machine's {_cores()} cores, above the limit of {MAX_RUN_DAYS} days; lower it or the run counts"
        )
    return value


def cost_line(env_steps: int) -> str | None:
    """A line pricing a large budget (over an hour even at the machine's best rate), else ``None``."""
    seconds = env_steps / machine_steps_per_s()
    if seconds < 3_600:
        return None
    return (
        f"this run asks for {env_steps:,} env steps of training: at least {describe_duration(seconds)} on "
        f"this machine's {_cores()} cores"
    )


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def check_seed(name: str, value: Any) -> int:
    """A seed NumPy and Gymnasium accept: an integer in ``[0, 2**32 - 1]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{name}={value!r} must be an integer from 0 to {SEED_MAX} (a 32-bit seed)")
    return value


def check_seconds(name: str, value: Any, *, low: float = 0.0, high: float | None = None) -> float:
    """A positive, finite number of seconds (``nan`` and ``inf`` are named as such)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} must be a number of seconds")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value} must be a finite number of seconds")
    if value <= low:
        raise ConfigError(f"{name}={value:g} must be more than {low:g} seconds")
    if high is not None and value > high:
        raise ConfigError(f"{name}={value:g} must be at most {high:g} seconds")
    return float(value)


def check_text(name: str, value: str | None) -> str | None:
    """An optional text option: ``None`` (not given) passes, an empty or blank string is refused rather
    than silently meaning the default."""
    if value is not None and not value.strip():
        raise ConfigError(f"{name} is empty; leave the option out to use the default")
    return value


def parse_seed_list(name: str, text: str) -> list[int]:
    """``"0-9"``, ``"1,4,7"`` or ``"0-3,10"`` -> the seeds, in order; each a valid seed, none twice."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            if dash:
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError(part)
                if last - first >= 1_000_000:
                    raise ConfigError(
                        f"{name} {text!r} names {last - first + 1:,} seeds; train fewer at once"
                    )
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(
                f"{name} {text!r} does not parse: use a range like 0-9, a list like 1,4,7, or both"
            ) from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{name} {text!r} names a seed twice")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"{name} {text!r}: seeds must be non-negative")
    for seed in seeds:
        check_seed(name, seed)
    return seeds


def parse_assignments(items: Iterable[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{what} {item!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def convert_like(name: str, text: str, default: Any) -> Any:
    """``text`` converted to the type of ``default`` (bool, int, float, tuple of ints or str)."""
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            value = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(text)
            return int(value)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            import ast

            parsed = ast.literal_eval(text if text.strip()[:1] in "[(" else f"[{text}]")
            parsed = parsed if isinstance(parsed, (list, tuple)) else [parsed]
            return tuple(int(x) for x in parsed)
        return text
    except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError):
        kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated integers"
        raise ConfigError(f"{name}={text!r}: expected {kind}") from None
