"""Task cards: everything a proposer, a reward program and the trainer need to know about a task.

A card names the gymnasium environment, the per-step metrics a reward program may read (name, unit,
meaning), the fitness designs are ranked on (computed from the environment, never from the reward), and
the baseline reward program. Cards are plain data plus two small functions, so users can write their own
for any registered gymnasium env (see :mod:`autogai.tasks.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from autogai.core.errors import AutoGAIError, ConfigError

if TYPE_CHECKING:
    import gymnasium as gym

MetricsFn = Callable[[np.ndarray, Any, float, np.ndarray, Mapping[str, Any]], dict[str, float]]
"""(obs, executed action, env reward, next_obs, info) -> named per-step metrics for reward programs."""

FitnessFn = Callable[[Mapping[str, float], float], float]
"""(metrics of the step, env reward) -> the step's contribution to the task fitness."""


METRIC_INTENTS: tuple[str, ...] = ("maximise", "minimise", "target", "failure", "momentum")
"""What a task wants from a metric: more of it, less of it (an effort or a cost), a value near ``target``,
never (a 0/1 failure flag), or ``momentum``: a signed quantity, usually a speed, whose magnitude the agent
must build up on the way to the goal although the task does not pay for it (the mountain car's velocity,
a swing-up's angular velocity). A metric without an intent is information only."""


@dataclass(frozen=True)
class MetricSpec:
    """One named per-step metric a reward program may read as ``m.<name>``, and what the task wants of it.

    The intent fields are structured so that a proposer can build reward terms for a task it has never
    seen: the offline proposer binds the knowledge base's task-agnostic reward terms to them, and the LLM
    prompt shows them in the metric table.
    """

    name: str
    unit: str
    meaning: str
    intent: str | None = None
    """One of :data:`METRIC_INTENTS`, or None (information only)."""
    target: float | None = None
    """The value the task wants (required for intent ``target``)."""
    bounds: tuple[float, float] | None = None
    """The range the metric takes, ``(low, high)``; lets terms normalise it to a unit scale."""
    obs_index: int | None = None
    """Set when the metric is ``next_obs[obs_index]`` (and so was ``obs[obs_index]`` before the step):
    potential-based shaping can then compare the state before and after the step."""

    def __post_init__(self) -> None:
        where = f"metric {self.name!r}"
        if self.intent is not None and self.intent not in METRIC_INTENTS:
            raise ConfigError(f"{where}: intent {self.intent!r} is not one of {', '.join(METRIC_INTENTS)}")
        if self.intent == "target" and self.target is None:
            raise ConfigError(f"{where}: intent 'target' needs a target value")
        if self.bounds is not None:
            low, high = (float(v) for v in self.bounds)
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise ConfigError(f"{where}: bounds must be finite with low < high, got {self.bounds!r}")
            object.__setattr__(self, "bounds", (low, high))
            if self.target is not None and not low <= self.target <= high:
                raise ConfigError(f"{where}: target {self.target} lies outside its bounds {self.bounds}")
        if self.target is not None and not np.isfinite(self.target):
            raise ConfigError(f"{where}: target must be a finite number")
        if self.obs_index is not None and (isinstance(self.obs_index, bool) or self.obs_index < 0):
            raise ConfigError(f"{where}: obs_index must be a non-negative integer")

    def describe_intent(self) -> str:
        """The intent in a few words, as the metric table shows it (``-`` for information only)."""
        parts = []
        if self.intent == "target":
            parts.append(f"target {self.target:g}")
        elif self.intent == "failure":
            parts.append("failure flag (1 = failed)")
        elif self.intent == "momentum":
            parts.append("momentum (build up its magnitude)")
        elif self.intent is not None:
            parts.append(self.intent)
        if self.bounds is not None:
            parts.append(f"bounds [{self.bounds[0]:g}, {self.bounds[1]:g}]")
        if self.obs_index is not None:
            parts.append(f"obs[{self.obs_index}]")
        return "; ".join(parts) or "-"


NATIVE_REWARD_BASELINE = """\
\"\"\"The environment's own reward (the card's metric env_reward), with a tunable scale.\"\"\"

PARAMS = {"scale": {"default": 1.0, "low": 0.1, "high": 10.0, "log": True}}


def compute_reward(m, p):
    components = {"native": p["scale"] * m.env_reward}
    return sum(components.values()), components
"""
"""A baseline for cards that report the environment's reward as the metric ``env_reward``."""


