"""One trial: sample a configuration, train GAI-enhanced TD3 with the design's reward program, report
the task fitness (never the reward) to Optuna, and keep what feedback needs in the trial's attributes.

Runs in worker processes only (:mod:`autogai.search.worker`); the reward program itself runs in the
reward sandbox's own process below that. Failures never escape as exceptions: a reward error is a FAIL
trial, divergence and timeouts are PRUNED trials, each with its reason in ``user_attrs["reason"]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autogai.core.seeding import derive_seed
from autogai.core.types import Design, EnhancerCombo
from autogai.search.budget import SearchBudget
from autogai.search.space import suggest_reward_params, suggest_td3_params

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

HELDOUT_SEED_OFFSET = 1_000_000
"""Held-out seeds are ``HELDOUT_SEED_OFFSET + i``; tuning seeds are below it, so the two never meet."""


@dataclass(frozen=True)
class TrialContext:
    """What a worker needs to run any trial of a run (stored in the run's metadata study)."""

    run_name: str
    task: str
    budget: SearchBudget
    action_space: str | None = None
    device: str = "cpu"
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_name": self.run_name,
            "task": self.task,
            "budget": self.budget.to_dict(),
            "action_space": self.action_space,
            "device": self.device,
            "env_kwargs": dict(self.env_kwargs),
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
        )

    def resolved_env_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.env_kwargs)
        if self.action_space:
            kwargs["action_mode"] = self.action_space
        return kwargs


def tuning_seed(run_name: str, design_id: str, trial_number: int) -> int:
    return derive_seed(run_name, design_id, trial_number) % HELDOUT_SEED_OFFSET


def heldout_seed(index: int) -> int:
    return HELDOUT_SEED_OFFSET + index


@dataclass
class TrialOutcome:
    state: str
    """``COMPLETE``, ``PRUNED`` or ``FAIL``."""
    value: float | None
    attrs: dict[str, Any]


def _finite(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _compact_curve(curve: list[Mapping[str, Any]]) -> list[dict[str, float | None]]:
    return [{k: _finite(v) for k, v in row.items()} for row in curve]


def build_td3_config(params: Mapping[str, Any], device: str) -> Any:
    from autogai.agents import TD3Config

    return TD3Config(**{**params, "device": device, "torch_threads": 1})


def run_trial(
    trial: optuna.Trial,
    study_attrs: Mapping[str, Any],
    context: TrialContext,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> TrialOutcome:
    """Run one trial of a tuning or held-out study. Never raises for a bad design."""
    from autogai.tasks import get_task
    from autogai.training import train_one

    design = Design.from_dict(study_attrs["design"])
    enhancers = EnhancerCombo.parse(design.enhancers)
    kind = study_attrs.get("kind", "tuning")
    budget = context.budget
    reward_specs = study_attrs.get("reward_params") or {}
    attrs: dict[str, Any] = {"kind": kind}
    if kind == "heldout":
        import optuna

        fixed = dict(trial.user_attrs.get("params") or study_attrs.get("best_params") or {})
        source_trial: Any = optuna.trial.FixedTrial(fixed)
        seed = int(trial.user_attrs.get("seed", heldout_seed(trial.number)))
        eval_episodes = budget.heldout_eval_episodes
    else:
        source_trial = trial
        seed = tuning_seed(context.run_name, design.id, trial.number)
        eval_episodes = budget.eval_episodes
    try:
        td3_params = suggest_td3_params(source_trial, enhancers, budget)
        reward_params = suggest_reward_params(source_trial, reward_specs)
        config = build_td3_config(td3_params, context.device)
        task = get_task(context.task)
    except Exception as exc:  # a hint outside a distribution, an invalid combination of knobs
        return TrialOutcome(
            "FAIL", None, {**attrs, "status": "config_error", "reason": f"{type(exc).__name__}: {exc}"}
        )
    attrs["seed"] = seed
    attrs["reward_params"] = reward_params

    def report(step: int, fitness: float) -> bool:
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt("worker asked to stop")
        value = _finite(fitness)
        if kind == "heldout" or value is None:
            return True
        trial.report(value, step)
        # Never judge a trial while it still acts at random.
        return step <= budget.learning_starts or not trial.should_prune()

    try:
        result = train_one(
            task,
            seed=seed,
            td3_config=config,
            reward_params=reward_params,
            time_limit_s=budget.trial_time_limit_s,
            enhancers=enhancers,
            reward_source=design.reward_source,
            total_steps=budget.total_steps,
            env_kwargs=context.resolved_env_kwargs(),
            eval_every=budget.eval_every,
            eval_episodes=eval_episodes,
            run_dir=None,
            report=lambda _agent, step, fitness: report(step, fitness),
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug below us must not stop the search; keep the reason
        logger.exception("trial %s of %s crashed", trial.number, design.id)
        return TrialOutcome(
            "FAIL", None, {**attrs, "status": "crashed", "reason": f"{type(exc).__name__}: {exc}"}
        )

    data = result.to_dict()
    evaluation = data.get("final_evaluation") or {}
    attrs.update(
        {
            "status": result.status,
            "reason": result.reason,
            "fitness": data.get("fitness"),
            "steps_done": result.steps_done,
            "wall_time_s": round(result.wall_time_s, 3),
            "episode_fitness": evaluation.get("episode_fitness", []),
            "report_metrics": evaluation.get("report_metrics", {}),
            "eval_violation_rates": evaluation.get("violation_rates", {}),
            "infeasible_fraction": evaluation.get("infeasible_fraction"),
            "oracle_fitness": evaluation.get("oracle_fitness"),
            "components": data.get("component_summaries", {}),
            "violation_rates": data.get("violation_rates", {}),
            "curve": _compact_curve(data.get("curve", [])),
        }
    )
    fitness = _finite(data.get("fitness"))
    if result.status == "completed" and fitness is not None:
        return TrialOutcome("COMPLETE", fitness, attrs)
    if kind == "heldout" and result.status == "timeout" and fitness is not None:
        return TrialOutcome("COMPLETE", fitness, attrs)  # the policy exists; its score is what it is
    if result.status in ("pruned", "diverged", "timeout"):
        # rl-baselines3-zoo's convention: NaN/divergence ends a trial as pruned, not as a crash.
        return TrialOutcome("PRUNED", None, attrs)
    return TrialOutcome("FAIL", None, attrs)  # reward errors, or a run that produced no evaluation
