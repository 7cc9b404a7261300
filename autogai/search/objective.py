"""One trial: sample a configuration, train GAI-enhanced TD3 with the design's reward program, report
the task fitness (never the reward) to Optuna, and keep what feedback needs in the trial's attributes.

Runs in worker processes only (:mod:`autogai.search.worker`); the reward program itself runs in the
reward sandbox's own process below that. Failures never escape as exceptions: a reward error is a FAIL
trial, divergence and timeouts are PRUNED trials, each with its reason in ``user_attrs["reason"]``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autogai.core.seeding import derive_seed
from autogai.core.types import Design, EnhancerCombo
from autogai.search.budget import SearchBudget
from autogai.search.space import suggest_reward_params, suggest_td3_params
from autogai.search.trial_result import TrialResult, finite

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

SEED_BLOCK = 1_000_000
"""Tuning seeds lie in ``[0, SEED_BLOCK)``, validation seeds in the next block, test seeds in the one after:
the three kinds never meet, whatever the search seed."""
VALIDATION_SEED_OFFSET = SEED_BLOCK
TEST_SEED_OFFSET = 2 * SEED_BLOCK
SCORING_KINDS = ("validation", "test")
RANDOM_SCENARIO_EPISODES = 10
"""Held-out scenarios each validation or test run is scored on when the task draws scenarios at random."""
"""Trials that retrain a fixed configuration on a seed tuning never saw."""


@dataclass(frozen=True)
class TrialContext:
    """What a worker needs to run any trial of a run (stored in the run's metadata study)."""

    run_name: str
    task: str
    budget: SearchBudget
    action_space: str | None = None
    device: str = "cpu"
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    """The search's seed: tuning, validation and test seeds and the samplers' seeds derive from it."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_name": self.run_name,
            "task": self.task,
            "budget": self.budget.to_dict(),
            "action_space": self.action_space,
            "device": self.device,
            "env_kwargs": dict(self.env_kwargs),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialContext:
        return cls(
            run_name=str(data["run_name"]),
            task=str(data["task"]),
            budget=SearchBudget.from_dict(dict(data["budget"])),
            action_space=data.get("action_space"),
            device=str(data.get("device", "cpu")),
            env_kwargs=dict(data.get("env_kwargs") or {}),
            seed=int(data.get("seed", 0)),
        )

    def resolved_env_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.env_kwargs)
        if self.action_space:
            kwargs["action_mode"] = self.action_space
        return kwargs


def tuning_seed(search_seed: int, design_id: str, trial_number: int) -> int:
    return derive_seed(search_seed, design_id, trial_number) % SEED_BLOCK


def scoring_seeds(search_seed: int, kind: str, n: int) -> list[int]:
    """``n`` distinct ``validation`` or ``test`` seeds of a search: every design gets the same ones (common
    random numbers make designs comparable), another search seed gets other ones."""
    offset = {"validation": VALIDATION_SEED_OFFSET, "test": TEST_SEED_OFFSET}[kind]
    base = derive_seed(search_seed, kind) % (SEED_BLOCK - n)
    return [offset + base + i for i in range(n)]


def scoring_scenarios(context: TrialContext, kind: str, n: int) -> list[int] | None:
    """Held-out scenario seeds a validation or test run is evaluated on, when the search trains on a scenario
    distribution (``scenario="random"``); None otherwise (the task's own evaluation). Validation and test draw
    from disjoint blocks of the held-out split, so neither is the other's."""
    if kind not in SCORING_KINDS or context.env_kwargs.get("scenario") != "random":
        return None
    from autogai.envs.uav.scenario import scenario_seeds

    block = 2**40
    base = derive_seed(context.seed, kind, "scenarios") + (block if kind == "test" else 0)
    return scenario_seeds("heldout", n, base_seed=base)


def seed_kind(seed: int) -> str:
    """``tuning``, ``validation`` or ``test``: which block a seed comes from."""
    return ("tuning", "validation", "test")[min(2, int(seed) // SEED_BLOCK)]


@dataclass
class TrialOutcome:
    state: str
    """``COMPLETE``, ``PRUNED`` or ``FAIL``."""
    value: float | None
    result: TrialResult


def build_td3_config(params: Mapping[str, Any], device: str) -> Any:
    from autogai.agents import TD3Config

    return TD3Config(**{**params, "device": device, "torch_threads": 1})


@dataclass
class _Prepared:
    """A claimed trial with its sampled configuration, ready to train."""

    position: int
    trial: Any
    seed: int
    config: Any
    reward_params: dict[str, float]
    attrs: TrialResult


def run_batch(
    trials: Sequence[optuna.Trial],
    study_attrs: Mapping[str, Any],
    context: TrialContext,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> list[TrialOutcome]:
    """Run trials of one study (one design) as populations; one outcome per trial, in order.

    Each trial's configuration is sampled first (so the sampler sees the whole batch as running), then
    trials of one shape train as one population. Intermediate fitness is reported per trial and an agent
    whose trial the pruner stops leaves its population. Never raises for a bad design.
    """
    import optuna

    from autogai.agents import TD3Config
    from autogai.tasks import get_task

    design = Design.from_dict(study_attrs["design"])
    enhancers = EnhancerCombo.parse(design.enhancers)
    kind = study_attrs.get("kind", "tuning")
    budget = context.budget
    reward_specs = study_attrs.get("reward_params") or {}
    outcomes: list[TrialOutcome | None] = [None] * len(trials)
    prepared: list[_Prepared] = []
    try:
        task = get_task(context.task)
    except Exception as exc:  # a task file that broke after the search started
        reason = f"{type(exc).__name__}: {exc}"
        return [
            TrialOutcome("FAIL", None, TrialResult(kind=kind, status="config_error", reason=reason))
            for _ in trials
        ]
    for position, trial in enumerate(trials):
        if kind in SCORING_KINDS:
            queued = TrialResult.from_attrs(trial.user_attrs)
            attrs = TrialResult(
                kind=kind,
                seed=queued.seed,
                params=queued.params,
                config_key=queued.config_key,
                source=queued.source,
            )
            source_trial: Any = optuna.trial.FixedTrial(dict(queued.params))
            seed = int(trial.user_attrs["seed"])
        else:
            attrs = TrialResult(kind=kind)
            source_trial = trial
            seed = tuning_seed(context.seed, design.id, trial.number)
        try:
            td3_params = suggest_td3_params(source_trial, enhancers, budget)
            reward_params = suggest_reward_params(source_trial, reward_specs)
            config = build_td3_config(td3_params, context.device)
        except Exception as exc:  # a hint outside a distribution, an invalid combination of knobs
            attrs.status, attrs.reason = "config_error", f"{type(exc).__name__}: {exc}"
            outcomes[position] = TrialOutcome("FAIL", None, attrs)
            continue
        attrs.seed, attrs.reward_params = seed, dict(reward_params)
        prepared.append(_Prepared(position, trial, seed, config, reward_params, attrs))

    groups: dict[Any, list[_Prepared]] = {}
    for item in prepared:
        groups.setdefault(TD3Config.population_key(item.config), []).append(item)
    eval_episodes = _evaluation_episodes(task, context, kind)
    for group in groups.values():
        for item, outcome in zip(
            group,
            _train_group(group, task, design, enhancers, context, kind, eval_episodes, should_stop),
            strict=True,
        ):
            outcomes[item.position] = outcome
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


def _evaluation_episodes(task: Any, context: TrialContext, kind: str) -> int:
    """One episode where the task is deterministic from a fixed start (more would repeat it exactly)."""
    deterministic = task.deterministic
    if callable(deterministic):
        deterministic = deterministic(context.resolved_env_kwargs())
    if deterministic:
        return 1
    if kind in SCORING_KINDS and context.env_kwargs.get("scenario") == "random":
        return max(context.budget.heldout_eval_episodes, RANDOM_SCENARIO_EPISODES)
    return context.budget.heldout_eval_episodes if kind in SCORING_KINDS else context.budget.eval_episodes


def _train_group(
    group: list[_Prepared],
    task: Any,
    design: Design,
    enhancers: EnhancerCombo,
    context: TrialContext,
    kind: str,
    eval_episodes: int,
    should_stop: Callable[[], bool] | None,
) -> list[TrialOutcome]:
    from autogai.training import AgentSpec, train

    budget = context.budget
    # A trial's time limit is a budget of agent-seconds: agents of a population share the wall clock.
    limit = None if budget.trial_time_limit_s is None else budget.trial_time_limit_s * len(group)
    specs = [
        AgentSpec(
            seed=item.seed, td3_config=item.config, reward_params=item.reward_params, time_limit_s=limit
        )
        for item in group
    ]

    def report(agent: int, step: int, fitness: float) -> bool:
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt("worker asked to stop")
        value = finite(fitness)
        if kind in SCORING_KINDS or value is None:
            return True
        trial = group[agent].trial
        trial.report(value, step)
        # Never judge a trial while it still acts at random.
        return step <= budget.learning_starts or not trial.should_prune()

    try:
        results = train(
            task,
            specs,
            enhancers=enhancers,
            reward_source=design.reward_source,
            total_steps=budget.total_steps,
            env_kwargs=context.resolved_env_kwargs(),
            eval_every=budget.eval_every,
            eval_episodes=eval_episodes,
            report=report,
            eval_scenario_seeds=scoring_scenarios(context, kind, eval_episodes),
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug below us must not stop the search; keep the reason
        logger.exception("a population of %d trials of %s crashed", len(group), design.id)
        reason = f"{type(exc).__name__}: {exc}"
        return [
            TrialOutcome("FAIL", None, dataclasses.replace(item.attrs, status="crashed", reason=reason))
            for item in group
        ]
    return [_outcome(item, result, kind) for item, result in zip(group, results, strict=True)]


def _outcome(item: _Prepared, result: Any, kind: str) -> TrialOutcome:
    attrs = TrialResult.from_training(item.attrs, result)
    if result.status == "completed" and attrs.fitness is not None:
        return TrialOutcome("COMPLETE", attrs.fitness, attrs)
    if kind in SCORING_KINDS:
        # A validation or test run that did not complete (timeout included) is a failure, not a score.
        return TrialOutcome("FAIL", None, attrs)
    if result.status in ("pruned", "diverged", "timeout"):
        # rl-baselines3-zoo's convention: NaN/divergence ends a trial as pruned, not as a crash.
        return TrialOutcome("PRUNED", None, attrs)
    return TrialOutcome("FAIL", None, attrs)  # reward errors, or a run that produced no evaluation


def calibration_job(
    task_spec: str,
    budget: Mapping[str, Any],
    agents: int,
    env_kwargs: Mapping[str, Any],
    action_space: str | None,
) -> tuple[float, float]:
    """:func:`calibration_run` from plain arguments, for a calibration process of its own."""
    from autogai.tasks import get_task

    return calibration_run(
        get_task(task_spec), SearchBudget.from_dict(dict(budget)), agents, env_kwargs, action_space
    )


def calibration_run(
    task: Any, budget: SearchBudget, agents: int, env_kwargs: Mapping[str, Any], action_space: str | None
) -> tuple[float, float]:
    """Train the task's baseline design with TD3's defaults as a population of ``agents`` for ``budget``'s
    steps; returns (seconds per population step after the first evaluation, set-up seconds before it).

    The first evaluation comes after the random warm-up; timing from it to the end measures the steps that
    dominate a real run (updates, evaluations at the real cadence) without the one-off set-up.
    """
    import time

    import optuna

    from autogai.search.space import default_trial_params
    from autogai.training import AgentSpec, train

    enhancers = EnhancerCombo()
    params = default_trial_params(enhancers, budget, {})
    fixed: Any = optuna.trial.FixedTrial(params)
    config = build_td3_config(suggest_td3_params(fixed, enhancers, budget), "cpu")
    stamps: list[tuple[int, float]] = []

    def report(agent: int, step: int, fitness: float) -> bool:
        if agent == 0:
            stamps.append((step, time.perf_counter()))
        return True

    kwargs = dict(env_kwargs)
    if action_space:
        kwargs["action_mode"] = action_space
    started = time.perf_counter()
    train(
        task,
        [AgentSpec(seed=derive_seed("calibration", i), td3_config=config) for i in range(agents)],
        enhancers=enhancers,
        total_steps=budget.total_steps,
        env_kwargs=kwargs,
        eval_every=budget.eval_every,
        eval_episodes=budget.eval_episodes,
        report=report,
    )
    finished = time.perf_counter()
    if len(stamps) < 2 or stamps[-1][0] <= stamps[0][0]:
        return (finished - started) / budget.total_steps, 0.0
    (first_step, first_time), (last_step, last_time) = stamps[0], stamps[-1]
    per_step = (last_time - first_time) / (last_step - first_step)
    setup = max(0.0, first_time - started - per_step * first_step)
    return per_step, setup
