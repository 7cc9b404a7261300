"""End-to-end searches at the ``smoke`` budget: offline proposer, a scripted OpenAI-compatible server,
SIGKILL and resume, two workers on one run, PostgreSQL, and bad inputs ending in one clear line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from search_helpers import SMOKE_FLAGS, cli, count_states, snapshot, start_cli

from autogai.search.studies import is_scoring_study

pytestmark = pytest.mark.integration

TASK = "uav-nearfield"


def _search_args(run: Path, *extra: str) -> list[str]:
    return ["search", "--task", TASK, *SMOKE_FLAGS, "--run-dir", str(run), *extra]


def _inprocess(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Inspection commands are cheap: run them in this process."""
    from autogai.cli.main import main

    code = main(args)
    return code, capsys.readouterr().out


def _run_files_present(run: Path) -> None:
    for name in ("config.json", "leaderboard.csv", "leaderboard.json", "optuna.db", "state.json"):
        assert (run / name).is_file(), name
    design_dirs = [p for p in (run / "designs").iterdir() if p.name.startswith("d-")]
    assert len(design_dirs) >= 2
    for d in design_dirs:
        for name in ("reward.py", "design.json", "prompt.md", "response.md", "trials.csv", "curves.csv"):
            assert (d / name).is_file(), f"{d.name}/{name}"


def _board(run: Path) -> list[dict]:
    return json.loads((run / "leaderboard.json").read_text())["designs"]


