"""The training loop: a population of TD3 agents, one task, one reward program, periodic evaluation.

A run is a :class:`~autogai.training.session.PopulationSession` (the agents, their envs, the reward sandbox;
see there for one step) driven by a :class:`TrainingRun` to its step budget: every ``eval_every`` steps it
evaluates every agent's deterministic policy on the *task fitness* (separate envs without the reward, the
same episodes for all agents), writes curve rows and a checkpoint, and asks ``report(agent, step, fitness)``
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
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import ConfigError, RewardRejectedError, RewardRuntimeError, RunDirectoryError
from autogai.core.files import write_atomic
from autogai.core.types import EnhancerCombo
from autogai.core.validation import check_positive_int
from autogai.training.checkpoint import CHECKPOINT_DIR, save_checkpoint
from autogai.training.metrics import CurveWriter
from autogai.training.results import EvaluationResult, TrainResult
from autogai.training.session import AgentSpec, PopulationSession

if TYPE_CHECKING:
    from autogai.agents import TD3Config
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

ReportFn = Callable[[int, int, float], bool]
"""``report(agent, step, fitness) -> go on?``; ``agent`` is the index into the list of agent specs."""

Leavers = Mapping[int, tuple[str, str]]
"""``{spec index: (status, reason)}`` of agents leaving the population."""


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
    eval_scenario_seeds: Sequence[int] | None = None,
) -> list[TrainResult]:
    """Train a population (one agent per :class:`AgentSpec`, all of one shape) and return one result per
    agent, in the order of ``agents``. Never raises for a diverged agent, a failing reward program, a
    pruned agent or a timeout (see the module docstring); a bad configuration raises ``ConfigError``
    before anything runs.

    ``reward_source`` defaults to the card's baseline reward. ``total_steps`` env steps per agent env;
    ``eval_every`` steps between evaluations (0: only the final one) of ``eval_episodes`` episodes each,
    or one episode on each of ``eval_scenario_seeds`` (tasks with a scenario distribution).
    With ``run_dir``: ``config.json``, ``reward.py``, ``curves.csv`` (an ``agent`` column),
    ``checkpoint/`` (every agent still in the population) and ``result.json`` (a list) are written there.
    """
    specs = list(agents)
    _check_arguments(specs, total_steps, eval_every, eval_episodes, envs_per_agent)
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
            eval_scenario_seeds=eval_scenario_seeds,
        )
    except RewardRejectedError as exc:
        rejection = exc
    try:
        directory = _prepare_run_dir(Path(run_dir)) if run_dir is not None else None
    except RunDirectoryError:
        if session is not None:
            session.close()
        raise
    if session is None:  # the reward program was rejected: one result per agent says why
        results = [_new_result(spec, directory) for spec in specs]
        for result in results:
            result.status, result.reason = "reward_error", str(rejection)
            result.wall_time_s = time.monotonic() - start
        _write_results(directory, results)
        return results
    run = TrainingRun(
        session,
        total_steps=total_steps,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        directory=directory,
        report=report,
        progress=progress,
        tensorboard=tensorboard,
        extra_meta=extra_meta,
        start=start,
    )
    return run.run()


def _check_arguments(
    specs: Sequence[AgentSpec], total_steps: int, eval_every: int, eval_episodes: int, envs_per_agent: int
) -> None:
    check_positive_int("total_steps", total_steps)
    check_positive_int("eval_every", eval_every, allow_zero=True)
    check_positive_int("eval_episodes", eval_episodes)
    check_positive_int("envs_per_agent", envs_per_agent)
    if not specs:
        raise ConfigError("a population needs at least one agent (got 0)")
    for spec in specs:
        if spec.time_limit_s is not None and not (spec.time_limit_s > 0):
            raise ConfigError(f"time_limit_s={spec.time_limit_s!r} must be positive")


def _new_result(spec: AgentSpec, directory: Path | None) -> TrainResult:
    return TrainResult(
        status="completed", run_dir=None if directory is None else str(directory), seed=spec.seed
    )


class TrainingRun:
    """One :func:`train` call: a session driven to ``total_steps`` with periodic evaluations, each agent's
    :class:`TrainResult` kept up to date, and the run directory's files written.

    :meth:`run` is the whole schedule; the other methods are its steps. The run owns the session and closes
    it (and the curve writer) when :meth:`run` returns.
    """

    def __init__(
        self,
        session: PopulationSession,
        *,
        total_steps: int,
        eval_every: int,
        eval_episodes: int,
        directory: Path | None,
        report: ReportFn | None,
        progress: bool,
        tensorboard: bool,
        extra_meta: Mapping[str, Any] | None,
        start: float,
    ) -> None:
        self.session = session
        self.specs = session.specs
        self.total_steps = total_steps
        self.eval_every = eval_every
        self.eval_episodes = eval_episodes
        self.directory = directory
        self.report = report
        self.extra_meta = dict(extra_meta or {})
        self.start = start
        self.results = [_new_result(spec, directory) for spec in self.specs]
        self.last_eval: dict[int, EvaluationResult] = {}
        """Each agent's latest evaluation (the one its result reports)."""
        self.deadlines = {
            index: start + spec.time_limit_s
            for index, spec in enumerate(self.specs)
            if spec.time_limit_s is not None
        }
        self.writer = CurveWriter(directory / "curves.csv" if directory else None, tensorboard=tensorboard)
        size = len(self.specs)
        label = f"{session.task.id} {session.enhancers.short_name} " + (
            f"seed {self.specs[0].seed}" if size == 1 else f"{size} agents"
        )
        self.bar = _Progress(progress, total_steps, label)
        self.progress_chunk = max(1, min(1000, total_steps // 100)) if progress else total_steps

    def run(self) -> list[TrainResult]:
        """Train to the step budget (or until every agent left) and return the results, written to the run
        directory when there is one."""
        session = self.session
        try:
            self._write_inputs()
            while session.steps < self.total_steps and session.positions:
                self._advance_to(self._next_evaluation())
                if session.positions:
                    self._evaluate_and_record(final=session.steps >= self.total_steps)
        except RewardRuntimeError as exc:  # the sandbox itself failed: every agent still running ends with it
            self._leave({index: ("reward_error", str(exc)) for index in session.positions})
        finally:
            self.bar.close()
            for index in list(session.positions):
                self._close_result(index)
                self.results[index].agent = session.population
                self.results[index].population_position = session.positions.index(index)
            self.writer.close()
            session.close()
        for result in self.results:
            if result.status != "completed":
                logger.info("training %s: %s", result.status, result.reason)
        _write_results(self.directory, self.results)
        return self.results

    def _write_inputs(self) -> None:
        """``reward.py`` and ``config.json``: what the run trains, written before it starts."""
        if self.directory is None:
            return
        write_atomic(self.directory / "reward.py", self.session.reward_source)
        config = self.session.checkpoint_meta(
            total_steps=self.total_steps,
            eval_every=self.eval_every,
            eval_episodes=self.eval_episodes,
            **self.extra_meta,
        )
        write_atomic(
            self.directory / "config.json", json.dumps(config, indent=2, sort_keys=True, default=str)
        )

    def _next_evaluation(self) -> int:
        if not self.eval_every:
            return self.total_steps
        return min(self.total_steps, (self.session.steps // self.eval_every + 1) * self.eval_every)

    def _advance_to(self, step: int) -> None:
        """Advance the session to ``step`` in chunks, removing leavers and agents past their time limit."""
        session = self.session
        while session.steps < step and session.positions:
            chunk = min(step - session.steps, self.progress_chunk)
            if self.deadlines:
                chunk = min(chunk, 50)  # look at the clock every 50 steps at least
            leavers = session.advance(chunk)
            if leavers:
                self._leave(leavers)
            late = self._late_agents()
            if late:
                self._evaluate_leavers(late)
                self._leave(late)
            self.bar.update(session.steps)

    def _late_agents(self) -> dict[int, tuple[str, str]]:
        now = time.monotonic()
        return {
            index: (
                "timeout",
                f"time limit of {self.specs[index].time_limit_s:g} s reached at step {self.session.steps}",
            )
            for index in self.session.positions
            if index in self.deadlines and now > self.deadlines[index]
        }

    def _evaluate_leavers(self, leavers: Leavers) -> None:
        """Agents timing out are evaluated once more as they are, so their fitness is known (the whole
        population is evaluated: cheaper than splitting it, and time-outs are rare)."""
        for index, evaluation in self.session.evaluate(self.eval_episodes).items():
            if index in leavers:
                self.last_eval[index] = evaluation

    def _leave(self, leavers: Leavers) -> None:
        for index, (status, reason) in leavers.items():
            logger.info("agent %d (seed %d) %s: %s", index, self.specs[index].seed, status, reason)
            result = self.results[index]
            result.status, result.reason = status, reason  # type: ignore[assignment]
            if status not in ("pruned", "timeout"):  # a pruned or late agent keeps its last evaluation
                self.last_eval.pop(index, None)
            self._close_result(index)
        self.session.leave(list(leavers))

    def _evaluate_and_record(self, final: bool) -> None:
        session = self.session
        diverged = session.nonfinite_agents()
        if diverged:
            self._leave({i: ("diverged", f"non-finite parameters at step {session.steps}") for i in diverged})
        if not session.positions:
            return
        evaluations = session.evaluate(self.eval_episodes, with_oracle=final)
        elapsed = time.monotonic() - self.start
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
            self.writer.add(row)
            result = self.results[index]
            result.curve.append(row)
            self.last_eval[index] = evaluation
            fitness = evaluation.fitness_mean
            if math.isfinite(fitness) and (result.best_fitness is None or fitness > result.best_fitness):
                result.best_fitness, result.best_step = fitness, session.steps
            if self.report is not None and not final and not self.report(index, session.steps, fitness):
                stopping[index] = ("pruned", f"stopped by the report callback at step {session.steps}")
        if self.directory is not None:
            path = save_checkpoint(
                session.population,
                self.directory / CHECKPOINT_DIR,
                session.checkpoint_meta(**self.extra_meta),
            )
            for index in session.positions:
                self.results[index].agent_path = str(path)
        best = [r.best_fitness for r in self.results if r.best_fitness is not None]
        self.bar.update(session.steps, max(best) if best else None)
        if stopping:
            self._leave(stopping)

    def _close_result(self, index: int) -> None:
        """Fill agent ``index``'s result from its statistics and last evaluation (when it leaves or at the end)."""
        session, result = self.session, self.results[index]
        stats = session.stats[index]
        result.final_evaluation = self.last_eval.get(index)
        result.component_summaries = stats.component_summaries()
        result.violation_rates = stats.violation_rates()
        result.steps_done = session.steps * session.env.envs_per_agent
        result.num_updates = int(session.population.num_updates)
        result.episodes_done = len(stats.episode_returns)
        result.wall_time_s = time.monotonic() - self.start


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
