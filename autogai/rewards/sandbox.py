"""Run a reward program in a separate, resource-limited process and talk to it over a pipe.

:class:`SandboxedReward` starts ``python -B -s -m autogai.rewards.sandbox_worker`` (no torch, no gymnasium:
numpy and the restricted runtime only), which locks itself down before it sees the program (see
:mod:`autogai.rewards.sandbox_worker`). Each :meth:`~SandboxedReward.compute` is one round trip of
length-prefixed frames (:mod:`autogai.rewards.protocol`): to the worker, a compact binary record of float
metrics and three small arrays (a pickle only where a metric is not a plain number, and for the trusted
parent's ``load``, ``batch`` and ``close`` requests); back, a binary record of doubles, or a small JSON reply
for an error. :meth:`~SandboxedReward.compute_rows` sends many transitions in one binary frame each way.
The parent reads what the sandbox wrote with ``struct.unpack`` and ``json.loads`` only, never ``pickle``
(tests/test_architecture.py checks it). A call that raises, returns the wrong type or a non-finite value,
exceeds memory, or does not answer within ``call_timeout_s`` raises :class:`RewardRuntimeError` with the
reason; on a stall the worker is killed. The worker never outlives its owner: it is killed on :meth:`close`,
when the object is garbage collected, at interpreter exit, and (from the worker's side) when the parent
process dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

import autogai
from autogai.core.errors import RewardRejectedError, RewardRuntimeError
from autogai.rewards import protocol
from autogai.rewards.program import RewardProgram
from autogai.rewards.restricted import MAX_COMPONENTS, valid_component_name

if TYPE_CHECKING:
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

DEFAULT_CALL_CPU_LIMIT_S = 0.25
"""CPU budget of one reward call unless the caller sets one: training calls a program millions of times, so a
call that computes for long is a broken program (validation accepts at most 0.05 s)."""

Transition = tuple[Mapping[str, Any], Any, Any, Any]
"""(metrics, obs, action, next_obs) of one step, as :meth:`SandboxedReward.compute_batch` takes them."""


@dataclass(frozen=True)
class RowRewards:
    """Rewards of N transitions computed in one sandbox round trip (:meth:`SandboxedReward.compute_rows`).

    Attributes:
        totals: float64 ``[N]``; NaN for the rows in ``errors``.
        components: component name -> float64 ``[N]``; NaN where a row failed or did not return it.
        errors: row -> one-line reason, for rows whose call raised or returned malformed or non-finite output.
    """

    totals: np.ndarray
    components: dict[str, np.ndarray]
    errors: dict[int, str]


def _kill(process: subprocess.Popen[bytes], fds: list[int]) -> None:
    """Kill the worker and reap it (safe to call more than once; used by finalizers too)."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.kill()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not get ignored
        logger.warning("sandbox worker %d did not exit after SIGKILL", process.pid)
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


