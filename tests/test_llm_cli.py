"""``autogai propose``: offline by default, and through a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_helpers import OpenAIServer, Reply, fenced, program

from autogai.cli.main import main
from autogai.rag.llm_cache import read_ledger


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
        args += ["-n", "2", "--run-dir", str(run), "--embeddings", "hash", "--store", str(tmp_path / "store")]
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
