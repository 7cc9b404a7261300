"""Wire format between :class:`~autogai.rewards.sandbox.SandboxedReward` and its worker.

Frames are ``<u32 length><payload>``. Requests (parent → sandbox, trusted) are either a pickle (``load``,
``batch``, ``close``; first byte ``0x80``) or the compact binary form of a single ``call`` (first byte ``C``):
pickling three small numpy arrays costs more than the reward itself. Replies (sandbox → parent, untrusted) are
JSON (first byte ``{``) or, for a successful single call, a binary record (first byte ``R``) of doubles: the
parent only ever runs ``json.loads`` and ``struct.unpack`` on what the sandbox wrote, never ``pickle``.

Binary call: ``C``, ``u8 flags`` (1: metric names follow), ``[u32 n + JSON names]``, ``u16 n_metrics``,
``n_metrics × f64``, then three arrays (obs, action, next_obs), each ``u8 ndim``, ``ndim × u32``, f64 data.
Binary result: ``R``, ``u8 flags`` (1: component names follow), ``[u32 n + JSON names]``, ``f64 total``,
``f64 cpu_seconds``, ``u16 n``, ``n × f64``.

Row call (N transitions, P parameter sets, one frame each way): ``M``, ``u32 n + JSON {"metrics": names,
"params": names}``, then six arrays as above: metrics ``[n_metrics, N]``, params ``[P, n_params]``, the
params row of each transition ``[N]``, obs ``[N, ...]``, action ``[N, ...]``, next_obs ``[N, ...]``.
Row result: ``Q``, ``u32 n + JSON {"components": names, "errors": {row: reason}, "max_cpu_s": s}``, then
totals ``[N]`` and components ``[n_components, N]`` (NaN where a row failed or lacks the component).
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from autogai.core.text import escape_control
from autogai.rewards.restricted import valid_component_name

HEADER = struct.Struct("<I")
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_ROW_COMPONENTS = 128
"""Distinct component names over the rows of one row call (each row returns at most 32)."""

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_RESULT_HEAD = struct.Struct("<ddH")


class ProtocolError(Exception):
    """A frame was malformed or too large."""


class StalledError(Exception):
    """No complete frame arrived before the deadline."""


class ClosedError(Exception):
    """The other side closed the pipe."""


def write_frame(fd: int, payload: bytes, deadline: float | None = None) -> None:
    """Write one frame. With a ``deadline`` the descriptor must be non-blocking: a reader that stops reading
    raises :class:`StalledError` instead of blocking the writer forever."""
    data = memoryview(HEADER.pack(len(payload)) + payload)
    poller = None
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
            remaining = (deadline - time.monotonic()) if deadline is not None else 1.0
            ready = remaining > 0 and poller.poll(remaining * 1000.0)
            if not ready and deadline is not None:
                raise StalledError from None
            continue
        data = data[written:]


class FrameReader:
    """Reads length-prefixed frames from a pipe with a buffer (one ``read`` per frame in the common case)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)

    def read(self, deadline: float | None = None) -> bytes:
        while True:
            if len(self.buffer) >= HEADER.size:
                (size,) = HEADER.unpack_from(self.buffer)
                if size > MAX_FRAME_BYTES:
                    raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
                end = HEADER.size + size
                if len(self.buffer) >= end:
                    frame = bytes(self.buffer[HEADER.size : end])
                    del self.buffer[:end]
                    return frame
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poller.poll(remaining * 1000.0):
                    raise StalledError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise ClosedError
            self.buffer += chunk


# ------------------------------------------------------------------------------------------------- calls


def _pack_array(value: Any) -> bytes:
    array = np.ascontiguousarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    return _U8.pack(array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape) + array.tobytes()


def _unpack_array(data: memoryview, offset: int) -> tuple[np.ndarray, int]:
    (ndim,) = _U8.unpack_from(data, offset)
    offset += 1
    shape = struct.unpack_from(f"<{ndim}I", data, offset)
    offset += 4 * ndim
    count = math.prod(shape)
    array = np.frombuffer(data, dtype=np.float64, count=count, offset=offset).reshape(shape)
    return array, offset + 8 * count  # frombuffer over bytes: already read-only


