"""The LLM stack end to end against scripted local servers on 127.0.0.1.

The real client stack runs: ``init_chat_model("openai:...", base_url=...)`` -> langchain-openai -> the
openai client -> HTTP, and ``init_chat_model("ollama:...")`` -> langchain-ollama -> the ollama client ->
Ollama's native ``/api/chat``. Only the servers are scripted.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import (
    BROKEN_PROGRAM,
    Garbage,
    OllamaServer,
    OpenAIServer,
    Reply,
    Sleep,
    Status,
    fenced,
    program,
)

from autogai.core.errors import LLMUnavailableError
from autogai.pipeline.rundir import RunDirectory
from autogai.rag.llm import ChatBackend
from autogai.rag.llm_cache import read_ledger
from autogai.rag.llm_calls import MIN_REPLY_TOKENS
from autogai.rag.llm_proposer import LLMProposer
from autogai.rag.prompts import render_reply_format, render_template
from autogai.rag.proposal import validate_source
from autogai.rag.replies import reply_schema
from autogai.tasks.registry import get_task

pytestmark = pytest.mark.integration

VALIDATION = {"n_transitions": 32}

KB_TERM = """---
title: "Pendulum upright cost"
kind: principle
tags: [pendulum, upright]
applies_to: [pendulum]
sources: ["Gymnasium documentation, Pendulum-v1."]
---

# Upright cost

## Upright cost: formula

The cosine of the pole angle is the first observation; 1 - cos(theta) is zero upright.

## Upright cost: when it helps

Dense and bounded, so TD3's critic sees it everywhere.
"""

KB_GUIDE = """---
title: "Enhancers for small continuous control"
kind: enhancer-guide
tags: [enhancers, continuous]
applies_to: [any]
sources: ["Sun et al. (2025), arXiv:2405.20568."]
recommends:
  continuous: [gdm, plain]
---

# Enhancers

## Which enhancer for continuous control

