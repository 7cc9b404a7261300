"""Plans a search inside a wall-clock budget: how many generations, designs, trials, validation and test
seeds fit in the time a user gives, on *this* machine.

A budget counted in environment steps takes twice as long on a machine half as fast; the AutoML tools people
trust take a time budget instead (FLAML's ``time_budget``, AutoGluon's ``time_limit``) and plan inside it.
Here the search first measures this machine's training throughput (:func:`calibrate`: two short populations
of the sizes the search will train, scaled down from the real run), then :func:`plan_search` chooses the
counts whose predicted duration fits, reserving the final test phase first. The plan is written to the run
directory (``plan.json``); a resumed or repeated run reads it back instead of planning again.

Steps per training run stay the preset's: they are the step count at which the task's baseline reliably beats
the trivial policy (measured for each preset), and fewer steps would rank exploration noise. What the budget
buys is breadth (designs, generations), tuning depth (trials) and the power of the verdict (seeds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autogai.core.errors import ConfigError
from autogai.search.budget import SearchBudget

SAFETY = 0.96
"""Fraction of the budget the plan fills: the rest absorbs timing noise (the run corrects itself after every
generation, so the plan aims close to the budget rather than far below it)."""
MIN_TEST_SEEDS = 10
"""Fewer test seeds than this give no verdict worth printing (rliable's practice; our coverage tests)."""
MAX_GENERATIONS = 6
MAX_DESIGNS = 4
MAX_TEST_SEEDS = 20
PROPOSAL_S = 3.0
"""Proposing one design and checking its reward program in the sandbox (offline proposer; an LLM adds its
own latency, which the generation-by-generation correction then absorbs)."""
PHASE_S = 2.0
"""What a phase costs besides training: workers noticing the queue, ranking, writing the run files."""
ENHANCER_COST = 1.4
"""How much more a proposed design's population costs than the baseline's plain TD3 on average: designs may
carry enhancers (at quick budgets the offline proposer chooses between plain TD3 and the GAN critic), and
in the first 15-minute quickstart GAN populations took 1.6-2.1x as long as plain ones (state.json and the
trials' duration_s of that run)."""


@dataclass(frozen=True)
class Throughput:
    """Measured cost of training on this machine: seconds for a population of ``P`` agents to run one
    environment step each (evaluations included at the real cadence), modelled as ``a + b * P``."""

    per_step_fixed_s: float
    """``a``: what a population step costs however many agents share it (env, reward round trip, Python)."""
    per_step_per_agent_s: float
    """``b``: what each agent adds to a step (its share of the batched updates)."""
    parallel: int
    """Populations that can train at once without sharing a core (workers, capped by usable cores)."""
    setup_s: float = 1.0
    """Building a population (envs, reward sandbox, networks) before its first step."""
    measured: Mapping[str, float] = field(default_factory=dict)
    """The raw calibration timings, for the plan file."""

    def run_seconds(self, agents: int, steps: int) -> float:
        """Predicted wall time of one training run of a population of ``agents`` for ``steps`` steps."""
        return self.setup_s + steps * (self.per_step_fixed_s + self.per_step_per_agent_s * max(1, agents))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Throughput:
        return cls(
            float(data["per_step_fixed_s"]),
            float(data["per_step_per_agent_s"]),
            int(data["parallel"]),
            float(data.get("setup_s", 1.0)),
            dict(data.get("measured") or {}),
        )


@dataclass(frozen=True)
class SearchPlan:
    """The counts a search runs with, and what the planner predicted for them."""

    budget_s: float | None
    """The wall-clock budget (None: a budget counted in steps, no time limit)."""
    generations: int
    designs_per_generation: int
    trials_per_design: int
    validation_seeds: int
    validation_top_k: int
    test_seeds: int
    finalists: int
    """Designs besides the baseline retrained on the test seeds at the end."""
    total_steps: int
    predicted_s: float | None = None
    """Predicted duration of the whole search (None without a throughput measurement)."""
    predicted_test_s: float | None = None
    throughput: Throughput | None = None

    def apply(self, budget: SearchBudget) -> SearchBudget:
        """The budget with this plan's counts."""
        return budget.with_overrides(
            generations=self.generations,
            designs_per_generation=self.designs_per_generation,
            trials_per_design=self.trials_per_design,
            validation_seeds=self.validation_seeds,
            validation_top_k=self.validation_top_k,
            test_seeds=self.test_seeds,
            finalists=self.finalists,
            total_steps=self.total_steps,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["throughput"] = None if self.throughput is None else self.throughput.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchPlan:
        try:
            throughput = data.get("throughput")
            return cls(
                budget_s=None if data.get("budget_s") is None else float(data["budget_s"]),
                generations=int(data["generations"]),
                designs_per_generation=int(data["designs_per_generation"]),
                trials_per_design=int(data["trials_per_design"]),
                validation_seeds=int(data["validation_seeds"]),
                validation_top_k=int(data["validation_top_k"]),
                test_seeds=int(data["test_seeds"]),
                finalists=int(data["finalists"]),
                total_steps=int(data["total_steps"]),
                predicted_s=None if data.get("predicted_s") is None else float(data["predicted_s"]),
                predicted_test_s=None
                if data.get("predicted_test_s") is None
                else float(data["predicted_test_s"]),
                throughput=None if not throughput else Throughput.from_dict(throughput),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the plan is damaged or from another version ({exc!s}); plan again") from exc

    def as_run(self, generations: int, finalists: int, test_seeds: int) -> SearchPlan:
        """This plan with the counts a time-budgeted run ended up using (``--plan`` then repeats them)."""
        return replace(self, generations=generations, finalists=finalists, test_seeds=test_seeds)

    def describe(self) -> str:
        """One paragraph for the terminal."""
        parts = [
            f"{self.generations} generation(s) x {self.designs_per_generation} design(s)",
            f"{self.trials_per_design} tuning trials each",
            f"top {self.validation_top_k} configurations on {self.validation_seeds} validation seeds",
            f"{self.finalists} finalist(s) + baseline on {self.test_seeds} test seeds",
            f"{self.total_steps} steps per run",
        ]
        text = "plan: " + ", ".join(parts)
        if self.budget_s is not None and self.predicted_s is not None:
            text += f"; predicted {format_duration(self.predicted_s)} of a {format_duration(self.budget_s)} budget"
        return text


def fixed_plan(budget: SearchBudget) -> SearchPlan:
    """The plan of a budget counted in steps: its own counts, no prediction."""
    return SearchPlan(
        budget_s=None,
        generations=budget.generations,
        designs_per_generation=budget.designs_per_generation,
        trials_per_design=budget.trials_per_design,
        validation_seeds=budget.validation_seeds,
        validation_top_k=budget.validation_top_k,
        test_seeds=budget.test_seeds,
        finalists=budget.finalists,
        total_steps=budget.total_steps,
    )


# --- durations --------------------------------------------------------------------------------------------


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1.5h`` (or a bare number of seconds) -> seconds; ConfigError otherwise."""
    raw = str(text).strip().lower()
    unit = _UNITS.get(raw[-1:]) if raw else None
    number = raw[:-1] if unit else raw
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"time budget {text!r} is not a positive duration such as 90s, 15m or 2h")
    if value > 7 * 24 * 3600:
        raise ConfigError(f"time budget {text!r} is longer than a week; give at most 168h")
    return value


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.2f}h"


# --- calibration ------------------------------------------------------------------------------------------

TimeFn = Callable[[int], tuple[float, float]]
"""``agents -> (seconds per step, set-up seconds)``: times one population of the search's kind."""


def calibrate(time_population: TimeFn, *, small: int, large: int, parallel: int) -> Throughput:
    """Fit ``a + b * P`` seconds per population step from two timed populations of ``small`` and ``large``
    agents (scaled-down copies of a real run, see :func:`calibration_budget`)."""
    small, large = max(1, small), max(small + 1, large)
    step_small, setup_small = time_population(small)
    step_large, setup_large = time_population(large)
    per_agent = max(0.0, (step_large - step_small) / (large - small))
    fixed = max(1e-6, step_small - per_agent * small)
    return Throughput(
        per_step_fixed_s=fixed,
        per_step_per_agent_s=per_agent,
        parallel=max(1, parallel),
        setup_s=max(setup_small, setup_large),
        measured={
            f"step_s_P{small}": round(step_small, 6),
            f"step_s_P{large}": round(step_large, 6),
            f"setup_s_P{small}": round(setup_small, 3),
            f"setup_s_P{large}": round(setup_large, 3),
        },
    )


CALIBRATION_FRACTION = 0.08
MIN_CALIBRATION_STEPS = 400
"""A calibration population runs this fraction of a real run's steps (warm-up and evaluations scaled alike)."""


def measure_throughput(
    task_spec: str,
    budget: SearchBudget,
    workers: int,
    env_kwargs: Mapping[str, Any],
    action_space: str | None,
) -> Throughput:
    """Time two short populations of the task's baseline design (the sizes of a tuning batch and of a test
    population, scaled down from a real run) before any worker starts.

    With W parallel workers, W copies of each population train at once in W processes and the slowest one
    counts: populations that share the machine's memory bandwidth and caches run well below the speed of one
    alone (2-2.4x slower per step on this project's 2-core machine), and a plan timed on an idle machine
    overran its budget by that much.
    """
    from autogai.search.objective import calibration_job

    scaled = calibration_budget(budget, CALIBRATION_FRACTION).to_dict()
    parallel = max(1, min(workers or 1, usable_cores()))
    sizes = {"small": budget.population_size, "large": max(budget.test_seeds, budget.population_size + 1)}

    def run_with(submit: Callable[[int], Any]) -> Throughput:
        def timed(agents: int) -> tuple[float, float]:
            results = [submit(agents) for _ in range(parallel)]
            steps, setups = zip(*(r.result() if hasattr(r, "result") else r for r in results), strict=True)
            return max(steps), max(setups)

        return calibrate(timed, small=sizes["small"], large=sizes["large"], parallel=parallel)

    if parallel == 1:
        return run_with(
            lambda agents: calibration_job(task_spec, scaled, agents, dict(env_kwargs), action_space)
        )
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        # One round first so every process has imported the training stack before anything is timed.
        list(pool.map(_warm, [task_spec] * parallel))
        return run_with(
            lambda agents: pool.submit(
                calibration_job, task_spec, scaled, agents, dict(env_kwargs), action_space
            )
        )


def _warm(task_spec: str) -> None:
    """Import the training stack and build the task once in a calibration process."""
    import autogai.training  # noqa: F401
    from autogai.tasks import get_task

    get_task(task_spec)


def observed_throughput(
    plan: SearchPlan, populations: Sequence[tuple[int, float, bool]], steps: int
) -> SearchPlan:
    """``plan`` with its throughput refitted from the populations this run has trained: (agents, seconds,
    baseline?) of populations that ran all ``steps`` steps. They ran on this machine under the load the
    search itself makes, which a calibration can only approximate (the first 15-minute quickstart's
    calibration predicted test populations 1.9x slower than they ran). Proposed designs' seconds per step
    are divided by ``ENHANCER_COST``, since predictions multiply it back. Fewer than two population sizes: the
    calibrated line is scaled to the observations instead."""
    t = plan.throughput
    if t is None:
        return plan
    points = [
        (agents, (seconds - t.setup_s) / steps / (1.0 if baseline else ENHANCER_COST))
        for agents, seconds, baseline in populations
        if agents > 0 and seconds > t.setup_s
    ]
    if not points:
        return plan
    sizes = {agents for agents, _ in points}
    if len(sizes) >= 2:
        import numpy as np

        per_agent, fixed = np.polyfit([a for a, _ in points], [y for _, y in points], 1)
        per_agent = max(0.0, float(per_agent))
        fixed = max(1e-6, float(fixed))
    else:
        predicted = [t.per_step_fixed_s + t.per_step_per_agent_s * agents for agents, _ in points]
        ratio = sum(y for _, y in points) / sum(predicted)
        fixed, per_agent = t.per_step_fixed_s * ratio, t.per_step_per_agent_s * ratio
    return replace(plan, throughput=replace(t, per_step_fixed_s=fixed, per_step_per_agent_s=per_agent))


def drift(plan: SearchPlan, budget: SearchBudget, generation_seconds: Sequence[float]) -> float:
    """Measured over predicted seconds of the generations run so far (1.0 before there is any)."""
    predicted = sum(predicted_generation_seconds(plan, budget, g) for g in range(len(generation_seconds)))
    measured = sum(generation_seconds)
    return measured / predicted if predicted > 0 and measured > 0 else 1.0


def skip_generation(
    plan: SearchPlan,
    budget: SearchBudget,
    generation: int,
    generation_seconds: Sequence[float],
    left_s: float,
) -> str | None:
    """Why generation ``generation`` (>= 1) must be skipped to keep the final test inside the budget, or
    None when it fits. The next generation is predicted from the plan scaled by how far the measured
    generations (``generation_seconds``) were from their prediction; the test phase likewise."""
    if not generation_seconds or plan.throughput is None:
        return None
    factor = drift(plan, budget, generation_seconds)
    next_generation = predicted_generation_seconds(plan, budget, generation) * factor
    test = _test_seconds(plan.finalists, plan.test_seeds, budget, plan.throughput) * factor
    if left_s >= next_generation + test:
        return None
    return (
        f"time budget: stopping after generation {generation - 1} ({format_duration(left_s)} left; generation "
        f"{generation} would need ~{format_duration(next_generation)} and the final test ~{format_duration(test)})"
    )


def calibration_budget(budget: SearchBudget, fraction: float) -> SearchBudget:
    """The budget scaled down by ``fraction`` in every step count (warm-up, evaluation cadence, length), so
    a calibration run has the real run's mix of random steps, updates and evaluations; never fewer than
    ``MIN_CALIBRATION_STEPS`` (a few dozen steps time the first, slow ones only)."""
    steps = min(budget.total_steps, max(MIN_CALIBRATION_STEPS, round(budget.total_steps * fraction)))
    scale = steps / budget.total_steps
    return replace(
        budget,
        total_steps=max(1, round(budget.total_steps * scale)),
        learning_starts=round(budget.learning_starts * scale),
        eval_every=max(1, round(budget.eval_every * scale)),
    )


# --- planning ---------------------------------------------------------------------------------------------


def _rounds(jobs: int, parallel: int) -> int:
    return math.ceil(jobs / parallel) if jobs > 0 else 0


@dataclass(frozen=True)
class _Shape:
    generations: int
    designs: int
    trials: int
    validation_seeds: int
    top_k: int
    test_seeds: int
    finalists: int


def _mean_cost(designs: int, with_baseline: bool) -> float:
    """The average cost factor of ``designs`` populations when one of them is the baseline's plain TD3."""
    proposed = designs - (1 if with_baseline else 0)
    return (proposed * ENHANCER_COST + (designs - proposed)) / designs if designs else 1.0


def _generation_seconds(
    designs: int, shape: _Shape, budget: SearchBudget, throughput: Throughput, *, with_baseline: bool
) -> float:
    """Tuning (batches of ``population_size`` trials) then validation (one population of top-k x seeds per
    design), each phase's jobs spread over the parallel workers (list scheduling of equal jobs)."""
    steps, batch, parallel = budget.total_steps, budget.population_size, throughput.parallel
    cost = _mean_cost(designs, with_baseline)
    tuning_job = throughput.run_seconds(min(batch, shape.trials), steps) * cost
    validation_job = throughput.run_seconds(shape.top_k * shape.validation_seeds, steps) * cost
    batches = designs * math.ceil(shape.trials / batch)
    training = _rounds(batches, parallel) * tuning_job + _rounds(designs, parallel) * validation_job
    return training + designs * PROPOSAL_S + 2 * PHASE_S


def _test_seconds(finalists: int, test_seeds: int, budget: SearchBudget, throughput: Throughput) -> float:
    """The finalists and the baseline, each one population on the test seeds."""
    job = throughput.run_seconds(test_seeds, budget.total_steps) * _mean_cost(finalists + 1, True)
    return _rounds(finalists + 1, throughput.parallel) * job + PHASE_S


def predict(shape: _Shape, budget: SearchBudget, throughput: Throughput) -> tuple[float, float]:
    """(whole search, test phase) seconds for ``shape``: phases run with barriers between them."""
    total = sum(
        _generation_seconds(shape.designs + (g == 0), shape, budget, throughput, with_baseline=g == 0)
        for g in range(shape.generations)  # generation 0 also tunes the baseline
    )
    test = _test_seconds(shape.finalists, shape.test_seeds, budget, throughput)
    return total + test, test


def _candidates(budget: SearchBudget) -> Iterable[_Shape]:
    batch = budget.population_size
    for generations in range(1, MAX_GENERATIONS + 1):
        for designs in range(1, MAX_DESIGNS + 1):
            for trials in sorted({batch, 2 * batch, 3 * batch}):
                for validation_seeds in (2, 3, 5):
                    for finalists in range(1, min(budget.finalists, generations * designs) + 1):
                        for test_seeds in range(
                            max(MIN_TEST_SEEDS, budget.test_seeds), MAX_TEST_SEEDS + 1, 2
                        ):
                            yield _Shape(
                                generations,
                                designs,
                                trials,
                                validation_seeds,
                                budget.validation_top_k,
                                test_seeds,
                                finalists,
                            )


def _preference(shape: _Shape) -> tuple[Any, ...]:
    """Larger is better: first enough designs (and a second generation, so feedback is used), then two
    tuning batches, validation seeds, finalists; more breadth after that, and test seeds (the verdict's
    power) with whatever is left."""
    designs = shape.generations * shape.designs
    return (
        min(designs, 4),
        shape.generations >= 2,
        min(shape.trials, 8),
        min(shape.validation_seeds, 3),
        shape.finalists,
        min(designs, 12),
        shape.trials,
        shape.validation_seeds,
        shape.test_seeds,
        -shape.generations,  # the same breadth in fewer, wider generations waits less at barriers
    )


def plan_search(
    budget: SearchBudget, budget_s: float, throughput: Throughput, *, spent_s: float = 0.0
) -> SearchPlan:
    """The preferred plan whose predicted duration fits ``SAFETY * budget_s`` after the ``spent_s`` seconds
    already used (start-up, calibration); ConfigError (one line that says what budget would do) when not even
    a minimal honest verdict fits: the baseline and one design, one tuning batch each, validated, and both
    retrained on ``MIN_TEST_SEEDS`` test seeds."""
    usable = SAFETY * budget_s - spent_s
    best: tuple[tuple[Any, ...], _Shape, float, float] | None = None
    for shape in _candidates(budget):
        total, test = predict(shape, budget, throughput)
        if total > usable:
            continue
        key = _preference(shape)
        if best is None or key > best[0]:
            best = (key, shape, total, test)
    if best is None:
        minimal = _Shape(1, 1, budget.population_size, 2, budget.validation_top_k, MIN_TEST_SEEDS, 1)
        need, _ = predict(minimal, budget, throughput)
        need += spent_s
        raise ConfigError(
            f"a time budget of {format_duration(budget_s)} cannot hold an honest verdict on this machine: the "
            f"baseline and one design, validated and retrained on {MIN_TEST_SEEDS} test seeds at "
            f"{budget.total_steps} steps, need about {format_duration(need / SAFETY)}; give at least that "
            "(or fewer --steps)"
        )
    _, shape, total, test = best
    return SearchPlan(
        budget_s=budget_s,
        generations=shape.generations,
        designs_per_generation=shape.designs,
        trials_per_design=shape.trials,
        validation_seeds=shape.validation_seeds,
        validation_top_k=shape.top_k,
        test_seeds=shape.test_seeds,
        finalists=shape.finalists,
        total_steps=budget.total_steps,
        predicted_s=total + spent_s,
        predicted_test_s=test,
        throughput=throughput,
    )


def predicted_generation_seconds(plan: SearchPlan, budget: SearchBudget, generation: int) -> float:
    """Predicted seconds of one generation of ``plan`` (generation 0 also tunes the baseline); 0 without a
    throughput measurement."""
    if plan.throughput is None:
        return 0.0
    shape = _Shape(
        1,
        plan.designs_per_generation,
        plan.trials_per_design,
        plan.validation_seeds,
        plan.validation_top_k,
        plan.test_seeds,
        plan.finalists,
    )
    designs = plan.designs_per_generation + (1 if generation == 0 else 0)
    return _generation_seconds(designs, shape, budget, plan.throughput, with_baseline=generation == 0)


def fit_final_test(
    plan: SearchPlan,
    budget: SearchBudget,
    candidates: int,
    left_s: float,
    drift: float,
    *,
    max_finalists: int | None = None,
) -> tuple[int, int]:
    """(finalists, test seeds) for the final test with ``left_s`` seconds left, the costs scaled by ``drift``
    (measured / predicted time of the generations run so far): the largest that fits, up to ``max_finalists``
    and ``MAX_TEST_SEEDS`` (the plan's own counts when ``max_finalists`` is None), down to one finalist on
    ``MIN_TEST_SEEDS`` seeds; more finalists first, then more seeds. When even the smallest does not fit, it
    runs anyway: the verdict is what the search is for."""
    grow = max_finalists is not None
    most = min(max_finalists if max_finalists is not None else plan.finalists, candidates)
    if plan.throughput is None or most == 0:
        return most, plan.test_seeds
    top_seeds = max(plan.test_seeds, MAX_TEST_SEEDS) if grow else plan.test_seeds
    for count in range(most, 0, -1):
        for seeds in range(top_seeds, MIN_TEST_SEEDS - 1, -2):
            if _test_seconds(count, seeds, budget, plan.throughput) * drift <= left_s:
                return count, seeds
    return 1, min(plan.test_seeds, MIN_TEST_SEEDS)


def usable_cores() -> int:
    """Cores this process may run on (``taskset`` and cgroup CPU sets narrow it; ``os.cpu_count`` doesn't)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
