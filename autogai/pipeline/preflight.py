"""Checks that run before a command creates anything: a refused command leaves nothing behind.

``autogai search`` calls :func:`check_search` before :func:`~autogai.pipeline.loop.run_search` creates the
run directory; ``autogai propose`` calls :func:`check_llm` before it builds the knowledge base. Each check is
what a user can get wrong (values and their cost, device, LLM provider and server, storage URL, task card,
action space, an existing run directory) and fails with one :class:`~autogai.core.errors.AutoGAIError` line.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from autogai.core.errors import ConfigError, LLMUnavailableError
from autogai.core.validation import check_choice, check_count, check_text, cost_line, max_env_steps

if TYPE_CHECKING:
    from autogai.pipeline.loop import SearchOptions
    from autogai.search.budget import SearchBudget
    from autogai.tasks.card import TaskCard

DEVICES = ("cpu", "cuda", "auto")
REACH_TIMEOUT_S = 3.0
"""How long a local LLM server may take to accept a connection before the command gives up."""

# Upper limits of the search's counts: beyond them a search is a typo, not a plan.
MAX_GENERATIONS = 1_000
MAX_DESIGNS = 100
"""Designs per generation: LLM samples asked for in one request round."""
MAX_TRIALS = 10_000
MAX_SEEDS = 1_000
MAX_LOCAL_WORKERS_PER_CORE = 4


@dataclass(frozen=True)
class CheckedSearch:
    """What :func:`check_search` resolved; :func:`~autogai.pipeline.loop.run_search` starts from it."""

    task: TaskCard
    action_kwargs: dict[str, Any]
    budget: SearchBudget
    run_dir: Path
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Environment options of the search (``scenario="random"``)."""
    notes: list[str] = field(default_factory=list)
    """Lines for the user before the run starts (the cost of a large budget)."""


def check_device(device: str) -> None:
    """``cpu``/``cuda``/``auto``; ``cuda`` on a machine where torch sees no GPU is refused up front."""
    check_choice("--device", device, DEVICES)
    if device == "cuda":
        from autogai.agents.td3 import resolve_device

        resolve_device(device)


def check_llm(llm: str | None, base_url: str | None = None) -> None:
    """The provider can make a client (package installed, key set) and a server named by ``base_url``
    (or a local Ollama) accepts connections. ``None``/``offline`` needs nothing."""
    check_text("--llm", llm)
    check_text("--llm-base-url", base_url)
    if llm is None or llm.strip().lower() in ("offline", "none"):
        if base_url is not None:
            raise ConfigError(
                "--llm-base-url needs --llm provider:model (the offline proposer calls no server)"
            )
        return
    from autogai.rag.llm import ChatBackend
    from autogai.rag.llm_calls import LLMSpec, sanitize_url

    spec = LLMSpec.parse(llm)
    ChatBackend(spec, base_url=base_url).ensure_client()
    url = base_url
    if url is None and spec.provider == "ollama":
        url = os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
    if url is not None:
        _check_reachable(url, shown=sanitize_url(url) or "")


def _check_reachable(url: str, *, shown: str) -> None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise ConfigError(f"LLM server URL {shown!r} has no host; e.g. http://127.0.0.1:8000/v1")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"LLM server URL {shown!r} has an invalid port") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LLMUnavailableError(
            f"cannot reach the LLM server at {shown} ({reason}); start it or fix --llm-base-url"
        ) from None


def check_storage(url: str | None) -> None:
    """A storage URL: a known scheme, a writable place for a file, a database that answers."""
    check_text("--storage", url)
    if url is None:
        return
    from autogai.search.storage import check_storage_location, is_local_storage, make_storage

    check_storage_location(url)
    if not is_local_storage(url):
        make_storage(url, heartbeat=False)  # a database server must answer before the run starts


def default_workers(preset: str) -> int:
    """Local worker processes when ``--workers`` is not given: one for smoke, else up to two, never more
    than the cores this process may use (``taskset`` narrows them)."""
    from autogai.search.plan import usable_cores

    return 1 if preset == "smoke" else max(1, min(2, usable_cores()))


def check_worker(storage: str, run: str, *, device: str | None, max_trials: int | None) -> None:
    """``autogai worker``'s values: a storage URL, a run name, a device, a trial count."""
    check_text("--storage", storage)
    check_text("--run", run)
    if device is not None:
        check_device(device)
    if max_trials is not None:
        check_count("--max-trials", max_trials, high=MAX_TRIALS, why="the most trials a design gets")
    from autogai.search.storage import storage_scheme

    storage_scheme(storage)


