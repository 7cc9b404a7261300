"""The training loop: one TD3 agent, one task, one reward program, periodic evaluation on the task fitness.

Read top to bottom, a run is: build the task's env and wrap it with the reward program (the card's
baseline unless told otherwise); build the agent for the env's spaces (Transformer token groups from the
env when it has them); act uniformly at random for ``learning_starts`` steps, then with the agent's
exploration noise; every ``train_freq`` steps run ``gradient_steps`` updates; every ``eval_every`` steps
evaluate the deterministic policy on the *task fitness* (a separate env without the reward wrapper, on
separate seeds), write a curve row and a checkpoint, and ask ``report(step, fitness)`` whether to go on.

A run ends with a status instead of an exception for everything a search must survive: ``pruned``
(``report`` said stop), ``diverged`` (non-finite losses, parameters or actions), ``reward_error`` (the
reward program raised, stalled or returned garbage, or was rejected), ``timeout`` (``time_limit_s``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import (
    ConfigError,
    RewardRejectedError,
    RewardRuntimeError,
    RunDirectoryError,
    TrainingDivergedError,
)
from autogai.core.seeding import derive_seed, seed_everything
from autogai.core.types import EnhancerCombo
from autogai.training.checkpoint import CHECKPOINT_DIR, save_checkpoint
from autogai.training.evaluation import evaluate_agent
from autogai.training.metrics import CurveWriter, LossAverager, TrainingStats
from autogai.training.results import EvaluationResult, TrainResult

if TYPE_CHECKING:
    from autogai.agents import TD3Config
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

ReportFn = Callable[[int, float], bool]


def evaluation_seed(seed: int) -> int:
    """Seed of the periodic evaluations of a run with training seed ``seed`` (disjoint from training)."""
    return derive_seed("evaluation", seed)


class TrainingSession:
    """A training run that can be advanced step by step (``train`` drives one; benchmarks drive it directly).

    Building a session builds the env, the reward wrapper (and its sandbox process) and the agent. Call
    :meth:`close` (or use it as a context manager) to stop the sandbox.
    """

    def __init__(
        self,
        task: TaskCard,
        *,
        enhancers: str | EnhancerCombo = "plain",
        reward_source: str | None = None,
        reward_params: Mapping[str, float] | None = None,
        td3_config: TD3Config | None = None,
        seed: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        from autogai.agents import TD3Config, make_agent
        from autogai.rewards import RewardProgram, RewardWrapper

        self.task = task
        self.enhancers = EnhancerCombo.parse(enhancers)
        self.config = td3_config if td3_config is not None else TD3Config()
        self.seed = int(seed)
        self.env_kwargs = dict(env_kwargs or {})
        self.reward_source = reward_source if reward_source is not None else task.baseline_reward
        self.rng = seed_everything(self.seed)

        # Static checks of the program first: a rejected program must not cost an env or a process.
        self.program = RewardProgram.from_source(self.reward_source)
        defaults = self.program.default_params()
        unknown = set(reward_params or {}) - set(defaults)
        if unknown:
            valid = ", ".join(sorted(defaults)) or "(the program has no PARAMS)"
            raise ConfigError(f"unknown reward parameter(s) {sorted(unknown)}; valid: {valid}")
        self.reward_params = {**defaults, **{k: float(v) for k, v in (reward_params or {}).items()}}

        base_env = task.make_env(**self.env_kwargs)
        self.env: Any = None
        try:
            self.env = RewardWrapper(base_env, self.program, task, self.reward_params)
        except BaseException:
            base_env.close()
            raise
        try:
            unwrapped = self.env.unwrapped
            token_groups = None
            if hasattr(unwrapped, "observation_token_groups"):
                token_groups = [np.asarray(g) for g in unwrapped.observation_token_groups()]
            self.agent = make_agent(
                self.env.observation_space,
                self.env.action_space,
                self.enhancers,
                self.config,
                token_groups=token_groups,
                seed=self.seed,
                **_codebook_kwargs(unwrapped),
            )
            self.env.action_space.seed(self.seed)
            obs, _ = self.env.reset(seed=self.seed)
        except BaseException:
            self.env.close()
            raise
        self.obs = obs
        self.adapter = self.agent.adapter
        self.steps = 0
        self.stats = TrainingStats(task.violation_metrics)
        self.losses = LossAverager()
        self.eval_seed = evaluation_seed(self.seed)
        gradient_steps = int(self.config.gradient_steps)
        # SB3's convention: gradient_steps = -1 means as many updates as env steps since the last update.
        self._gradient_steps = gradient_steps if gradient_steps > 0 else int(self.config.train_freq)

    # -- stepping ---------------------------------------------------------------------------------------
    def advance(self, n_steps: int, *, deadline: float | None = None) -> bool:
        """Run ``n_steps`` env steps (acting, storing, updating). Returns False if ``deadline`` (a
        ``time.monotonic()`` value) passed first. Raises RewardRuntimeError / TrainingDivergedError."""
        env, agent, adapter, stats, task = self.env, self.agent, self.adapter, self.stats, self.task
        learning_starts = int(self.config.learning_starts)
        train_freq = int(self.config.train_freq)
        gradient_steps = self._gradient_steps
        action_dim = int(adapter.dim)
        uniform = self.rng.uniform
        obs = self.obs
        for _ in range(n_steps):
            if deadline is not None and time.monotonic() > deadline:
                self.obs = obs
                return False
            if self.steps < learning_starts:
                coords = uniform(-1.0, 1.0, size=action_dim).astype(np.float32)
            else:
                coords = agent.act(obs, explore=True)
                if not math.isfinite(float(coords.sum())):  # NaN/inf anywhere makes the sum non-finite
                    self.obs = obs
                    raise TrainingDivergedError(
                        f"the actor produced non-finite actions at step {self.steps} "
                        f"(after {agent.num_updates} updates)"
                    )
            executed = adapter.quantize(coords)
            next_obs, reward, terminated, truncated, info = env.step(adapter.to_env(coords))
            agent.add_transition(obs, executed, reward, next_obs, terminated)
            step_fitness = info.get("step_fitness")
            metrics = info.get("metrics", info)
            if step_fitness is None:
                step_fitness = task.fitness_fn(metrics, float(info.get("env_reward", reward)))
            stats.on_step(float(reward), info.get("reward_components", {}), metrics, float(step_fitness))
            self.steps += 1
            if terminated or truncated:
                stats.on_episode_end(task.episode_fitness(stats.current_step_fitness))
                obs, _ = env.reset()
            else:
                obs = next_obs
            if self.steps > learning_starts and self.steps % train_freq == 0:
                losses = agent.train_step(gradient_steps)
                for key, value in losses.items():
                    if not math.isfinite(value):
                        self.obs = obs
                        raise TrainingDivergedError(
                            f"non-finite loss {key}={value} at step {self.steps} "
                            f"(after {agent.num_updates} updates)"
                        )
                self.losses.add(losses)
        self.obs = obs
        return True

    def check_parameters(self) -> None:
        """Raise TrainingDivergedError if any agent parameter is non-finite."""
        bad = first_nonfinite_parameter(self.agent)
        if bad is not None:
            raise TrainingDivergedError(
                f"non-finite parameter {bad} at step {self.steps} (after {self.agent.num_updates} updates)"
            )

    def evaluate(self, episodes: int, *, with_oracle: bool = False) -> EvaluationResult:
        return evaluate_agent(
            self.agent,
            self.task,
            episodes=episodes,
            seed=self.eval_seed,
            env_kwargs=self.env_kwargs,
            with_oracle=with_oracle,
        )

    def checkpoint_meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": self.task.id,
            "env_kwargs": self.env_kwargs,
            "enhancers": self.enhancers.to_dict(),
            "enhancers_short": self.enhancers.short_name,
            "td3_config": self.config.to_dict(),
            "reward_source": self.reward_source,
            "reward_params": self.reward_params,
            "seed": self.seed,
            "eval_seed": self.eval_seed,
            "steps": self.steps,
            "num_updates": int(self.agent.num_updates),
            **extra,
        }

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    def __enter__(self) -> TrainingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _codebook_kwargs(env: Any) -> dict[str, Any]:
    """``action_codebook`` for make_agent when the env declares where its Discrete indices sit in
    [-1, 1]^c (e.g. the UAV's hybrid way-points: index 0 is hover, not the adapter's default grid order)."""
    codebook = getattr(env, "action_codebook", None)
    if callable(codebook):
        codebook = codebook()
    return {} if codebook is None else {"action_codebook": np.asarray(codebook, dtype=np.float32)}


def first_nonfinite_parameter(agent: Any) -> str | None:
    """Name of the first non-finite parameter of any torch module held by ``agent`` (None if all finite)."""
    import torch

    seen: set[int] = set()
    modules: list[tuple[str, torch.nn.Module]] = []
    if isinstance(agent, torch.nn.Module):
        modules.append(("agent", agent))
    for name, value in vars(agent).items():
        candidates = value.items() if isinstance(value, dict) else [(None, value)]
        for key, item in candidates:
            if isinstance(item, torch.nn.Module) and id(item) not in seen:
                seen.add(id(item))
                modules.append((name if key is None else f"{name}[{key}]", item))
    with torch.no_grad():
        for owner, module in modules:
            for pname, param in module.named_parameters():
                if not bool(torch.isfinite(param).all()):
                    return f"{owner}.{pname}"
    return None


class _Progress:
    """A rich progress bar (steps, last fitness, ETA); a no-op unless enabled."""

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
            TextColumn("fitness {task.fields[fitness]}"),
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
    *,
    enhancers: str | EnhancerCombo = "plain",
    reward_source: str | None = None,
    reward_params: Mapping[str, float] | None = None,
    td3_config: TD3Config | None = None,
    total_steps: int,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    eval_every: int = 5000,
    eval_episodes: int = 5,
    run_dir: Path | str | None = None,
    report: ReportFn | None = None,
    time_limit_s: float | None = None,
    progress: bool = False,
    tensorboard: bool = False,
    extra_meta: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train one agent on ``task`` with a reward program and return how it went (never raises for a
    diverged run, a failing reward program, a pruned run or a timeout; see the module docstring).

    ``reward_source`` defaults to the card's baseline reward; ``reward_params`` override its ``PARAMS``
    defaults. ``eval_every`` env steps between evaluations (0: only the final one) of ``eval_episodes``
    episodes each. With ``run_dir``: ``config.json``, ``reward.py``, ``curves.csv``, ``checkpoint/`` and
    ``result.json`` are written there. ``extra_meta`` is stored in the checkpoint JSON (e.g. the task spec
    a user typed, so ``evaluate`` can find a user task file again). A run that times out is still
    evaluated once, so its fitness is known (this evaluation may run past ``time_limit_s``).
    """
    from autogai.core.validation import check_positive_int

    check_positive_int("total_steps", total_steps)
    check_positive_int("eval_every", eval_every, allow_zero=True)
    check_positive_int("eval_episodes", eval_episodes)
    if time_limit_s is not None and not (time_limit_s > 0):
        raise ConfigError(f"time_limit_s={time_limit_s!r} must be positive")

    start = time.monotonic()
    deadline = None if time_limit_s is None else start + float(time_limit_s)
    directory = _prepare_run_dir(Path(run_dir)) if run_dir is not None else None
    result = TrainResult(status="completed", run_dir=None if directory is None else str(directory))

    try:
        session = TrainingSession(
            task,
            enhancers=enhancers,
            reward_source=reward_source,
            reward_params=reward_params,
            td3_config=td3_config,
            seed=seed,
            env_kwargs=env_kwargs,
        )
    except RewardRejectedError as exc:
        result.status, result.reason = "reward_error", str(exc)
        result.wall_time_s = time.monotonic() - start
        _write_result(directory, result)
        return result

    writer = CurveWriter(directory / "curves.csv" if directory else None, tensorboard=tensorboard)
    meta_extra = dict(extra_meta or {})
    if directory is not None:
        (directory / "reward.py").write_text(session.reward_source)
        config = session.checkpoint_meta(
            total_steps=total_steps, eval_every=eval_every, eval_episodes=eval_episodes, **meta_extra
        )
        (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))

    bar = _Progress(progress, total_steps, f"{task.id} {session.enhancers.short_name} seed {seed}")
    last_eval: EvaluationResult | None = None
    last_eval_step = -1

    def evaluate_and_record(with_oracle: bool) -> EvaluationResult:
        nonlocal last_eval, last_eval_step
        session.check_parameters()
        evaluation = session.evaluate(eval_episodes, with_oracle=with_oracle)
        row: dict[str, float] = {
            "step": session.steps,
            "fitness": evaluation.fitness_mean,
            "fitness_std": evaluation.fitness_std,
        }
        row.update(session.stats.window_row())
        row.update(session.losses.pop())
        row["updates"] = int(session.agent.num_updates)
        row["wall_time_s"] = time.monotonic() - start
        writer.add(row)
        if directory is not None:
            path = save_checkpoint(
                session.agent, directory / CHECKPOINT_DIR, session.checkpoint_meta(**meta_extra)
            )
            result.agent_path = str(path)
        last_eval, last_eval_step = evaluation, session.steps
        fitness = evaluation.fitness_mean
        if math.isfinite(fitness) and (result.best_fitness is None or fitness > result.best_fitness):
            result.best_fitness, result.best_step = fitness, session.steps
        bar.update(session.steps, evaluation.fitness_mean)
        return evaluation

    progress_chunk = max(1, min(1000, total_steps // 100)) if progress else total_steps
    try:
        while session.steps < total_steps:
            next_eval = total_steps
            if eval_every:
                next_eval = min(total_steps, (session.steps // eval_every + 1) * eval_every)
            while session.steps < next_eval:
                chunk = min(next_eval - session.steps, progress_chunk)
                if not session.advance(chunk, deadline=deadline):
                    raise _Timeout
                bar.update(session.steps)
            final = session.steps >= total_steps
            evaluation = evaluate_and_record(with_oracle=final)
            if report is not None and not report(session.steps, evaluation.fitness_mean) and not final:
                result.status = "pruned"
                result.reason = f"stopped by the report callback at step {session.steps}"
                break
    except _Timeout:
        result.status = "timeout"
        result.reason = f"time limit of {time_limit_s:g} s reached at step {session.steps}"
        try:
            if session.steps > 0 and last_eval_step != session.steps:
                evaluate_and_record(with_oracle=True)
        except TrainingDivergedError as exc:
            result.status, result.reason = "diverged", str(exc)
            last_eval = None
    except TrainingDivergedError as exc:
        result.status, result.reason = "diverged", str(exc)
        last_eval = None
    except RewardRuntimeError as exc:
        result.status, result.reason = "reward_error", str(exc)
        last_eval = None
    finally:
        bar.close()
        writer.close()
        session.close()

    if result.status != "completed":
        logger.info("training %s: %s", result.status, result.reason)
    result.final_evaluation = last_eval
    result.curve = writer.rows
    result.component_summaries = session.stats.component_summaries()
    result.violation_rates = session.stats.violation_rates()
    result.steps_done = session.steps
    result.num_updates = int(session.agent.num_updates)
    result.episodes_done = len(session.stats.episode_returns)
    result.wall_time_s = time.monotonic() - start
    result.agent = session.agent
    _write_result(directory, result)
    return result


class _Timeout(Exception):
    """Internal: the time limit passed while stepping."""


def _write_result(directory: Path | None, result: TrainResult) -> None:
    if directory is None:
        return
    try:
        (directory / "result.json").write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    except OSError as exc:
        raise RunDirectoryError(f"cannot write {directory / 'result.json'}: {exc}") from exc
