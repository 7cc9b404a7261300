"""The local worker processes of one search: start them, restart one that died, wait for queued trials,
stop them (a stopped worker hands its batch back to the queue, see :mod:`autogai.search.worker`)."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from autogai.search.records import RunStore
from autogai.search.worker import spawn_worker

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""How long stopped workers get to hand their trials back before they are killed."""
STALE_CHECK_S = 15.0
"""How often the search fails the trials of (remote) workers that stopped beating."""


class WorkerPool:
    """``count`` worker processes on this machine for the run ``run_name`` (0: external workers only)."""

    def __init__(
        self,
        store: RunStore,
        storage_url: str,
        *,
        count: int,
        device: str | None,
        log_dir: Path,
    ) -> None:
        self.store = store
        self.storage_url = storage_url
        self.count = count
        self.device = device
        self.log_dir = Path(log_dir)
        self.processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        return spawn_worker(
            self.storage_url,
            self.store.run_name,
            device=self.device,
            log_path=self.log_dir / f"worker-{index}.log",
            slot=index,
        )

    def start(self) -> None:
        if self.count < 1:
            return
        try:
            self.log_dir.mkdir(exist_ok=True)
        except OSError as exc:
            from autogai.core.files import disk_error

            raise disk_error(self.log_dir, exc) from exc
        self.processes = [self._spawn(i) for i in range(self.count)]

    def check(self) -> None:
        """Restart a worker that died (its running trials are failed and re-queued first)."""
        for index, process in enumerate(self.processes):
            if process.poll() is None:
                continue
            logger.warning("worker %d exited with code %s; restarting it", index, process.returncode)
            self.store.recover_dead_workers()
            self.processes[index] = self._spawn(index)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM every worker (each returns the batch it holds to the queue), SIGKILL after ``timeout_s``."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []

    def wait_for(
        self,
        study_names: Sequence[str],
        *,
        progress: Callable[[], None] | None = None,
        poll_s: float = 0.5,
        progress_s: float = 1.0,
    ) -> None:
        """Block until no trial of ``study_names`` is WAITING or RUNNING, keeping the workers alive and
        failing the trials of workers anywhere that stopped beating; ``progress`` every ``progress_s``."""
        names = list(study_names)
        last_progress = 0.0
        last_stale = time.monotonic()
        while True:
            if self.store.pending(names) == 0:
                if progress is not None:
                    progress()
                return
            self.check()
            if time.monotonic() - last_stale > STALE_CHECK_S:
                self.store.fail_stale(names)
                last_stale = time.monotonic()
            if progress is not None and time.monotonic() - last_progress > progress_s:
                progress()
                last_progress = time.monotonic()
            time.sleep(poll_s)
