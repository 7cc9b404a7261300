"""The restricted runtime a reward program executes in: builtins, ``math``, ``np``, attribute guard.

Static checks (:mod:`autogai.rewards.static_checks`) are the first fence; this module is the second, *inside*
the sandbox process: a program sees only (the names are listed in :mod:`autogai.rewards.allow_lists`)

- a small builtins dict (``SAFE_BUILTIN_NAMES``), with ``range`` and ``pow`` bounded;
- ``math`` and ``np`` as proxies exposing allow-listed pure functions only (``NUMPY_ALLOWED``,
  ``MATH_ALLOWED``); array-creating functions refuse more than :data:`MAX_ARRAY_ELEMENTS` elements;
- every ``x.attr`` rewritten to ``_getattr_(x, "attr")``, which allows an attribute only if it is on the
  allow-list of ``type(x)`` (``ATTRIBUTE_ALLOWLIST``): arrays offer ``shape``, ``sum``, ``clip``, ... but
  never ``tofile``, ``dump``, ``ctypes``, ``data``, ``base``, ``view``; generators, functions, frames and types
  offer nothing at all;
- ``a ** b`` rewritten to a bounded power;
- ``m``, a read-only :class:`MetricsView`, and ``p``, a read-only mapping of parameter values.

The third fence is the process: resource limits, no files, a pipe to the parent (see
:mod:`autogai.rewards.sandbox_worker`). Running a program in-process
(:func:`autogai.rewards.in_process.load_program`) is for trusted code and tests only; untrusted code goes
through :class:`autogai.rewards.sandbox.SandboxedReward`.

This module imports numpy and the standard library only: the sandbox worker imports it.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from autogai.core.text import escape_control, is_printable_identifier
from autogai.rewards.allow_lists import (
    ARRAY_ATTRIBUTES,
    ATTRIBUTE_ALLOWLIST,
    MATH_ALLOWED,
    NUMPY_ALLOWED,
    NUMPY_LINALG_ALLOWED,
    SAFE_BUILTIN_NAMES,
)

MAX_RANGE_ITEMS = 100_000
"""``range(...)`` refuses more items than this (loops over small ranges only)."""
MAX_ARRAY_ELEMENTS = 1_000_000
"""Array-creating ``np`` functions refuse more elements than this."""
MAX_POW_BITS = 4096
"""Integer ``a ** b`` refuses results larger than this many bits (``10 ** 10 ** 10`` would hang the CPU)."""
MAX_COMPONENTS = 32
"""A program may return at most this many named components."""
MAX_COMPONENT_NAME = 64

PROGRAM_FILENAME = "<reward>"
"""Filename the program is compiled under: tracebacks are mapped back to its lines through it."""


class SandboxViolation(Exception):
    """The program reached for something the restricted runtime does not offer."""


class RewardOutputError(Exception):
    """``compute_reward`` returned something other than ``(finite float, {name: finite float})``."""


# --------------------------------------------------------------------------------------------- builtins


def _bounded_range(*args: Any) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_RANGE_ITEMS + 1
    if size > MAX_RANGE_ITEMS:
        raise SandboxViolation(f"range of {size} items exceeds the limit of {MAX_RANGE_ITEMS}")
    return result


def bounded_pow(base: Any, exponent: Any, modulo: Any = None) -> Any:
    """``base ** exponent`` (or ``pow(base, exponent, modulo)``) refusing astronomically large integers."""
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and modulo is None
        and abs(base).bit_length() * exponent > MAX_POW_BITS
    ):
        raise SandboxViolation(f"integer power with more than {MAX_POW_BITS} bits")
    if modulo is None:
        return base**exponent
    return builtins.pow(base, exponent, modulo)


def _numpy_internal_import(
    name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
) -> Any:
    """``__import__`` for numpy's own lazy imports from C code (``PyImport_Import`` looks the hook up in the
    builtins of the *calling* frame, which is the program's). Programs cannot name it (no ``_`` names)."""
    if level != 0 or name.partition(".")[0] != "numpy":
        raise SandboxViolation(f"import of {name!r} is not allowed")
    return builtins.__import__(name, globals, locals, fromlist, level)


def make_builtins() -> dict[str, Any]:
    """The builtins a program sees (``True``/``False``/``None`` are keywords and need no entry)."""
    table: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}
    table["range"] = _bounded_range
    table["pow"] = bounded_pow
    table["__import__"] = _numpy_internal_import
    return table


# ---------------------------------------------------------------------------------------- module proxies