def native_fitness(metrics: Mapping[str, float], env_reward: float) -> float:
    """Step fitness = the environment's own reward (for tasks whose native return is the measure)."""
    return float(env_reward)


@dataclass(frozen=True)
class TaskCard:
    """What autogai knows about a task. See docs/task_cards.md."""

    id: str
    """Short id used on the command line, e.g. ``uav-nearfield``."""
    title: str
    description: str
    """Prose for the LLM: the scenario, the objective, the constraints."""
    env_id: str
    """A registered gymnasium id, e.g. ``autogai/UAVNearField-v0``."""
    metrics: tuple[MetricSpec, ...]
    """The metrics ``metrics_fn`` returns each step, documented for the LLM and the reward validator."""
    fitness_description: str
    """How fitness is computed, in prose (shown to the LLM and in reports)."""
    baseline_reward: str
    """The baseline reward program's source (the contract of docs/reward_programs.md)."""
    metrics_fn: MetricsFn
    fitness_fn: FitnessFn
    fitness_aggregate: Literal["mean", "sum"] = "mean"
    """Episode fitness = mean (UAV: utility per slot) or sum (Pendulum: return) of the step fitness."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    report_metrics: tuple[str, ...] = ()
    """Metrics averaged over evaluation episodes and shown next to fitness (e.g. rate, power)."""
    violation_metrics: tuple[str, ...] = ()
    """Boolean metrics counted as constraint violations (their rates go into feedback)."""
    oracle_fitness: Callable[[], float] | None = None
    """Best achievable episode fitness, where the task knows it (UAV: scripted oracle)."""
    action_modes: tuple[str, ...] = ()
    """Values of the env kwarg ``action_mode`` the task supports (empty: the env's own space only)."""
    max_episode_steps: int | None = None
    tags: tuple[str, ...] = ()
    references: Mapping[str, Callable[[], float]] = field(default_factory=dict)
    """Named reference episode fitnesses drawn next to the scores (UAV: hovering at the start at full
    power); the oracle is ``oracle_fitness``."""
    deterministic: bool | Callable[[Mapping[str, Any]], bool] = False
    """True (or a function of the env kwargs saying so) when an episode is fully determined by the policy:
    a fixed start and no randomness. One evaluation episode then says all that ten would."""
    judge_metrics: tuple[str, ...] | None = None
    """Metrics only the judge may read: reward programs reading them (by any route) are rejected, and they are
    never sent to the sandbox. None: ``("fitness",)`` when the card has a ``fitness`` metric, else none. A
    task whose fitness is the native reward says so with ``()``."""

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"task id {self.id!r} must be non-empty letters, digits, '-' or '_'")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ConfigError(f"task {self.id}: duplicate metric names in {names}")
        reserved = {"obs", "next_obs", "action"} & set(names)
        if reserved:
            raise ConfigError(f"task {self.id}: metric names {sorted(reserved)} are reserved")
        if self.fitness_aggregate not in ("mean", "sum"):
            raise ConfigError(f"task {self.id}: fitness_aggregate must be 'mean' or 'sum'")
        judges = self.judge_metrics
        if judges is None:
            judges = ("fitness",) if "fitness" in names else ()
        judges = tuple(judges)
        unknown = sorted(set(judges) - set(names))
        if unknown:
            raise ConfigError(f"task {self.id}: judge_metrics {unknown} are not metrics of the card")
        object.__setattr__(self, "judge_metrics", judges)

    def step_metrics(
        self, obs: np.ndarray, action: Any, env_reward: float, next_obs: np.ndarray, info: Mapping[str, Any]
    ) -> dict[str, float]:
        """``metrics_fn`` of one step, called the way every caller must: a card is code written outside
        autogai, so whatever it raises or returns wrongly becomes one ``ConfigError`` naming the card."""
        try:
            metrics = self.metrics_fn(obs, action, env_reward, next_obs, info)
        except Exception as exc:
            raise ConfigError(f"task {self.id}: metrics_fn raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(metrics, dict):
            raise ConfigError(f"task {self.id}: metrics_fn returned {type(metrics).__name__}, not a dict")
        return metrics

    def step_fitness(self, metrics: Mapping[str, float], env_reward: float) -> float:
        """``fitness_fn`` of one step as a float; a failure is one ``ConfigError`` naming the card."""
        try:
            return float(self.fitness_fn(metrics, env_reward))
        except Exception as exc:
            raise ConfigError(f"task {self.id}: fitness_fn raised {type(exc).__name__}: {exc}") from exc

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def fitness_metric(self) -> str | None:
        """The metric whose per-step value is the step fitness, if the card has one: ``env_reward`` on a
        card whose fitness is the native reward (:func:`native_fitness`). A proposer counts terms reading it
        as the most fitness-aligned of all."""
        if self.fitness_fn is native_fitness and "env_reward" in self.metric_names:
            return "env_reward"
        return None

    @property
    def program_metric_names(self) -> tuple[str, ...]:
        """The metrics a reward program may read: all but the judge-only ones."""
        judges = set(self.judge_metrics or ())
        return tuple(m.name for m in self.metrics if m.name not in judges)

    def make_env(self, **overrides: Any) -> gym.Env:
        """Build the task's environment with the card's kwargs, overridden by ``overrides``."""
        import gymnasium as gym

        import autogai.envs  # registers autogai's own environments

        gym.register_envs(autogai.envs)
        kwargs = {**self.env_kwargs, **overrides}
        try:
            return gym.make(self.env_id, **kwargs)
        except gym.error.Error as exc:  # unknown id, bad kwargs reported by gymnasium
            raise ConfigError(f"task {self.id}: cannot make env {self.env_id!r}: {exc}") from exc
        except AutoGAIError:
            raise
        except Exception as exc:  # the env's own constructor (a card's env is code written elsewhere)
            raise ConfigError(
                f"task {self.id}: cannot make env {self.env_id!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def action_space_kwargs(self, action_space: str | None) -> dict[str, Any]:
        """The env kwargs that select ``action_space`` (``--action-space``): ``{}`` for None, else
        ``{"action_mode": action_space}`` when the card offers that mode; a ``ConfigError`` otherwise."""
        if action_space is None:
            return {}
        if not self.action_modes:
            raise ConfigError(f"task {self.id} has a single action space; drop --action-space")
        if action_space not in self.action_modes:
            raise ConfigError(
                f"--action-space {action_space!r} is not supported by task {self.id}; "
                f"choose one of: {', '.join(self.action_modes)}"
            )
        return {"action_mode": action_space}

    def check_step(self, env_kwargs: Mapping[str, Any] | None = None) -> None:
        """One random step through the card's env, ``metrics_fn`` and ``fitness_fn``: a broken card fails
        here with one ``ConfigError``, before a command writes anything."""
        env = self.make_env(**dict(env_kwargs or {}))
        try:
            try:
                obs, _ = env.reset(seed=0)
                env.action_space.seed(0)
                action = env.action_space.sample()
                next_obs, raw_reward, _, _, info = env.step(action)
                reward = float(raw_reward)
            except AutoGAIError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"task {self.id}: env {self.env_id!r} failed on reset/step: {type(exc).__name__}: {exc}"
                ) from exc
            metrics = self.step_metrics(obs, action, reward, next_obs, info)
            missing = [name for name in self.metric_names if name not in metrics]
            if missing:
                raise ConfigError(f"task {self.id}: metrics_fn returned no value for metric(s) {missing}")
            self.step_fitness(metrics, reward)
        finally:
            env.close()

    def episode_fitness(self, step_fitness: Sequence[float]) -> float:
        """Aggregate per-step fitness values of one episode."""
        values = np.asarray(step_fitness, dtype=np.float64)
        if values.size == 0:
            return float("nan")
        return float(values.mean() if self.fitness_aggregate == "mean" else values.sum())

    def metrics_table(self) -> str:
        """The metric table as Markdown, with each metric's intent (shown in every LLM prompt); judge-only
        metrics are marked as such."""
        rows = ["| name | unit | meaning | intent |", "|---|---|---|---|"]
        judges = set(self.judge_metrics or ())
        for m in self.metrics:
            note = " (judge only: not readable by reward programs)" if m.name in judges else ""
            rows.append(f"| {m.name} | {m.unit} | {m.meaning}{note} | {m.describe_intent()} |")
        return "\n".join(rows)