def test_smoke_search_offline_end_to_end_and_inspection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "smoke-offline"
    result = cli(_search_args(run), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "leaderboard" in result.stdout and "baseline" in result.stdout
    _run_files_present(run)
    rows = _board(run)
    assert any(r["is_baseline"] for r in rows)
    assert len(rows) >= 2
    for row in rows:  # one design and the baseline: both finalists, both on the 2 test seeds
        assert row["n_seeds"] == 2 and row["score_source"] == "test", row
        assert row["iqm_ci"][0] <= row["iqm"] <= row["iqm_ci"][1]
        assert row["validation_iqm"] is not None
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == TASK and config["llm"] == "offline"

    code, out = _inprocess(["leaderboard", str(run)], capsys)
    assert code == 0 and "baseline" in out
    best, other = rows[0]["design_id"], rows[1]["design_id"]
    code, out = _inprocess(["show", str(run), best], capsys)
    assert code == 0 and "compute_reward" in out
    code, out = _inprocess(["diff", str(run), best, other], capsys)
    assert code == 0 and "reward program" in out
    code, out = _inprocess(["report", str(run)], capsys)
    assert code == 0
    assert (run / "report.html").is_file() and (run / "plots" / "scores.png").is_file()

    # The same command again is a resume with nothing left to do: no trial is added.
    before = snapshot(f"sqlite:///{run / 'optuna.db'}", run.name)
    again = cli(_search_args(run), tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert snapshot(f"sqlite:///{run / 'optuna.db'}", run.name) == before


def test_smoke_search_with_scripted_openai_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_helpers import OpenAIServer, Reply

    from autogai.tasks import get_task

    source = get_task(TASK).baseline_reward.rstrip() + "\n# scripted variant of the baseline\n"
    reply = f"A variant of the baseline.\nenhancers: plain\n```python\n{source}```\n"
    with OpenAIServer([], default=Reply(reply, reply)) as server:
        run = tmp_path / "smoke-llm"
        args = [
            "search",
            "--task",
            TASK,
            *SMOKE_FLAGS,
            "--run-dir",
            str(run),
            "--llm",
            "openai:test-model",
            "--llm-base-url",
            server.url,
        ]
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        result = cli(args, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.requests, "the search never called the LLM server"
    rows = _board(run)
    assert any(r["proposer"].startswith("openai") for r in rows)
    assert (run / "ledger.jsonl").is_file()
    assert "sk-test" not in (run / "config.json").read_text()


def _wait_for(predicate, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"the search exited ({process.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _trial_states(db: Path) -> dict[str, int]:
    """Trial states counted straight from the SQLite file, read-only: a poll costs milliseconds, so a
    busy machine does not miss the few seconds a batch runs (an Optuna storage per poll did)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            rows = con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall()
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or its schema is still being written
        return {}
    return {str(state): int(n) for state, n in rows}


def test_search_killed_mid_trial_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    from autogai.search.studies import pid_alive

    run = tmp_path / "killed"
    url = f"sqlite:///{run / 'optuna.db'}"
    # 1500 steps make the second design's batch run for seconds, not one, even on a fast machine.
    args = [*_search_args(run), "--seeds", "1", "--steps", "1500"]
    process = start_cli(args, tmp_path)

    def mid_trial() -> bool:
        counts = _trial_states(run / "optuna.db")
        return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) >= 1 and counts.get("RUNNING", 0) >= 1

    try:
        _wait_for(mid_trial, 240, "one finished and one running trial", process)
    except AssertionError:
        process.kill()
        raise
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = snapshot(url, run.name)
    running = {k: v for k, v in before.items() if v["state"] == "RUNNING"}
    assert running
    # The workers die with the search (parent-death signal), leaving their trials RUNNING.
    _wait_for(
        lambda: not any(pid_alive(v["worker"]["pid"]) for v in running.values() if v["worker"]),
        20,
        "the killed search's workers to exit",
    )

    result = start_cli(args, tmp_path)
    _out, err = result.communicate(timeout=300)
    assert result.returncode == 0, err[-3000:]
    after = snapshot(url, run.name)
    print("states before", count_states(before), "after", count_states(after))
    for key, info in before.items():
        if info["state"] in ("COMPLETE", "PRUNED", "FAIL"):
            assert after[key]["state"] == info["state"] and after[key]["value"] == info["value"], key
    for key in running:
        assert after[key]["state"] == "FAIL" and "died" in (after[key]["reason"] or "")
        retries = [k for k, v in after.items() if k[0] == key[0] and v["retry_of"] == key[1]]
        assert len(retries) == 1 and after[retries[0]]["state"] in ("COMPLETE", "PRUNED"), retries
    assert not any(v["state"] in ("RUNNING", "WAITING") for v in after.values())
    # No duplicates: every tuning study holds exactly its budget (retries replace their originals).
    studies = {k[0] for k in after if not is_scoring_study(k[0])}
    for study in studies:
        units = [k for k, v in after.items() if k[0] == study and v["retry_of"] is None]
        assert len(units) == 2, (study, units)


def _check_two_worker_run(url: str, run_name: str, trials: int) -> None:
    snap = snapshot(url, run_name)
    assert snap
    assert not any(v["state"] in ("RUNNING", "WAITING") for v in snap.values())
    tuning = {k[0] for k in snap if not is_scoring_study(k[0])}
    for study in tuning:
        assert len([k for k in snap if k[0] == study]) == trials, study
    pids = {v["worker"]["pid"] for v in snap.values() if v["worker"]}
    assert len(pids) == 2, pids


def test_two_workers_share_one_run(tmp_path: Path) -> None:
    # 4 trials per design claimed 2 at a time: 4 batches for 2 workers, so both must take part.
    run = tmp_path / "two-workers"
    result = cli(_search_args(run, "--seeds", "1", "--workers", "2", "--trials", "4"), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_two_worker_run(f"sqlite:///{run / 'optuna.db'}", run.name, 4)


@pytest.mark.postgres
def test_search_against_postgresql_with_two_workers(tmp_path: Path) -> None:
    url = os.environ.get("AUTOGAI_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("AUTOGAI_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")
    run = tmp_path / f"pg-{os.getpid()}-{int(time.time())}"
    result = cli(
        _search_args(run, "--seeds", "1", "--workers", "2", "--trials", "4", "--storage", url), tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (run / "optuna.db").exists()
    _check_two_worker_run(url, run.name, 4)
    assert "autogai:autogai@" not in (run / "config.json").read_text()  # password redacted


def _one_line_error(result, needle: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autogai: error:") and needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--task", "no-such-task"], "unknown task 'no-such-task'"),
        (["--task", TASK, "--storage", "redis://localhost:6379"], "unsupported storage scheme"),
        (["--task", TASK, "--storage", "postgresql://u:secret@127.0.0.1:1/db"], "cannot use storage"),
        (["--task", TASK, "--llm", "openai:gpt-4o-mini", "--llm-base-url", "http://127.0.0.1:9/v1"], "LLM"),
    ],
    ids=["unknown-task", "bad-scheme", "unreachable-postgres", "unreachable-llm"],
)
def test_bad_inputs_end_with_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    result = cli(
        ["search", *extra, "--preset", "smoke", "-q", "--run-dir", str(tmp_path / "r")], tmp_path, timeout=120
    )
    _one_line_error(result, needle)
    assert "secret" not in result.stderr


def test_read_only_run_directory_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/autogai-read-only-run")  # root ignores file modes; /proc refuses new dirs
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(0o555)
        target = parent / "run"
    result = cli(["search", "--task", TASK, "--preset", "smoke", "-q", "--run-dir", str(target)], tmp_path)
    _one_line_error(result, "not writable")


def test_run_dir_of_another_task_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "other"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "pendulum"}))
    result = cli(["search", "--task", TASK, "--preset", "smoke", "-q", "--run-dir", str(run)], tmp_path)
    _one_line_error(result, "task='pendulum'")


if sys.platform != "linux":  # pragma: no cover
    pytestmark = [pytestmark, pytest.mark.skip(reason="worker processes rely on Linux process semantics")]