A diffusion actor helps multimodal action landscapes.
"""


# the conftest's kb fixture ingests these instead of the shipped knowledge base
KB_DOCUMENTS = {"pendulum-upright.md": KB_TERM, "enhancers-small.md": KB_GUIDE}


@pytest.fixture(scope="module")
def task() -> Any:
    return get_task("pendulum")


def _backend(url: str, tmp_path: Path, spec: str = "openai:scripted-model", **kwargs: Any) -> ChatBackend:
    options = {"timeout_s": 5.0, "max_retries": 3, "backoff_s": 0.01, "context_tokens": 16384}
    options.update(kwargs)
    return ChatBackend(
        spec, base_url=url, cache_dir=tmp_path / "cache", ledger_path=tmp_path / "ledger.jsonl", **options
    )


def _proposer(backend: ChatBackend, kb: Any) -> LLMProposer:
    return LLMProposer(backend, kb, validation_kwargs=VALIDATION)


def test_reply_shapes_are_extracted_and_validated(tmp_path: Path, kb: Any, task: Any) -> None:
    plain_fence = fenced(
        program(1.0),
        before="Here is my design.\n\nenhancers: gdm\nsources: pendulum-upright#1, made-up#9\n"
        'hyperparameters: {"learning_rate": 0.0003, "bogus": 1}\nrationale: a dense upright cost.',
        after="This keeps the pole up while saving torque.",
    )
    thinking = "<think>Let me think... ```python\nnot code\n```</think>\n" + fenced(
        program(2.0), before="enhancers: plain"
    )
    as_json = json.dumps(
        {
            "designs": [
                {
                    "name": "json design",
                    "enhancers": "gdm+gan",
                    "sources": ["enhancers-small"],
                    "rationale": "structured",
                    "reward_program": program(3.0),
                }
            ]
        }
    )
    several = (
        "### Design: first\nenhancers: gan\nrationale: one\n"
        + fenced(program(4.0))
        + "\n### Design: second\nenhancers: transformer+vae\nrationale: two\n"
        + fenced(program(5.0, name="balance"))
    )
    with OpenAIServer([Reply(plain_fence, thinking, as_json, several)]) as server:
        proposer = _proposer(_backend(server.url, tmp_path), kb)
        records = proposer.propose(task, n=4)
    assert len(server.requests) == 1 and server.requests[0]["n"] == 4  # one request, n samples
    assert server.requests[0]["model"] == "scripted-model"
    assert [r.ok for r in records] == [True] * 5, [r.error for r in records]
    designs = [r.design for r in records]
    assert len({d.id for d in designs}) == 5
    assert [d.enhancers.short_name for d in designs] == ["gdm", "plain", "gdm+gan", "gan", "transformer+vae"]
    first = records[0]
    assert first.design.sources == ("pendulum-upright#1",)  # the invented id was dropped with a note
    assert any("made-up#9" in note for note in first.notes)
    assert dict(first.design.hyperparameter_hints) == {"learning_rate": 0.0003}
    assert "dense upright cost" in first.design.rationale
    assert designs[2].name == "json-design" and designs[2].sources == ("enhancers-small",)
    assert [d.name for d in designs[3:]] == ["first", "second"]
    assert all(d.proposer == "openai:scripted-model" for d in designs)
    assert "Pendulum" in server.prompts()[0] or task.id in server.prompts()[0]
    assert "pendulum-upright#" in server.prompts()[0]  # retrieved chunks carry their ids into the prompt
    ledger = read_ledger(tmp_path / "ledger.jsonl")
    assert len(ledger) == 1 and ledger[0]["ok"] and not ledger[0]["cache_hit"]
    assert ledger[0]["tokens_in"] == 100 and ledger[0]["cost_usd"] == 0.0  # a local server costs nothing
    assert "api_key" not in json.dumps(ledger) and "not-needed" not in json.dumps(ledger)
    run = RunDirectory(tmp_path / "run")
    written = [run.write_proposal(r, label=f"rejected-g0-{i}") for i, r in enumerate(records)]
    assert all((folder / "reward.py").is_file() and (folder / "response.md").is_file() for folder in written)


def test_rejected_program_is_repaired_with_the_validators_reason(tmp_path: Path, kb: Any, task: Any) -> None:
    def script(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        if "was rejected by the validator" in last:
            return Reply(fenced(program(1.5), before="Removed the import."))
        return Reply(fenced(BROKEN_PROGRAM, before="enhancers: gdm"))

    with OpenAIServer(script) as server:
        records = _proposer(_backend(server.url, tmp_path), kb).propose(task, n=1)
    assert len(server.requests) == 2
    (record,) = records
    assert record.ok, record.error
    assert record.rounds == 2
    assert "Removed the import" in record.response and "Repair round 1" in record.prompt
    reason = validate_source(BROKEN_PROGRAM, task, **VALIDATION).reason
    assert reason and reason in server.prompts()[1]
    assert record.design.enhancers.short_name == "gdm"


HUGE_DEFAULT = (
    "PARAMS = {'w': {'default': "
    + "9" * 400
    + ", 'low': 0.0, 'high': 1.0}}\n\n\n"
    + ("def compute_reward(m, p):\n    return p['w'], {'w': p['w']}\n")
)
DEEP_DEFAULT = "def compute_reward(m, p=m" + ".a" * 450 + "):\n    return 0.0, {'z': 0.0}\n"
ESCAPED_NAME = "def compute_reward(m, p):\n    return 1.0, {'\x1b[2K\x1b[1Aaccepted': 1.0}  # raw ESC in the program text\n"


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        (HUGE_DEFAULT, "finite number (got an integer of 400 digits)"),
        (DEEP_DEFAULT, "the signature must be compute_reward(m, p)"),
        (ESCAPED_NAME, "component names must be identifiers"),
    ],
    ids=["400-digit-default", "450-deep-default", "escape-code-name"],
)
def test_programs_that_once_crashed_the_checks_get_their_reason_in_the_repair_prompt(
    tmp_path: Path, kb: Any, task: Any, hostile: str, expected: str
) -> None:
    def script(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        if "was rejected by the validator" in last:
            return Reply(fenced(program(1.5)))
        return Reply(fenced(hostile, before="enhancers: plain"))

    with OpenAIServer(script) as server:
        records = _proposer(_backend(server.url, tmp_path), kb).propose(task, n=1)
    assert len(server.requests) == 2  # a program was found, rejected, and repaired
    assert records[0].ok and records[0].rounds == 2
    repair_prompt = server.prompts()[1]
    assert expected in repair_prompt
    assert "no reward program" not in repair_prompt
    assert "\x1b" not in repair_prompt  # the escape code reaches the model as text, never raw


def test_server_errors_and_a_timeout_are_retried(tmp_path: Path, kb: Any, task: Any) -> None:
    good = fenced(program(1.0), before="enhancers: plain")
    script = [Status(500), Status(503), Sleep(2.5, then=Reply(good)), Garbage(), Status(429), Reply(good)]
    with OpenAIServer(script) as server:
        backend = _backend(server.url, tmp_path, timeout_s=1.0, max_retries=5)
        records = _proposer(backend, kb).propose(task, n=1)
        assert len(server.requests) == 6
    assert records[0].ok
    ledger = read_ledger(tmp_path / "ledger.jsonl")
    assert [entry["ok"] for entry in ledger] == [False] * 5 + [True]
    kinds = [entry["error"].split(":")[0] for entry in ledger[:5]]
    assert kinds == ["server_error", "server_error", "timeout", "malformed", "rate_limit"]


def test_garbage_replies_become_failed_records_and_the_round_goes_on(
    tmp_path: Path, kb: Any, task: Any
) -> None:
    replies = Reply(fenced(program(1.0)), "Sorry, I can't write code today.", fenced(program(2.0)))
    with OpenAIServer([replies]) as server:
        records = _proposer(_backend(server.url, tmp_path), kb).propose(task, n=3)
    assert [r.ok for r in records] == [True, False, True]
    assert records[1].design is None and "no reward program" in records[1].error
    assert records[1].response.startswith("Sorry")
    run = RunDirectory(tmp_path / "run")
    folders = [run.write_proposal(r, label=f"rejected-g0-{i}") for i, r in enumerate(records)]
    assert [f.name for f in folders[1:2]] == ["rejected-g0-1"]
    rejected = json.loads((folders[1] / "design.json").read_text())
    assert rejected["status"] == "rejected" and "no reward program" in rejected["error"]
    assert folders[0].name == records[0].design.id


def test_a_server_ignoring_n_yields_every_sample_within_the_concurrency_limit(tmp_path: Path) -> None:
    active, most = [0], [0]
    lock = threading.Lock()

    class Counting(OpenAIServer):
        def _answer(self, handler: Any, body: dict[str, Any], step: Any) -> None:
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            try:
                super()._answer(handler, body, step)
            finally:
                with lock:
                    active[0] -= 1

    def script(body: dict[str, Any]) -> Sleep:  # the reply depends on the seed only, as a sample should
        return Sleep(0.2, then=Reply(f"sample for seed {body['seed']}"))

    with Counting(script, ignore_n=True) as server:
        backend = _backend(server.url, tmp_path, max_concurrency=2)
        first = backend.complete([("human", "hi")], n=4)
        later = backend.complete([("human", "again")], n=3, first_sample=10)
        url = server.url
    assert [c.text for c in first] == [f"sample for seed {i}" for i in range(4)]
    assert [c.text for c in later] == [f"sample for seed {i}" for i in (10, 11, 12)]
    sent_n = [body.get("n") for body in server.requests]
    assert sent_n == [4] + [None] * 6  # learnt from the first reply: n is never sent again
    assert sorted(body["seed"] for body in server.requests) == [0, 1, 2, 3, 10, 11, 12]
    assert most[0] <= 2
    replay = _backend(url, tmp_path, max_retries=0).complete([("human", "hi")], n=4)
    assert [c.text for c in replay] == [c.text for c in first] and all(c.cache_hit for c in replay)


def _prompt_parts(prompt: str) -> list[str]:
    return [line for line in prompt.splitlines() if line.startswith("## ")]


def test_a_small_context_trims_the_prompt_but_keeps_task_contract_and_format(
    tmp_path: Path, kb: Any, task: Any
) -> None:
    with OpenAIServer([Reply(fenced(program(1.0), before="enhancers: plain"))]) as server:
        backend = _backend(server.url, tmp_path, context_tokens=2048, structured="off")
        records = _proposer(backend, kb).propose(task, n=1)
    (record,) = records
    assert record.ok, record.error
    system, user = (m["content"] for m in server.requests[0]["messages"])
    assert system == render_template("system")  # the reward contract, whole
    assert render_reply_format(1, structured=False, compact=True) in user  # the format block, whole
    assert task.description.strip() in user and task.baseline_reward.strip() in user
    assert task.metrics_table() in user and task.fitness_description.strip() in user
    assert "pendulum-upright#" not in user and "left out to fit the model's context window" in user
    prompt_tokens = backend.count_tokens(server.requests[0]["messages"])
    reply_tokens = server.requests[0]["max_tokens"]  # the reply keeps what the prompt leaves, >= 256
    assert MIN_REPLY_TOKENS <= reply_tokens <= 2048 - prompt_tokens
    (note,) = [n for n in record.notes if n.startswith("prompt fitted to the 2048-token context")]
    assert "knowledge excerpt pendulum-upright#" in note and "the enhancer table" in note
    assert "Left out to fit the context (not sent)" in record.prompt
    (entry,) = read_ledger(tmp_path / "ledger.jsonl")
    assert entry["context_tokens"] == 2048 and entry["prompt_tokens_estimate"] == prompt_tokens
    assert entry["prompt_tokens_before_fit"] > prompt_tokens and entry["reply_tokens"] == reply_tokens
    assert any(item.startswith("knowledge excerpt") for item in entry["left_out"])


def test_the_context_window_comes_from_the_server_where_it_says(tmp_path: Path) -> None:
    with OpenAIServer([], context_length=8192) as server:
        backend = _backend(server.url, tmp_path, context_tokens=None)
        assert backend.context_window().tokens == 8192 and "/v1/models" in backend.context_window().source
    with OpenAIServer([], context_length=None) as server:  # says nothing: the user's figure, else the default
        assert _backend(server.url, tmp_path, context_tokens=None).context_window().tokens == 2048
        assert _backend(server.url, tmp_path, context_tokens=6000).context_window().source == "--llm-context"


def test_structured_and_free_text_replies_become_the_same_design(tmp_path: Path, kb: Any, task: Any) -> None:
    function = (
        "def compute_reward(m, p):\n"
        "    components = {\n"
        '        "upright": -p["upright_weight"] * float(abs(m.next_obs[0] - 1.0)),\n'
        '        "effort": -0.001 * float(abs(m.action[0])),\n'
        "    }\n"
        "    return sum(components.values()), components\n"
    )
    structured = json.dumps(
        {
            "designs": [
                {
                    "name": "upright-cost",
                    "rationale": "A dense upright cost.",
                    "enhancers": "gdm",
                    "params": [
                        {"name": "upright_weight", "default": 1.0, "low": 0.01, "high": 100.0, "log": True}
                    ],
                    "compute_reward": function,
                    "hyperparameters": [{"name": "learning_rate", "value": 0.0003}],
                    "sources": ["pendulum-upright#1"],
                    "parent": "",
                }
            ]
        }
    )
    free_text = (
        "### Design: upright-cost\nenhancers: gdm\n"
        'hyperparameters: {"learning_rate": 0.0003}\nsources: pendulum-upright#1\n'
        "rationale: A dense upright cost.\n\n```python\n"
        'PARAMS = {\n    "upright_weight": {"default": 1.0, "low": 0.01, "high": 100.0, "log": True},\n}\n\n\n'
        + function
        + "```\n"
    )
    designs = []
    for mode, reply in (("on", structured), ("off", free_text)):
        with OpenAIServer([Reply(reply)]) as server:
            (record,) = _proposer(_backend(server.url, tmp_path / mode, structured=mode), kb).propose(
                task, n=1
            )
        assert record.ok, record.error
        assert ("response_format" in server.requests[0]) == (mode == "on")
        designs.append(record.design)
    assert designs[0] == designs[1]
    assert designs[0].hyperparameter_hints == {"learning_rate": 0.0003}
    assert designs[0].sources == ("pendulum-upright#1",) and designs[0].enhancers.short_name == "gdm"


def test_auto_structured_falls_back_from_schema_forms_the_server_refuses(
    tmp_path: Path, kb: Any, task: Any
) -> None:
    good = json.dumps(
        {"designs": [{"name": "j", "enhancers": "plain", "params": [], "compute_reward": program(1.0)}]}
    )

    def llama_cpp_python(body: dict[str, Any]) -> Reply | Status:  # knows only json_object + schema
        return Reply(good) if body["response_format"]["type"] == "json_object" else Status(422)

    with OpenAIServer(llama_cpp_python) as server:
        proposer = _proposer(_backend(server.url, tmp_path / "a"), kb)
        first = proposer.propose(task, n=1)
        proposer.propose(task, n=1, generation=1, past_designs=[first[0].design])
    forms = [body["response_format"]["type"] for body in server.requests]
    assert forms == ["json_schema", "json_object", "json_object"]
    assert server.requests[1]["response_format"]["schema"] == reply_schema(1)
    assert first[0].ok, first[0].error

    def plain_server(body: dict[str, Any]) -> Reply | Status:  # refuses every response_format
        return (
            Status(400) if "response_format" in body else Reply(fenced(program(2.0), before="enhancers: gan"))
        )

    with OpenAIServer(plain_server) as server:
        (record,) = _proposer(_backend(server.url, tmp_path / "b"), kb).propose(task, n=1)
    assert record.ok and record.design.enhancers.short_name == "gan"
    assert "### Design:" in server.prompts()[-1]  # asked again with the free-text format block
    with OpenAIServer(plain_server) as server, pytest.raises(LLMUnavailableError, match="refuses structured"):
        _proposer(_backend(server.url, tmp_path / "c", structured="on"), kb).propose(task, n=1)


def test_progress_shows_each_call_and_the_tokens_of_a_streamed_reply(tmp_path: Path) -> None:
    seen: list[tuple[str, int, bool]] = []
    with OllamaServer([Reply("x" * 1000)], context_length=32768) as server:
        backend = _backend(
            server.url,
            tmp_path,
            spec="ollama:qwen3:8b",
            context_tokens=None,
            progress=lambda s: seen.append((s.label, s.tokens_out, s.finished)),
        )
        backend.complete([("human", "hi")], n=1)
    assert seen[0] == ("propose sample 0", 0, False)
    assert seen[-1][2] and seen[-1][1] == 40  # the final count is the server's
    assert [tokens for _, tokens, _ in seen[1:-1]] == [1, 2, 3, 4, 5]  # one per streamed piece
    options = server.requests[0]["options"]
    assert options["num_ctx"] % 2048 == 0 and options["num_ctx"] <= 32768 and options["seed"] == 0


def test_unreachable_server_raises_one_clear_line(tmp_path: Path) -> None:
    server = OpenAIServer([])
    server.start()
    url = server.url
    server.stop()  # nothing listens on the port any more
    backend = _backend(url, tmp_path, max_retries=1)
    with pytest.raises(LLMUnavailableError) as info:
        backend.complete([("human", "hello")])
    message = str(info.value)
    assert "\n" not in message and "openai:scripted-model" in message and "2 attempt" in message


def test_second_identical_run_replays_from_the_cache_without_network(
    tmp_path: Path, kb: Any, task: Any
) -> None:
    replies = Reply(
        fenced(program(1.0), before="enhancers: gdm"), fenced(program(2.0), before="enhancers: gan")
    )
    with OpenAIServer([replies]) as server:
        first = _proposer(_backend(server.url, tmp_path), kb).propose(task, n=2)
        url = server.url
    assert len(server.requests) == 1
    # the server is gone; the same search replays every reply from the cache
    replay_backend = _backend(url, tmp_path, max_retries=0)
    second = _proposer(replay_backend, kb).propose(task, n=2)
    assert [r.design.id for r in second] == [r.design.id for r in first]
    usage = replay_backend.usage()
    assert usage["cache_hits"] == 2 and usage["calls"] == 2 and usage["errors"] == 0
    ledger = read_ledger(tmp_path / "ledger.jsonl")
    assert [e["cache_hit"] for e in ledger] == [False, True, True]


def test_structured_mode_asks_for_json(tmp_path: Path, kb: Any, task: Any) -> None:
    reply = json.dumps(
        {"designs": [{"name": "j", "enhancers": ["gdm", "gan"], "reward_program": program(1.0)}]}
    )
    with OpenAIServer([Reply(reply)]) as server:
        records = _proposer(_backend(server.url, tmp_path, structured="on"), kb).propose(task, n=1)
    response_format = server.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == reply_schema(1)
    assert '"designs"' in server.prompts()[0]
    assert records[0].ok and records[0].design.enhancers.short_name == "gdm+gan"


def test_reflection_prompt_carries_feedback_and_the_parent_is_kept(
    tmp_path: Path, kb: Any, task: Any
) -> None:
    from autogai.core.types import ComponentSummary, Design, DesignFeedback

    parent = Design(reward_source=program(1.0), name="parent-design")
    feedback = [
        DesignFeedback(
            design_id=parent.id,
            name=parent.name,
            enhancers="plain",
            reward_source=parent.reward_source,
            score_mean=-300.0,
            components={"effort": ComponentSummary(mean=-0.1, min=-0.2, max=0.0, fitness_correlation=-0.6)},
        )
    ]
    reply = fenced(
        program(2.0), before=f"parent: {parent.id}\nenhancers: gdm\nrationale: dropped effort's weight."
    )
    with OpenAIServer([Reply(reply)]) as server:
        records = _proposer(_backend(server.url, tmp_path), kb).propose(
            task, n=1, feedback=feedback, generation=1, past_designs=[parent]
        )
    prompt = server.prompts()[0]
    assert (
        "How the previous designs did" in prompt
        and parent.id in prompt
        and "corr. with fitness -0.60" in prompt
    )
    (record,) = records
    assert record.ok and record.design.parent == parent.id and record.design.generation == 1
    assert read_ledger(tmp_path / "ledger.jsonl")[0]["purpose"] == "reflect"


def test_ollama_native_chat_api(tmp_path: Path, kb: Any, task: Any) -> None:
    replies = [
        Status(500),
        Reply(fenced(program(1.0), before="<think>hmm</think>\nenhancers: gdm")),
        Reply(fenced(program(2.0), before="enhancers: plain")),
    ]
    with OllamaServer(replies) as server:
        backend = _backend(server.url, tmp_path, spec="ollama:qwen3:8b", max_concurrency=1)
        records = _proposer(backend, kb).propose(task, n=2)
    assert all(path == "/api/chat" for path in server.paths)
    assert len(server.requests) == 3  # no n in Ollama: one request per sample, the 500 retried
    assert all(body["model"] == "qwen3:8b" for body in server.requests)
    assert server.requests[-1]["format"] == reply_schema(1)  # structured by default on native Ollama
    assert sorted(r.design.enhancers.short_name for r in records if r.ok) == ["gdm", "plain"]
    usage = backend.usage()
    assert usage["tokens_in"] == 160 and usage["cost_usd"] == 0.0
    # and the replay needs no server
    replay = _backend(server.url, tmp_path, spec="ollama:qwen3:8b", max_retries=0)
    again = _proposer(replay, kb).propose(task, n=2)
    assert [r.design.id for r in again] == [r.design.id for r in records]
    assert replay.usage()["cache_hits"] == 2
