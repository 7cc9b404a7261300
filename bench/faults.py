"""Faults injected into smoke-sized searches, each final state audited against an undisturbed run.

Fault kinds (each injected ``--injections`` times at a random moment after the first trial started):

- ``db-restart``: the search's PostgreSQL stopped for ``--outage-s`` seconds (30) and started again; the
  search must finish without help.
- ``db-outage-limit``: PostgreSQL stopped for longer than ``--storage-outage-limit 10s``; the search must
  end with one line, and the same command (database back) must complete it.
- ``full-disk``: the run directory (SQLite storage, curves, logs) on a 48 MiB tmpfs that is filled up; the
  search stops with one line (or absorbs it), no file is half-written, and after space is freed the same
  command completes it.
- ``stop-search``: SIGTERM or SIGINT (alternating) to the search; it must exit 143/130 with no trial left
  RUNNING, and the same command completes it.
- ``stop-worker``: SIGTERM or SIGINT (alternating) to a worker holding a batch; the worker hands the whole
  batch back, the search restarts it and finishes.

Every final state is audited from the storage: trials completed, lost (a queued trial whose retry chain
ended WAITING, RUNNING or re-queued without a successor, or a study short of its plan), duplicated (a trial
finished twice along one chain, a trial re-queued twice, a study over its plan), and whether the leaderboard
holds every design of the undisturbed run with all its held-out seeds. Then ``many workers``: 8 external
workers on one PostgreSQL and 4 on one SQLite file claim batches at once from a coordinator started with
``--workers 0``; claim latency is read from the trials.

Needs root (PostgreSQL runs as the ``postgres`` user, the tmpfs is mounted). Starts its own PostgreSQL on
127.0.0.1 with ``.ci/postgres.sh`` (port ``--pg-port``), removes everything when done::

    nice -n 10 .venv/bin/python bench/faults.py | tee bench/results/faults.txt
    .venv/bin/python bench/faults.py --kinds stop-search --injections 1 --no-many-workers

Last line: ``faults: K kinds x R injections, N trials lost, M duplicated``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_SCRIPT = ROOT / ".ci" / "postgres.sh"
KINDS = ("db-restart", "db-outage-limit", "full-disk", "stop-search", "stop-worker")
TRIALS_PER_DESIGN = 2
SEEDS = 2
REQUEUED_MARKERS = ("re-queued", "died", "stopped", "stale")
RUNNING: list[Search] = []


# --- infrastructure ------------------------------------------------------------------------------


class Postgres:
    """A throw-away server of this benchmark's own (never the test suite's): 127.0.0.1 only."""

    def __init__(self, port: int, directory: Path) -> None:
        self.env = {**os.environ, "AUTOGAI_PG_PORT": str(port), "AUTOGAI_PG_DIR": str(directory)}
        self.directory = directory
        self.url = ""

    def start(self) -> str:
        for attempt in range(1, 4):
            out = subprocess.run(["bash", str(PG_SCRIPT)], env=self.env, capture_output=True, text=True)
            if out.returncode == 0:
                self.url = out.stdout.strip().splitlines()[-1]
                return self.url
            log = self.directory / "server.log"
            tail = log.read_text()[-600:] if log.is_file() else ""
            print(
                f"    note: PostgreSQL start {attempt} failed: {out.stderr.strip()[-300:]} {tail}", flush=True
            )
            time.sleep(2)
        raise SystemExit("PostgreSQL did not start")

    def stop(self) -> None:
        subprocess.run(["bash", str(PG_SCRIPT), "--stop"], env=self.env, capture_output=True, check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class SmallDisk:
    """A size-limited tmpfs: the full-disk case's run directory."""

    def __init__(self, path: Path, size_mib: int) -> None:
        self.path = path
        self.size_mib = size_mib
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mib}m", "tmpfs", str(self.path)], check=True
        )
        self.mounted = True

    def fill(self) -> int:
        """Write a filler file until the device refuses; returns the bytes written."""
        written = 0
        with open(self.path / "filler", "wb", buffering=0) as handle:
            for chunk in (1 << 20, 1 << 12, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        handle.write(block)
                    except OSError:
                        break
                    written += chunk
        return written

    def free(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "--lazy", str(self.path)], check=False)
            self.mounted = False


