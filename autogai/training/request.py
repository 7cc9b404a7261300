"""What ``autogai train`` was asked for, checked as a whole before anything runs or is written.

:func:`prepare_training` turns the command's raw values into a :class:`TrainingRequest` (task card, reward
program, enhancers, agents, TD3 configuration, run directory) or raises one
:class:`~autogai.core.errors.AutoGAIError` line; :func:`run_training` then trains it. A run directory left by
an interrupted training (see :mod:`autogai.training.checkpoint`) may be reused without ``--overwrite``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autogai.core.errors import ConfigError, RunDirectoryError
from autogai.core.types import EnhancerCombo
from autogai.core.validation import (
    check_choice,
    check_count,
    check_positive_int,
    check_seconds,
    check_seed,
    check_steps,
    check_text,
    convert_like,
    parse_assignments,
    parse_seed_list,
)
from autogai.tasks.card import TaskCard

MAX_AGENTS = 1_024
"""Agents trained at once in one population (one process); more is a typo, not a plan."""
MAX_EVAL_EPISODES = 100_000


@dataclass
class TrainingRequest:
    """A checked ``autogai train`` invocation, ready for :func:`run_training`."""

    card: TaskCard
    task_spec: str
    combo: EnhancerCombo
    reward_source: str | None
    env_kwargs: dict[str, Any]
    seeds: list[int]
    td3_config: Any
    reward_params: dict[str, float]
    time_limit_s: float | None
    steps: int
    eval_every: int
    eval_episodes: int
    run_dir: Path


def td3_config_from_sets(sets: list[str] | None, *, device: str | None = None) -> Any:
    """A TD3Config from ``--set key=value`` items (validated; unknown keys list the valid ones)."""
    from autogai.agents import TD3Config

    known = TD3Config().flat()
    values: dict[str, Any] = {}
    for key, text in parse_assignments(sets, "--set").items():
        if key not in known:
            raise ConfigError(f"--set {key}: unknown TD3Config field; valid: {', '.join(sorted(known))}")
        values[key] = convert_like(f"--set {key}", text, known[key])
    if device is not None:
        values["device"] = device
    return TD3Config(**values)


def _reward_params(items: list[str] | None) -> dict[str, float]:
    params = {}
    for key, text in parse_assignments(items, "--reward-param").items():
        try:
            params[key] = float(text)
        except ValueError:
            raise ConfigError(f"--reward-param {key}={text!r}: expected a number") from None
        if not math.isfinite(params[key]):
            raise ConfigError(f"--reward-param {key}={text!r}: expected a finite number")
    return params


def _seed_list(seed: int, seeds: str | None, population: int | None) -> list[int]:
    check_seed("--seed", seed)
    if seeds is not None and population is not None:
        raise ConfigError("give either --seeds or --population, not both")
    if population is not None:
        check_count("--population", population, high=MAX_AGENTS, why="agents trained at once in one process")
        check_seed("--seed + --population", seed + population - 1)
        return list(range(seed, seed + population))
    if seeds is not None:
        chosen = parse_seed_list("--seeds", seeds)
        check_count("--seeds", len(chosen), high=MAX_AGENTS, why="agents trained at once in one process")
        return chosen
    return [seed]


def _default_run_dir(task_id: str, enhancers: str, seeds: list[int]) -> Path:
    from autogai.core.paths import runs_root

    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = f"s{seeds[0]}" if len(seeds) == 1 else f"s{seeds[0]}-{seeds[-1]}"
    return runs_root() / f"train-{task_id}-{enhancers.replace('+', '-')}-{label}-{stamp}"


def _check_run_dir(directory: Path, overwrite: bool) -> None:
    from autogai.training.checkpoint import CHECKPOINT_DIR, META_FILE, is_incomplete_training

    if directory.exists() and not directory.is_dir():
        raise RunDirectoryError(f"--run-dir {str(directory)!r} is a file, not a directory")
    finished = (directory / CHECKPOINT_DIR / META_FILE).exists() and not is_incomplete_training(directory)
    if finished and not overwrite:
        raise RunDirectoryError(
            f"{str(directory)!r} already holds a trained policy; use --overwrite or another --run-dir"
        )


def _read_reward(path: Path, card: TaskCard) -> str:
    from autogai.core.runfiles import read_user_text
    from autogai.rewards import validate_reward_program

    source = read_user_text(path, "reward file")
    validate_reward_program(source, card).raise_if_rejected()
    return source


def prepare_training(
    *,
    task: str,
    enhancers: str | None,
    design: Path | None,
    action_space: str | None,
    steps: int,
    seed: int,
    seeds: str | None,
    population: int | None,
    run_dir: Path | None,
    reward: Path | None,
    reward_param: list[str] | None,
    device: str,
    eval_every: int,
    eval_episodes: int,
    sets: list[str] | None,
    time_limit: float | None,
    overwrite: bool,
) -> TrainingRequest:
    """Check every value of ``autogai train`` (before torch trains anything or a directory exists)."""
    from autogai.tasks import get_task

    for name, text in (("--task", task), ("--enhancers", enhancers), ("--action-space", action_space)):
        check_text(name, text)
    check_choice("--device", device, ("cpu", "cuda", "auto"))
    check_positive_int("--eval-every", eval_every, allow_zero=True)
    check_count("--eval-episodes", eval_episodes, high=MAX_EVAL_EPISODES, why="evaluation episodes")
    if time_limit is not None:
        check_seconds("--time-limit", time_limit)
    seed_list = _seed_list(seed, seeds, population)
    check_steps("--steps", steps, runs=len(seed_list))
    card = get_task(task)
    design_source, design_enhancers = None, None
    if design is not None:
        from autogai.core.runfiles import read_design_file

        stored = read_design_file(design)
        design_source, design_enhancers = stored.reward_source, stored.enhancers.short_name
    combo = EnhancerCombo.parse(enhancers or design_enhancers or "plain")
    env_kwargs = card.action_space_kwargs(action_space)
    card.check_step(env_kwargs)  # a broken card fails here, before a run directory exists
    params = _reward_params(reward_param)
    if design_source is not None and reward is not None:
        raise ConfigError("give either --design or --reward, not both")
    reward_source = design_source
    if reward_source is not None:
        from autogai.rewards import validate_reward_program

        validate_reward_program(reward_source, card).raise_if_rejected()
    if reward is not None:
        reward_source = _read_reward(reward, card)
    config = td3_config_from_sets(sets, device=device)
    directory = run_dir if run_dir is not None else _default_run_dir(card.id, combo.short_name, seed_list)
    _check_run_dir(directory, overwrite)
    return TrainingRequest(
        card=card,
        # A task file is stored by absolute path so `evaluate` finds it from any directory.
        task_spec=str(Path(task).resolve()) if task.endswith(".py") else task,
        combo=combo,
        reward_source=reward_source,
        env_kwargs=env_kwargs,
        seeds=seed_list,
        td3_config=config,
        reward_params=params,
        time_limit_s=time_limit,
        steps=steps,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        run_dir=directory,
    )


def run_training(request: TrainingRequest, *, progress: bool, tensorboard: bool) -> list[Any]:
    """Train ``request`` (see :func:`autogai.training.train`); an interrupt marks the run directory
    incomplete before it propagates, so ``autogai evaluate`` says so instead of loading a partial run."""
    from autogai.training.checkpoint import forget_previous_outcome, mark_interrupted
    from autogai.training.loop import AgentSpec, train

    forget_previous_outcome(request.run_dir)
    specs = [
        AgentSpec(
            seed=seed,
            td3_config=request.td3_config,
            reward_params=request.reward_params,
            time_limit_s=request.time_limit_s,
        )
        for seed in request.seeds
    ]
    try:
        return train(
            request.card,
            specs,
            enhancers=request.combo,
            reward_source=request.reward_source,
            total_steps=request.steps,
            env_kwargs=request.env_kwargs,
            eval_every=request.eval_every,
            eval_episodes=request.eval_episodes,
            run_dir=request.run_dir,
            progress=progress,
            tensorboard=tensorboard,
            extra_meta={"task_spec": request.task_spec},
        )
    except KeyboardInterrupt:
        mark_interrupted(request.run_dir)
        raise


@dataclass
class EvaluationRun:
    """What ``autogai evaluate`` computed: the task, the checkpoint's metadata, one result per agent."""

    card: TaskCard
    meta: dict[str, Any]
    agents: list[dict[str, Any]]
    results: list[Any]


