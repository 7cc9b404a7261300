"""The training loop: a population of TD3 agents, one task, one reward program, periodic evaluation.

Read top to bottom, a run is: build P x E environments (:class:`PopulationEnv`: every agent its own envs),
one sandbox for the reward program (each agent with its own ``PARAMS``), and one :class:`TD3Population`
for the agents' configurations; act uniformly at random for ``learning_starts`` steps, then with each agent's
exploration noise; per population step one sandbox round trip computes every agent's rewards; every
``train_freq`` steps run ``gradient_steps`` updates of all agents at once; every ``eval_every`` steps
evaluate every agent's deterministic policy on the *task fitness* (separate envs without the reward, the same
episodes for all agents), write curve rows and a checkpoint, and ask ``report(agent, step, fitness)``
whether each agent goes on.

An agent leaves the population with a status instead of an exception for everything a search must survive:
``pruned`` (``report`` said stop), ``diverged`` (non-finite losses, parameters or actions), ``reward_error``
(the reward program raised or returned garbage for its ``PARAMS``), ``timeout`` (its ``time_limit_s``). The
others continue unchanged; no compute is spent on a leaver afterwards. A population of one is the single
agent: ``train(task, agents=[AgentSpec(seed=0)])``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import ConfigError, RewardRejectedError, RewardRuntimeError, RunDirectoryError
from autogai.core.files import write_atomic
from autogai.core.seeding import derive_seed, seed_everything
from autogai.core.types import EnhancerCombo
from autogai.training.checkpoint import CHECKPOINT_DIR, save_checkpoint
from autogai.training.evaluation import evaluate_population, nonfinite_rows
from autogai.training.metrics import CurveWriter, LossAverager, TrainingStats
from autogai.training.population_env import PopulationEnv
from autogai.training.results import EvaluationResult, TrainResult

if TYPE_CHECKING:
    from autogai.agents import TD3Config, TD3Population
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

ReportFn = Callable[[int, int, float], bool]
"""``report(agent, step, fitness) -> go on?``; ``agent`` is the index into the list of agent specs."""


def evaluation_seed(seed: int) -> int:
    """Seed of the periodic evaluations of a run whose first agent has seed ``seed`` (disjoint from training)."""
    return derive_seed("evaluation", seed)


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a population: its seed, TD3 configuration, reward ``PARAMS`` and time budget."""

    seed: int = 0
    td3_config: TD3Config | None = None
    """``None``: TD3's defaults. Agents of one population may differ only in ``PER_AGENT_FIELDS``."""
    reward_params: Mapping[str, float] = field(default_factory=dict)
    """Values of the reward program's ``PARAMS`` (its defaults for the missing ones)."""
    time_limit_s: float | None = None
    """Wall-clock budget of this agent; it leaves with status ``timeout`` when it is spent."""


