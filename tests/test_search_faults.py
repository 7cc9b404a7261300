"""Faults of a search's infrastructure: a database restart under a running search and an outage past the
limit, SIGTERM/SIGINT to a worker holding a batch, a full filesystem during a checkpoint write, damaged
storage, and many worker processes claiming batches at the same moment. bench/faults.py injects the same
faults many times into whole searches; these are the fast, always-run checks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from search_helpers import SMOKE_FLAGS, snapshot, start_cli

from autogai.core.errors import RunDirectoryError, StorageError
from autogai.core.types import Design, EnhancerCombo
from autogai.pipeline.rundir import RunDirectory
from autogai.search.budget import get_preset
from autogai.search.objective import TrialContext
from autogai.search.records import RunStore
from autogai.search.storage import OUTAGE_LIMIT_ENV, default_storage_url, make_storage
from autogai.search.studies import claim_lock_path, enqueue_to, get_or_create_study, load_study

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(predicate, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _one_line(stderr: str, needle: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr
    return lines[0]


# --- a private PostgreSQL server (restarting the suite's shared one would break other tests) ----------


@dataclass
class PrivateServer:
    url: str
    env: dict[str, str]

    def stop(self) -> None:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "--stop"], env=self.env, check=True)

    def start(self) -> None:
        for _attempt in range(3):  # a server still shutting down under load refuses the first start
            started = subprocess.run(
                ["bash", str(ROOT / ".ci" / "postgres.sh")], env=self.env, capture_output=True, text=True
            )
            if started.returncode == 0:
                return
            time.sleep(2)
        raise AssertionError(f"the private PostgreSQL did not start again: {started.stderr[-1000:]}")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivateServer]:
    if not os.environ.get("AUTOGAI_TEST_POSTGRES_URL"):
        pytest.skip("AUTOGAI_TEST_POSTGRES_URL is not set (PostgreSQL is installed by .ci/postgres.sh)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = Path(f"/tmp/autogai-faults-test-pg-{port}")
    env = {**os.environ, "AUTOGAI_PG_PORT": str(port), "AUTOGAI_PG_DIR": str(directory)}
    started = subprocess.run(
        ["bash", str(ROOT / ".ci" / "postgres.sh")], env=env, check=True, capture_output=True, text=True
    )
    server = PrivateServer(started.stdout.strip().splitlines()[-1], env)
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _running(url: str, run: str) -> int:
    import sqlalchemy

    from autogai.search.storage import normalize_url

    engine = sqlalchemy.create_engine(normalize_url(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            sql = (
                "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE t.state = 'RUNNING' AND s.study_name LIKE :prefix"
            )
            return int(connection.execute(sqlalchemy.text(sql), {"prefix": f"{run}/%"}).scalar() or 0)
    except sqlalchemy.exc.SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def test_database_restart_during_a_running_search(tmp_path: Path, private_postgres: PrivateServer) -> None:
    run = tmp_path / f"restart-{os.getpid()}"
    url = private_postgres.url
    args = ["search", "--task", "uav-nearfield", *SMOKE_FLAGS, "--run-dir", str(run), "--storage", url]
    process = start_cli(args, tmp_path)
    try:
        _wait_for(lambda: _running(url, run.name) > 0, 240, "a running trial", process)
        private_postgres.stop()
        time.sleep(6)  # workers and the search find the database gone and wait for it
    finally:
        private_postgres.start()
    _out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    # The search logged the outage once (not once per retry), with the password masked.
    assert err.count("unreachable") == 1 and "is back after" in err, err[-2000:]
    assert "autogai:autogai@" not in err
    snap = snapshot(url, run.name)
    assert not any(v["state"] in ("RUNNING", "WAITING") for v in snap.values())
    for study in {k[0] for k in snap}:
        originals = [k for k, v in snap.items() if k[0] == study and v["retry_of"] is None]
        # smoke: 2 tuning trials per design, 2 configurations x 2 validation seeds, 2 test seeds
        expected = 4 if study.endswith("/validation") else 2
        assert len(originals) == expected, (study, originals)
        for key in originals:  # every trial's chain of retries ends finished, and finished once
            chain = [key]
            while retry := [k for k, v in snap.items() if k[0] == study and v["retry_of"] == chain[-1][1]]:
                assert len(retry) == 1, retry
                chain.append(retry[0])
            assert sum(snap[k]["state"] in ("COMPLETE", "PRUNED") for k in chain) <= 1, chain
            last = snap[chain[-1]]
            assert last["state"] in ("COMPLETE", "PRUNED") or "re-queued" not in (last["reason"] or "")
    board = json.loads((run / "leaderboard.json").read_text())["designs"]
    assert len(board) == 2 and all(row["n_seeds"] == 2 for row in board)


def test_an_outage_longer_than_the_limit_is_one_error_and_the_storage_works_again(
    private_postgres: PrivateServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTAGE_LIMIT_ENV, "2s")
    storage = make_storage(private_postgres.url, heartbeat=False)
    get_or_create_study(storage, f"limit-{os.getpid()}/_run")
    private_postgres.stop()
    try:
        with pytest.raises(StorageError) as caught:
            storage.get_all_studies()
    finally:
        private_postgres.start()
    message = str(caught.value)
    assert "outage limit" in message and "resume" in message and "\n" not in message
    assert "autogai:***@" in message  # credentials masked
    assert any(s.study_name == f"limit-{os.getpid()}/_run" for s in storage.get_all_studies())


# --- stops ---------------------------------------------------------------------------------------------


def _queued_run(url: str, total_steps: int) -> tuple[RunStore, str]:
    from autogai.tasks import get_task

    budget = get_preset("smoke").with_overrides(total_steps=total_steps, eval_every=100, learning_starts=50)
    store = RunStore(make_storage(url), "stops")
    store.start(TrialContext(run_name="stops", task="pendulum", budget=budget, device="cpu").to_dict())
    design = Design(
        reward_source=get_task("pendulum").baseline_reward, enhancers=EnhancerCombo(), name="baseline"
    )
    name = store.tuning_study(design.id, {"design": design.to_dict(), "kind": "tuning", "reward_params": {}})
    store.enqueue(name, 2)  # one batch: smoke populations hold 2 trials
    return store, name


def _reported(db: Path) -> bool:
    """True once a trial of the batch reported an evaluation (training is under way)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            return bool(con.execute("SELECT COUNT(*) FROM trial_intermediate_values").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_worker_hands_back_every_trial_of_its_batch(tmp_path: Path, signum: int) -> None:
    url = default_storage_url(tmp_path)
    store, name = _queued_run(url, total_steps=50_000)
    worker = subprocess.Popen(
        [sys.executable, "-m", "autogai.search.worker", "--storage", url, "--run", "stops"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _reported(tmp_path / "optuna.db"), 120, "the batch to train", worker)
        held = [t for t in store.trials(name) if t.state == "RUNNING"]
        assert len(held) == 2 and {t.user_attrs["worker"]["pid"] for t in held} == {worker.pid}
        worker.send_signal(signum)
        _out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 128 + signum, err[-2000:]
    trials = {t.number: t for t in store.trials(name)}
    for trial in held:
        assert trials[trial.number].state == "FAIL"
        assert "worker stopped" in trials[trial.number].user_attrs["reason"]
    retries = [t for t in trials.values() if t.retry_of is not None]
    assert sorted(t.retry_of for t in retries) == sorted(t.number for t in held)
    assert all(t.state == "WAITING" for t in retries)


# --- full filesystem -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * chunk)
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a size-limited tmpfs needs root (CI runs as root)")
def test_full_filesystem_during_a_checkpoint_write_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    import numpy as np
    from gymnasium import spaces
    from training_helpers import tiny_agent_config

    from autogai.agents import TD3Population
    from autogai.training.checkpoint import load_checkpoint, save_checkpoint

    agents = TD3Population(
        spaces.Box(-1.0, 1.0, (3,), np.float32),
        spaces.Box(-1.0, 1.0, (1,), np.float32),
        EnhancerCombo(),
        [tiny_agent_config()],
        seeds=[0],
    )
    with _small_filesystem(tmp_path / "disk", "2m") as disk:
        # The training checkpoint (agent weights + checkpoint.json) and the search's resume checkpoint.
        save_checkpoint(agents, disk / "ckpt", {"task": "pendulum", "step": 1})
        run = RunDirectory(disk / "run")
        run.ensure_writable()
        old = {"generations": [{"index": 0, "design_ids": ["d-1"], "status": "proposed"}]}
        run.write_state(old)
        new = {"generations": [{"index": i, "design_ids": [f"d-{i}"], "status": "scored"} for i in range(40)]}
        filler = _fill(disk)

        with pytest.raises(RunDirectoryError) as caught:
            save_checkpoint(agents, disk / "ckpt", {"task": "pendulum", "step": 2})
        message = str(caught.value)
        assert "no space left" in message and "agent.pt" in message and "needed" in message, message
        assert "\n" not in message
        with pytest.raises(RunDirectoryError) as caught:
            run.write_state(new)
        assert "state.json" in str(caught.value) and "no space left" in str(caught.value)

        # The old checkpoints are whole, and no temporary file is left behind.
        _loaded, meta = load_checkpoint(disk / "ckpt")
        assert meta["step"] == 1
        assert run.read_state() == old
        assert sorted(p.name for p in (disk / "ckpt").iterdir()) == ["agent.pt", "checkpoint.json"]
        assert [p.name for p in run.path.iterdir()] == ["state.json"]

        filler.unlink()  # space freed: the same writes go through
        save_checkpoint(agents, disk / "ckpt", {"task": "pendulum", "step": 2})
        run.write_state(new)
        assert load_checkpoint(disk / "ckpt")[1]["step"] == 2 and run.read_state() == new


# --- damaged storage ---------------------------------------------------------------------------------------


def _stored_db(path: Path) -> None:
    storage = make_storage(f"sqlite:///{path}")
    study = get_or_create_study(storage, "run/d-1")
    enqueue_to(study, 4)
    del storage, study
    with sqlite3.connect(path) as con:  # fold the WAL into the file, as after a clean exit
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_truncated_storage_file_is_one_line_with_the_way_out(tmp_path: Path) -> None:
    run = tmp_path / "damaged"
    run.mkdir()
    db = run / "optuna.db"
    _stored_db(db)
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 3)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    process = start_cli(["search", "--task", "uav-nearfield", *SMOKE_FLAGS, "--run-dir", str(run)], tmp_path)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    line = _one_line(err, "damaged")
    assert str(db) in line and "move it away" in line


def test_a_storage_file_that_is_not_a_database_and_a_foreign_schema_are_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite\n" * 300)
    with pytest.raises(StorageError, match="damaged"):
        make_storage(f"sqlite:///{garbage}")
    foreign = tmp_path / "foreign.db"
    _stored_db(foreign)
    with sqlite3.connect(foreign) as con:
        con.execute("UPDATE alembic_version SET version_num = 'v99.0.0.a'")
    with pytest.raises(StorageError, match="optuna storage upgrade"):
        make_storage(f"sqlite:///{foreign}")


def test_a_run_of_a_newer_autogai_is_refused_in_one_line(tmp_path: Path) -> None:
    store, _name = _queued_run(default_storage_url(tmp_path), total_steps=300)
    get_or_create_study(store.storage, "stops/_run").set_user_attr("layout", 99)
    with pytest.raises(StorageError, match="storage layout 99"):
        store.start({})


# --- many workers ------------------------------------------------------------------------------------------

_CLAIMER = """
import json, sys, time
from autogai.search.storage import make_storage
from autogai.search.studies import claim_waiting_trials, load_study
url, name, lock, start_at = sys.argv[1], sys.argv[2], sys.argv[3] or None, float(sys.argv[4])
storage = make_storage(url, heartbeat=False)
study = load_study(storage, name)
while time.time() < start_at:
    time.sleep(0.002)
claimed, latency = [], []
while True:
    asked = time.perf_counter()
    batch = claim_waiting_trials(storage, study, 2, lock_path=lock)
    latency.append(time.perf_counter() - asked)
    if not batch:
        break
    for trial, _ in batch:
        claimed.append(trial.number)
        study.tell(trial, float(trial.number))
print(json.dumps({"claimed": claimed, "latency": latency}))
"""


@pytest.mark.parametrize("backend", ["postgresql-8", "sqlite-4"])
def test_many_workers_claim_at_once_and_no_trial_runs_twice(tmp_path: Path, backend: str) -> None:
    if backend.startswith("postgresql"):
        url = os.environ.get("AUTOGAI_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("AUTOGAI_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")
    else:
        url = default_storage_url(tmp_path)
    workers = int(backend.split("-")[1])
    name = f"claims-{os.getpid()}-{time.time_ns()}/d-1"
    study = get_or_create_study(make_storage(url, heartbeat=False), name)
    queued = 5 * workers
    enqueue_to(study, queued)
    start_at = time.time() + 4  # every process has imported Optuna by then and claims at the same moment
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, url, name, claim_lock_path(url) or "", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    claimed = [n for r in reports for n in r["claimed"]]
    assert sorted(claimed) == list(range(queued))  # each queued trial claimed once: none lost, none twice
    trials = load_study(make_storage(url, heartbeat=False), name).get_trials()
    assert len(trials) == queued and all(t.state.name == "COMPLETE" for t in trials)  # none created
    latencies = sorted(x for r in reports for x in r["latency"])
    print(
        f"{backend}: claim latency median {latencies[len(latencies) // 2] * 1000:.1f} ms, max "
        f"{latencies[-1] * 1000:.1f} ms over {len(latencies)} claims"
    )
