"""One proposal round without training: what ``autogai propose`` does.

Every value is checked, and the LLM's provider and server too, before the run directory or the knowledge
base is touched (a bad ``--llm`` is refused in about a second, not after the embeddings have loaded). A
round that fails after the directory was created removes what it created.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autogai.core.errors import AutoGAIError, ConfigError
from autogai.core.validation import (
    check_choice,
    check_count,
    check_range,
    check_seconds,
    check_seed,
    check_text,
)
from autogai.pipeline.preflight import MAX_DESIGNS, check_llm
from autogai.pipeline.rundir import RunDirectory

MAX_RETRIES = 20
MAX_TIMEOUT_S = 3_600.0


@dataclass
class ProposalRound:
    """What a round produced: the proposer's records (usable or not), its LLM usage, where they went."""

    task_id: str
    proposer: str
    records: list[Any]
    usage: dict[str, Any]
    seconds: float
    run_dir: Path

    @property
    def valid(self) -> int:
        return sum(bool(r.ok) for r in self.records)


def default_run_dir(task_id: str) -> Path:
    from autogai.core.paths import runs_root

    return runs_root() / f"propose-{task_id}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_proposal_values(
    *, n: int, temperature: float, timeout: float, retries: int, seed: int, embeddings: str
) -> None:
    check_count("-n", n, high=MAX_DESIGNS, why="LLM samples in one round")
    check_range("--temperature", temperature, 0.0, 2.0)
    check_seconds("--timeout", timeout, low=0.0, high=MAX_TIMEOUT_S)
    check_count("--retries", retries, low=0, high=MAX_RETRIES, why="attempts per LLM request")
    check_seed("--seed", seed)
    check_text("--embeddings", embeddings)


def propose_round(
    *,
    task: str,
    llm: str,
    llm_base_url: str | None,
    n: int,
    run_dir: Path | None,
    action_space: str | None,
    temperature: float,
    timeout: float,
    retries: int,
    llm_structured: str,
    llm_context: int | None,
    llm_concurrency: int | None,
    display: Any,
    cache: Path | None,
    embeddings: str,
    store: Path | None,
    seed: int,
) -> ProposalRound:
    """Ask the proposer for ``n`` designs and write them into the run directory: designs/<id>/ (reward.py,
    design.json, prompt.md, response.md), designs/rejected-g0-<n>/ for unusable replies, ledger.jsonl and
    proposal.json. ``display`` (a context manager the LLM client reports its calls to) shows each call while
    a local model generates."""
    from autogai.rag.embeddings import parse_embedding_spec
    from autogai.rag.llm_calls import STRUCTURED_MODES
    from autogai.tasks.registry import get_task

    check_text("--task", task)
    check_text("--action-space", action_space)
    check_proposal_values(
        n=n, temperature=temperature, timeout=timeout, retries=retries, seed=seed, embeddings=embeddings
    )
    parse_embedding_spec(embeddings)
    check_choice("--llm-structured", llm_structured, STRUCTURED_MODES)
    check_llm(llm, llm_base_url)
    card = get_task(task)
    card.check_step(card.action_space_kwargs(action_space))
    target = Path(run_dir) if run_dir is not None else default_run_dir(card.id)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--run-dir {str(target)!r} is a file, not a directory")
    run = RunDirectory(target)
    before = run.entries()
    run.ensure_writable()
    try:
        return _propose_into(
            run,
            card,
            llm=llm,
            llm_base_url=llm_base_url,
            n=n,
            action_space=action_space,
            temperature=temperature,
            timeout=timeout,
            retries=retries,
            llm_structured=llm_structured,
            llm_context=llm_context,
            llm_concurrency=llm_concurrency,
            display=display,
            cache=cache,
            embeddings=embeddings,
            store=store,
            seed=seed,
        )
    except AutoGAIError:
        run.remove_created(before)
        raise


def _propose_into(run: RunDirectory, card: Any, **values: Any) -> ProposalRound:
    from autogai.rag.knowledge import KnowledgeBase
    from autogai.rag.proposers import make_proposer

    target = run.path
    run.ledger_path.touch()  # present (empty) for the offline proposer too
    kb = KnowledgeBase(persist_dir=values["store"], embeddings=values["embeddings"])
    kb.ensure_ingested()
    display = values["display"]
    proposer = make_proposer(
        values["llm"],
        base_url=values["llm_base_url"],
        temperature=values["temperature"],
        kb=kb,
        cache_dir=values["cache"] if values["cache"] is not None else target / "llm_cache",
        ledger_path=run.ledger_path,
        timeout_s=values["timeout"],
        max_retries=values["retries"],
        seed=values["seed"],
        structured=values["llm_structured"],
        context_tokens=values["llm_context"],
        max_concurrency=values["llm_concurrency"],
        progress=display,
    )
    started = time.perf_counter()
    with display if display is not None else contextlib.nullcontext():
        records = proposer.propose(card, n=values["n"], action_mode=values["action_space"])
    elapsed = time.perf_counter() - started
    for index, record in enumerate(records):
        run.write_proposal(record, label=f"rejected-g0-{index}")
    usage = dict(proposer.usage())
    summary = {
        "task": card.id,
        "proposer": proposer.name,
        "action_space": values["action_space"],
        "n": values["n"],
        "temperature": values["temperature"],
        "records": [r.to_dict() for r in records],
        "usage": usage,
        "seconds": round(elapsed, 2),
    }
    (target / "proposal.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return ProposalRound(
        task_id=card.id,
        proposer=proposer.name,
        records=list(records),
        usage=usage,
        seconds=elapsed,
        run_dir=target,
    )