class SandboxedReward:
    """A reward program evaluated in a separate, resource-limited process.

    Arguments:
        program: a :class:`RewardProgram` or its source (statically checked here).
        task: the task card: its judge-only metrics are dropped from every call's metrics, never sent to
            the worker (metrics come from the caller).
        params: values for the program's ``PARAMS`` (defaults for missing ones).
        call_timeout_s: wall-clock limit of one :meth:`compute` round trip; the worker is killed beyond it.
        call_cpu_limit_s: CPU-time budget of one program call, enforced inside the worker while the call
            runs (None: no budget, the wall-clock limit alone).
        memory_limit_mb: address space the worker may add after start-up (``RLIMIT_AS``).
        cpu_limit_s: total CPU seconds of the worker (``RLIMIT_CPU``; None: unlimited, e.g. long training).
        start_timeout_s: wall-clock limit for the worker to start (import numpy, lock itself down).
        load_timeout_s: wall-clock limit for loading the program, module-level code included (default:
            ``max(call_timeout_s, 5)``).
        row_timeout_s: wall-clock allowance per transition added to ``call_timeout_s`` for the batched calls
            (:meth:`compute_batch`, :meth:`compute_rows`).
        skip_layers: confinement layers to leave off (names from
            :data:`autogai.rewards.confinement.LAYERS`): for tests and benchmarks that measure one layer.
    """

    def __init__(
        self,
        program: RewardProgram | str,
        task: TaskCard | None = None,
        params: Mapping[str, float] | None = None,
        *,
        call_timeout_s: float = 5.0,
        call_cpu_limit_s: float | None = DEFAULT_CALL_CPU_LIMIT_S,
        memory_limit_mb: int = 256,
        cpu_limit_s: float | None = None,
        start_timeout_s: float = 30.0,
        load_timeout_s: float | None = None,
        row_timeout_s: float = 0.05,
        skip_layers: Sequence[str] = (),
    ) -> None:
        self.program = program if isinstance(program, RewardProgram) else RewardProgram.from_source(program)
        self.task = task
        self._judges = frozenset(task.judge_metrics or ()) if task is not None else frozenset()
        self.params = self.program.resolve_params(params)
        self.call_timeout_s = float(call_timeout_s)
        self.call_cpu_limit_s = call_cpu_limit_s
        self.memory_limit_mb = int(memory_limit_mb)
        self.cpu_limit_s = cpu_limit_s
        self.row_timeout_s = float(row_timeout_s)
        self.skip_layers = tuple(skip_layers)
        self.unavailable: dict[str, str] = {}
        """Confinement layers the worker could not apply, with the reason (see :mod:`.confinement`)."""
        self.isolation: list[str] = []
        """Limits and isolation measures the worker reported as applied."""
        self.calls = 0
        self.max_call_cpu_s = 0.0
        """Largest CPU time of one program call seen in a batch (validation reports it)."""
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._fds: list[int] = []
        self._process = self._start(start_timeout_s)
        loading = time.monotonic()
        self._load(load_timeout_s if load_timeout_s is not None else max(self.call_timeout_s, 5.0))
        self.load_seconds = time.monotonic() - loading
        """Wall-clock time loading the program took (module-level code included)."""

    # --- lifecycle --------------------------------------------------------------------------------------

    def _start(self, timeout_s: float) -> subprocess.Popen[bytes]:
        to_worker_read, to_worker_write = os.pipe()
        from_worker_read, from_worker_write = os.pipe()
        config = {
            "read_fd": to_worker_read,
            "write_fd": from_worker_write,
            "parent_pid": os.getpid(),
            "memory_limit_mb": self.memory_limit_mb,
            "cpu_limit_s": self.cpu_limit_s,
            # PDEATHSIG fires when the creating *thread* exits: only arm it from the main thread.
            "pdeathsig": threading.current_thread() is threading.main_thread(),
            "skip_layers": list(self.skip_layers),
        }
        # A fresh environment: nothing of the caller's (keys, proxies) reaches the sandbox. PYTHONPATH names
        # only the directory autogai is imported from, so source checkouts work as well as installs.
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(autogai.__file__)))
        env = {
            "PYTHONPATH": package_root,
            "PYTHONNOUSERSITE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }
        if os.environ.get("AUTOGAI_SANDBOX_DEBUG"):
            stderr: int | None = None
        else:
            stderr = subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                [sys.executable, "-B", "-s", "-m", "autogai.rewards.sandbox_worker", json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(to_worker_read, from_worker_write),
                cwd=os.path.abspath(os.sep),
                env=env,
                close_fds=True,
                start_new_session=False,
            )
        finally:
            os.close(to_worker_read)
            os.close(from_worker_write)
        os.set_blocking(to_worker_write, False)  # writes honour the call deadline too
        self._write_fd = to_worker_write
        self._read_fd = from_worker_read
        self._fds = [to_worker_write, from_worker_read]
        self._reader = protocol.FrameReader(from_worker_read)
        self._sent_metric_names: tuple[str, ...] | None = None
        self._component_names: list[str] = []
        self._finalizer = weakref.finalize(self, _kill, process, self._fds)
        self._process = process
        try:
            frame = self._reader.read(time.monotonic() + timeout_s)
            reply = json.loads(frame)
        except protocol.StalledError:
            self._shutdown()
            raise RewardRuntimeError(f"the sandbox worker did not start within {timeout_s:g} s") from None
        except (protocol.ClosedError, protocol.ProtocolError, ValueError, OSError):
            code = self._shutdown()
            raise RewardRuntimeError(f"the sandbox worker failed to start (exit code {code})") from None
        isolation = reply.get("isolation", []) if isinstance(reply, dict) else []
        self.isolation = [str(x) for x in isolation] if isinstance(isolation, list) else []
        unavailable = reply.get("unavailable", {}) if isinstance(reply, dict) else {}
        if isinstance(unavailable, dict):
            self.unavailable = {str(k): str(v)[:300] for k, v in unavailable.items()}
        _report_layers_once(self.isolation, self.unavailable)
        return process

    def _load(self, timeout_s: float) -> None:
        reply = self._request(
            {
                "op": "load",
                "source": self.program.source,
                "params": self.params,
                "call_cpu_limit_s": self.call_cpu_limit_s,
            },
            timeout_s,
            what="loading the program",
        )
        if not reply.get("ok"):
            if reply.get("kind") == "rejected":
                self.close()
                raise RewardRejectedError(
                    str(reply.get("reason")), stage=str(reply.get("stage")), line=_line(reply)
                )
            self._fail(_reason(reply))

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._failure is None and self._process.poll() is None

    def _shutdown(self) -> int | None:
        self._finalizer()
        return self._process.returncode

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        if self._failure is None:
            self._failure = "the sandbox was closed"
        if hasattr(self, "_finalizer"):
            self._finalizer()

    def __enter__(self) -> SandboxedReward:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fail(self, reason: str) -> NoReturn:
        """Record ``reason``, kill the worker and raise."""
        self._failure = reason
        self._shutdown()
        raise RewardRuntimeError(reason)

    # --- protocol ---------------------------------------------------------------------------------------

    def _exchange(self, payload: bytes, timeout_s: float, *, what: str) -> bytes:
        """Send one frame, wait for the answer; on a stall kill the worker, on death report how it died."""
        if self._failure is not None:
            raise RewardRuntimeError(f"the reward sandbox is not running ({self._failure})")
        deadline = time.monotonic() + timeout_s
        try:
            protocol.write_frame(self._write_fd, payload, deadline)
            return self._reader.read(deadline)
        except protocol.StalledError:
            self._fail(f"timed out: no answer after {timeout_s:g} s while {what} (stall or infinite loop)")
        except (protocol.ClosedError, OSError):
            code = self._shutdown()
            self._failure = _death_reason(code, what)
            raise RewardRuntimeError(self._failure) from None
        except protocol.ProtocolError as exc:
            self._fail(f"the sandbox broke the protocol while {what}: {exc}")

    def _json_reply(self, frame: bytes, what: str) -> dict[str, Any]:
        try:
            reply = json.loads(frame)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._fail(f"the sandbox sent a malformed reply while {what}")
        return reply

    def _request(self, message: dict[str, Any], timeout_s: float, *, what: str) -> dict[str, Any]:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        return self._json_reply(self._exchange(payload, timeout_s, what=what), what)

    # --- evaluation -------------------------------------------------------------------------------------

    def _visible(self, metrics: Mapping[str, Any]) -> Mapping[str, Any]:
        """``metrics`` without the task's judge-only ones (they never reach the sandbox)."""
        if not self._judges or self._judges.isdisjoint(metrics):
            return metrics
        return {name: value for name, value in metrics.items() if name not in self._judges}

    def compute(
        self, metrics: Mapping[str, Any], obs: Any, action: Any, next_obs: Any
    ) -> tuple[float, dict[str, float]]:
        """Evaluate the program on one transition: ``(total, components)``; raises RewardRuntimeError."""
        what = "computing a reward"
        metrics = self._visible(metrics)
        floats = protocol.float_metrics(metrics)
        with self._lock:
            if floats is None:
                item = (_plain_metrics(metrics), obs, action, next_obs)
                payload = pickle.dumps({"op": "call", "item": item}, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                names, values = floats
                send_names = names != self._sent_metric_names
                payload = protocol.encode_call(names, values, obs, action, next_obs, send_names=send_names)
                self._sent_metric_names = names
            frame = self._exchange(payload, self.call_timeout_s, what=what)
            self.calls += 1
            if frame[:1] == b"R":
                try:
                    total, components, self._component_names = protocol.decode_result(
                        frame, self._component_names, MAX_COMPONENTS
                    )
                except protocol.ProtocolError as exc:
                    self._fail(f"the sandbox broke the protocol while {what}: {exc}")
                return _parse_result(total, components)
            reply = self._json_reply(frame, what)
        if not reply.get("ok"):
            raise RewardRuntimeError(_reason(reply))
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], list):
            self._fail("the sandbox answered with a malformed reply")
        return _parse_result(*results[0][:2])

    def compute_batch(
        self, transitions: Sequence[Transition], *, timeout_s: float | None = None
    ) -> list[tuple[float, dict[str, float]]]:
        """Evaluate many transitions in one round trip (validation, vectorised envs).

        The default timeout is ``call_timeout_s`` plus ``row_timeout_s`` per transition.
        """
        items = [(_plain_metrics(self._visible(m)), o, a, n) for m, o, a, n in transitions]
        if not items:
            return []
        limit = timeout_s if timeout_s is not None else self.call_timeout_s + self.row_timeout_s * len(items)
        with self._lock:
            reply = self._request({"op": "batch", "items": items}, limit, what="computing rewards")
            self.calls += len(items)
        if not reply.get("ok"):
            index = reply.get("index")
            reason = _reason(reply)
            if isinstance(index, int):
                raise RewardRuntimeError(f"{reason} [transition {index}]")
            raise RewardRuntimeError(reason)
        cpu = reply.get("max_cpu_s")
        if isinstance(cpu, (int, float)) and math.isfinite(cpu):
            self.max_call_cpu_s = max(self.max_call_cpu_s, float(cpu))
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(items):
            self._fail("the sandbox answered with a malformed batch")
        parsed = []
        for entry in results:
            if not isinstance(entry, list) or len(entry) != 2:
                self._fail("the sandbox answered with a malformed batch")
            parsed.append(_parse_result(entry[0], entry[1]))
        return parsed

    def compute_rows(
        self,
        metrics: Mapping[str, np.ndarray],
        obs: np.ndarray,
        action: np.ndarray,
        next_obs: np.ndarray,
        params: Sequence[Mapping[str, float]],
        param_index: np.ndarray,
    ) -> RowRewards:
        """Evaluate N transitions, each with its own ``PARAMS`` values, in one round trip.

        Arguments:
            metrics: metric name -> float array ``[N]`` (booleans as 0/1).
            obs, next_obs: ``[N, obs_dim]``; action: ``[N, action_dim]`` (the flat executed action).
            params: P sets of ``PARAMS`` values (missing names take their defaults; unknown names are an error).
            param_index: ``[N]`` integers in ``[0, P)``: the params set each transition uses.

        A row whose call raises or returns malformed output is reported in :attr:`RowRewards.errors` (its
        total is NaN); the worker dying, running out of memory or CPU budget, stalling beyond
        ``call_timeout_s + row_timeout_s * N`` or breaking the protocol raises :class:`RewardRuntimeError`.
        """
        what = "computing rewards"
        index = np.asarray(param_index)
        if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
            raise ValueError(
                f"param_index must be a 1-D integer array, got shape {index.shape} {index.dtype}"
            )
        rows = index.shape[0]
        if index.size and (index.min() < 0 or index.max() >= len(params)):
            raise ValueError(f"param_index must lie in [0, {len(params)})")
        resolved = [self.program.resolve_params(values) for values in params]
        param_names = list(self.program.params)
        param_matrix = np.array(
            [[values[name] for name in param_names] for values in resolved], dtype=np.float64
        )
        param_matrix = param_matrix.reshape(len(resolved), len(param_names))
        metric_names = [str(name) for name in metrics if name not in self._judges]
        metric_matrix = np.zeros((len(metric_names), rows))
        for row, name in enumerate(metric_names):
            column = np.asarray(metrics[name], dtype=np.float64)
            if column.shape != (rows,):
                raise ValueError(f"metric {name!r} has shape {column.shape}, expected ({rows},)")
            metric_matrix[row] = column
        arrays = []
        for label, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
            array = np.asarray(value, dtype=np.float64)
            if array.ndim < 1 or array.shape[0] != rows:
                raise ValueError(f"{label} must have {rows} rows, got shape {array.shape}")
            arrays.append(array.reshape(rows, -1) if array.ndim == 1 else array)
        if rows == 0:
            return RowRewards(np.zeros(0), {}, {})
        payload = protocol.encode_rows(
            metric_names, metric_matrix, param_names, param_matrix, index.astype(np.float64), *arrays
        )
        if len(payload) > protocol.MAX_FRAME_BYTES:
            raise ValueError(f"{rows} rows make a {len(payload)}-byte frame; split them into smaller calls")
        with self._lock:
            frame = self._exchange(payload, self.call_timeout_s + self.row_timeout_s * rows, what=what)
            self.calls += rows
            if frame[:1] == b"Q":
                try:
                    totals, components, errors, cpu = protocol.decode_row_results(
                        frame, rows, protocol.MAX_ROW_COMPONENTS
                    )
                except protocol.ProtocolError as exc:
                    self._fail(f"the sandbox broke the protocol while {what}: {exc}")
                if math.isfinite(cpu):
                    self.max_call_cpu_s = max(self.max_call_cpu_s, cpu)
                return RowRewards(totals, components, errors)
            reply = self._json_reply(frame, what)
        if reply.get("ok"):
            self._fail(f"the sandbox broke the protocol while {what}: unexpected reply")
        index_reported = reply.get("index")
        reason = _reason(reply)
        if isinstance(index_reported, int):
            raise RewardRuntimeError(f"{reason} [row {index_reported}]")
        raise RewardRuntimeError(reason)


