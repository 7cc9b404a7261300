"""The design loop: propose -> validate -> evaluate (Optuna, in worker processes) -> rank -> feed back.

:func:`run_search` is the library call behind ``autogai search``. It never runs reward code or training in
its own process: trials run in worker processes (:mod:`autogai.search.worker`) that take queued trials from
the run's Optuna storage. Re-running the same search on the same run directory resumes it: completed trials
stay, the trials of a killed search are failed and re-queued, proposals are not asked for again.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import AutoGAIError, RunDirectoryError
from autogai.core.logging import mask_secrets
from autogai.core.types import Design, DesignFeedback, EnhancerCombo
from autogai.pipeline.feedback import build_feedback
from autogai.pipeline.options import (
    ProgressFn,
    SearchOptions,
    SearchProgress,
    SearchSummary,
)
from autogai.pipeline.ranking import (
    DesignResult,
    collect_results,
    leaderboard_rows,
    write_design_tables,
    write_leaderboard,
)
from autogai.pipeline.rundir import RunDirectory
from autogai.search.budget import SearchBudget
from autogai.search.plan import SearchPlan, format_duration

PLAN_FILE = "plan.json"
COUNTS_EVERY_S = 5.0
MAX_GENERATIONS = 12
"""A time-budgeted search that runs ahead of its plan adds generations, up to this many."""

if TYPE_CHECKING:
    from autogai.pipeline.preflight import CheckedSearch

logger = logging.getLogger(__name__)


def baseline_design(task: Any) -> Design:
    return Design(
        reward_source=task.baseline_reward,
        enhancers=EnhancerCombo(),
        rationale=f"The task's baseline reward with plain TD3: the reference every design is compared with ({task.id}).",
        proposer="baseline",
        generation=0,
        name="baseline",
    )


def _iqm_or_minus_inf(values: Any) -> float:
    from autogai.core.statistics import iqm

    value = iqm(values)
    return value if math.isfinite(value) else float("-inf")


def _reward_param_specs(source: str) -> dict[str, dict[str, Any]]:
    from autogai.rewards import RewardProgram

    return {name: spec.to_dict() for name, spec in RewardProgram.from_source(source).params.items()}


class _Search:
    """State of one running search (kept in an object so the steps read top to bottom)."""

    def __init__(self, options: SearchOptions, progress: ProgressFn | None, checked: CheckedSearch) -> None:
        from autogai.search.storage import default_storage_url, redact_url

        self.options = options
        self.progress_fn = progress
        self.task = checked.task
        self.budget: SearchBudget = checked.budget
        self.env_kwargs: dict[str, Any] = dict(checked.env_kwargs)
        self.run = RunDirectory(checked.run_dir)
        self.run.ensure_writable()
        self.run_name = self.run.name
        self.storage_url = options.storage or default_storage_url(self.run.path)
        self.redacted_storage = redact_url(self.storage_url)
        self.storage: Any = None
        self.pool: Any = None
        self.trials_total = 0
        self.start = time.monotonic()
        self.spent_before_s = 0.0
        """Search seconds of earlier sessions of this run (a resumed run continues its budget)."""
        self.generation = 0
        self.phase = "starting"
        self.best: tuple[float, str] | None = None
        self.plan: SearchPlan | None = None
        self.specs_of: dict[str, dict[str, dict[str, Any]]] = {}
        self.generation_seconds: list[float] = []
        """Measured seconds of each generation run (the time budget's correction)."""
        self.final_test: dict[str, int] = {}
        self._counts: tuple[float, dict[str, int]] = (0.0, {})

    @property
    def task_spec(self) -> str:
        """How workers (and calibration processes) load the task: a card file or module path as given, else
        the registered id."""
        task = self.options.task
        return task if task.endswith(".py") or ":" in task else self.task.id

    def build_config(self) -> None:
        """The trial context workers read and the run's ``config.json`` (after the plan fixed the counts)."""
        from autogai.search.objective import TrialContext

        options = self.options
        self.context = TrialContext(
            run_name=self.run_name,
            task=self.task_spec,
            budget=self.budget,
            action_space=options.action_space,
            device=options.device,
            env_kwargs=self.env_kwargs,
            seed=options.seed,
        )
        identity = {k: v for k, v in self.budget.to_dict().items() if k != "generations"}
        self.config = {
            "run_name": self.run_name,
            "task": self.task.id,
            "action_space": options.action_space,
            "scenario": options.scenario or "fixed",
            "scoring_scenarios": "held-out"
            if self.env_kwargs.get("scenario") == "random"
            else "the task's own",
            "seed": options.seed,
            "llm": options.llm or "offline",
            "llm_base_url": mask_secrets(options.llm_base_url) if options.llm_base_url else None,
            "preset": options.preset,
            "budget": self.budget.to_dict(),
            "budget_identity": identity,
            "storage": self.redacted_storage,
            "workers": options.workers,
            "device": options.device,
            "embeddings": options.embeddings or os.environ.get("AUTOGAI_EMBEDDINGS", "local"),
            "temperature": options.temperature,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "autogai_version": __import__("autogai").__version__,
        }

    # --- the plan ------------------------------------------------------------------------------

    def make_plan(self) -> SearchPlan:
        """A saved plan (``--plan``, or this run's own ``plan.json`` on resume), else one fitted to the time
        budget after measuring this machine, else the budget's own counts."""
        from autogai.core.runfiles import read_json
        from autogai.search.plan import fixed_plan, measure_throughput, plan_search

        remedy = "give another plan.json, or none to plan again"
        if self.options.plan_path is not None:
            return SearchPlan.from_dict(read_json(Path(self.options.plan_path), dict, remedy=remedy))
        stored = self.run.path / PLAN_FILE
        if stored.is_file():
            return SearchPlan.from_dict(read_json(stored, dict, remedy="delete it to plan again"))
        if self.budget.time_budget_s is None:
            return fixed_plan(self.budget)
        self.emit("measuring this machine's training speed")
        throughput = measure_throughput(
            self.task_spec, self.budget, self.options.workers, self.env_kwargs, self.options.action_space
        )
        return plan_search(self.budget, self.budget.time_budget_s, throughput, spent_s=self.spent_s())

    def time_left(self) -> float | None:
        if self.plan is None or self.plan.budget_s is None:
            return None
        return self.plan.budget_s - self.spent_s()

    def spent_s(self) -> float:
        return self.spent_before_s + (time.monotonic() - self.start)

    # --- progress ------------------------------------------------------------------------------

    def emit(self, phase: str | None = None, message: str = "", designs: int = 0) -> None:
        if phase:
            self.phase = phase
        if self.progress_fn is None:
            return
        counts = self.counts()
        done = sum(v for k, v in counts.items() if k in ("COMPLETE", "PRUNED", "FAIL"))
        total = done + counts.get("RUNNING", 0) + counts.get("WAITING", 0)
        self.progress_fn(
            SearchProgress(
                phase=self.phase,
                generation=self.generation,
                generations=max(self.budget.generations, self.generation + 1),
                designs=designs or len(self.run.design_ids()),
                trials_done=done,
                trials_total=total,
                best_score=self.best[0] if self.best else None,
                best_design=self.best[1] if self.best else None,
                message=message,
                time_left_s=self.time_left(),
            )
        )

    def counts(self) -> dict[str, int]:
        """Trial counts for the display, read at most every few seconds: reading every trial of the run is
        the coordinator's only real work while workers train, and it must stay idle."""
        if self.storage is None:
            return {}
        stamp, counts = self._counts
        if time.monotonic() - stamp > COUNTS_EVERY_S:
            counts = self.store.counts()
            self._counts = (time.monotonic(), counts)
        return counts

    # --- set-up --------------------------------------------------------------------------------

    def open_storage(self) -> list[tuple[str, int]]:
        """Open the run's storage, record the context for workers; returns re-queued trials of a killed run."""
        from autogai.search.records import RunStore
        from autogai.search.storage import make_storage
        from autogai.search.studies import claim_lock_path

        self.storage = make_storage(self.storage_url)
        self.store = RunStore(self.storage, self.run_name, claim_lock=claim_lock_path(self.storage_url))
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
        from autogai.search.pool import WorkerPool

        self.pool = WorkerPool(
            self.store,
            self.storage_url,
            count=self.options.workers,
            device=self.options.device,
            log_dir=self.run.path / "logs",
        )
        self.pool.start()

    def check_workers(self) -> None:
        """Restart a local worker that died (its running trial is failed and re-queued first)."""
        if self.pool is not None:
            self.pool.check()

    def stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.stop()

    def wait_for(self, study_names: list[str], phase: str) -> None:
        """Block until no trial of ``study_names`` is WAITING or RUNNING."""
        self.pool.wait_for(study_names, progress=lambda: self.emit(phase))

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

    def check_reward(self, design: Design) -> dict[str, dict[str, Any]] | None:
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
        """Tune and validate the designs whose reward programs pass (``search.phases``)."""
        from autogai.search.phases import DesignUnderTest
        from autogai.search.space import default_trial_params, sanitize_hints

        ready = []
        for design in designs:
            specs = self.check_reward(design)
            if specs is None:
                continue
            self.specs_of[design.id] = specs
            fixed, notes = sanitize_hints(design.hyperparameter_hints, design.enhancers, self.budget, specs)
            defaults = default_trial_params(design.enhancers, self.budget, specs)
            attrs = {"hint_notes": notes, "generation": generation, "run": self.run_name}
            ready.append(DesignUnderTest(design, specs, defaults, {**defaults, **fixed}, attrs))
        for design_id in self.phases().tune_and_validate(ready, generation, baseline_id):
            self.run.update_design_json(
                design_id,
                status="unscored",
                note="no tuning trial completed, so there is nothing to validate",
            )
        self.update_best([d.design.id for d in ready])

    def run_final_test(self, results: Mapping[str, DesignResult], baseline_id: str) -> list[str]:
        """Retrain the finalists (best validation IQMs) and the baseline once on the test seeds; returns the
        finalists' ids (baseline first)."""
        ranked = sorted(
            (r for d, r in results.items() if d != baseline_id and r.chosen is not None),
            key=lambda r: _iqm_or_minus_inf(r.validation_values),
            reverse=True,
        )
        count, seeds = self.budget.finalists, self.budget.test_seeds
        left = self.time_left()
        if left is not None and self.plan is not None:
            from autogai.search.budget import get_preset
            from autogai.search.plan import drift, fit_final_test

            observed = self.observed_plan()
            factor = drift(observed, self.budget, self.generation_seconds)
            most = get_preset(self.options.preset).finalists if self.options.plan_path is None else None
            count, seeds = fit_final_test(
                observed, self.budget, len(ranked), left, factor, max_finalists=most
            )
            if (count, seeds) != (min(self.budget.finalists, len(ranked)), self.budget.test_seeds):
                self.emit(
                    message=f"time budget: the final test runs {count} finalist(s) + baseline on {seeds} test "
                    f"seeds ({format_duration(left)} left; the plan had {self.budget.finalists} on "
                    f"{self.budget.test_seeds})"
                )
        self.final_test = {"finalists": count, "test_seeds": seeds}
        finalists = [baseline_id] + [r.design.id for r in ranked[:count]]
        self.phases(test_seeds=seeds).test(
            [
                (
                    results[d].design,
                    self.specs_of.get(d) or _reward_param_specs(results[d].design.reward_source),
                )
                for d in finalists
            ]
        )
        return finalists

    def phases(self, **budget: Any) -> Any:
        from autogai.search.phases import Phases

        return Phases(self.store, self.budget.with_overrides(**budget), self.options.seed, self.wait_for)

    def update_best(self, design_ids: list[str]) -> None:
        """The best tuning score so far, for the progress line."""
        from autogai.search.records import best_trial

        for design_id in design_ids:
            best = best_trial(self.store.tuning_trials(design_id))
            value = float("-inf") if best is None or best.value is None else float(best.value)
            if math.isfinite(value) and (self.best is None or value > self.best[0]):
                self.best = (value, design_id)

    # --- ranking and feedback ------------------------------------------------------------------

    def rank(
        self, designs: list[Design], baseline_id: str, *, phase: str = "validation"
    ) -> tuple[list[dict[str, Any]], dict[str, DesignResult]]:
        results = collect_results(self.store, designs)
        rows = leaderboard_rows(results, baseline_id, phase=phase)
        write_leaderboard(
            self.run,
            rows,
            task_id=self.task.id,
            oracle_fitness=self.oracle(),
            references=self.references(),
            phase=phase,
            plan=self.plan.to_dict() if self.plan is not None else None,
        )
        for row in rows:
            result = results[row["design_id"]]
            write_design_tables(self.run, result)
            if row["iqm"] is not None or row["validation_iqm"] is not None:
                self.run.update_design_json(
                    row["design_id"],
                    status="tested" if row["score_source"] == "test" else "validated",
                    score={
                        key: row[key]
                        for key in (
                            "score_source",
                            "iqm",
                            "iqm_ci",
                            "n_seeds",
                            "validation_iqm",
                            "validation_iqm_ci",
                        )
                    },
                    rank=row["rank"],
                    best_params=row["best_params"],
                    chosen_config=row["chosen_config"],
                    tuning_best=row["tuning_best"],
                    report_metrics=row["report_metrics"],
                    diff_vs_baseline=row["diff_vs_baseline"],
                    p_value_adjusted=row["p_value_adjusted"],
                )
        scored = [r for r in rows if r["iqm"] is not None]
        if scored:
            self.best = (scored[0]["iqm"], scored[0]["design_id"])
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
        self.plan = self.make_plan()
        self.budget = self.plan.apply(self.budget)
        self.build_config()
        self.run.check_config(self.config)
        with self.run.search_lock():
            recovered = self.open_storage()
            self.run.write_config(self.config)
            self.run.write_json(PLAN_FILE, self.plan.to_dict())
            if recovered:
                logger.warning("re-queued %d trial(s) of a search that was killed", len(recovered))
            logger.info("%s", self.plan.describe())
            self.emit("planned", message=self.plan.describe())
            proposer = self.make_proposer()
            state = self.run.read_state()
            self.spent_before_s = float(state.get("search_seconds", 0.0))
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
                generation_seconds = self.generation_seconds
                for generation in range(MAX_GENERATIONS):
                    entry = next((e for e in state["generations"] if e["index"] == generation), None)
                    if entry is None and not self.next_generation_fits(generation, generation_seconds):
                        break
                    self.generation = generation
                    started = time.monotonic()
                    if entry is None:
                        designs = self.propose(proposer, generation, feedback, known)
                        entry = {
                            "index": generation,
                            "design_ids": [d.id for d in designs],
                            "status": "proposed",
                        }
                        state["generations"].append(entry)
                        self.save_state(state)
                    designs = [self.run.load_design(i) for i in entry["design_ids"]]
                    known.update({d.id: d for d in designs})
                    to_evaluate = ([baseline] if generation == 0 else []) + designs
                    if entry["status"] != "scored":
                        self.evaluate(to_evaluate, generation, baseline.id)
                        entry["seconds"] = round(time.monotonic() - started, 1)
                    generation_seconds.append(float(entry.get("seconds", 0.0)))
                    rows, results = self.rank(list(known.values()), baseline.id)
                    feedback = self.feedback(results, baseline.id, entry["design_ids"] + [baseline.id])
                    remembered = self.remember_good_designs(rows, known)
                    state["remembered"] = sorted(set(state.get("remembered", [])) | set(remembered))
                    entry["status"] = "scored"
                    self.save_state(state)
                results = collect_results(self.store, list(known.values()))
                state["finalists"] = self.run_final_test(results, baseline.id)
                state["final_test"] = self.final_test
                # plan.json says what ran, so --plan repeats it exactly (the prediction stays beside it).
                self.run.write_json(
                    PLAN_FILE, self.plan.as_run(len(state["generations"]), **self.final_test).to_dict()
                )
                rows, _ = self.rank(list(known.values()), baseline.id, phase="test")
                state["tested"] = True
                self.save_state(state)
                final_status = "done"
            finally:
                if self.storage is not None:
                    # "stopped" (error, Ctrl-C) as well as "done" sends external workers home.
                    self.store.set_status(final_status)
                self.stop_workers()
                if state["generations"]:  # a search that never started leaves no state behind
                    with contextlib.suppress(Exception):  # never mask the error that brought us here
                        self.save_state(state)
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
                plan={**self.plan.to_dict(), "generations_run": len(state["generations"])},
                coordinator_cpu_s=time.process_time(),
            )

    def save_state(self, state: dict[str, Any]) -> None:
        """state.json, with the search seconds spent so far (a resumed run continues its budget)."""
        state["search_seconds"] = round(self.spent_s(), 1)
        self.run.write_state(state)

    def observed_plan(self) -> SearchPlan:
        """The plan with its throughput refitted from the populations this run trained so far
        (``search.plan.observed_throughput``)."""
        from autogai.search.plan import observed_throughput

        assert self.plan is not None
        designs = {d for entry in self.run.read_state()["generations"] for d in entry["design_ids"]}
        observed = self.store.trained_populations(designs, baseline_design(self.task).id)
        return observed_throughput(self.plan, observed, self.budget.total_steps)

    def next_generation_fits(self, generation: int, generation_seconds: list[float]) -> bool:
        """Whether to run generation ``generation``. A plan counted in steps, or one repeated with ``--plan``,
        runs exactly its generations. A time-budgeted search runs the planned ones while the next one and the
        final test still fit (``search.plan.skip_generation``), and goes on past the plan while they do: the
        plan is a prediction, the measured time of the generations so far corrects it."""
        from autogai.search.plan import skip_generation

        left = self.time_left()
        adapts = left is not None and self.plan is not None and self.options.plan_path is None
        if not adapts or generation == 0:
            return generation < self.budget.generations
        assert left is not None and self.plan is not None
        reason = skip_generation(self.observed_plan(), self.budget, generation, generation_seconds, left)
        if reason is None:
            if generation >= self.budget.generations:
                self.emit(message=f"time budget: ahead of the plan, generation {generation} fits too")
            return True
        if generation < self.budget.generations:
            logger.warning("%s", reason)
            self.emit(message=reason)
        return False

    def feedback(
        self, results: Mapping[str, DesignResult], baseline_id: str, ids: list[str]
    ) -> list[DesignFeedback]:
        baseline = results.get(baseline_id)
        score = baseline.validation_score if baseline is not None else None
        base = score.iqm if score is not None else None
        out = []
        for design_id in ids:
            if design_id in results:
                fb = build_feedback(results[design_id], baseline_score=base, oracle_fitness=self.oracle())
                self.run.update_design_json(design_id, feedback=fb.to_text())
                out.append(fb)
        return out

    def remember_good_designs(self, rows: list[dict[str, Any]], known: Mapping[str, Design]) -> list[str]:
        """Designs that beat the baseline on the validation seeds (difference interval above 0, Holm-corrected)
        go into the knowledge base's results collection after every generation, so the next proposals can
        read them; test scores never reach the proposer or the knowledge base. Returns the stored ids."""
        stored = []
        for row in rows:
            if row["is_baseline"] or not row.get("beats_baseline") or row["score_source"] != "validation":
                continue
            design = known.get(row["design_id"])
            if design is None:
                continue
            summary = (self.run.read_design_json(design.id) or {}).get("feedback", "")
            try:
                self.kb.add_result(self.task.id, design, float(row["iqm"]), summary)
                stored.append(design.id)
            except Exception as exc:  # the knowledge base is a help, not a requirement of the search
                logger.warning("could not store design %s in the knowledge base: %s", design.id, exc)
        return stored


def run_search(
    options: SearchOptions, *, progress: ProgressFn | None = None, checked: CheckedSearch | None = None
) -> SearchSummary:
    """Run (or resume) a search; see the module docstring. Raises AutoGAIError for what a user can fix.

    ``checked`` is what :func:`~autogai.pipeline.preflight.check_search` returned for ``options`` (checked
    here when not given): every check that needs no run directory has passed before one is created. A
    search that fails before its first generation is recorded (a time budget too small for a verdict, an
    LLM that stops answering) removes what it created, so the corrected command works on the same run
    directory.
    """
    from autogai.pipeline.preflight import check_search

    checked = checked if checked is not None else check_search(options)
    before = RunDirectory(checked.run_dir).entries()
    search = _Search(options, progress, checked)
    try:
        return search.run_loop()
    except PermissionError as exc:
        raise RunDirectoryError(
            f"run directory {str(search.run.path)!r} is not writable: {exc.strerror}"
        ) from exc
    except AutoGAIError:
        if not search.run.state_path.exists():  # no generation recorded: the search never started
            search.run.remove_created(before)
        raise
