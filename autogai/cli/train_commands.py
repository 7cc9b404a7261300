"""``autogai train`` and ``autogai evaluate``: train one design for a budget, evaluate a saved policy.

Heavy imports (torch through the agents) happen inside the command functions.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any

import typer

from autogai.core.errors import ConfigError, RunDirectoryError


def _parse_assignments(items: list[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{what} {item!r} must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _convert(name: str, text: str, default: Any) -> Any:
    """Convert ``text`` to the type of a TD3Config field (known from its default value)."""
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            value = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(text)
            return int(value)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            parsed = ast.literal_eval(text if text.strip()[:1] in "[(" else f"[{text}]")
            parsed = parsed if isinstance(parsed, (list, tuple)) else [parsed]
            return tuple(int(x) for x in parsed)
        return text
    except (ValueError, SyntaxError, TypeError):
        kind = type(default).__name__ if not isinstance(default, tuple) else "comma-separated integers"
        raise ConfigError(f"--set {name}={text!r}: expected {kind}") from None


def td3_config_from_sets(sets: list[str] | None, *, device: str | None = None) -> Any:
    """A TD3Config from ``--set key=value`` items (validated; unknown keys list the valid ones)."""
    from autogai.agents import TD3Config

    known = TD3Config().flat()
    values: dict[str, Any] = {}
    for key, text in _parse_assignments(sets, "--set").items():
        if key not in known:
            raise ConfigError(f"--set {key}: unknown TD3Config field; valid: {', '.join(sorted(known))}")
        values[key] = _convert(key, text, known[key])
    if device is not None:
        values["device"] = device
    return TD3Config(**values)


def _reward_params(items: list[str] | None) -> dict[str, float]:
    params = {}
    for key, text in _parse_assignments(items, "--reward-param").items():
        try:
            params[key] = float(text)
        except ValueError:
            raise ConfigError(f"--reward-param {key}={text!r}: expected a number") from None
    return params


def _read_design(path: Path) -> tuple[str, Any]:
    """(reward source, enhancers) of a design.json written by the search (or of the directory holding it)."""
    from autogai.core.types import Design

    file = path / "design.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
        if isinstance(data, dict) and "reward_source" not in data and (file.parent / "reward.py").is_file():
            data["reward_source"] = (file.parent / "reward.py").read_text()
        design = Design.from_dict(data)
    except OSError as exc:
        raise ConfigError(f"cannot read design {str(file)!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{str(file)!r} is not a design.json: {exc}") from None
    return design.reward_source, design.enhancers


def _default_run_dir(task_id: str, enhancers: str, seeds: list[int]) -> Path:
    from autogai.core.paths import runs_root

    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = f"s{seeds[0]}" if len(seeds) == 1 else f"s{seeds[0]}-{seeds[-1]}"
    return runs_root() / f"train-{task_id}-{enhancers.replace('+', '-')}-{label}-{stamp}"


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"1,4,7"`` or ``"0-3,10"`` -> the seeds, in order; anything else is a ConfigError."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            if dash:
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError(part)
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--seeds {text!r} does not parse: use a range like 0-9, a list like 1,4,7, or both"
            ) from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {text!r}: seeds must be non-negative")
    return seeds


def train_command(
    task: str = typer.Option(
        "uav-nearfield", "--task", help="Task id, a .py file defining TASK, or module:attr."
    ),
    enhancers: str | None = typer.Option(
        None, "--enhancers", help="plain (default), gdm, gan, vae, transformer, gdm+gan, ..."
    ),
    design: Path | None = typer.Option(
        None, "--design", help="A design.json (or its directory) from a search run: reward and enhancers."
    ),
    action_space: str | None = typer.Option(
        None, "--action-space", help="The env's action_mode (UAV: continuous, discrete, hybrid)."
    ),
    steps: int = typer.Option(20_000, "--steps", help="Env steps to train (per agent)."),
    seed: int = typer.Option(0, "--seed", help="Seed of a single agent (env, weights, exploration)."),
    seeds: str | None = typer.Option(
        None, "--seeds", help="Train a population, one agent per seed: 0-9, 1,4,7 or 0-3,10."
    ),
    population: int | None = typer.Option(
        None, "--population", help="Train a population of N agents, seeds --seed .. --seed+N-1."
    ),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Output directory (default: runs/train-...)."
    ),
    reward: Path | None = typer.Option(None, "--reward", help="Reward program file (default: the baseline)."),
    reward_param: list[str] | None = typer.Option(
        None, "--reward-param", help="Override a reward PARAMS default: name=value (repeatable)."
    ),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    eval_every: int = typer.Option(5000, "--eval-every", help="Env steps between evaluations (0: end only)."),
    eval_episodes: int = typer.Option(5, "--eval-episodes", help="Episodes per evaluation."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="TD3Config field: key=value (repeatable), e.g. --set net_arch=64,64."
    ),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Stop after this many seconds."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Reuse a run directory holding a checkpoint."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    tensorboard: bool = typer.Option(
        False, "--tensorboard", help="Also write TensorBoard logs (if installed)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Train one design (reward program + enhancers) for a budget and save the policy (or a population)."""
    from autogai.core.types import EnhancerCombo
    from autogai.core.validation import check_choice, check_positive_int
    from autogai.tasks import get_task

    card = get_task(task)
    design_source, design_enhancers = _read_design(design) if design is not None else (None, None)
    if design_source is not None and reward is not None:
        raise ConfigError("give either --design or --reward, not both")
    combo = EnhancerCombo.parse(enhancers or design_enhancers or "plain")
    check_positive_int("--steps", steps)
    check_positive_int("--eval-every", eval_every, allow_zero=True)
    check_positive_int("--eval-episodes", eval_episodes)
    check_choice("--device", device, ("cpu", "cuda", "auto"))
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"--time-limit={time_limit!r} must be positive")
    env_kwargs = card.action_space_kwargs(action_space)
    card.check_step(env_kwargs)  # a broken card fails here, before a run directory exists
    params = _reward_params(reward_param)

    reward_source = design_source
    if reward_source is not None:
        from autogai.rewards import validate_reward_program

        validate_reward_program(reward_source, card).raise_if_rejected()
    if reward is not None:
        from autogai.rewards import validate_reward_program

        try:
            reward_source = reward.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read reward file {str(reward)!r}: {exc.strerror or exc}") from None
        validate_reward_program(reward_source, card).raise_if_rejected()

    if seeds is not None and population is not None:
        raise ConfigError("give either --seeds or --population, not both")
    if population is not None:
        check_positive_int("--population", population)
        seed_list = list(range(seed, seed + population))
    elif seeds is not None:
        seed_list = parse_seeds(seeds)
    else:
        seed_list = [seed]
    config = td3_config_from_sets(set_, device=device)
    directory = run_dir if run_dir is not None else _default_run_dir(card.id, combo.short_name, seed_list)
    if not overwrite and (directory / "checkpoint" / "checkpoint.json").exists():
        raise RunDirectoryError(
            f"{str(directory)!r} already holds a trained policy; use --overwrite or another --run-dir"
        )

    from autogai.training import AgentSpec, train

    specs = [
        AgentSpec(seed=s, td3_config=config, reward_params=params, time_limit_s=time_limit) for s in seed_list
    ]
    results = train(
        card,
        specs,
        enhancers=combo,
        reward_source=reward_source,
        total_steps=steps,
        env_kwargs=env_kwargs,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        run_dir=directory,
        progress=progress and not json_output,
        tensorboard=tensorboard,
        # A task file is stored by absolute path so `evaluate` finds it from any directory.
        extra_meta={"task_spec": str(Path(task).resolve()) if task.endswith(".py") else task},
    )
    if json_output:
        payload: Any = results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results]
        typer.echo(json.dumps(payload, indent=2))
        return 0 if all(r.ok for r in results) else 1
    for index, result in enumerate(results):
        prefix = "" if len(results) == 1 else f"agent {index} "
        typer.echo(
            f"{prefix}{result.status}: {card.id} {combo.short_name} seed {result.seed}, {result.steps_done} steps "
            f"in {result.wall_time_s:.1f} s" + (f" ({result.reason})" if result.reason else "")
        )
        if result.final_evaluation is not None:
            typer.echo(f"{prefix}evaluation: {result.final_evaluation.summary()}")
    if len(results) > 1:
        from autogai.core.statistics import estimate

        finals = [r.fitness if r.fitness is not None else float("nan") for r in results]
        score = estimate(finals)
        typer.echo(
            f"IQM fitness over {score.n} of {len(results)} agents: {score.iqm:.4g} "
            f"(95% bootstrap interval [{score.low:.4g}, {score.high:.4g}])"
        )
    typer.echo(f"run directory: {directory}")
    return 0 if all(r.ok for r in results) else 1


