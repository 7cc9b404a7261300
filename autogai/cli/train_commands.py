"""``autogai train`` and ``autogai evaluate``: train one design for a budget, evaluate a saved policy.

The checks and the work are :mod:`autogai.training.request`'s; heavy imports (torch through the agents)
happen inside the command functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


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
    from autogai.cli._render import print_train_results
    from autogai.training.request import prepare_training, run_training

    request = prepare_training(
        task=task,
        enhancers=enhancers,
        design=design,
        action_space=action_space,
        steps=steps,
        seed=seed,
        seeds=seeds,
        population=population,
        run_dir=run_dir,
        reward=reward,
        reward_param=reward_param,
        device=device,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        sets=set_,
        time_limit=time_limit,
        overwrite=overwrite,
    )
    results = run_training(request, progress=progress and not json_output, tensorboard=tensorboard)
    if json_output:
        payload: Any = results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results]
        typer.echo(json.dumps(payload, indent=2))
    else:
        print_train_results(request, results)
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
    from autogai.cli._render import print_evaluation
    from autogai.training.request import evaluate_run

    evaluation = evaluate_run(run_dir, agent=agent, episodes=episodes, seed=seed, device=device)
    if not json_output:
        print_evaluation(evaluation)
        return 0
    rows = [
        {
            "task": evaluation.card.id,
            "agent": info.get("index"),
            "seed": info.get("seed"),
            "steps": evaluation.meta.get("steps"),
            **result.to_dict(),
        }
        for info, result in zip(evaluation.agents, evaluation.results, strict=True)
    ]
    typer.echo(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    return 0


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
