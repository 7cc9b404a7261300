"""``autogai propose``: one proposal round without training (see what a proposer would suggest).

The round is :func:`autogai.pipeline.proposal_round.propose_round`; langchain, chromadb and the validator's
sandbox are imported inside the command, so ``autogai --help`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import typer


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
    n: int = typer.Option(3, "-n", "--n", help="Number of designs (LLM samples) to ask for."),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Where to write the designs (default: runs/propose-<task>-<time>)."
    ),
    action_space: str | None = typer.Option(
        None,
        "--action-space",
        help="Action mode the designs are for (continuous, discrete, hybrid; task default).",
    ),
    temperature: float = typer.Option(0.7, "--temperature", help="LLM sampling temperature."),
    timeout: float = typer.Option(
        120.0, "--llm-timeout", "--timeout", help="Limit of one LLM call in seconds (a streamed reply too)."
    ),
    retries: int = typer.Option(
        3, "--retries", help="Retries per LLM request (timeouts, 429/5xx, malformed)."
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
    from autogai.cli._render import print_proposal_round
    from autogai.cli.llm_progress import LLMCallDisplay
    from autogai.pipeline.proposal_round import propose_round

    result = propose_round(
        task=task,
        llm=llm,
        llm_base_url=llm_base_url,
        n=n,
        run_dir=run_dir,
        action_space=action_space,
        temperature=temperature,
        timeout=timeout,
        retries=retries,
        llm_structured=llm_structured,
        llm_context=llm_context,
        llm_concurrency=llm_concurrency,
        display=LLMCallDisplay(llm) if llm.strip().lower() not in ("", "offline", "none") else None,
        cache=cache,
        embeddings=embeddings,
        store=store,
        seed=seed,
    )
    print_proposal_round(result)
    return 0 if result.valid else 1


def register(app: typer.Typer) -> None:
    app.command("propose")(propose)