def encode_call(
    names: Sequence[str], values: Sequence[float], obs: Any, action: Any, next_obs: Any, *, send_names: bool
) -> bytes:
    parts = [b"C", _U8.pack(1 if send_names else 0)]
    if send_names:
        encoded = json.dumps(list(names)).encode()
        parts += [_U32.pack(len(encoded)), encoded]
    parts += [_U16.pack(len(values)), struct.pack(f"<{len(values)}d", *values)]
    parts += [_pack_array(obs), _pack_array(action), _pack_array(next_obs)]
    return b"".join(parts)


def decode_call(
    payload: bytes, last_names: list[str]
) -> tuple[list[str], dict[str, float], Callable[[], dict[str, np.ndarray]]]:
    """Metric names, metric values, and a function decoding the three arrays on demand (many programs
    read metrics only, and decoding costs more than the reward)."""
    data = memoryview(payload)
    offset = 1
    (flags,) = _U8.unpack_from(data, offset)
    offset += 1
    names = last_names
    if flags & 1:
        (size,) = _U32.unpack_from(data, offset)
        offset += 4
        names = json.loads(bytes(data[offset : offset + size]))
        offset += size
    (count,) = _U16.unpack_from(data, offset)
    offset += 2
    values = struct.unpack_from(f"<{count}d", data, offset)
    offset += 8 * count
    start = offset

    def arrays() -> dict[str, np.ndarray]:
        decoded = {}
        position = start
        for name in ("obs", "action", "next_obs"):
            decoded[name], position = _unpack_array(data, position)
        return decoded

    return names, dict(zip(names, values, strict=True)), arrays


def float_metrics(metrics: Mapping[str, Any]) -> tuple[tuple[str, ...], list[float]] | None:
    """Names and float values, or None when some metric is not a scalar (then the pickle path is used)."""
    names = tuple(str(name) for name in metrics)
    try:
        values = [float(value) for value in metrics.values()]
    except (TypeError, ValueError):
        return None
    return names, values


def _pack_json(value: Any) -> bytes:
    encoded = json.dumps(value).encode()
    return _U32.pack(len(encoded)) + encoded


def _unpack_json(data: memoryview, offset: int) -> tuple[Any, int]:
    (size,) = _U32.unpack_from(data, offset)
    offset += 4
    if offset + size > len(data):
        raise ValueError("a JSON block runs past the frame")
    return json.loads(bytes(data[offset : offset + size])), offset + size


def encode_rows(
    metric_names: Sequence[str],
    metrics: np.ndarray,
    param_names: Sequence[str],
    params: np.ndarray,
    param_index: np.ndarray,
    obs: np.ndarray,
    action: np.ndarray,
    next_obs: np.ndarray,
) -> bytes:
    """One frame carrying N transitions and the P parameter sets they use (see the module docstring)."""
    header = _pack_json({"metrics": list(metric_names), "params": list(param_names)})
    arrays = (metrics, params, param_index, obs, action, next_obs)
    return b"".join([b"M", header, *(_pack_array(array) for array in arrays)])


