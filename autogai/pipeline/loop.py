"""The design loop: propose -> validate -> evaluate (Optuna, in worker processes) -> rank -> feed back.

:func:`run_search` is the library call behind ``autogai search``. It never runs reward code or training in
its own process: trials run in worker processes (:mod:`autogai.search.worker`) that take queued trials from
the run's Optuna storage. Re-running the same search on the same run directory resumes it: completed trials
stay, the trials of a killed search are failed and re-queued, proposals are not asked for again.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogai.core.errors import ConfigError, RunDirectoryError
from autogai.core.logging import mask_secrets
from autogai.core.types import Design, DesignFeedback, EnhancerCombo
from autogai.pipeline.feedback import build_feedback
from autogai.pipeline.ranking import (
    DesignResult,
    collect_results,
    leaderboard_rows,
    write_design_tables,
    write_leaderboard,
)
from autogai.pipeline.rundir import RunDirectory
from autogai.search.budget import SearchBudget, get_preset

logger = logging.getLogger(__name__)

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
    if options.action_space:
        parts.insert(1, options.action_space)
    parts.append(_slug(options.llm or "offline"))
    return runs_root() / _slug("-".join(parts))


def baseline_design(task: Any) -> Design:
    return Design(
        reward_source=task.baseline_reward,
        enhancers=EnhancerCombo(),
        rationale=f"The task's baseline reward with plain TD3: the reference every design is compared with ({task.id}).",
        proposer="baseline",
        generation=0,
        name="baseline",
    )


def _reward_param_specs(source: str) -> dict[str, dict[str, Any]]:
    from autogai.rewards import RewardProgram

    return {name: spec.to_dict() for name, spec in RewardProgram.from_source(source).params.items()}


class _Search:
    """State of one running search (kept in an object so the steps read top to bottom)."""

    def __init__(self, options: SearchOptions, progress: ProgressFn | None) -> None:
        from autogai.search.objective import TrialContext
        from autogai.search.storage import default_storage_url, redact_url, storage_scheme
        from autogai.tasks import get_task

        self.options = options
        self.progress_fn = progress
        self.task = get_task(options.task)
        action_kwargs = self.task.action_space_kwargs(options.action_space)
        if options.workers < 0:
            raise ConfigError(f"--workers {options.workers} must be 0 or more")
        base = get_preset(options.preset)
        self.budget: SearchBudget = base.with_overrides(
            generations=options.generations,
            designs_per_generation=options.designs,
            trials_per_design=options.trials,
            heldout_seeds=options.seeds,
            **dict(options.budget_overrides),
        )
        if options.storage:
            storage_scheme(options.storage)  # reject a bad scheme before anything is written
        self.task.check_step(action_kwargs)
        self.run = RunDirectory(Path(options.run_dir) if options.run_dir else default_run_dir(options))
        self.run.ensure_writable()
        self.run_name = self.run.name
        self.storage_url = options.storage or default_storage_url(self.run.path)
        self.context = TrialContext(
            run_name=self.run_name,
            task=options.task if options.task.endswith(".py") or ":" in options.task else self.task.id,
            budget=self.budget,
            action_space=options.action_space,
            device=options.device,
        )
        identity = {k: v for k, v in self.budget.to_dict().items() if k != "generations"}
        self.config = {
            "run_name": self.run_name,
            "task": self.task.id,
            "action_space": options.action_space,
            "llm": options.llm or "offline",
            "llm_base_url": mask_secrets(options.llm_base_url) if options.llm_base_url else None,
            "preset": options.preset,
            "budget": self.budget.to_dict(),
            "budget_identity": identity,
            "storage": redact_url(self.storage_url),
            "workers": options.workers,
            "device": options.device,
            "embeddings": options.embeddings or os.environ.get("AUTOGAI_EMBEDDINGS", "local"),
            "temperature": options.temperature,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "autogai_version": __import__("autogai").__version__,
        }
        self.storage: Any = None
        self.pool: Any = None
        self.trials_total = 0
        self.start = time.monotonic()
        self.generation = 0
        self.phase = "starting"
        self.best: tuple[float, str] | None = None

    # --- progress ------------------------------------------------------------------------------

    def emit(self, phase: str | None = None, message: str = "", designs: int = 0) -> None:
        if phase:
            self.phase = phase
        if self.progress_fn is None:
            return
        counts = self.store.counts() if self.storage is not None else {}
        done = sum(v for k, v in counts.items() if k in ("COMPLETE", "PRUNED", "FAIL"))
        total = done + counts.get("RUNNING", 0) + counts.get("WAITING", 0)
        self.progress_fn(
            SearchProgress(
                phase=self.phase,
                generation=self.generation,
                generations=self.budget.generations,
                designs=designs or len(self.run.design_ids()),
                trials_done=done,
                trials_total=total,
                best_score=self.best[0] if self.best else None,
                best_design=self.best[1] if self.best else None,
                message=message,
            )
        )

    # --- set-up --------------------------------------------------------------------------------

    def open_storage(self) -> list[tuple[str, int]]:
        """Open the run's storage, record the context for workers; returns re-queued trials of a killed run."""
        from autogai.search.records import RunStore
        from autogai.search.storage import make_storage

        self.storage = make_storage(self.storage_url)
        self.store = RunStore(self.storage, self.run_name)
        return self.store.start(self.context.to_dict())

    def make_proposer(self) -> Any:
        from autogai.rag.knowledge import KnowledgeBase
        from autogai.rag.proposers import make_proposer

        kb = KnowledgeBase(embeddings=self.config["embeddings"])
        self.kb = kb
        return make_proposer(
            self.options.llm,
            base_url=self.options.llm_base_url,
            temperature=self.options.temperature,
            kb=kb,
            cache_dir=self.run.path / "llm_cache",
            ledger_path=self.run.ledger_path,
            timeout_s=self.options.llm_timeout,
            structured=self.options.llm_structured,
            context_tokens=self.options.llm_context,
            max_concurrency=self.options.llm_concurrency,
        )

    # --- workers -------------------------------------------------------------------------------

    def start_workers(self) -> None:
        from autogai.search.worker import spawn_worker

        logs = self.run.path / "logs"
        logs.mkdir(exist_ok=True)
        self.pool = [
            spawn_worker(
                self.storage_url, self.run_name, device=self.options.device, log_path=logs / f"worker-{i}.log"
            )
            for i in range(self.options.workers)
        ]

    def check_workers(self) -> None:
        """Restart a local worker that died (its running trial is failed and re-queued first)."""
        from autogai.search.worker import spawn_worker

        if not self.pool:
            return
        for index, process in enumerate(self.pool):
            if process.poll() is None:
                continue
            logger.warning("worker %d exited with code %s; restarting it", index, process.returncode)
            self.store.recover_dead_workers()
            self.pool[index] = spawn_worker(
                self.storage_url,
                self.run_name,
                device=self.options.device,
                log_path=self.run.path / "logs" / f"worker-{index}.log",
            )

    def stop_workers(self) -> None:
        if not self.pool:
            return
        for process in self.pool:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process in self.pool:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                process.kill()
                process.wait()
        self.pool = []

    def wait_for(self, study_names: list[str], phase: str) -> None:
        """Block until no trial of ``study_names`` is WAITING or RUNNING."""
        last_emit = 0.0
        last_stale = time.monotonic()
        while True:
            if self.store.pending(study_names) == 0:
                self.emit(phase)
                return
            self.check_workers()
            if time.monotonic() - last_stale > 15:  # remote workers that stopped beating
                self.store.fail_stale(study_names)
                last_stale = time.monotonic()
            if time.monotonic() - last_emit > 1.0:
                self.emit(phase)
                last_emit = time.monotonic()
            time.sleep(0.5)

    # --- one generation ------------------------------------------------------------------------

    def propose(
        self, proposer: Any, generation: int, feedback: list[DesignFeedback], known: dict[str, Design]
    ) -> list[Design]:
        self.emit(f"generation {generation}: proposing")
        records = proposer.propose(
            self.task,
            n=self.budget.designs_per_generation,
            feedback=feedback or None,
            generation=generation,
            action_mode=self.options.action_space,
            past_designs=list(known.values()),
            budget_steps=self.budget.total_steps,
        )
        designs: list[Design] = []
        for index, record in enumerate(records):
            validation = (
                record.validation.to_dict() if getattr(record, "validation", None) is not None else None
            )
            design = record.design
            ok = bool(getattr(record, "ok", design is not None and not record.error))
            if not ok:
                error = record.error or (
                    record.validation.reason if record.validation is not None else "no design"
                )
                self.run.write_rejected(
                    f"rejected-g{generation}-{index}",
                    prompt=record.prompt or "",
                    response=record.response or "",
                    error=str(error),
                    validation=validation,
                    reward_source=design.reward_source if design is not None else None,
                )
                continue
            assert design is not None
            if design.id in known or any(d.id == design.id for d in designs):
                logger.info(
                    "proposal %d of generation %d repeats design %s; skipped", index, generation, design.id
                )
                continue
            self.run.write_design(
                design,
                prompt=record.prompt or "",
                response=record.response or "",
                validation=validation,
                status="proposed",
            )
            designs.append(design)
        return designs

    def validate(self, design: Design) -> dict[str, dict[str, Any]] | None:
        """Reward PARAMS specs of a valid design, or None (and design.json says why) when it is rejected."""
        from autogai.rewards import validate_reward_program

        stored = (self.run.read_design_json(design.id) or {}).get("validation") or {}
        if stored.get("ok"):  # the proposer validated it already (statically and in the sandbox)
            return _reward_param_specs(design.reward_source)
        report = validate_reward_program(design.reward_source, self.task)
        self.run.update_design_json(design.id, validation=report.to_dict())
        if not report.ok:
            self.run.update_design_json(design.id, status="rejected", validation=report.to_dict())
            return None
        return _reward_param_specs(design.reward_source)

    def evaluate(self, designs: list[Design], generation: int, baseline_id: str) -> None:
        """Successive halving of trials across ``designs``, then held-out retraining of each best config."""
        from autogai.search.objective import heldout_seed
        from autogai.search.records import best_trial
        from autogai.search.space import default_trial_params, sanitize_hints

        studies: dict[str, str] = {}
        specs_of: dict[str, dict[str, Any]] = {}
        hints_of: dict[str, list[dict[str, Any]]] = {}
        for design in designs:
            specs = self.validate(design)
            if specs is None:
                continue
            fixed, notes = sanitize_hints(design.hyperparameter_hints, design.enhancers, self.budget, specs)
            attrs = {
                "design": design.to_dict(),
                "kind": "tuning",
                "reward_params": specs,
                "hint_notes": notes,
                "generation": generation,
                "run": self.run_name,
            }
            studies[design.id] = self.store.tuning_study(design.id, attrs)
            specs_of[design.id] = specs
            # The first trial: defaults (TD3's and the reward's own) overridden by the proposer's hints.
            hints_of[design.id] = [{**default_trial_params(design.enhancers, self.budget, specs), **fixed}]
        active = list(studies)
        for rung in range(self.budget.halving_rungs + 1):
            target = self.budget.trials_per_design * (rung + 1)
            for design_id in active:
                self.store.enqueue(studies[design_id], target, first_params=hints_of[design_id])
            self.wait_for(
                [studies[d] for d in active],
                f"generation {generation}: tuning {len(active)} designs (rung {rung})",
            )
            self.update_best(studies)
            if rung == self.budget.halving_rungs or len(active) <= 2:
                break
            # Successive halving across designs: the better half (and always the baseline) goes on.
            ranked = sorted(active, key=lambda d: self._best_value(d), reverse=True)
            keep = ranked[: max(1, math.ceil(len(ranked) / 2))]
            if baseline_id in active and baseline_id not in keep:
                keep.append(baseline_id)
            active = keep
        heldout_names = []
        for design_id in studies:
            best = best_trial(self.store.tuning_trials(design_id))
            if best is None:
                self.run.update_design_json(
                    design_id,
                    status="unscored",
                    note="no tuning trial completed, so there is nothing to re-evaluate",
                )
                continue
            design = next(d for d in designs if d.id == design_id)
            attrs = {
                "design": design.to_dict(),
                "kind": "heldout",
                "reward_params": specs_of[design_id],
                "best_params": dict(best.params),
                "best_trial": best.number,
                "run": self.run_name,
            }
            hname, stored = self.store.heldout_study(design_id, attrs)
            params = dict(stored.get("best_params") or best.params)
            self.store.enqueue(
                hname,
                self.budget.heldout_seeds,
                user_attrs=[
                    {"seed": heldout_seed(i), "params": params} for i in range(self.budget.heldout_seeds)
                ],
            )
            heldout_names.append(hname)
        self.wait_for(
            heldout_names, f"generation {generation}: held-out seeds ({len(heldout_names)} designs)"
        )

    def _best_value(self, design_id: str) -> float:
        from autogai.search.records import best_trial

        best = best_trial(self.store.tuning_trials(design_id))
        return float(best.value) if best is not None and best.value is not None else float("-inf")

    def update_best(self, studies: Mapping[str, Any]) -> None:
        for design_id in studies:
            value = self._best_value(design_id)
            if math.isfinite(value) and (self.best is None or value > self.best[0]):
                self.best = (value, design_id)

    # --- ranking and feedback ------------------------------------------------------------------

    def rank(
        self, designs: list[Design], baseline_id: str
    ) -> tuple[list[dict[str, Any]], dict[str, DesignResult]]:
        results = collect_results(self.store, designs)
        rows = leaderboard_rows(results, baseline_id)
        write_leaderboard(
            self.run, rows, task_id=self.task.id, oracle_fitness=self.oracle(), references=self.references()
        )
        for row in rows:
            result = results[row["design_id"]]
            write_design_tables(self.run, result)
            if result.score is not None:
                self.run.update_design_json(
                    row["design_id"],
                    status="scored",
                    score=result.score.to_dict(),
                    rank=row["rank"],
                    best_params=row["best_params"],
                    tuning_best=row["tuning_best"],
                    report_metrics=row["report_metrics"],
                    vs_baseline=row["vs_baseline"],
                )
        if rows and rows[0]["iqm"] is not None:
            self.best = (rows[0]["iqm"], rows[0]["design_id"])
        return rows, results

    _oracle: float | bool | None = False

    def oracle(self) -> float | None:
        if self._oracle is False:
            try:
                self._oracle = float(self.task.oracle_fitness()) if self.task.oracle_fitness else None
            except Exception as exc:  # the oracle is informative only
                logger.warning("oracle fitness of %s unavailable: %s", self.task.id, exc)
                self._oracle = None
        return self._oracle  # type: ignore[return-value]

    _references: dict[str, float] | None = None

    def references(self) -> dict[str, float]:
        """The task's reference fitnesses (e.g. hovering at the start), computed once."""
        if self._references is None:
            self._references = {}
            for name, fn in self.task.references.items():
                try:
                    self._references[name] = float(fn())
                except Exception as exc:  # informative only
                    logger.warning("reference %r of %s unavailable: %s", name, self.task.id, exc)
        return self._references

    # --- the loop ------------------------------------------------------------------------------

    def run_loop(self) -> SearchSummary:
        self.run.check_config(self.config)
        with self.run.search_lock():
            recovered = self.open_storage()
            self.run.write_config(self.config)
            if recovered:
                logger.warning("re-queued %d trial(s) of a search that was killed", len(recovered))
            proposer = self.make_proposer()
            state = self.run.read_state()
            baseline = baseline_design(self.task)
            state["baseline_id"] = baseline.id
            if not self.run.read_design_json(baseline.id):
                self.run.write_design(baseline, status="proposed")
            known: dict[str, Design] = {baseline.id: baseline}
            for entry in state["generations"]:
                for design_id in entry["design_ids"]:
                    known[design_id] = self.run.load_design(design_id)
            self.start_workers()
            rows: list[dict[str, Any]] = []
            final_status = "stopped"
            try:
                feedback: list[DesignFeedback] = []
                for generation in range(self.budget.generations):
                    self.generation = generation
                    entry = next((e for e in state["generations"] if e["index"] == generation), None)
                    if entry is None:
                        designs = self.propose(proposer, generation, feedback, known)
                        entry = {
                            "index": generation,
                            "design_ids": [d.id for d in designs],
                            "status": "proposed",
                        }
                        state["generations"].append(entry)
                        self.run.write_state(state)
                    designs = [self.run.load_design(i) for i in entry["design_ids"]]
                    known.update({d.id: d for d in designs})
                    to_evaluate = ([baseline] if generation == 0 else []) + designs
                    if entry["status"] != "scored":
                        self.evaluate(to_evaluate, generation, baseline.id)
                    rows, results = self.rank(list(known.values()), baseline.id)
                    feedback = self.feedback(results, baseline.id, entry["design_ids"] + [baseline.id])
                    self.remember_good_designs(rows, known)
                    entry["status"] = "scored"
                    self.run.write_state(state)
                final_status = "done"
            finally:
                if self.storage is not None:
                    # "stopped" (error, Ctrl-C) as well as "done" sends external workers home.
                    self.store.set_status(final_status)
                self.stop_workers()
            usage = {}
            try:
                usage = dict(proposer.usage())
            except Exception:
                usage = {}
            self.emit("done")
            return SearchSummary(
                run_dir=self.run.path,
                run_name=self.run_name,
                storage_url=self.config["storage"],
                leaderboard=rows,
                baseline_id=baseline.id,
                wall_time_s=time.monotonic() - self.start,
                llm_usage=usage,
                trial_counts=self.store.counts(),
            )

    def feedback(
        self, results: Mapping[str, DesignResult], baseline_id: str, ids: list[str]
    ) -> list[DesignFeedback]:
        baseline = results.get(baseline_id)
        base = baseline.score.iqm if baseline is not None and baseline.score is not None else None
        out = []
        for design_id in ids:
            if design_id in results:
                fb = build_feedback(results[design_id], baseline_score=base, oracle_fitness=self.oracle())
                self.run.update_design_json(design_id, feedback=fb.to_text())
                out.append(fb)
        return out

    def remember_good_designs(self, rows: list[dict[str, Any]], known: Mapping[str, Design]) -> None:
        """Designs that beat the baseline (difference interval above 0) go into the knowledge base's
        results collection, after every generation, so the next proposals can read them."""
        for row in rows:
            if row["is_baseline"] or not row.get("beats_baseline"):
                continue
            design = known.get(row["design_id"])
            if design is None:
                continue
            summary = (self.run.read_design_json(design.id) or {}).get("feedback", "")
            try:
                self.kb.add_result(self.task.id, design, float(row["score_mean"]), summary)
            except Exception as exc:  # the knowledge base is a help, not a requirement of the search
                logger.warning("could not store design %s in the knowledge base: %s", design.id, exc)


def run_search(options: SearchOptions, *, progress: ProgressFn | None = None) -> SearchSummary:
    """Run (or resume) a search; see the module docstring. Raises AutoGAIError for what a user can fix."""
    search = _Search(options, progress)
    try:
        return search.run_loop()
    except PermissionError as exc:
        raise RunDirectoryError(
            f"run directory {str(search.run.path)!r} is not writable: {exc.strerror}"
        ) from exc
