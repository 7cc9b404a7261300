"""``autogai propose``: one proposal round without training (see what a proposer would suggest).

langchain, chromadb and the validator's sandbox are imported inside the command, so ``autogai --help``
stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from autogai.rag.proposal import ProposalRecord


def _default_run_dir(task_id: str) -> Path:
    from autogai.core.paths import runs_root

    return runs_root() / f"propose-{task_id}-{time.strftime('%Y%m%d-%H%M%S')}"


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_table(records: Sequence[ProposalRecord]) -> str:
    """The plain-text table ``propose`` prints: one row per record (columns sized to content, capped)."""
    columns = (("id", 12), ("name", 40), ("enhancers", 24), ("components", 48), ("valid", 5), ("sources", 64))
    rows = []
    for record in records:
        design = record.design
        if design is None:
            rows.append(("-", "(no design)", "-", "-", "no", "-"))
            continue
        rows.append(
            (
                design.id,
                design.name or "-",
                design.enhancers.short_name,
                ", ".join(record.component_names) or "?",
                "yes" if record.ok else "no",
                ", ".join(design.sources) or "-",
            )
        )
    widths = [
        min(cap, max([len(name), *(len(" ".join(str(row[i]).split())) for row in rows)]))
        for i, (name, cap) in enumerate(columns)
    ]
    lines = ["  ".join(name.ljust(w) for (name, _), w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_cell(v, w).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def propose(
    task: str = typer.Option(
        "uav-nearfield", "--task", "-t", help="Task id (uav-nearfield, pendulum) or a task file."
    ),
    llm: str = typer.Option(
        "offline",
        "--llm",
        help="offline (default, no LLM) or provider:model, e.g. openai:gpt-4o-mini, ollama:qwen3:8b.",
    ),
    llm_base_url: str | None = typer.Option(
        None,
        "--llm-base-url",
        help="Server URL: any OpenAI-compatible .../v1 endpoint, or Ollama's root URL.",
    ),
    n: int = typer.Option(3, "-n", "--n", min=1, help="Number of designs (LLM samples) to ask for."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Where to write the designs (default: runs/propose-<task>-<time>)."
    ),
    action_space: str | None = typer.Option(
        None,
        "--action-space",
        help="Action mode the designs are for (continuous, discrete, hybrid; task default).",
    ),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0, help="LLM sampling temperature."),
    timeout: float = typer.Option(
        120.0,
        "--llm-timeout",
        "--timeout",
        min=1.0,
        help="Limit of one LLM call in seconds (a streamed reply too).",
    ),
    retries: int = typer.Option(
        3, "--retries", min=0, help="Retries per LLM request (timeouts, 429/5xx, malformed)."
    ),
    llm_structured: str = typer.Option(
        "auto",
        "--llm-structured",
        help="Schema-constrained replies: auto (where the server supports them), on, off (free text).",
    ),
    llm_context: int | None = typer.Option(
        None,
        "--llm-context",
        min=256,
        help="The model's context window in tokens when the server does not report it (prompts are fitted to it).",
    ),
    llm_concurrency: int | None = typer.Option(
        None,
        "--llm-concurrency",
        min=1,
        help="Samples asked at once from a server that ignores n (default 1 for a local server, else 4).",
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="LLM response cache directory (default: <run-dir>/llm_cache)."
    ),
    embeddings: str = typer.Option(
        "local", "--embeddings", help="Knowledge-base embeddings: local, hash, ollama:<m>, openai:<m>."
    ),
    store: Path | None = typer.Option(
        None, "--store", help="Knowledge-base vector store directory (default: <cache>/kb)."
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed (shifts the LLM sample indices; the offline proposer is deterministic)."
    ),
) -> int:
    """One proposal round, no training: writes designs/<id>/ (reward.py, design.json, prompt.md,
    response.md), designs/rejected-g0-<n>/ for unusable replies, ledger.jsonl, and prints a summary."""
    from autogai.cli.llm_progress import LLMCallDisplay
    from autogai.core.validation import check_choice
    from autogai.pipeline.rundir import RunDirectory
    from autogai.rag.knowledge import KnowledgeBase
    from autogai.rag.llm import STRUCTURED_MODES
    from autogai.rag.proposers import make_proposer
    from autogai.tasks.registry import get_task

    check_choice("--llm-structured", llm_structured, STRUCTURED_MODES)
    card = get_task(task)
    card.check_step(card.action_space_kwargs(action_space))
    target = Path(run_dir) if run_dir is not None else _default_run_dir(card.id)
    run = RunDirectory(target)
    run.ensure_writable()
    (target / "ledger.jsonl").touch()  # present (empty) for the offline proposer too
    kb = KnowledgeBase(persist_dir=store, embeddings=embeddings)
    kb.ensure_ingested()
    display = LLMCallDisplay(llm) if llm.strip().lower() not in ("", "offline", "none") else None
    proposer = make_proposer(
        llm,
        base_url=llm_base_url,
        temperature=temperature,
        kb=kb,
        cache_dir=cache if cache is not None else target / "llm_cache",
        ledger_path=target / "ledger.jsonl",
        timeout_s=timeout,
        max_retries=retries,
        seed=seed,
        structured=llm_structured,
        context_tokens=llm_context,
        max_concurrency=llm_concurrency,
        progress=display,
    )
    started = time.perf_counter()
    with display if display is not None else contextlib.nullcontext():
        records = proposer.propose(card, n=n, action_mode=action_space)
    elapsed = time.perf_counter() - started
    for index, record in enumerate(records):
        run.write_proposal(record, label=f"rejected-g0-{index}")
    usage = proposer.usage()
    (target / "proposal.json").write_text(
        json.dumps(
            {
                "task": card.id,
                "proposer": proposer.name,
                "action_space": action_space,
                "n": n,
                "temperature": temperature,
                "records": [r.to_dict() for r in records],
                "usage": usage,
                "seconds": round(elapsed, 2),
            },
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    valid = sum(r.ok for r in records)
    typer.echo(
        f"proposer {proposer.name} on {card.id}: {valid} valid of {len(records)} design(s) in {elapsed:.1f} s"
    )
    typer.echo(summary_table(records))
    for record in records:
        if not record.ok:
            label = record.design.id if record.design is not None else f"sample {record.sample_index}"
            typer.echo(f"  {label}: {record.error}")
    if proposer.name != "offline":
        cost = usage.get("cost_usd")
        typer.echo(
            f"LLM calls {usage.get('calls', 0)} (cache hits {usage.get('cache_hits', 0)}, errors "
            f"{usage.get('errors', 0)}), tokens in/out {usage.get('tokens_in', 0)}/{usage.get('tokens_out', 0)}, "
            f"estimated cost ${cost:.4f}"
            if isinstance(cost, (int, float))
            else ""
        )
    typer.echo(f"written to {target}")
    return 0 if valid else 1


def register(app: typer.Typer) -> None:
    app.command("propose")(propose)
