"""Reply parsing, enhancer/hint/source parsing, specs, cache keys and the ledger (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import fenced, program

from autogai.core.errors import ConfigError
from autogai.rag.llm_cache import CachedReply, Ledger, ResponseCache, cache_key, estimate_cost, read_ledger
from autogai.rag.llm_calls import LLMSpec, classify_error, sanitize_url
from autogai.rag.replies import parse_enhancers, parse_hints, parse_reply, parse_sources, strip_thinking


def test_free_form_reply_with_metadata_after_the_code() -> None:
    reply = (
        "Sure! Here is a design.\n"
        + fenced(program(1.0))
        + "\n**Enhancers:** `gdm + gan`\n**Sources:** kb-a#1, kb-b#0\n**Rationale:** dense and bounded.\n"
    )
    (design,) = parse_reply(reply)
    assert "def compute_reward" in design.program
    assert design.enhancers == "gdm + gan" and design.sources == "kb-a#1, kb-b#0"
    assert design.rationale == "dense and bounded."


def test_several_programs_without_headings_are_split() -> None:
    reply = (
        "enhancers: gdm\n"
        + fenced(program(1.0))
        + "\nenhancers: plain\n"
        + fenced(program(2.0))
        + "\nThe end."
    )
    designs = parse_reply(reply)
    assert [d.enhancers for d in designs] == ["gdm", "plain"]
    assert "1.0" in designs[0].program and "2.0" in designs[1].program


def test_reasoning_blocks_are_dropped_in_every_form() -> None:
    # an unclosed block runs to the end of the reply: code in it is a draft, never the answer
    assert strip_thinking("answer\n<think>a\n```python\nx\n```") == "answer\n"
    # a preamble ended by a closing tag whose opening tag was in the prompt template
    assert strip_thinking("draft ```python\nx\n```\n</reasoning>\nfinal") == "\nfinal"
    reply = "<reasoning>try " + fenced(program(9.0)) + "</reasoning>\n" + fenced(program(1.0))
    (design,) = parse_reply(reply)
    assert "1.0" in design.program and "9.0" not in design.program


def test_a_reply_cut_off_inside_its_fence_still_yields_the_program() -> None:
    cut = fenced(program(1.0)).rstrip().removesuffix("```")
    (design,) = parse_reply("enhancers: gdm\n" + cut)
    assert design.enhancers == "gdm" and "return" in design.program


def test_json_in_a_fence_after_reasoning() -> None:
    reply = (
        "<think>plan</think>\n```json\n"
        + json.dumps({"reward_program": program(1.0), "enhancers": "vae"})
        + "\n```"
    )
    (design,) = parse_reply(reply)
    assert design.enhancers == "vae" and "compute_reward" in design.program


def test_replies_without_a_program() -> None:
    assert parse_reply("I cannot help with that.") == []
    assert parse_reply('{"designs": [{"name": "x", "reward_program": "print(1)"}]}') == []


@pytest.mark.parametrize(
    ("value", "short", "noted"),
    [
        ("gdm+gan", "gdm+gan", False),
        ("GDM + GAN (diffusion actor with a GAN critic)", "gdm+gan", False),
        (["transformer", "vae"], "transformer+vae", False),
        ({"policy": "diffusion"}, "gdm", False),
        ("plain", "plain", False),
        ("a diffusion policy and an adversarial critic", "gdm+gan", True),
        ("quantum annealer", "plain", True),
        (None, "plain", True),
    ],
)
def test_enhancers(value: object, short: str, noted: bool) -> None:
    combo, note = parse_enhancers(value)
    assert combo.short_name == short
    assert (note is not None) == noted


def test_hints_and_sources() -> None:
    hints, notes = parse_hints('{"learning_rate": 0.001, "net_arch": [64, 64], "colour": "red", "tau": true}')
    assert hints == {"learning_rate": 0.001, "net_arch": [64, 64]} and "colour" in notes[0]
    assert parse_hints("batch_size=128, gamma: 0.98")[0] == {"batch_size": 128, "gamma": 0.98}
    assert parse_hints("none") == ({}, [])
    sources, notes = parse_sources("[kb-a#1], `kb-b`, invented#3", ["kb-a#1", "kb-b#2"])
    assert sources == ("kb-a#1", "kb-b") and "invented#3" in notes[0]


def test_llm_spec_and_urls() -> None:
    assert LLMSpec.parse("ollama:qwen3:8b") == LLMSpec("ollama", "qwen3:8b")
    assert LLMSpec.parse("gpt-4o-mini") == LLMSpec("openai", "gpt-4o-mini")
    with pytest.raises(ConfigError, match="provider:model"):
        LLMSpec.parse("mystery")
    assert sanitize_url("http://user:secret@host:11434/x") == "http://host:11434/x"


def test_error_classes() -> None:
    class Fake(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"status {status}")
            self.status_code = status

    assert classify_error(Fake(429)).kind == "rate_limit" and classify_error(Fake(429)).retryable
    assert classify_error(Fake(503)).retryable
    assert not classify_error(Fake(401)).retryable and classify_error(Fake(401)).kind == "auth"
    assert classify_error(TimeoutError("slow")).kind == "timeout"
    assert classify_error(ConnectionError("refused")).kind == "connection"
    assert classify_error(ValueError("bad json")).kind == "malformed"

    class LengthFinishReasonError(Exception):  # the openai client's, matched by name as the others are
        pass

    cut = classify_error(LengthFinishReasonError("Could not parse response content as the length limit"))
    assert cut.kind == "length" and not cut.retryable  # the same seed would cut the same reply again


def test_cache_key_and_files(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "provider": "openai",
        "model": "m",
        "temperature": 0.7,
        "messages": [("human", "hi")],
    }
    key0 = cache_key(**base, sample_index=0)
    assert key0 == cache_key(**base, sample_index=0)
    assert key0 != cache_key(**base, sample_index=1)
    assert key0 != cache_key(**{**base, "temperature": 0.2}, sample_index=0)
    assert key0 != cache_key(**{**base, "messages": [("human", "hi!")]}, sample_index=0)
    cache = ResponseCache(tmp_path / "cache")
    cache.put(key0, CachedReply("reply", 3, 4), request={"model": "m"})
    assert cache.get(key0) == CachedReply("reply", 3, 4, {})
    assert cache.get(cache_key(**base, sample_index=5)) is None


def test_ledger_totals_and_cost(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record({"ok": True, "cache_hit": False, "tokens_in": 1000, "tokens_out": 100, "cost_usd": 0.5})
    ledger.record({"ok": True, "cache_hit": True, "tokens_in": 1000, "tokens_out": 100})
    ledger.record({"ok": False, "cache_hit": False, "error": "timeout: Bearer sk-abcdefghijklmnop"})
    assert ledger.totals["calls"] == 3 and ledger.totals["cache_hits"] == 1 and ledger.totals["errors"] == 1
    assert ledger.totals["tokens_in"] == 1000 and ledger.totals["cost_usd"] == 0.5
    text = (tmp_path / "ledger.jsonl").read_text()
    assert "sk-abcdefghijklmnop" not in text and len(read_ledger(tmp_path / "ledger.jsonl")) == 3
    assert estimate_cost("openai", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert estimate_cost("openai", "gpt-4o-mini-2024-07-18", 0, 1_000_000) == pytest.approx(0.60)
    assert estimate_cost("openai", "unknown-model", 10, 10) is None
    assert estimate_cost("ollama", "qwen3", 10, 10) == 0.0