def search_runs(budget: SearchBudget) -> int:
    """Training runs a search makes at most: every design's trials in every halving rung and its validation
    runs, plus the finalists' test seeds (the baseline counts as one more design)."""
    designs = budget.generations * budget.designs_per_generation + 1
    validation = budget.validation_top_k * budget.validation_seeds * (budget.halving_rungs + 1)
    per_design = budget.trials_per_design * (budget.halving_rungs + 1) + validation
    return designs * per_design + (budget.finalists + 1) * budget.test_seeds


def check_search(options: SearchOptions) -> CheckedSearch:
    """Every check of ``autogai search`` that needs no run directory; raises one line, creates nothing."""
    from autogai.pipeline.options import default_run_dir, resolve_budget
    from autogai.pipeline.rundir import RunDirectory
    from autogai.tasks import get_task

    for name, text in (("--task", options.task), ("--preset", options.preset)):
        check_text(name, text)
    check_text("--action-space", options.action_space)
    check_text("--embeddings", options.embeddings)
    for name, value, high in (
        ("--generations", options.generations, MAX_GENERATIONS),
        ("--designs", options.designs, MAX_DESIGNS),
        ("--trials", options.trials, MAX_TRIALS),
        ("--seeds", options.seeds, MAX_SEEDS),
    ):
        if value is not None:
            check_count(name, value, high=high, why="a search larger than this is a typo, not a plan")
    cores = os.cpu_count() or 1
    check_count(
        "--workers",
        options.workers,
        low=0,
        high=MAX_LOCAL_WORKERS_PER_CORE * cores,
        why=f"{MAX_LOCAL_WORKERS_PER_CORE} per CPU core of this machine",
    )
    steps = options.budget_overrides.get("total_steps")
    if steps is not None:
        check_count("--steps", steps, high=max_env_steps(), why="30 days of training on this machine")
    check_count("--seed", options.seed, low=0, high=2**31 - 1, why="the largest seed the search derives from")
    if options.plan_path is not None and not Path(options.plan_path).is_file():
        raise ConfigError(f"--plan {str(options.plan_path)!r} is not a file (give a run's plan.json)")
    env_kwargs: dict[str, Any] = {}
    if options.scenario is not None:
        check_choice("--scenario", options.scenario, ("fixed", "random"))
        if options.scenario == "random":
            env_kwargs["scenario"] = "random"
    budget = resolve_budget(options)
    total = search_runs(budget) * budget.total_steps
    # A time budget bounds the cost itself: the counts are planned to fit it.
    if budget.time_budget_s is None and total > max_env_steps():
        raise ConfigError(
            f"this search asks for {search_runs(budget):,} training runs of {budget.total_steps:,} steps "
            f"({total:,} env steps): {cost_line(total)}, above the limit of 30 days; lower --steps, --trials, "
            "--designs, --seeds or --generations"
        )
    check_device(options.device)
    check_storage(options.storage)
    card = get_task(options.task)
    action_kwargs = card.action_space_kwargs(options.action_space)
    check_llm(options.llm, options.llm_base_url)
    from autogai.rag.llm_calls import STRUCTURED_MODES

    check_choice("--llm-structured", options.llm_structured, STRUCTURED_MODES)
    if options.embeddings is not None:
        from autogai.rag.embeddings import parse_embedding_spec

        parse_embedding_spec(options.embeddings)
    card.check_step({**action_kwargs, **env_kwargs})
    run = RunDirectory(Path(options.run_dir) if options.run_dir else default_run_dir(options))
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"--run-dir {str(run.path)!r} is a file, not a directory")
    run.read_config()  # a damaged run directory is refused before anything in it is rewritten
    for entry in run.read_state()["generations"]:
        for design_id in entry["design_ids"]:
            run.load_design(design_id)  # every design a resume reloads: present and readable
    line = cost_line(total) if budget.time_budget_s is None else None
    notes = [line] if line is not None else []
    return CheckedSearch(
        task=card,
        action_kwargs=action_kwargs,
        budget=budget,
        run_dir=run.path,
        env_kwargs=env_kwargs,
        notes=notes,
    )
