"""The sandbox process: ``python -B -s -m autogai.rewards.sandbox_worker CONFIG_JSON``.

Started by :class:`autogai.rewards.sandbox.SandboxedReward`. It imports numpy and the restricted runtime,
warms up every allow-listed numpy function (so nothing needs to be imported later), then locks itself down
*before* it sees any program:

- ``RLIMIT_FSIZE = 0`` (no byte can be written to any file; ``SIGXFSZ`` ignored so writes fail instead),
  ``RLIMIT_CORE = 0``, ``RLIMIT_NOFILE`` at the descriptors already open (no file or socket can be opened),
  ``RLIMIT_AS`` at the current address space plus ``memory_limit_mb``, ``RLIMIT_CPU`` when asked,
  ``RLIMIT_NPROC = 0`` (no fork; root ignores it);
- best effort, never fatal: ``PR_SET_NO_NEW_PRIVS``, a fresh network namespace (``unshare(CLONE_NEWNET)``,
  root only), ``PR_SET_PDEATHSIG = SIGKILL`` when the parent asks for it;
- a watchdog thread that exits as soon as the parent process is gone.

It then serves requests on a pipe in the format of :mod:`autogai.rewards.protocol` (the parent never
unpickles anything the sandbox produced).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any


def _best_effort_isolation(parent_pid: int, pdeathsig: bool) -> list[str]:
    applied: list[str] = []
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(38, 1, 0, 0, 0) == 0:  # PR_SET_NO_NEW_PRIVS
            applied.append("no_new_privs")
        if pdeathsig and libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
            applied.append("pdeathsig")
        if os.geteuid() == 0 and libc.unshare(0x40000000) == 0:  # CLONE_NEWNET
            applied.append("netns")
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before PDEATHSIG was armed
        os._exit(3)
    return applied


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(0.25)


def _warm_up(np_proxy: object) -> None:
    """Call every allow-listed numpy function once so its lazy imports happen before files are locked."""
    import numpy as np

    from autogai.rewards import restricted

    vector = np.linspace(0.1, 0.9, 3)
    with np.errstate(all="ignore"):
        for name in restricted.NUMPY_ALLOWED:
            function = getattr(np_proxy, name)
            if not callable(function):
                continue
            for args in ((vector,), (vector, vector), (vector, 0.2, 0.8), ((3,),), (3,)):
                try:
                    function(*args)
                except Exception:
                    continue
        np.linalg.norm(vector)
        np.linalg.norm(vector, ord=1)
        np.array([1.0, 2.0]).sum()
        float(np.float64(1.0))


def _limit(which: int, value: int) -> bool:
    import resource

    try:
        _, hard = resource.getrlimit(which)
        new_hard = value if hard == resource.RLIM_INFINITY or value < hard else hard
        resource.setrlimit(which, (min(value, new_hard), new_hard))
        return True
    except (ValueError, OSError):
        return False


def _compact_descriptors(read_fd: int, write_fd: int) -> tuple[int, int]:
    """Move the pipe ends to descriptors 3 and 4 and close every other descriptor above 2."""
    import fcntl

    high_read = fcntl.fcntl(read_fd, fcntl.F_DUPFD, 1000)
    high_write = fcntl.fcntl(write_fd, fcntl.F_DUPFD, 1000)
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: close a generous range instead
        open_fds = list(range(3, 1024))
    for fd in open_fds:
        if fd > 2 and fd not in (high_read, high_write):
            with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone already
                os.close(fd)
    os.dup2(high_read, 3)
    os.dup2(high_write, 4)
    os.close(high_read)
    os.close(high_write)
    return 3, 4


def _lock_down(config: dict) -> list[str]:
    import resource

    applied: list[str] = []
    memory = int(config["memory_limit_mb"]) * 1024 * 1024
    try:
        with open("/proc/self/statm", "rb") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc: cap the data segment instead of the address space
        if _limit(resource.RLIMIT_DATA, memory + 512 * 1024 * 1024):
            applied.append("data")
    else:
        if _limit(resource.RLIMIT_AS, current + memory):
            applied.append("as")
    # Descriptors 0-4 are in use (stdin/stdout/stderr, the two pipe ends): nothing else can be opened.
    if _limit(resource.RLIMIT_NOFILE, 5):
        applied.append("nofile")
    cpu = config.get("cpu_limit_s")
    if cpu:
        seconds = max(1, int(cpu + 0.999))
        try:
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            applied.append("cpu")
        except (ValueError, OSError):
            pass
    if hasattr(resource, "RLIMIT_NPROC") and _limit(resource.RLIMIT_NPROC, 0):
        applied.append("nproc")
    return applied


class _Worker:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        from autogai.rewards.protocol import FrameReader

        self.reader = FrameReader(read_fd)
        self.write_fd = write_fd
        self.function: Any = None
        self.params: Any = None
        self.call_cpu_limit_s: float | None = None
        self.metric_names: list[str] = []
        self.component_names: list[str] = []

    def reply(self, message: dict) -> None:
        import json

        from autogai.rewards.protocol import MAX_FRAME_BYTES, write_frame

        try:
            data = json.dumps(message, allow_nan=True).encode()
        except (TypeError, ValueError):
            data = json.dumps(
                {"ok": False, "kind": "output", "reason": "reply could not be encoded"}
            ).encode()
        if len(data) > MAX_FRAME_BYTES:
            data = json.dumps({"ok": False, "kind": "output", "reason": "reply too large"}).encode()
        write_frame(self.write_fd, data)

    def serve(self) -> None:
        import pickle

        from autogai.rewards.protocol import ClosedError, decode_call, encode_result, write_frame

        while True:
            try:
                frame = self.reader.read()
            except ClosedError:
                return
            if frame[:1] == b"C":
                names, metrics, arrays = decode_call(frame, self.metric_names)
                self.metric_names = names
                outcome = self.call_many([(metrics, arrays, None, None)], lazy_arrays=True)
                if outcome.get("ok"):
                    total, components = outcome["results"][0]
                    payload = encode_result(total, components, outcome["max_cpu_s"], self.component_names)
                    self.component_names = list(components)
                    write_frame(self.write_fd, payload)
                else:
                    self.reply(outcome)
                continue
            if frame[:1] == b"M":
                outcome = self.call_rows(frame)
                if isinstance(outcome, bytes):
                    write_frame(self.write_fd, outcome)
                else:
                    self.reply(outcome)
                continue
            request = pickle.loads(frame)
            op = request.get("op")
            if op == "load":
                self.reply(self.load(request))
            elif op == "call":
                self.reply(self.call_many([request["item"]]))
            elif op == "batch":
                self.reply(self.call_many(request["items"]))
            elif op == "close":
                return
            else:
                self.reply({"ok": False, "kind": "protocol", "reason": f"unknown op {op!r}"})

    def load(self, request: dict) -> dict:
        import types

        from autogai.core.errors import RewardRejectedError
        from autogai.rewards import restricted
        from autogai.rewards.program import RewardProgram

        try:
            program = RewardProgram.from_source(request["source"])
            namespace = restricted.make_globals()
            exec(program.compile(), namespace)
            self.function = namespace["compute_reward"]
            self.params = types.MappingProxyType(dict(request.get("params") or {}))
            self.call_cpu_limit_s = request.get("call_cpu_limit_s")
        except RewardRejectedError as exc:
            return {
                "ok": False,
                "kind": "rejected",
                "stage": exc.stage,
                "reason": exc.reason,
                "line": exc.line,
            }
        except Exception as exc:
            kind, reason = restricted.describe_exception(exc)
            line = restricted.program_line(exc)
            return {"ok": False, "kind": kind, "reason": f"while loading: {reason}", "line": line}
        return {"ok": True}

    def run_one(self, view: Any, params: Any) -> tuple[float, dict[str, float], float]:
        """One program call: ``(total, components, cpu_seconds)``; raises what the program raised,
        :class:`_TooSlow` beyond the per-call CPU budget."""
        from autogai.rewards import restricted

        started = time.thread_time()
        raw = self.function(view, params)
        elapsed = time.thread_time() - started
        total, components = restricted.check_output(raw)
        limit = self.call_cpu_limit_s
        if limit is not None and elapsed > limit:
            raise _TooSlow(f"a call took {elapsed:.3f} s of CPU (budget {limit:.3f} s per call)")
        return total, components, elapsed

    def call_many(self, items: list, *, lazy_arrays: bool = False) -> dict:
        """Evaluate transitions with the loaded params; the first failure ends the request."""
        from autogai.rewards import restricted

        if self.function is None:
            return {"ok": False, "kind": "protocol", "reason": "no program loaded"}
        results = []
        max_cpu = 0.0
        for index, (metrics, obs, action, next_obs) in enumerate(items):
            try:
                if lazy_arrays:  # ``obs`` is the frame's decoder: float64 read-only views, made on first use
                    view = restricted.MetricsView(metrics, obs)
                else:
                    view = restricted.MetricsView.build(metrics, obs, action, next_obs)
                total, components, elapsed = self.run_one(view, self.params)
            except Exception as exc:
                return {**_failure(exc), "index": index}
            max_cpu = max(max_cpu, elapsed)
            results.append([total, components])
        return {"ok": True, "results": results, "max_cpu_s": max_cpu}

    def call_rows(self, frame: bytes) -> bytes | dict:
        """Evaluate N transitions, each with its own params row, in one request.

        A row whose call raises or returns malformed output is reported by row and the others go on; running
        out of memory or CPU budget ends the whole request (the program, not one row, is at fault).
        """
        import types

        import numpy as np

        from autogai.rewards import protocol, restricted

        if self.function is None:
            return {"ok": False, "kind": "protocol", "reason": "no program loaded"}
        try:
            metric_names, metrics, param_names, params, param_index, obs, action, next_obs = (
                protocol.decode_rows(frame)
            )
            rows = int(param_index.shape[0])
            param_sets = [
                types.MappingProxyType(dict(zip(param_names, row, strict=True))) for row in params.tolist()
            ]
            choice = [param_sets[int(i)] for i in param_index.tolist()]
            metric_rows = metrics.T.tolist()
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return {"ok": False, "kind": "protocol", "reason": f"malformed row request ({exc})"}
        totals = np.full(rows, np.nan)
        returned: list[dict[str, float]] = []
        errors: dict[int, str] = {}
        max_cpu = 0.0
        for row in range(rows):
            values: dict[str, Any] = dict(zip(metric_names, metric_rows[row], strict=True))
            values.update(obs=obs[row], action=action[row], next_obs=next_obs[row])
            try:
                total, components, elapsed = self.run_one(restricted.MetricsView(values), choice[row])
            except (MemoryError, _TooSlow) as exc:
                return {**_failure(exc), "index": row}
            except Exception as exc:
                failure = _failure(exc)
                line = failure["line"]
                errors[row] = f"{failure['reason']} (line {line})" if line is not None else failure["reason"]
                returned.append({})
                continue
            max_cpu = max(max_cpu, elapsed)
            totals[row] = total
            returned.append(components)
        names = list(dict.fromkeys(name for components in returned for name in components))
        if len(names) > protocol.MAX_ROW_COMPONENTS:
            reason = (
                f"the rows returned {len(names)} distinct components (at most {protocol.MAX_ROW_COMPONENTS})"
            )
            return {"ok": False, "kind": "output", "reason": reason, "line": None}
        matrix = np.full((len(names), rows), np.nan)
        for column, name in enumerate(names):
            matrix[column] = [components.get(name, np.nan) for components in returned]
        return protocol.encode_row_results(totals, names, matrix, errors, max_cpu)


class _TooSlow(Exception):
    """A program call used more CPU time than its budget."""


def _failure(exc: BaseException) -> dict:
    """The reply describing a failed program call."""
    from autogai.rewards import restricted

    kind, reason = ("slow", str(exc)) if isinstance(exc, _TooSlow) else restricted.describe_exception(exc)
    return {"ok": False, "kind": kind, "reason": reason, "line": restricted.program_line(exc)}


def main(argv: list[str]) -> int:
    import json

    config = json.loads(argv[1])
    read_fd, write_fd, parent_pid = int(config["read_fd"]), int(config["write_fd"]), int(config["parent_pid"])
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    applied = ["fsize", "core", *_best_effort_isolation(parent_pid, bool(config.get("pdeathsig")))]
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()

    # Everything the worker will ever need is imported now, before the descriptors are locked.
    import pickle  # noqa: F401
    import types  # noqa: F401

    import numpy as np

    from autogai.core.errors import RewardRejectedError  # noqa: F401
    from autogai.rewards import (
        protocol,  # noqa: F401
        restricted,
    )
    from autogai.rewards.program import RewardProgram

    _warm_up(restricted.make_numpy_proxy())
    RewardProgram.from_source("def compute_reward(m, p):\n    return 0.0 ** 2, {'a': m.x}\n").compile()
    np.seterr(all="ignore")

    read_fd, write_fd = _compact_descriptors(read_fd, write_fd)
    applied += _lock_down(config)
    worker = _Worker(read_fd, write_fd)
    worker.reply({"ok": True, "ready": True, "pid": os.getpid(), "isolation": applied})
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
