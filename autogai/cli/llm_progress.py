"""What a waiting terminal shows while an LLM generates: the call, the elapsed time, tokens so far.

A local model on a CPU takes seconds to minutes per reply. On a terminal one status line is redrawn twice a
second; in a log (no terminal) a line is written when a call starts, every 15 seconds while it runs and
when it ends, so a CI log shows the same without a flood of redraws.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from autogai.core.text import escape_control
from autogai.rag.llm_calls import CallStatus


class LLMCallDisplay:
    """A ``progress`` callback for :class:`~autogai.rag.llm.ChatBackend` that draws on ``stream``.

    Use as a context manager around the calls: the drawing thread runs inside it and the status line is
    cleared at the end (an interrupt included).
    """

    def __init__(
        self,
        backend_name: str,
        stream: TextIO | None = None,
        *,
        interval_s: float = 0.5,
        log_every_s: float = 15.0,
    ) -> None:
        self.name = escape_control(backend_name)
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self.log_every_s = log_every_s
        self._active: dict[int, CallStatus] = {}
        self._logged: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __call__(self, status: CallStatus) -> None:
        with self._lock:
            if status.finished:
                self._active.pop(status.call_id, None)
                self._logged.pop(status.call_id, None)
                if not self.interactive:
                    outcome = f"failed ({status.error})" if status.error else "done"
                    self._write(f"LLM {self.name}: {status.label} {outcome} after {self._figures(status)}\n")
            else:
                if status.call_id not in self._active and not self.interactive:
                    self._write(f"LLM {self.name}: {status.label} started\n")
                    self._logged[status.call_id] = time.monotonic()
                self._active[status.call_id] = status

    @staticmethod
    def _figures(status: CallStatus) -> str:
        text = f"{status.elapsed_s:.1f} s"
        if status.streaming or status.tokens_out:
            text += f", {status.tokens_out} tokens"
        return text

    def _write(self, text: str) -> None:
        if self.interactive and self._drawn:
            text = "\r\x1b[K" + text
            self._drawn = False
        self.stream.write(text)
        self.stream.flush()

    def _tick(self) -> None:
        with self._lock:
            calls = sorted(self._active.values(), key=lambda s: s.call_id)
            if self.interactive:
                if not calls:
                    if self._drawn:
                        self.stream.write("\r\x1b[K")
                        self.stream.flush()
                        self._drawn = False
                    return
                shown = "; ".join(f"{s.label} {self._figures(s)}" for s in calls[:3])
                more = f" (+{len(calls) - 3} more)" if len(calls) > 3 else ""
                self.stream.write(f"\r\x1b[KLLM {self.name} generating: {shown}{more}")
                self.stream.flush()
                self._drawn = True
                return
            now = time.monotonic()
            for status in calls:
                if now - self._logged.get(status.call_id, now) >= self.log_every_s:
                    self._logged[status.call_id] = now
                    self._write(
                        f"LLM {self.name}: {status.label} still generating, {self._figures(status)}\n"
                    )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._tick()

    def __enter__(self) -> LLMCallDisplay:
        self._thread = threading.Thread(target=self._run, daemon=True, name="llm-progress")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False