def evaluate_command(
    run_dir: Path = typer.Option(..., "--run-dir", help="A run directory written by `autogai train`."),
    agent: int | None = typer.Option(
        None, "--agent", help="Which agent of a population (its index in training; default: all)."
    ),
    episodes: int = typer.Option(10, "--episodes", help="Evaluation episodes."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of episode 0 (default: the run's eval seed)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or auto (default: as trained)."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> int:
    """Evaluate a saved policy on the task fitness; print fitness, task metrics and the oracle."""
    from autogai.core.validation import check_choice, check_positive_int

    check_positive_int("--episodes", episodes)
    if device is not None:
        check_choice("--device", device, ("cpu", "cuda", "auto"))
    from autogai.training.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(run_dir)  # cheap checks before torch is imported
    from autogai.tasks import get_task
    from autogai.training import evaluate_population, load_checkpoint

    card = get_task(str(meta.get("task_spec") or meta["task"]))
    population, meta = load_checkpoint(run_dir, device=device, agent=agent)
    results = evaluate_population(
        population,
        card,
        episodes=episodes,
        seed=int(meta.get("eval_seed", 0)) if seed is None else seed,
        env_kwargs=meta.get("env_kwargs") or {},
    )
    agents = meta.get("agents") or [{"index": k} for k in range(len(results))]
    if json_output:
        rows = [
            {
                "task": card.id,
                "agent": a.get("index"),
                "seed": a.get("seed"),
                "steps": meta.get("steps"),
                **r.to_dict(),
            }
            for a, r in zip(agents, results, strict=True)
        ]
        typer.echo(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
        return 0
    for info, result in zip(agents, results, strict=True):
        typer.echo(
            f"{card.id} {meta.get('enhancers_short', '')} agent {info.get('index')} (seed {info.get('seed')}) "
            f"after {meta.get('steps')} steps, {result.episodes} episodes (seed {result.seed}):"
        )
        typer.echo(f"  fitness            {result.fitness_mean:.4g} ± {result.fitness_std:.3g}")
        for name, value in result.report_metrics.items():
            typer.echo(f"  {name:<18} {value:.4g}")
        if result.infeasible_fraction is not None:
            typer.echo(f"  infeasible         {result.infeasible_fraction:.1%} of slots")
        if result.oracle_fitness is not None:
            fraction = result.oracle_fraction
            typer.echo(
                f"  oracle fitness     {result.oracle_fitness:.4g}"
                + (f" (policy reaches {fraction:.1%})" if fraction is not None else "")
            )
    return 0


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