_layers_reported = False


def _report_layers_once(applied: Sequence[str], unavailable: Mapping[str, str]) -> None:
    """Log, once per process, which confinement layers the sandbox has and which this machine lacks."""
    global _layers_reported
    if _layers_reported:
        return
    _layers_reported = True
    logger.info("reward sandbox confinement: %s", ", ".join(applied))
    missing = {layer: reason for layer, reason in unavailable.items() if reason != "turned off by the caller"}
    if missing:
        details = "; ".join(f"{layer} ({reason})" for layer, reason in missing.items())
        logger.warning(
            "reward sandbox: not available on this machine, the other layers still hold: %s", details
        )


def _plain_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as plain floats where possible (small pickles, no foreign classes sent to the worker)."""
    plain: dict[str, Any] = {}
    for name, value in metrics.items():
        try:
            plain[str(name)] = float(value)
        except (TypeError, ValueError):
            import numpy as np

            plain[str(name)] = np.asarray(value, dtype=np.float64)
    return plain


def _line(reply: Mapping[str, Any]) -> int | None:
    line = reply.get("line")
    return line if isinstance(line, int) else None


def _reason(reply: Mapping[str, Any]) -> str:
    reason = str(reply.get("reason") or "unknown error")[:500]
    line = _line(reply)
    return f"{reason} (line {line})" if line is not None else reason


def _death_reason(code: int | None, what: str) -> str:
    if code is not None and code < 0:
        number = -code
        if number == signal.SIGXCPU:
            detail = "CPU time limit exceeded"
        elif number == signal.SIGKILL:
            detail = "killed (CPU hard limit or out of memory)"
        else:
            try:
                detail = f"killed by {signal.Signals(number).name}"
            except ValueError:
                detail = f"killed by signal {number}"
        return f"the sandbox worker died while {what}: {detail}"
    return f"the sandbox worker died while {what} (exit code {code})"


def _parse_result(total: Any, components: Any) -> tuple[float, dict[str, float]]:
    """Never trust the worker: check the reply's shape and finiteness again on this side."""
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total):
        raise RewardRuntimeError(f"the reward total is not a finite float ({total!r})")
    if not isinstance(components, dict) or len(components) > MAX_COMPONENTS:
        raise RewardRuntimeError("the reward components are not a dict of at most 32 entries")
    checked: dict[str, float] = {}
    for name, value in components.items():
        if not valid_component_name(name):
            raise RewardRuntimeError("a reward component name is not an identifier of at most 64 characters")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RewardRuntimeError(f"reward component {name!r} is not a finite float")
        checked[name] = float(value)
    return float(total), checked