class ModuleProxy:
    """A read-only namespace of allow-listed callables and constants (stands in for ``np`` and ``math``)."""

    __slots__ = ("_members", "_name")

    def __init__(self, name: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, attribute: str) -> Any:
        try:
            return self._members[attribute]
        except KeyError:
            raise SandboxViolation(f"{self._name}.{attribute} is not available in reward programs") from None

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise SandboxViolation(f"{self._name} is read-only")

    def __dir__(self) -> list[str]:
        return sorted(self._members)

    def __repr__(self) -> str:
        return f"<restricted {self._name}>"


# --- size limits on numpy ------------------------------------------------------------------------------
# Every numpy function a program can call is wrapped: the size of what it would allocate is computed from
# its arguments first, and anything beyond MAX_ARRAY_ELEMENTS is refused before numpy allocates. Operators
# on arrays (``a[:, None] * b``) cannot be wrapped: the address-space limit of the sandbox process stops them.

_DTYPE_POSITION = {
    "array": 1,
    "asarray": 1,
    "zeros": 1,
    "ones": 1,
    "full": 2,
    "zeros_like": 1,
    "ones_like": 1,
    "full_like": 2,
    "arange": 3,
    "linspace": 5,
}
"""Where a function takes ``dtype`` positionally (everywhere it is also accepted as a keyword)."""

_SCALAR_TYPES = frozenset({"bool_", "float32", "float64", "int32", "int64"})
_CONCATENATING = frozenset({"concatenate", "stack", "hstack", "vstack"})


def _element_count(shape: Any) -> int:
    try:
        dims = [int(d) for d in shape]
    except TypeError:
        dims = [int(shape)]
    count = 1
    for dim in dims:
        count *= max(dim, 0)
    return count


def _check_elements(name: str, count: int) -> None:
    if count > MAX_ARRAY_ELEMENTS:
        raise SandboxViolation(
            f"np.{name} of {count} elements exceeds the limit of {MAX_ARRAY_ELEMENTS} elements"
        )


def check_dtype(name: str, dtype: Any) -> None:
    """Plain booleans and numbers only: a sub-array (``('f8', (10**6,))``), structured, string or object
    dtype multiplies the memory of every element."""
    if dtype is None:
        return
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        return  # numpy raises its own error for it
    if resolved.kind not in "biufc" or resolved.shape != () or resolved.fields is not None:
        raise SandboxViolation(
            f"{name}: dtype {str(resolved)[:40]!r} is not allowed (use a plain bool, integer or float type)"
        )


def _size(value: Any) -> int:
    return int(np.size(value))


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value))


def _arange_count(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    bound = dict(zip(("start", "stop", "step"), args[:3], strict=False))
    if len(args) == 1:  # arange(stop)
        bound = {"stop": args[0]}
    for key in ("start", "stop", "step"):
        if key in kwargs:
            bound[key] = kwargs[key]
    if "stop" not in bound and "start" in bound:  # arange(start=10) means arange(0, 10)
        bound["stop"] = bound.pop("start")
    try:
        start, stop, step = (
            float(bound.get(k, d)) for k, d in (("start", 0.0), ("stop", 0.0), ("step", 1.0))
        )
    except (TypeError, ValueError):
        raise SandboxViolation("np.arange needs real-number bounds and step") from None
    if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)):
        raise SandboxViolation("np.arange needs finite bounds and a non-zero step")
    return max(0, math.ceil((stop - start) / step))


def _product_shape(name: str, a: Any, b: Any) -> int:
    """Elements of dot/matmul/inner/vdot/cross of ``a`` and ``b`` (numpy's shape rules)."""
    sa, sb = _shape(a), _shape(b)
    if name == "vdot":
        return 1
    if not sa or not sb:
        return max(_size(a), _size(b))
    if name == "inner":
        return _element_count(sa[:-1] + sb[:-1])
    if name == "dot":
        return _element_count(sa[:-1] + (sb[:-2] + sb[-1:] if len(sb) > 1 else ()))
    if name == "matmul":
        try:
            batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            return 0  # numpy raises its own error
        return _element_count(batch + sa[-2:-1] + (sb[-1:] if len(sb) > 1 else ()))
    try:  # cross: the broadcast shape of the inputs
        return _element_count(np.broadcast_shapes(sa, sb))
    except ValueError:
        return 0


