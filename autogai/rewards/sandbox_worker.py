"""The sandbox process: ``python -B -s -m autogai.rewards.sandbox_worker CONFIG_JSON``.

Started by :class:`autogai.rewards.sandbox.SandboxedReward`. It imports numpy and the restricted runtime,
warms up every allow-listed numpy function (so nothing needs to be imported later), then locks itself down
*before* it sees any program:

- ``RLIMIT_FSIZE = 0`` (no byte can be written to any file; ``SIGXFSZ`` ignored so writes fail instead),
  ``RLIMIT_CORE = 0``;
- the operating-system layers of :mod:`autogai.rewards.confinement`, in order: network (and user) namespace,
  ``PR_SET_NO_NEW_PRIVS``, Landlock (read-only Python installation, nothing else), the drop to ``nobody``
  when root, ``RLIMIT_AS`` / ``RLIMIT_NOFILE`` / ``RLIMIT_CPU`` / ``RLIMIT_NPROC``, and a seccomp-bpf
  allow-list last. Each is best effort: the first reply names the layers applied and, for the others, why
  they are not (the parent logs it once);
- ``PR_SET_PDEATHSIG = SIGKILL`` when the parent asks for it, and a watchdog thread that exits as soon as
  the parent process is gone.

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

from autogai.rewards import confinement


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(0.25)


def _warm_up(np_proxy: object) -> None:
    """Call every allow-listed numpy function once so its lazy imports happen before files are locked."""
    import numpy as np

    from autogai.rewards.allow_lists import NUMPY_ALLOWED

    vector = np.linspace(0.1, 0.9, 3)
    with np.errstate(all="ignore"):
        for name in NUMPY_ALLOWED:
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


def enter_sandbox(config: dict) -> tuple[int, int, confinement.Confinement]:
    """Lock this process down as the sandbox worker does; returns the pipe ends (3, 4) and what was applied.

    ``config``: ``read_fd``, ``write_fd``, ``parent_pid``, ``memory_limit_mb``, ``cpu_limit_s`` (or None),
    ``pdeathsig`` (arm the parent-death signal) and ``skip_layers`` (confinement layers to leave off: tests
    and benchmarks only).
    """
    import resource

    parent_pid = int(config["parent_pid"])
    skip = [str(layer) for layer in config.get("skip_layers") or ()]
    pdeathsig = bool(config.get("pdeathsig"))
    state = confinement.Confinement()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail instead of killing the worker
    state.applied += ["fsize", "core"]
    confinement.enter_namespaces(state, skip=skip)  # before any thread exists
    if pdeathsig and confinement.arm_parent_death_signal(parent_pid):
        state.applied.append("pdeathsig")

    # Everything the worker will ever need is imported and looked up now, before the filesystem is closed.
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
    seccomp = confinement.load_seccomp_bindings()
    ids = confinement.unprivileged_ids()
    roots = confinement.readable_roots()

    read_fd, write_fd = _compact_descriptors(int(config["read_fd"]), int(config["write_fd"]))
    threading.stack_size(256 * 1024)  # the watchdog's stack comes out of the memory budget: keep it small
    measured = confinement.address_space_bytes()
    current_bytes = None if measured is None else measured + 256 * 1024
    confinement.set_no_new_privs(state)
    confinement.restrict_filesystem(state, roots, skip=skip)
    confinement.drop_privileges(state, ids, skip=skip)
    if pdeathsig:  # a credential change clears the parent-death signal: arm it again
        confinement.arm_parent_death_signal(parent_pid)
    # The watchdog starts after Landlock (which binds only the threads started after it) and before the
    # process limit (a thread counts as a process).
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    confinement.limit_resources(
        state, int(config["memory_limit_mb"]), config.get("cpu_limit_s"), current_bytes
    )
    confinement.install_seccomp(state, seccomp, skip=skip)
    return read_fd, write_fd, state


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
        self.in_call = False
        # The CPU budget of a call is enforced while the call runs: a profiling timer (process CPU time)
        # interrupts a program that is still computing when its budget is spent.
        signal.signal(signal.SIGPROF, self._budget_spent)

    def _budget_spent(self, signum: int, frame: Any) -> None:
        if self.in_call:
            self.in_call = False
            limit = self.call_cpu_limit_s or 0.0
            raise _TooSlow(f"a call took more than {limit:.3f} s of CPU (budget {limit:.3f} s per call)")

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
                rows = self.call_rows(frame)
                if isinstance(rows, bytes):
                    write_frame(self.write_fd, rows)
                else:
                    self.reply(rows)
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

        limit = self.call_cpu_limit_s
        started = time.thread_time()
        timed = limit is not None and limit > 0
        if limit is not None and limit > 0:
            self.in_call = True
            signal.setitimer(signal.ITIMER_PROF, limit)
        try:
            raw = self.function(view, params)
        finally:
            if timed:
                self.in_call = False
                signal.setitimer(signal.ITIMER_PROF, 0.0)
        elapsed = time.thread_time() - started
        total, components = restricted.check_output(raw)
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

    read_fd, write_fd, state = enter_sandbox(json.loads(argv[1]))
    worker = _Worker(read_fd, write_fd)
    ready = {"ok": True, "ready": True, "pid": os.getpid(), "isolation": state.applied}
    worker.reply({**ready, "unavailable": state.unavailable})
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