def evaluate_run(
    run_dir: Path, *, agent: int | None, episodes: int, seed: int | None, device: str | None
) -> EvaluationRun:
    """Evaluate the policy saved in ``run_dir`` (every agent, or agent ``agent``) on the task fitness.

    Every value is checked, and an unfinished or damaged run refused in one line, before torch loads it.
    """
    from autogai.tasks import get_task
    from autogai.training.checkpoint import check_training_finished, load_checkpoint, read_checkpoint_meta
    from autogai.training.evaluation import evaluate_population

    check_count("--episodes", episodes, high=MAX_EVAL_EPISODES, why="evaluation episodes")
    if seed is not None:
        check_seed("--seed", seed)
    if agent is not None:
        check_count("--agent", agent, low=0, high=MAX_AGENTS - 1, why="agents in one population")
    if device is not None:
        check_choice("--device", device, ("cpu", "cuda", "auto"))
    if device == "cuda":
        from autogai.agents.td3 import resolve_device

        resolve_device(device)  # no GPU: refused as such, not as an unusable checkpoint
    check_training_finished(run_dir)
    meta = read_checkpoint_meta(run_dir)  # cheap checks before torch is imported
    card = get_task(str(meta.get("task_spec") or meta["task"]))
    population, meta = load_checkpoint(run_dir, device=device, agent=agent)
    eval_seed = meta.get("eval_seed", 0)
    results = evaluate_population(
        population,
        card,
        episodes=episodes,
        seed=(eval_seed if isinstance(eval_seed, int) else 0) if seed is None else seed,
        env_kwargs=meta.get("env_kwargs") or {},
    )
    agents = meta.get("agents") or [{"index": k} for k in range(len(results))]
    return EvaluationRun(card=card, meta=meta, agents=list(agents), results=list(results))