def _free_memory_bytes(device: Any) -> int | None:
    """Memory available for a population on ``device`` (None when unknown)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


class PopulationSession:
    """A population's training run that can be advanced step by step (``train`` drives one; benchmarks
    drive it directly). Building it builds the envs, the reward sandbox and the agents; :meth:`close`
    (or a ``with`` block) stops the sandbox."""

    def __init__(
        self,
        task: TaskCard,
        agents: Sequence[AgentSpec],
        *,
        enhancers: str | EnhancerCombo = "plain",
        reward_source: str | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        envs_per_agent: int = 1,
        total_steps: int | None = None,
    ) -> None:
        from autogai.agents import TD3Config, TD3Population, check_same_population
        from autogai.rewards import RewardProgram, SandboxedReward

        if not agents:
            raise ConfigError("a population needs at least one agent (got 0)")
        self.task = task
        self.specs = list(agents)
        self.enhancers = EnhancerCombo.parse(enhancers)
        configs = [s.td3_config if s.td3_config is not None else TD3Config() for s in self.specs]
        self.config = check_same_population(configs)
        self.env_kwargs = dict(env_kwargs or {})
        self.reward_source = reward_source if reward_source is not None else task.baseline_reward
        seed_everything(self.specs[0].seed)

        # Static checks of the program first: a rejected program must not cost an env or a process.
        self.program = RewardProgram.from_source(self.reward_source)
        defaults = self.program.default_params()
        self.reward_params: list[dict[str, float]] = []
        for spec in self.specs:
            unknown = set(spec.reward_params) - set(defaults)
            if unknown:
                valid = ", ".join(sorted(defaults)) or "(the program has no PARAMS)"
                raise ConfigError(f"unknown reward parameter(s) {sorted(unknown)}; valid: {valid}")
            self.reward_params.append({**defaults, **{k: float(v) for k, v in spec.reward_params.items()}})

        self.env = PopulationEnv(
            task, len(self.specs), envs_per_agent, env_kwargs=self.env_kwargs, seed=self.specs[0].seed
        )
        self.sandbox: Any = None
        try:
            capacity = None if total_steps is None else int(total_steps) * envs_per_agent
            layout: dict[str, Any] = {
                "seeds": [s.seed for s in self.specs],
                "token_groups": self.env.token_groups,
                "action_codebook": self.env.action_codebook,
                "capacity": capacity,
            }
            spaces = (self.env.single_observation_space, self.env.single_action_space)
            need = TD3Population.estimate_bytes(*spaces, self.enhancers, configs, **layout)
            self._check_memory(need, len(self.specs), self.config)
            self.population: TD3Population = TD3Population(*spaces, self.enhancers, configs, **layout)
            self.env.adapter = self.population.adapter
            self.sandbox_params = self.reward_params[0]
            self.sandbox = SandboxedReward(self.program, task, self.sandbox_params)
            self.obs = self.env.reset()
        except BaseException:
            self.close()
            raise
        self.adapter = self.population.adapter
        self.steps = 0
        # positions[k] = index into self.specs of the agent at population position k
        self.positions = list(range(len(self.specs)))
        self.stats = [TrainingStats(task.violation_metrics) for _ in self.specs]
        self.losses = [LossAverager() for _ in self.specs]
        self.eval_seed = evaluation_seed(self.specs[0].seed)
        gradient_steps = int(self.config.gradient_steps)
        self._gradient_steps = gradient_steps if gradient_steps > 0 else int(self.config.train_freq)

    @staticmethod
    def _check_memory(need: int, agents: int, config: TD3Config) -> None:
        """Before anything large exists: the population's estimated memory against the device's free memory."""
        from autogai.agents.td3 import resolve_device

        device = resolve_device(config.device)
        free = _free_memory_bytes(device)
        if free is not None and need > free:
            raise ConfigError(
                f"the population needs about {need / 2**30:.1f} GiB ({agents} agents, networks "
                f"{'x'.join(map(str, config.net_arch))}, replay of up to {config.buffer_size} rows each) but "
                f"{device} has {free / 2**30:.1f} GiB free; train fewer agents at once or shrink the networks "
                "or buffer_size"
            )

    # -- stepping ---------------------------------------------------------------------------------------
    def advance(self, n_steps: int) -> dict[int, tuple[str, str]]:
        """Run ``n_steps`` population steps (acting, rewards, storing, updating).

        Returns the agents that must leave, ``{spec index: (status, reason)}``; the caller removes them
        with :meth:`leave` (``advance`` stops at the first step that produced leavers).
        """
        population, env, task = self.population, self.env, self.task
        learning_starts = int(self.config.learning_starts)
        train_freq = int(self.config.train_freq)
        agents = population.size
        per_agent = env.envs_per_agent
        param_index = np.repeat(np.arange(agents), per_agent)
        for _ in range(n_steps):
            leaving: dict[int, tuple[str, str]] = {}
            coords = population.act(self.obs, explore=True)
            bad = nonfinite_rows(coords)
            for k in map(int, np.flatnonzero(bad)):
                leaving[self.positions[k]] = (
                    "diverged",
                    f"the actor produced non-finite actions at step {self.steps} (after {population.num_updates} updates)",
                )
            if leaving:
                return leaving
            step = env.step(coords)
            rows = agents * per_agent
            rewards = self._rewards(step, coords, param_index)
            for row, reason in rewards.errors.items():
                leaving.setdefault(self.positions[row // per_agent], ("reward_error", reason))
            population.add_transitions(
                step.obs,
                coords,
                np.nan_to_num(rewards.totals).reshape(agents, per_agent),
                step.next_obs,
                step.terminated,
            )
            for row in range(rows):
                k = row // per_agent
                stats = self.stats[self.positions[k]]
                components = {name: float(values[row]) for name, values in rewards.components.items()}
                stats.on_step(
                    float(rewards.totals[row]),
                    components,
                    step.metrics[row],
                    float(step.step_fitness.flat[row]),
                )
                if step.done.flat[row]:
                    stats.on_episode_end(task.episode_fitness(stats.current_step_fitness))
            self.obs = env.observations
            self.steps += 1
            if self.steps > learning_starts and self.steps % train_freq == 0:
                losses = population.train_step(self._gradient_steps)
                if losses:
                    table = np.stack(list(losses.values()), axis=1)  # [P, n_losses]
                    for k in map(int, np.flatnonzero(nonfinite_rows(table))):
                        bad_names = [n for n, v in losses.items() if not math.isfinite(float(v[k]))]
                        leaving.setdefault(
                            self.positions[k],
                            (
                                "diverged",
                                f"non-finite {', '.join(bad_names)} at step {self.steps} "
                                f"(after {population.num_updates} updates, enhancers {self.enhancers.short_name})",
                            ),
                        )
                    for k, spec_index in enumerate(self.positions):
                        self.losses[spec_index].add({n: float(v[k]) for n, v in losses.items()})
            if leaving:
                return leaving
        return {}

    def _rewards(self, step: Any, coords: np.ndarray, param_index: np.ndarray) -> Any:
        """Every row's reward in one sandbox round trip, each row with its agent's ``PARAMS``."""
        from autogai.rewards import RowRewards

        rows = param_index.shape[0]
        obs, next_obs = step.obs.reshape(rows, -1), step.next_obs.reshape(rows, -1)
        actions = np.asarray(coords, dtype=np.float64).reshape(rows, -1)
        params = [self.reward_params[i] for i in self.positions]
        if rows == 1 and params[0] == self.sandbox_params:
            # The single agent: the one-transition call is ~5x cheaper than a one-row batch.
            try:
                total, components = self.sandbox.compute(step.metrics[0], obs[0], actions[0], next_obs[0])
            except RewardRuntimeError as exc:
                return RowRewards(np.full(1, np.nan), {}, {0: str(exc)})
            return RowRewards(np.array([total]), {k: np.array([v]) for k, v in components.items()}, {})
        metrics = {
            name: np.fromiter((float(m.get(name, math.nan)) for m in step.metrics), float, rows)
            for name in self.task.metric_names
        }
        return self.sandbox.compute_rows(metrics, obs, actions, next_obs, params, param_index)

    def leave(self, spec_indices: Sequence[int]) -> None:
        """Remove agents (by spec index) from the population, its envs and its reward rows."""
        gone = set(spec_indices)
        keep = [k for k, index in enumerate(self.positions) if index not in gone]
        if not keep:
            self.positions = []
            return
        self.population.keep(keep)
        self.env.keep(keep)
        self.obs = self.env.observations
        self.positions = [self.positions[k] for k in keep]

    def nonfinite_agents(self) -> list[int]:
        """Spec indices of agents with a non-finite parameter."""
        return [self.positions[k] for k in self.population.nonfinite_agents()]

    def evaluate(self, episodes: int, *, with_oracle: bool = False) -> dict[int, EvaluationResult]:
        """Every live agent's deterministic policy on the task fitness: ``{spec index: result}``."""
        results = evaluate_population(
            self.population,
            self.task,
            episodes=episodes,
            seed=self.eval_seed,
            env_kwargs=self.env_kwargs,
            with_oracle=with_oracle,
        )
        return dict(zip(self.positions, results, strict=True))

    def checkpoint_meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": self.task.id,
            "env_kwargs": self.env_kwargs,
            "enhancers": self.enhancers.to_dict(),
            "enhancers_short": self.enhancers.short_name,
            "reward_source": self.reward_source,
            "agents": [
                {
                    "index": index,
                    "seed": self.specs[index].seed,
                    "td3_config": self.population.configs[k].to_dict(),
                    "reward_params": self.reward_params[index],
                }
                for k, index in enumerate(self.positions)
            ],
            "eval_seed": self.eval_seed,
            "steps": self.steps,
            "num_updates": int(self.population.num_updates),
            **extra,
        }

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        self.env.close()

    def __enter__(self) -> PopulationSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Progress:
    """A rich progress bar (steps, best fitness, agents left, ETA); a no-op unless enabled."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self._bar: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best fitness {task.fields[fitness]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task(description, total=total, fitness="-")
        self._bar.start()

    def update(self, steps: int, fitness: float | None = None) -> None:
        if self._bar is None:
            return
        fields = {} if fitness is None else {"fitness": f"{fitness:.4g}"}
        self._bar.update(self._task, completed=steps, **fields)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _prepare_run_dir(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise RunDirectoryError(f"cannot write to run directory {str(run_dir)!r}: {exc}") from exc
    return run_dir


def train(
    task: TaskCard,
    agents: Sequence[AgentSpec],
    *,
    enhancers: str | EnhancerCombo = "plain",
    reward_source: str | None = None,
    total_steps: int,
    env_kwargs: Mapping[str, Any] | None = None,
    envs_per_agent: int = 1,
    eval_every: int = 5000,
    eval_episodes: int = 5,
    run_dir: Path | str | None = None,
    report: ReportFn | None = None,
    progress: bool = False,
    tensorboard: bool = False,
    extra_meta: Mapping[str, Any] | None = None,
) -> list[TrainResult]:
    """Train a population (one agent per :class:`AgentSpec`, all of one shape) and return one result per
    agent, in the order of ``agents``. Never raises for a diverged agent, a failing reward program, a
    pruned agent or a timeout (see the module docstring); a bad configuration raises ``ConfigError``
    before anything runs.

    ``reward_source`` defaults to the card's baseline reward. ``total_steps`` env steps per agent env;
    ``eval_every`` steps between evaluations (0: only the final one) of ``eval_episodes`` episodes each.
    With ``run_dir``: ``config.json``, ``reward.py``, ``curves.csv`` (an ``agent`` column),
    ``checkpoint/`` (every agent still in the population) and ``result.json`` (a list) are written there.
    """
    from autogai.core.validation import check_positive_int

    check_positive_int("total_steps", total_steps)
    check_positive_int("eval_every", eval_every, allow_zero=True)
    check_positive_int("eval_episodes", eval_episodes)
    check_positive_int("envs_per_agent", envs_per_agent)
    specs = list(agents)
    if not specs:
        raise ConfigError("a population needs at least one agent (got 0)")
    for spec in specs:
        if spec.time_limit_s is not None and not (spec.time_limit_s > 0):
            raise ConfigError(f"time_limit_s={spec.time_limit_s!r} must be positive")

    start = time.monotonic()
    # The session is built first: a configuration it refuses (device, memory, shapes) leaves no directory.
    rejection: RewardRejectedError | None = None
    session: PopulationSession | None = None
    try:
        session = PopulationSession(
            task,
            specs,
            enhancers=enhancers,
            reward_source=reward_source,
            env_kwargs=env_kwargs,
            envs_per_agent=envs_per_agent,
            total_steps=total_steps,
        )
    except RewardRejectedError as exc:
        rejection = exc
    try:
        directory = _prepare_run_dir(Path(run_dir)) if run_dir is not None else None
    except RunDirectoryError:
        if session is not None:
            session.close()
        raise
    results = [
        TrainResult(status="completed", run_dir=None if directory is None else str(directory), seed=s.seed)
        for s in specs
    ]
    if session is None:  # the reward program was rejected: one result per agent says why
        for result in results:
            result.status, result.reason = "reward_error", str(rejection)
            result.wall_time_s = time.monotonic() - start
        _write_results(directory, results)
        return results

    writer = CurveWriter(directory / "curves.csv" if directory else None, tensorboard=tensorboard)
    meta_extra = dict(extra_meta or {})
    if directory is not None:
        write_atomic(directory / "reward.py", session.reward_source)
        config = session.checkpoint_meta(
            total_steps=total_steps, eval_every=eval_every, eval_episodes=eval_episodes, **meta_extra
        )
        write_atomic(directory / "config.json", json.dumps(config, indent=2, sort_keys=True, default=str))

    size = len(specs)
    label = f"{task.id} {session.enhancers.short_name} " + (
        f"seed {specs[0].seed}" if size == 1 else f"{size} agents"
    )
    bar = _Progress(progress, total_steps, label)
    last_eval: dict[int, EvaluationResult] = {}
    deadlines = {i: start + s.time_limit_s for i, s in enumerate(specs) if s.time_limit_s is not None}

    def finish(index: int, status: str, reason: str, *, keep_evaluation: bool) -> None:
        result = results[index]
        result.status, result.reason = status, reason  # type: ignore[assignment]
        if not keep_evaluation:
            last_eval.pop(index, None)
        _close_result(result, session, index, last_eval.get(index), writer, start)

    def leave(leavers: Mapping[int, tuple[str, str]]) -> None:
        for index, (status, reason) in leavers.items():
            logger.info("agent %d (seed %d) %s: %s", index, specs[index].seed, status, reason)
            finish(index, status, reason, keep_evaluation=status in ("pruned", "timeout"))
        session.leave(list(leavers))

    def evaluate_and_record(final: bool) -> None:
        diverged = session.nonfinite_agents()
        if diverged:
            leave({i: ("diverged", f"non-finite parameters at step {session.steps}") for i in diverged})
        if not session.positions:
            return
        evaluations = session.evaluate(eval_episodes, with_oracle=final)
        elapsed = time.monotonic() - start
        stopping: dict[int, tuple[str, str]] = {}
        for index, evaluation in evaluations.items():
            row: dict[str, float] = {
                "agent": index,
                "step": session.steps,
                "fitness": evaluation.fitness_mean,
                "fitness_std": evaluation.fitness_std,
            }
            row.update(session.stats[index].window_row())
            row.update(session.losses[index].pop())
            row["updates"] = int(session.population.num_updates)
            row["wall_time_s"] = elapsed
            writer.add(row)
            results[index].curve.append(row)
            last_eval[index] = evaluation
            fitness = evaluation.fitness_mean
            result = results[index]
            if math.isfinite(fitness) and (result.best_fitness is None or fitness > result.best_fitness):
                result.best_fitness, result.best_step = fitness, session.steps
            if report is not None and not final and not report(index, session.steps, fitness):
                stopping[index] = ("pruned", f"stopped by the report callback at step {session.steps}")
        if directory is not None:
            path = save_checkpoint(
                session.population, directory / CHECKPOINT_DIR, session.checkpoint_meta(**meta_extra)
            )
            for index in session.positions:
                results[index].agent_path = str(path)
        best = [r.best_fitness for r in results if r.best_fitness is not None]
        bar.update(session.steps, max(best) if best else None)
        if stopping:
            leave(stopping)

    progress_chunk = max(1, min(1000, total_steps // 100)) if progress else total_steps
    try:
        while session.steps < total_steps and session.positions:
            next_eval = total_steps
            if eval_every:
                next_eval = min(total_steps, (session.steps // eval_every + 1) * eval_every)
            while session.steps < next_eval and session.positions:
                chunk = min(next_eval - session.steps, progress_chunk)
                if deadlines:
                    chunk = min(chunk, 50)  # look at the clock every 50 steps at least
                leavers = session.advance(chunk)
                if leavers:
                    leave(leavers)
                now = time.monotonic()
                late = {
                    i: (
                        "timeout",
                        f"time limit of {specs[i].time_limit_s:g} s reached at step {session.steps}",
                    )
                    for i in session.positions
                    if i in deadlines and now > deadlines[i]
                }
                if late:
                    _evaluate_leavers(session, late, last_eval, eval_episodes)
                    leave(late)
                bar.update(session.steps)
            if session.positions:
                evaluate_and_record(final=session.steps >= total_steps)
    except RewardRuntimeError as exc:  # the sandbox itself failed: every agent still running ends with it
        leave({i: ("reward_error", str(exc)) for i in session.positions})
    finally:
        bar.close()
        for index in list(session.positions):
            _close_result(results[index], session, index, last_eval.get(index), writer, start)
            results[index].agent = session.population
            results[index].population_position = session.positions.index(index)
        writer.close()
        session.close()

    for result in results:
        if result.status != "completed":
            logger.info("training %s: %s", result.status, result.reason)
    _write_results(directory, results)
    return results


def _evaluate_leavers(
    session: PopulationSession,
    leavers: Mapping[int, tuple[str, str]],
    last_eval: dict[int, EvaluationResult],
    episodes: int,
) -> None:
    """Agents timing out are evaluated once more as they are, so their fitness is known (the whole
    population is evaluated: cheaper than splitting it, and time-outs are rare)."""
    for index, evaluation in session.evaluate(episodes).items():
        if index in leavers:
            last_eval[index] = evaluation


def _close_result(
    result: TrainResult,
    session: PopulationSession,
    index: int,
    evaluation: EvaluationResult | None,
    writer: CurveWriter,
    start: float,
) -> None:
    stats = session.stats[index]
    result.final_evaluation = evaluation
    result.component_summaries = stats.component_summaries()
    result.violation_rates = stats.violation_rates()
    result.steps_done = session.steps * session.env.envs_per_agent
    result.num_updates = int(session.population.num_updates)
    result.episodes_done = len(stats.episode_returns)
    result.wall_time_s = time.monotonic() - start


def _write_results(directory: Path | None, results: Sequence[TrainResult]) -> None:
    if directory is None:
        return
    try:
        payload = [r.to_dict() for r in results]
        write_atomic(directory / "result.json", json.dumps(payload, indent=2, sort_keys=True))
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {directory / 'result.json'}: {exc}") from exc


def train_one(
    task: TaskCard,
    *,
    seed: int = 0,
    td3_config: TD3Config | None = None,
    reward_params: Mapping[str, float] | None = None,
    time_limit_s: float | None = None,
    **kwargs: Any,
) -> TrainResult:
    """A population of one: ``train(task, [AgentSpec(seed, td3_config, reward_params)], ...)[0]``."""
    spec = AgentSpec(
        seed=seed, td3_config=td3_config, reward_params=dict(reward_params or {}), time_limit_s=time_limit_s
    )
    return train(task, [spec], **kwargs)[0]
