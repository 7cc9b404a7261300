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
        None, "--seeds", help="Held-out seeds each design's best configuration is scored on."
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress, only the final table."),
) -> int:
    """Run the design loop: propose -> validate -> tune with Optuna -> rank on held-out seeds -> feed back."""
    from autogai.core.validation import check_choice
    from autogai.pipeline.loop import SearchOptions, run_search
    from autogai.rag.llm import STRUCTURED_MODES

    check_choice("--device", device, ("cpu", "cuda", "auto"))
    check_choice("--llm-structured", llm_structured, STRUCTURED_MODES)
    if workers is None:
        import os

        workers = 1 if preset == "smoke" else max(1, min(2, os.cpu_count() or 1))
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
        workers=workers,
        storage=storage,
        run_dir=run_dir,
        device=device,
        embeddings=embeddings,
        budget_overrides={"total_steps": total_steps} if total_steps else {},
    )
    if storage:
        from autogai.search.storage import check_storage_location

        check_storage_location(storage)  # a mistyped URL fails before the progress display starts
    import signal

    from autogai.cli._render import SearchProgressView, print_leaderboard, print_summary_footer

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt  # stop cleanly: workers re-queue their trials, the run resumes later

    signal.signal(signal.SIGTERM, _terminate)
    view = None if quiet else SearchProgressView()
    try:
        summary = run_search(options, progress=None if view is None else view.update)
    finally:
        if view is not None:
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
) -> int:
    """Join a running search: take its queued trials until its budget is done."""
    from rich.console import Console

    from autogai.search.storage import redact_url
    from autogai.search.worker import Worker

    console = Console(stderr=True)
    w = Worker(storage, run, device=device, exit_when_idle=exit_when_idle, max_trials=max_trials)
    import signal

    signal.signal(signal.SIGTERM, w.request_stop)
    console.print(f"worker joined run [bold]{run}[/] on {redact_url(storage)}")
    w.warm_up()
    done: Any = w.run()
    console.print(f"worker finished {done} trial(s)")
    return 0