RowCall = tuple[list[str], np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""metric names, metrics [n_metrics, N], param names, params [P, n_params], param_index [N], obs, action,
next_obs (all float64, read-only)."""


def decode_rows(payload: bytes) -> RowCall:
    data = memoryview(payload)
    header, offset = _unpack_json(data, 1)
    arrays = []
    for _ in range(6):
        array, offset = _unpack_array(data, offset)
        arrays.append(array)
    metrics, params, param_index, obs, action, next_obs = arrays
    return header["metrics"], metrics, header["params"], params, param_index, obs, action, next_obs


def encode_row_results(
    totals: np.ndarray,
    component_names: Sequence[str],
    components: np.ndarray,
    errors: Mapping[int, str],
    max_cpu_s: float,
) -> bytes:
    header = {
        "components": list(component_names),
        "errors": {str(row): reason for row, reason in errors.items()},
        "max_cpu_s": max_cpu_s,
    }
    return b"".join([b"Q", _pack_json(header), _pack_array(totals), _pack_array(components)])


def decode_row_results(
    payload: bytes, rows: int, max_components: int, max_reason_chars: int = 500
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[int, str], float]:
    """Parse a row result from the (untrusted) sandbox: ``(totals, components, errors, max_cpu_s)``.

    Raises :class:`ProtocolError` on anything odd: wrong sizes, foreign types, a row that is neither
    finite nor reported as failed, trailing bytes.
    """
    try:
        data = memoryview(payload)
        header, offset = _unpack_json(data, 1)
        totals, offset = _unpack_array(data, offset)
        matrix, offset = _unpack_array(data, offset)
        if offset != len(data):
            raise ProtocolError("trailing bytes in a row result")
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed row result ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError("the row result header is not an object")
    names, raw_errors, cpu = header.get("components"), header.get("errors"), header.get("max_cpu_s")
    if not isinstance(names, list) or not all(valid_component_name(name) for name in names):
        raise ProtocolError("component names are not a list of identifiers")
    if len(names) > max_components or len(set(names)) != len(names):
        raise ProtocolError("too many or repeated component names")
    if not isinstance(raw_errors, dict) or not isinstance(cpu, (int, float)) or isinstance(cpu, bool):
        raise ProtocolError("malformed errors or CPU time in a row result")
    if totals.shape != (rows,) or matrix.shape != (len(names), rows):
        raise ProtocolError("row result arrays have the wrong shape")
    errors: dict[int, str] = {}
    for key, reason in raw_errors.items():
        if not isinstance(key, str) or not key.isdigit() or not isinstance(reason, str) or int(key) >= rows:
            raise ProtocolError("malformed row error")
        errors[int(key)] = escape_control(reason[:max_reason_chars])
    totals, matrix = totals.copy(), matrix.copy()  # writable, and no longer views of the frame
    if errors:
        failed = np.zeros(rows, dtype=bool)
        failed[list(errors)] = True
        if not np.isfinite(totals[~failed]).all():
            raise ProtocolError("a row without an error has a non-finite total")
        totals[failed] = np.nan
        matrix[:, failed] = np.nan
    elif not np.isfinite(totals).all():
        raise ProtocolError("a row without an error has a non-finite total")
    if np.isinf(matrix).any():
        raise ProtocolError("an infinite component value")
    return totals, {name: matrix[i] for i, name in enumerate(names)}, errors, float(cpu)


# ----------------------------------------------------------------------------------------------- results


def encode_result(
    total: float, components: Mapping[str, float], cpu_s: float, last_names: list[str]
) -> bytes:
    names = list(components)
    send = names != last_names
    parts = [b"R", _U8.pack(1 if send else 0)]
    if send:
        encoded = json.dumps(names).encode()
        parts += [_U32.pack(len(encoded)), encoded]
    parts += [
        _RESULT_HEAD.pack(total, cpu_s, len(names)),
        struct.pack(f"<{len(names)}d", *components.values()),
    ]
    return b"".join(parts)


def decode_result(
    payload: bytes, last_names: list[str], max_components: int
) -> tuple[float, dict[str, float], list[str]]:
    """Parse a binary result from the (untrusted) sandbox; raises ProtocolError on anything odd."""
    try:
        data = memoryview(payload)
        offset = 1
        (flags,) = _U8.unpack_from(data, offset)
        offset += 1
        names = last_names
        if flags & 1:
            (size,) = _U32.unpack_from(data, offset)
            offset += 4
            names = json.loads(bytes(data[offset : offset + size]))
            offset += size
            if not isinstance(names, list) or not all(valid_component_name(n) for n in names):
                raise ProtocolError("component names are not a list of identifiers")
        total, _cpu, count = _RESULT_HEAD.unpack_from(data, offset)
        offset += _RESULT_HEAD.size
        if count != len(names) or count > max_components or len(set(names)) != count:
            raise ProtocolError("component count does not match the names")
        values = struct.unpack_from(f"<{count}d", data, offset)
        if offset + 8 * count != len(data):
            raise ProtocolError("trailing bytes in a result")
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed result ({exc})") from None
    return total, dict(zip(names, values, strict=True)), names
