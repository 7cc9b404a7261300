"""``autogai search`` (the design loop) and ``autogai worker`` (join a run from another process/machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("worker")(worker)


def search(
    task: str = typer.Option(
        "uav-nearfield", "--task", help="Task id (autogai env/task list), a .py card or module:NAME."
    ),
    action_space: str = typer.Option(
        None, "--action-space", help="continuous | discrete | hybrid (UAV task)."
    ),
    llm: str = typer.Option(
        None,
        "--llm",
        help="offline (default) or a LangChain provider string, e.g. openai:gpt-4o-mini, ollama:qwen2.5.",
    ),
    llm_base_url: str = typer.Option(
        None,
        "--llm-base-url",
        help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Ollama /v1).",
    ),
    llm_structured: str = typer.Option(
        "auto", "--llm-structured", help="Schema-constrained LLM replies: auto | on | off (free text)."
    ),
    llm_context: int = typer.Option(
        None,
        "--llm-context",
        min=256,
        help="The model's context window in tokens when the server does not say.",
    ),
    llm_timeout: float = typer.Option(
        120.0, "--llm-timeout", min=1.0, help="Limit of one LLM call in seconds."
    ),
    llm_concurrency: int = typer.Option(
        None, "--llm-concurrency", min=1, help="Samples asked at once from a server that ignores n."
    ),
    preset: str = typer.Option("quick", "--preset", help="Budget: smoke | quick | standard | paper."),
    generations: int = typer.Option(
        None, "--generations", help="Propose/evaluate/feedback rounds (preset default)."
    ),
    designs: int = typer.Option(None, "--designs", help="Designs proposed per generation."),
    trials: int = typer.Option(None, "--trials", help="Optuna trials per design in the first halving rung."),
    seeds: int = typer.Option(
        None,
        "--seeds",
        help="Test seeds the finalists are retrained on once, at the end (at least 10 for a verdict).",
    ),
    time_budget: str = typer.Option(
        None,
        "--time-budget",
        help="Wall-clock budget of the whole search, e.g. 15m, 90m, 2h (quick: 15m, standard: 90m); "
        "the counts are planned to fit it on this machine.",
    ),
    seed: int = typer.Option(
        0, "--seed", help="Search seed: the same seed, task, plan and one worker repeat a run."
    ),
    plan: Path = typer.Option(
        None, "--plan", help="Repeat a saved plan (RUN/plan.json) instead of planning again."
    ),
    scenario: str = typer.Option(
        None,
        "--scenario",
        help="fixed | random (UAV task): random trains on random scenarios and scores on held-out ones.",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Local worker processes running trials (default: 1 for smoke, else up to 2; 0: external `autogai worker`s only).",
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        help="Optuna storage URL (default sqlite:///<run>/optuna.db; postgresql://... to scale out).",
    ),
    run_dir: Path = typer.Option(
        None,
        "--run-dir",
        help="Run directory (default runs/<task>-<preset>-<llm>); the same command resumes it.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    embeddings: str = typer.Option(
        None,
        "--embeddings",
        help="Knowledge-base embeddings: local (default), hash, ollama:<model>, openai:<model>.",
    ),
    total_steps: int = typer.Option(None, "--steps", help="Override the preset's training steps per trial."),
    storage_outage_limit: str = typer.Option(
        None,
        "--storage-outage-limit",
        help="How long to wait for an unreachable storage before stopping (e.g. 90s, 5m; default 10m).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress, only the final table."),
) -> int:
    """Run the design loop: propose -> tune -> choose on validation seeds -> feed back; then test the
    finalists once on fresh seeds for the verdict."""
    from autogai.pipeline.loop import SearchOptions, run_search
    from autogai.pipeline.preflight import check_search, default_workers
    from autogai.search.plan import parse_duration

    time_budget_s = parse_duration(time_budget) if time_budget is not None else None
    options = SearchOptions(
        task=task,
        action_space=action_space,
        llm=llm,
        llm_base_url=llm_base_url,
        llm_structured=llm_structured,
        llm_context=llm_context,
        llm_timeout=llm_timeout,
        llm_concurrency=llm_concurrency,
        preset=preset,
        generations=generations,
        designs=designs,
        trials=trials,
        seeds=seeds,
        workers=default_workers(preset) if workers is None else workers,
        storage=storage,
        run_dir=run_dir,
        device=device,
        embeddings=embeddings,
        budget_overrides={"total_steps": total_steps} if total_steps is not None else {},
        time_budget_s=time_budget_s,
        seed=seed,
        plan_path=plan,
        scenario=scenario,
    )
    checked = check_search(
        options
    )  # everything that can be refused is refused before the run directory exists
    _set_outage_limit(storage_outage_limit)
    from autogai.cli._render import SearchProgressView, print_leaderboard, print_summary_footer

    # A stop (Ctrl-C, a scheduler's SIGTERM) unwinds run_search: workers hand their trials back, and
    # cli/main.py prints how to resume.
    view = SearchProgressView(quiet=quiet, notes=checked.notes)
    try:
        summary = run_search(options, progress=view.update, checked=checked)
    finally:
        view.close()
    print_leaderboard(summary.leaderboard, title=f"{summary.run_name}: leaderboard")
    print_summary_footer(summary)
    return 0


def worker(
    storage: str = typer.Option(
        ..., "--storage", help="The run's storage URL (e.g. postgresql://user:pass@host/db)."
    ),
    run: str = typer.Option(..., "--run", help="Run name (the run directory's name)."),
    device: str = typer.Option(None, "--device", help="Override the run's device on this machine."),
    max_trials: int = typer.Option(None, "--max-trials", help="Stop after this many trials."),
    exit_when_idle: bool = typer.Option(
        False,
        "--exit-when-idle",
        help="Stop when nothing is queued instead of waiting for the run to finish.",
    ),
    storage_outage_limit: str = typer.Option(
        None,
        "--storage-outage-limit",
        help="How long to wait for an unreachable storage before stopping (e.g. 90s, 5m; default 10m).",
    ),
) -> int:
    """Join a running search: take its queued trials until its budget is done."""
    from rich.console import Console

    from autogai.cli._render import safe
    from autogai.pipeline.preflight import check_worker
    from autogai.search.storage import redact_url
    from autogai.search.worker import Worker

    check_worker(storage, run, device=device, max_trials=max_trials)
    _set_outage_limit(storage_outage_limit)
    console = Console(stderr=True)
    w = Worker(storage, run, device=device, exit_when_idle=exit_when_idle, max_trials=max_trials)
    w.install_signal_handlers()  # SIGTERM/SIGINT: hand the batch back to the queue, exit 143/130
    console.print(f"worker joined run [bold]{safe(run)}[/] on {safe(redact_url(storage))}")
    w.warm_up()
    done: Any = w.run()
    console.print(f"worker finished {done} trial(s)")
    return w.exit_code


def _set_outage_limit(text: str | None) -> None:
    """``--storage-outage-limit``: checked here, handed to this process and its workers by environment."""
    if not text:
        return
    import os

    from autogai.search.storage import OUTAGE_LIMIT_ENV, parse_duration

    parse_duration(text)
    os.environ[OUTAGE_LIMIT_ENV] = text
