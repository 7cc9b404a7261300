"""``autogai propose``: offline by default, and through a scripted OpenAI-compatible server."""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import OpenAIServer, Reply, Sleep, fenced, program
from search_helpers import cli, start_cli

from autogai.cli.llm_progress import LLMCallDisplay
from autogai.cli.main import main
from autogai.rag.llm_cache import read_ledger
from autogai.rag.llm_calls import CallStatus


def test_propose_offline_writes_designs_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "propose",
            "--task",
            "pendulum",
            "-n",
            "2",
            "--run-dir",
            str(run),
            "--embeddings",
            "hash",
            "--store",
            str(tmp_path / "store"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "proposer offline on pendulum: 2 valid of 2" in out
    assert "id" in out and "enhancers" in out and "components" in out and "sources" in out
    designs = sorted((run / "designs").iterdir())
    assert len(designs) == 2
    for folder in designs:
        for name in ("reward.py", "design.json", "prompt.md", "response.md"):
            assert (folder / name).is_file()
        data = json.loads((folder / "design.json").read_text())
        assert data["validation"]["ok"] and data["id"] == folder.name and data["status"] == "proposed"
    assert (run / "ledger.jsonl").is_file() and (run / "proposal.json").is_file()


@pytest.mark.integration
def test_propose_with_an_openai_compatible_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    replies = Reply(fenced(program(1.0), before="enhancers: gdm"), "no code here, sorry")
    with OpenAIServer([replies]) as server:
        args = ["propose", "--task", "pendulum", "--llm", "openai:local-model", "--llm-base-url", server.url]
        args += [
            "--llm-context",
            "16384",
            "-n",
            "2",
            "--run-dir",
            str(run),
            "--embeddings",
            "hash",
            "--store",
            str(tmp_path / "store"),
        ]
        code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 valid of 2" in out and "no reward program" in out and "LLM calls 1" in out
    folders = sorted(p.name for p in (run / "designs").iterdir())
    assert len(folders) == 2 and folders[1] == "rejected-g0-1"
    rejected = json.loads((run / "designs" / "rejected-g0-1" / "design.json").read_text())
    assert rejected["status"] == "rejected" and "no reward program" in rejected["error"]
    assert not (run / "failed").exists()
    assert read_ledger(run / "ledger.jsonl")[0]["model"] == "local-model"


def test_unreachable_llm_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = OpenAIServer([])
    server.start()
    url = server.url
    server.stop()
    args = ["propose", "--task", "pendulum", "--llm", "openai:m", "--llm-base-url", url, "--retries", "0"]
    args += ["--run-dir", str(tmp_path / "run"), "--embeddings", "hash", "--store", str(tmp_path / "store")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    # Refused before the run directory or the knowledge base is touched.
    assert err.startswith("autogai: error: cannot reach the LLM server at") and "\n" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "store").exists()


def test_a_prompt_that_cannot_fit_the_context_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer([]) as server:
        args = ["propose", "--task", "uav-nearfield", "--llm", "openai:m", "--llm-base-url", server.url]
        args += ["--llm-context", "1024", "--run-dir", str(tmp_path / "run"), "--embeddings", "hash"]
        args += ["--store", str(tmp_path / "store")]
        assert main(args) == 1
        assert server.requests == []  # nothing was sent
    err = capsys.readouterr().err.strip()
    assert err.startswith("autogai: error: the prompt needs about") and "\n" not in err
    assert "1024-token context of openai:m" in err and "--llm-context" in err


def test_the_call_display_reports_start_progress_and_end_in_a_log() -> None:
    out = io.StringIO()
    display = LLMCallDisplay("openai:m", out, interval_s=0.01, log_every_s=0.0)
    status = CallStatus(1, "propose sample 0", streaming=True)
    with display:
        display(status)
        status.tokens_out = 7
        deadline = time.monotonic() + 30
        while "still generating" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        status.finished = True
        display(status)
    lines = out.getvalue().splitlines()
    assert lines[0] == "LLM openai:m: propose sample 0 started"
    assert any(
        line.startswith("LLM openai:m: propose sample 0 still generating") and "7 tokens" in line
        for line in lines
    )
    assert lines[-1].startswith("LLM openai:m: propose sample 0 done after") and "\x1b" not in out.getvalue()


@pytest.mark.integration
def test_ctrl_c_during_a_call_keeps_cache_and_run_directory_consistent(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["propose", "--task", "pendulum", "--llm", "openai:m", "-n", "2", "--llm-context", "16384"]
    args += ["--run-dir", str(run), "--embeddings", "hash", "--store", str(tmp_path / "store")]

    def slow_second(body: dict[str, Any]) -> Any:  # sample 0 at once, sample 1 never in time
        reply = Reply(fenced(program(1.0 + body["seed"]), before="enhancers: plain"))
        return reply if body["seed"] == 0 else Sleep(120, then=reply)

    with OpenAIServer(slow_second, ignore_n=True) as server:
        process = start_cli([*args, "--llm-base-url", server.url], tmp_path)
        cache = run / "llm_cache"
        deadline = time.monotonic() + 200
        while len(server.requests) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert len(server.requests) == 2, process.communicate()[1]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    cached = list(cache.rglob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["request"]["sample_index"] == 0
    assert not list(cache.rglob(".tmp-*"))  # no half-written cache file
    assert not (run / "designs").exists() and not (run / "proposal.json").exists()
    # the same command again: sample 0 from the cache, sample 1 asked afresh
    with OpenAIServer(
        lambda body: Reply(fenced(program(2.0), before="enhancers: plain")), ignore_n=True
    ) as server:
        result = cli([*args, "--llm-base-url", server.url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [body["seed"] for body in server.requests] == [1]
    assert "2 valid of 2" in result.stdout