def result_elements(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """Elements the numpy function ``name`` would allocate for these arguments (an upper bound)."""
    if name in ("zeros", "ones", "full"):
        return _element_count(args[0] if args else kwargs.get("shape", 0))
    if name in ("zeros_like", "ones_like", "full_like"):
        shape = args[4] if len(args) > 4 else kwargs.get("shape")
        if shape is not None:
            return _element_count(shape)
        return _size(args[0] if args else kwargs.get("a", 0))
    if name == "linspace":
        return int(args[2] if len(args) > 2 else kwargs.get("num", 50))
    if name == "arange":
        return _arange_count(args, kwargs)
    if name == "outer":
        return _size(args[0]) * _size(args[1]) if len(args) > 1 else 0
    if name in _CONCATENATING:
        items = args[0] if args else kwargs.get("arrays", kwargs.get("tup", ()))
        return sum(_size(item) for item in items) if isinstance(items, (list, tuple)) else _size(items)
    if name in ("dot", "matmul", "inner", "vdot", "cross") and len(args) > 1:
        return _product_shape(name, args[0], args[1])
    arrays = [a for a in args if isinstance(a, (np.ndarray, list, tuple))]
    if len(arrays) < 2:  # one input: the result is no larger than it
        return 0
    try:
        return _element_count(np.broadcast_shapes(*(_shape(a) for a in arrays)))
    except ValueError:
        return 0  # not broadcast together (interp, where with lists ...): numpy checks the shapes


def _size_checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    dtype_position = _DTYPE_POSITION.get(name)
    label = f"np.{name}"

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_dtype(label, kwargs.get("dtype"))
        if dtype_position is not None and len(args) > dtype_position:
            check_dtype(label, args[dtype_position])
        _check_elements(name, result_elements(name, args, kwargs))
        return function(*args, **kwargs)

    checked.__name__ = name
    return checked


_SIZED_METHODS = frozenset({"astype", "dot", "clip"})


def _checked_array_method(array: Any, name: str) -> Callable[..., Any]:
    """``astype``, ``dot`` and ``clip`` of an array with the limits of their np counterparts."""
    method = getattr(array, name)
    if name == "astype":

        def astype(*args: Any, **kwargs: Any) -> Any:
            check_dtype(".astype", args[0] if args else kwargs.get("dtype"))
            return method(*args, **kwargs)

        return astype

    def sized(*args: Any, **kwargs: Any) -> Any:
        _check_elements(name, result_elements(name, (array, *args), kwargs))
        return method(*args, **kwargs)

    return sized


def make_numpy_proxy() -> ModuleProxy:
    members: dict[str, Any] = {}
    for name in NUMPY_ALLOWED:
        function = getattr(np, name)
        wrap = callable(function) and name not in _SCALAR_TYPES
        members[name] = _size_checked(name, function) if wrap else function
    members["linalg"] = ModuleProxy("np.linalg", {n: getattr(np.linalg, n) for n in NUMPY_LINALG_ALLOWED})
    members["newaxis"] = None
    return ModuleProxy("np", members)


def make_math_proxy() -> ModuleProxy:
    members = {name: getattr(math, name) for name in MATH_ALLOWED}
    members["pow"] = math.pow  # float pow: overflows to an error, never a huge integer
    return ModuleProxy("math", members)


# -------------------------------------------------------------------------------------------- the metrics


class MetricsView:
    """Read-only attribute view of one step's metrics plus ``obs``, ``next_obs``, ``action`` arrays."""

    __slots__ = ("_arrays", "_values")

    def __init__(
        self, values: Mapping[str, Any], arrays: Callable[[], Mapping[str, np.ndarray]] | None = None
    ) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_arrays", arrays)  # decodes obs/action/next_obs on first use

    @classmethod
    def build(cls, metrics: Mapping[str, Any], obs: Any, action: Any, next_obs: Any) -> MetricsView:
        """Metrics as floats, the arrays as read-only copies (the program can read but never mutate them)."""
        values: dict[str, Any] = {}
        for name, value in metrics.items():
            values[str(name)] = _metric_value(value)
        values["obs"] = readonly_array(obs)
        values["next_obs"] = readonly_array(next_obs)
        values["action"] = readonly_array(action)
        return cls(values)

    def __getattr__(self, name: str) -> Any:
        values = self._values
        if self._arrays is not None and name in ("obs", "action", "next_obs"):
            values.update(self._arrays())
            object.__setattr__(self, "_arrays", None)
        try:
            return values[name]
        except KeyError:
            available = ", ".join(sorted({*values, "obs", "action", "next_obs"}))
            raise AttributeError(f"metric {name!r} is not available (metrics: {available})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise SandboxViolation("the metrics m are read-only")

    def __delattr__(self, name: str) -> None:
        raise SandboxViolation("the metrics m are read-only")

    def __repr__(self) -> str:
        return f"MetricsView({', '.join(sorted(self._values))})"


def _metric_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    array = np.asarray(value)
    if array.ndim == 0 and array.dtype.kind in "biuf":
        return float(array)
    return readonly_array(array)


def as_float_array(value: Any) -> np.ndarray:
    """An observation or action as a float64 array of at least one dimension (a tuple of parts, as in
    hybrid action spaces, is flattened and concatenated). The same conversion is used inside and outside the
    sandbox, so a program sees identical inputs in both."""
    if isinstance(value, (tuple, list)) and any(np.ndim(part) > 0 for part in value):
        array = np.concatenate([np.asarray(part, dtype=np.float64).ravel() for part in value])
    else:
        array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    return array


def readonly_array(value: Any) -> np.ndarray:
    """A read-only float64 copy of an observation or action (see :func:`as_float_array`)."""
    array = np.array(as_float_array(value), copy=True)
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------------------------------- attribute guard


def guarded_getattr(obj: Any, name: str) -> Any:
    """What ``obj.name`` compiles to inside a reward program."""
    if name.startswith("_"):
        raise SandboxViolation(f"attribute {name!r} is not allowed")
    kind = type(obj)
    if kind is MetricsView:
        try:
            return obj._values[name]
        except KeyError:
            return getattr(obj, name)  # raises the helpful AttributeError
    if kind is ModuleProxy:
        try:
            return obj._members[name]
        except KeyError:
            return getattr(obj, name)  # raises SandboxViolation naming the attribute
    allowed = ATTRIBUTE_ALLOWLIST.get(kind)
    if allowed is None and isinstance(obj, np.generic):
        allowed = ARRAY_ATTRIBUTES
    if allowed is None or name not in allowed:
        raise SandboxViolation(f"attribute {name!r} of {kind.__name__} is not available in reward programs")
    if name in _SIZED_METHODS and isinstance(obj, (np.ndarray, np.generic)):
        return _checked_array_method(obj, name)
    return getattr(obj, name)


def make_globals() -> dict[str, Any]:
    """Fresh module globals for one program."""
    return {
        "__builtins__": make_builtins(),
        "__name__": "reward_program",
        "_getattr_": guarded_getattr,
        "_pow_": bounded_pow,
        "math": make_math_proxy(),
        "np": make_numpy_proxy(),
    }


# -------------------------------------------------------------------------------------------- outputs


def _as_finite_float(value: Any, what: str) -> float:
    if type(value) is float:
        if value - value == 0.0:  # finite (inf - inf and nan - nan are nan)
            return value
        raise RewardOutputError(f"{what} is non-finite ({value})")
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        number = float(value.reshape(()))
    else:
        raise RewardOutputError(f"{what} must be a float, got {type(value).__name__}")
    if not math.isfinite(number):
        raise RewardOutputError(f"{what} is non-finite ({number})")
    return number


def valid_component_name(name: object) -> bool:
    """Component names are shown on terminals, in logs, reports and prompts: printable identifiers only."""
    return is_printable_identifier(name) and len(name) <= MAX_COMPONENT_NAME  # type: ignore[arg-type]


def check_output(result: Any) -> tuple[float, dict[str, float]]:
    """Validate what ``compute_reward`` returned; return ``(total, components)`` as plain floats."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = (
            f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) else f"{len(result)} values"
        )
        raise RewardOutputError(f"compute_reward must return (total, components), got {got}")
    total_value, components_value = result
    total = _as_finite_float(total_value, "the total")
    if not isinstance(components_value, dict):
        raise RewardOutputError(f"components must be a dict, got {type(components_value).__name__}")
    if len(components_value) > MAX_COMPONENTS:
        raise RewardOutputError(
            f"{len(components_value)} components exceed the limit of {MAX_COMPONENTS} named components"
        )
    components: dict[str, float] = {}
    for name, value in components_value.items():
        if not valid_component_name(name):
            raise RewardOutputError(
                f"component names must be identifiers of at most {MAX_COMPONENT_NAME} characters "
                f"(got {escape_control(repr(name)[:80]) if isinstance(name, str) else type(name).__name__})"
            )
        components[name] = _as_finite_float(value, f"component {name!r}")
    return total, components


def program_line(exc: BaseException) -> int | None:
    """The program's line where ``exc`` was raised (innermost frame compiled from the program)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == PROGRAM_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """``(kind, one-line reason)`` for an exception raised by a program."""
    if isinstance(exc, MemoryError):
        return "memory", "memory limit exceeded (MemoryError)"
    if isinstance(exc, RecursionError):
        return "recursion", "recursion too deep (RecursionError)"
    if isinstance(exc, RewardOutputError):
        return "output", str(exc)
    if isinstance(exc, SandboxViolation):
        return "forbidden", f"forbidden: {exc}"
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return "exception", f"{type(exc).__name__}: {message}" if message else type(exc).__name__