def search_env(work: Path, label: str) -> dict[str, str]:
    """Each search its own cache: designs that beat the baseline go into the knowledge base's results, and
    one run's results must not change what the offline proposer offers the next (the plan must be equal)."""
    env = dict(os.environ)
    env.update(
        AUTOGAI_EMBEDDINGS="hash",
        AUTOGAI_CACHE=str(work / f"cache-{label}"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Search:
    """One ``autogai search`` command of the plan, run (and re-run to resume) as a process."""

    run_dir: Path
    work: Path
    storage: str | None = None
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    attempts: int = 0

    @property
    def url(self) -> str:
        return self.storage or f"sqlite:///{self.run_dir / 'optuna.db'}"

    @property
    def name(self) -> str:
        return self.run_dir.name

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "autogai.cli.main", "search", "--task", "uav-nearfield"]
        cmd += ["--preset", "smoke", "-q", "--run-dir", str(self.run_dir), *self.extra]
        return cmd + (["--storage", self.storage] if self.storage else [])

    def start(self) -> None:
        RUNNING.append(self)
        self.attempts += 1
        log = self.work / f"{self.name}.{self.attempts}"
        self.process = subprocess.Popen(
            self.command(),
            env=search_env(self.work, self.name),
            stdout=open(f"{log}.out", "w"),  # noqa: SIM115 (closed with the process)
            stderr=open(f"{log}.err", "w"),  # noqa: SIM115
            text=True,
        )

    def wait(self, timeout: float = 900) -> tuple[int, str]:
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        err = (self.work / f"{self.name}.{self.attempts}.err").read_text()
        return code, err

    def run(self, timeout: float = 900) -> tuple[int, str]:
        self.start()
        return self.wait(timeout)


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Read the Optuna tables directly (milliseconds; no Optuna storage object per poll)."""
    import sqlalchemy

    from autogai.search.storage import normalize_url

    engine = sqlalchemy.create_engine(normalize_url(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(sql), params)]
    except sqlalchemy.exc.SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def running_trials(url: str, run: str) -> list[tuple[int, str | None]]:
    """(trial id, worker identity JSON) of the run's RUNNING trials."""
    return [
        (int(r[0]), r[1])
        for r in query(
            url,
            "SELECT t.trial_id, a.value_json FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker' "
            "WHERE t.state = 'RUNNING' AND s.study_name LIKE :prefix",
            prefix=f"{run}/%",
        )
    ]


def wait_until(predicate: Callable[[], bool], timeout: float, process: Any = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


# --- audit -----------------------------------------------------------------------------------------


@dataclass
class Audit:
    completed: int
    lost: int
    duplicated: int
    designs: dict[str, int]
    """Leaderboard: design id -> held-out seeds scored."""
    half_written: list[str]
    claim_s: list[float]
    notes: list[str]

    def board_complete(self, reference: Audit) -> bool:
        return set(self.designs) == set(reference.designs) and all(n == SEEDS for n in self.designs.values())


def audit(url: str, run_dir: Path) -> Audit:
    from autogai.search.storage import make_storage
    from autogai.search.studies import load_study, run_study_names

    storage = make_storage(url, heartbeat=False)
    completed = lost = duplicated = 0
    notes: list[str] = []
    claim_s: list[float] = []
    for name in run_study_names(storage, run_dir.name):
        trials = {t.number: t for t in load_study(storage, name).get_trials(deepcopy=False)}
        retries: dict[int, list[int]] = {}
        for t in trials.values():
            origin = t.system_attrs.get("failed_trial")
            if origin is not None:
                retries.setdefault(int(origin), []).append(t.number)
            if "claim_s" in t.user_attrs:
                claim_s.append(float(t.user_attrs["claim_s"]))
        originals = [t for t in trials.values() if t.system_attrs.get("failed_trial") is None]
        heldout = name.endswith("/heldout")
        planned_ok = len(originals) == SEEDS if heldout else len(originals) % TRIALS_PER_DESIGN == 0
        if not planned_ok:
            notes.append(f"{name}: {len(originals)} queued trials, not what the plan asks")
            if heldout and len(originals) < SEEDS:
                lost += SEEDS - len(originals)
            else:
                duplicated += 1
        for origin in originals:
            chain, number, finished = [origin], origin.number, 0
            while number in retries:
                if len(retries[number]) > 1:
                    duplicated += len(retries[number]) - 1
                    notes.append(f"{name} trial {number} re-queued {len(retries[number])} times")
                number = min(retries[number])
                chain.append(trials[number])
            finished = sum(1 for t in chain if t.state.name in ("COMPLETE", "PRUNED"))
            last = chain[-1]
            if finished > 1:
                duplicated += finished - 1
                notes.append(f"{name} trial {origin.number} finished {finished} times")
            reason = str(last.user_attrs.get("reason") or "")
            requeued_fail = last.state.name == "FAIL" and "status" not in last.user_attrs
            if last.state.name in ("WAITING", "RUNNING") or (
                requeued_fail and any(m in reason for m in REQUEUED_MARKERS)
            ):
                lost += 1
                notes.append(f"{name} trial {origin.number} lost ({last.state.name}: {reason[:60]})")
            elif finished:
                completed += 1
    designs: dict[str, int] = {}
    board = run_dir / "leaderboard.json"
    if board.is_file():
        designs = {
            r["design_id"]: int(r.get("n_seeds") or 0) for r in json.loads(board.read_text())["designs"]
        }
    return Audit(completed, lost, duplicated, designs, half_written(run_dir), claim_s, notes)


def half_written(run_dir: Path) -> list[str]:
    """Temporary files left behind, JSON that does not parse, CSV with ragged rows."""
    bad: list[str] = []
    for path in run_dir.rglob("*"):
        if not path.is_file() or "llm_cache" in path.parts:
            continue
        if path.name.endswith(".tmp"):
            bad.append(str(path.relative_to(run_dir)))
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except ValueError:
                bad.append(str(path.relative_to(run_dir)))
        elif path.suffix == ".csv":
            rows = list(csv.reader(path.read_text().splitlines()))
            if not rows or any(len(r) != len(rows[0]) for r in rows):
                bad.append(str(path.relative_to(run_dir)))
    return bad


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("autogai: ")]


# --- the faults ------------------------------------------------------------------------------------


@dataclass
class Injection:
    kind: str
    index: int
    moment_s: float
    effect: str
    resumed: bool
    audit: Audit
    reference: Audit
    problems: list[str]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(tempfile.mkdtemp(prefix="autogai-faults-", dir=args.work_root))
        self.pg = Postgres(args.pg_port, Path(f"/tmp/autogai-faults-pg-{args.pg_port}"))
        self.disk = SmallDisk(self.work / "disk", args.disk_mib)
        self.references: dict[str, Audit] = {}

    def log(self, text: str) -> None:
        print(text, flush=True)

    def fresh_search(
        self, label: str, *, pg: bool, disk: bool = False, extra: list[str] | None = None
    ) -> Search:
        parent = self.disk.path if disk else self.work
        return Search(parent / label, self.work, self.pg.url if pg else None, list(extra or []))

    def reference(self, pg: bool) -> Audit:
        key = "postgresql" if pg else "sqlite"
        if key not in self.references:
            search = self.fresh_search(f"undisturbed-{key}", pg=pg)
            started = time.monotonic()
            code, err = search.run()
            if code != 0:
                raise SystemExit(f"the undisturbed {key} run failed ({code}): {err[-2000:]}")
            self.references[key] = audit(search.url, search.run_dir)
            ref = self.references[key]
            self.log(
                f"undisturbed {key:10s}: {ref.completed} trials completed, {len(ref.designs)} designs on the "
                f"leaderboard, {time.monotonic() - started:.0f} s"
            )
        return self.references[key]

    def until_trials_run(self, search: Search) -> float:
        """Wait for the first RUNNING trial, then a random moment; returns that moment (s after start)."""
        started = time.monotonic()
        wait_until(lambda: bool(running_trials(search.url, search.name)), 300, search.process)
        time.sleep(self.rng.uniform(0.0, self.args.max_delay_s))
        return time.monotonic() - started

    def inject(self, kind: str, index: int) -> Injection:
        pg = kind.startswith("db-")
        reference = self.reference(pg)
        label = f"{kind}-{index}"
        extra = ["--storage-outage-limit", "10s"] if kind == "db-outage-limit" else []
        if kind == "stop-worker":
            extra = ["--workers", "2"]
        search = self.fresh_search(label, pg=pg, disk=kind == "full-disk", extra=extra)
        problems: list[str] = []
        search.start()
        moment = self.until_trials_run(search)
        assert search.process is not None
        effect, must_resume = getattr(self, "_" + kind.replace("-", "_"))(search, index, problems)
        resumed = False
        if must_resume:
            if kind == "full-disk":
                problems += [f"half-written after the fault: {p}" for p in half_written(search.run_dir)]
                self.disk.free()
            code, err = search.run()
            resumed = True
            if code != 0:
                problems.append(f"resume exited {code}: {err.strip().splitlines()[-1:]}")
        result = audit(search.url, search.run_dir)
        if not result.board_complete(reference):
            problems.append(f"leaderboard {result.designs} vs undisturbed {reference.designs}")
        problems += [f"half-written: {p}" for p in result.half_written]
        problems += result.notes
        return Injection(kind, index, moment, effect, resumed, result, reference, problems)

    # Each returns (what happened, whether the same command must be run again to finish).
    def _db_restart(self, search: Search, index: int, problems: list[str]) -> tuple[str, bool]:
        self.pg.stop()
        time.sleep(self.args.outage_s)
        self.pg.start()
        code, err = search.wait()
        if code != 0:
            problems.append(f"search exited {code} after the restart: {error_lines(err)[-1:]}")
        waits = err.count("unreachable")
        return (
            f"{self.args.outage_s:.0f} s outage, search finished (rc {code}, outage logged {waits}x)",
            False,
        )

    def _db_outage_limit(self, search: Search, index: int, problems: list[str]) -> tuple[str, bool]:
        self.pg.stop()
        stopped = time.monotonic()
        code, err = search.wait(timeout=180)
        took = time.monotonic() - stopped
        self.pg.start()
        lines = error_lines(err)
        if code == 0:
            return "search finished before it needed the database", False
        if code != 1 or len(lines) != 1 or "outage limit" not in lines[0] or "Traceback" in err:
            problems.append(f"expected one outage-limit line, got rc {code}: {lines}")
        return f"ended after {took:.0f} s with one line (rc {code}), resumed", True

    def _full_disk(self, search: Search, index: int, problems: list[str]) -> tuple[str, bool]:
        filled = self.disk.fill()
        code, err = search.wait(timeout=300)
        lines = error_lines(err)
        if code == 0:
            self.disk.free()
            return f"disk filled ({filled >> 20} MiB) after the last write; search finished", False
        if code != 1 or len(lines) != 1 or "Traceback" in err:
            problems.append(f"expected one line, got rc {code}: {lines} {err[-300:]}")
        return f"rc {code}: {lines[-1] if lines else '?'}", True

    def _stop_search(self, search: Search, index: int, problems: list[str]) -> tuple[str, bool]:
        assert search.process is not None
        signum = signal.SIGINT if index % 2 == 0 else signal.SIGTERM
        sent = time.monotonic()
        search.process.send_signal(signum)
        code, err = search.wait(timeout=120)
        took = time.monotonic() - sent
        left = running_trials(search.url, search.name)
        if len(error_lines(err)) != 1 or "Traceback" in err:
            problems.append(f"expected one line on stderr, got {error_lines(err)}")
        if code != 128 + signum:
            problems.append(f"{signum.name}: exit code {code}, expected {128 + signum}")
        if left:
            problems.append(f"{len(left)} trial(s) still RUNNING after the search exited")
        return f"{signum.name}: exit {code} after {took:.1f} s, {len(left)} trials left RUNNING", True

    def _stop_worker(self, search: Search, index: int, problems: list[str]) -> tuple[str, bool]:
        signum = signal.SIGINT if index % 2 == 0 else signal.SIGTERM
        holders: list[int] = []
        for _ in range(100):
            holders = sorted({json.loads(w)["pid"] for _, w in running_trials(search.url, search.name) if w})
            if holders:
                break
            time.sleep(0.05)
        if not holders:
            code, _err = search.wait()
            return f"no worker held a batch at the moment (search rc {code})", False
        pid = holders[0]
        held = len(
            [1 for _, w in running_trials(search.url, search.name) if w and json.loads(w)["pid"] == pid]
        )
        sent = time.monotonic()
        os.kill(pid, signum)
        gone = wait_until(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 60)
        took = time.monotonic() - sent
        still = [w for _, w in running_trials(search.url, search.name) if w and json.loads(w)["pid"] == pid]
        code, err = search.wait()
        if not gone:
            problems.append(f"worker {pid} did not exit within 60 s of {signum.name}")
        if still:
            problems.append(f"worker {pid} left {len(still)} trial(s) RUNNING")
        if code != 0:
            problems.append(f"search exited {code}: {error_lines(err)[-1:]}")
        return (
            f"{signum.name} to a worker holding {held} trial(s): exited after {took:.1f} s, "
            f"{len(still)} left RUNNING; search rc {code}"
        ), False

    # --- many workers ------------------------------------------------------------------------------
    def many_workers(self, count: int, pg: bool) -> tuple[Audit, int, int, list[str]]:
        label = f"workers-{count}-{'pg' if pg else 'sqlite'}"
        search = self.fresh_search(label, pg=pg, extra=["--workers", "0", "--trials", "8"])
        search.start()
        meta = f"{search.name}/_run"
        wait_until(
            lambda: bool(query(search.url, "SELECT 1 FROM studies WHERE study_name = :n", n=meta)),
            300,
            search.process,
        )
        command = [sys.executable, "-m", "autogai.cli.main", "worker", "--storage", search.url]
        workers = [
            subprocess.Popen(
                [*command, "--run", search.name],
                env=search_env(self.work, search.name),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        code, err = search.wait()
        problems = [] if code == 0 else [f"coordinator exited {code}: {error_lines(err)[-1:]}"]
        done = 0
        dropped = 0
        for process in workers:
            try:
                _out, werr = process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                _out, werr = process.communicate()
                problems.append("a worker did not go home after the run was done")
            for line in werr.splitlines():
                if line.startswith("worker finished"):
                    done += int(line.split()[2])
                if "failed by another process" in line:
                    dropped += 1
        return audit(search.url, search.run_dir), done, dropped, problems

    def close(self) -> None:
        for search in RUNNING:  # interrupted mid-injection: no search may outlive its server
            if search.process is not None and search.process.poll() is None:
                search.process.kill()
                search.process.wait()
        self.pg.remove()
        self.disk.unmount()
        shutil.rmtree(self.work, ignore_errors=True)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--injections", type=int, default=3)
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--max-delay-s", type=float, default=8.0, help="random moment after trials start")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--pg-port", type=int, default=54431)
    parser.add_argument("--disk-mib", type=int, default=48)
    parser.add_argument("--work-root", default="/tmp")
    parser.add_argument("--no-many-workers", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/faults.py needs root (PostgreSQL as the postgres user, a tmpfs mount)", file=sys.stderr)
        return 2
    kinds = [k for k in args.kinds.split(",") if k]
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (server, mount) when stopped
    bench = Bench(args)
    print(f"# bench/faults.py seed {args.seed}, smoke preset, {args.injections} injection(s) per kind")
    print(
        f"# host: {os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}; PostgreSQL 127.0.0.1:{args.pg_port}"
    )
    total_lost = total_dup = 0
    rows: list[Injection] = []
    try:
        bench.pg.start()
        if "full-disk" in kinds:
            bench.disk.mount()
        for kind in kinds:
            for index in range(1, args.injections + 1):
                if kind == "full-disk":
                    bench.disk.free()
                started = time.monotonic()
                injection = bench.inject(kind, index)
                rows.append(injection)
                a = injection.audit
                total_lost += a.lost
                total_dup += a.duplicated
                board = "complete" if a.board_complete(injection.reference) else "INCOMPLETE"
                print(
                    f"{kind:16s} #{index} at {injection.moment_s:5.1f} s: {injection.effect}; "
                    f"completed {a.completed} (undisturbed {injection.reference.completed}), lost {a.lost}, "
                    f"duplicated {a.duplicated}, leaderboard {board}, "
                    f"{'resumed, ' if injection.resumed else ''}{time.monotonic() - started:.0f} s",
                    flush=True,
                )
                for problem in injection.problems:
                    print(f"    problem: {problem}", flush=True)
        print()
        print(
            "| fault | injections | trials completed (undisturbed) | lost | duplicated | leaderboard complete | resumed |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for kind in kinds:
            mine = [r for r in rows if r.kind == kind]
            if not mine:
                continue
            completed = ", ".join(f"{r.audit.completed} ({r.reference.completed})" for r in mine)
            full = sum(r.audit.board_complete(r.reference) for r in mine)
            print(
                f"| {kind} | {len(mine)} | {completed} | {sum(r.audit.lost for r in mine)} | "
                f"{sum(r.audit.duplicated for r in mine)} | {full}/{len(mine)} | {sum(r.resumed for r in mine)} |"
            )
        if not args.no_many_workers:
            print()
            for count, pg in ((8, True), (4, False)):
                started = time.monotonic()
                result, done, dropped, problems = bench.many_workers(count, pg)
                total_lost += result.lost
                total_dup += result.duplicated + dropped
                lat = result.claim_s
                where = "PostgreSQL" if pg else "one SQLite file"
                print(
                    f"many workers: {count} external workers on {where}, coordinator --workers 0: "
                    f"{result.completed} trials completed, {done} trials told by workers, lost {result.lost}, "
                    f"duplicated {result.duplicated}, results dropped as claimed twice {dropped}; claim latency "
                    f"p50 {statistics.median(lat) * 1000 if lat else float('nan'):.0f} ms, "
                    f"p95 {percentile(lat, 0.95) * 1000:.0f} ms, max {max(lat, default=float('nan')) * 1000:.0f} ms "
                    f"({len(lat)} trials); {time.monotonic() - started:.0f} s",
                    flush=True,
                )
                for problem in problems + result.notes:
                    print(f"    problem: {problem}", flush=True)
    finally:
        bench.close()
    print(
        f"faults: {len(kinds)} kinds x {args.injections} injections, {total_lost} trials lost, {total_dup} duplicated"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
