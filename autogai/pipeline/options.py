"""What ``autogai search`` was asked (:class:`SearchOptions`), what it shows while it runs
(:class:`SearchProgress`) and what it returns (:class:`SearchSummary`); the budget a search starts from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from autogai.core.errors import ConfigError
from autogai.search.budget import SearchBudget, get_preset

ProgressFn = Callable[["SearchProgress"], None]


@dataclass
class SearchOptions:
    """What ``autogai search`` was asked to do (flags map one to one)."""

    task: str = "uav-nearfield"
    action_space: str | None = None
    llm: str | None = None
    """``None``/``offline`` (the built-in retrieval-driven proposer) or a LangChain provider string."""
    llm_base_url: str | None = None
    llm_structured: str = "auto"
    """Schema-constrained LLM replies: ``auto``, ``on`` or ``off``."""
    llm_context: int | None = None
    """The model's context window in tokens where the server does not report it."""
    llm_timeout: float = 120.0
    """Limit of one LLM call in seconds."""
    llm_concurrency: int | None = None
    """Samples asked at once from a server that ignores ``n`` (``None``: the backend's default)."""
    preset: str = "quick"
    generations: int | None = None
    designs: int | None = None
    trials: int | None = None
    seeds: int | None = None
    workers: int = 1
    storage: str | None = None
    run_dir: Path | None = None
    device: str = "cpu"
    embeddings: str | None = None
    """Knowledge-base embeddings (``local`` by default; ``hash`` for fast offline tests)."""
    temperature: float = 0.7
    budget_overrides: Mapping[str, Any] = field(default_factory=dict)
    """Any other SearchBudget field (e.g. ``total_steps``), for benchmarks and experiments."""
    time_budget_s: float | None = None
    """Wall-clock budget of the whole search (``--time-budget``); the preset's own when None."""
    seed: int = 0
    """The search's seed: the same seed, task, plan and one worker repeat a search exactly."""
    plan_path: Path | None = None
    """A saved ``plan.json`` to repeat instead of planning again (``--plan``)."""
    scenario: str | None = None
    """``random``: train on random scenarios, validate and test on held-out ones (tasks that have them)."""


@dataclass
class SearchProgress:
    """A snapshot for the terminal: what phase, how many trials are done, the best score so far."""

    phase: str
    generation: int
    generations: int
    designs: int
    trials_done: int
    trials_total: int
    best_score: float | None = None
    best_design: str | None = None
    message: str = ""
    time_left_s: float | None = None
    """Seconds left of a time budget (None without one)."""


@dataclass
class SearchSummary:
    run_dir: Path
    run_name: str
    storage_url: str
    leaderboard: list[dict[str, Any]]
    baseline_id: str
    wall_time_s: float
    llm_usage: Mapping[str, Any] = field(default_factory=dict)
    trial_counts: Mapping[str, int] = field(default_factory=dict)
    plan: Mapping[str, Any] = field(default_factory=dict)
    coordinator_cpu_s: float = 0.0
    """CPU seconds the coordinator process used (it should idle while workers train)."""

    @property
    def best(self) -> dict[str, Any] | None:
        return self.leaderboard[0] if self.leaderboard else None

    @property
    def baseline(self) -> dict[str, Any] | None:
        return next((r for r in self.leaderboard if r["design_id"] == self.baseline_id), None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "run"


def default_run_dir(options: SearchOptions) -> Path:
    from autogai.core.paths import runs_root

    parts = [options.task if not options.task.endswith(".py") else Path(options.task).stem, options.preset]
    if options.scenario:
        parts.insert(1, options.scenario)
    if options.action_space:
        parts.insert(1, options.action_space)
    parts.append(_slug(options.llm or "offline"))
    return runs_root() / _slug("-".join(parts))


def resolve_budget(options: SearchOptions) -> SearchBudget:
    """The preset with the user's overrides. Counts given explicitly turn the preset's time budget off
    (the search then runs exactly those counts); counts and ``--time-budget`` together are refused."""
    counts = {
        "generations": options.generations,
        "designs_per_generation": options.designs,
        "trials_per_design": options.trials,
        "test_seeds": options.seeds,
    }
    explicit = [name for name, value in counts.items() if value is not None]
    budget = get_preset(options.preset).with_overrides(**counts, **dict(options.budget_overrides))
    if options.time_budget_s is not None:
        if explicit:
            flags = ", ".join("--" + name.split("_")[0] for name in explicit)
            raise ConfigError(f"--time-budget plans the counts itself; drop {flags} or drop --time-budget")
        return budget.with_overrides(time_budget_s=options.time_budget_s)
    if explicit or options.plan_path is not None:
        return replace(budget, time_budget_s=None)
    return budget
