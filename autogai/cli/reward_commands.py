"""``autogai reward check FILE``: validate a reward program and smoke-test it in the sandbox.

An accepted program exits 0 with a summary (its ``PARAMS``, its components and their scales, warnings); a
rejected one exits 1 with one line naming the stage, the line and the reason. The sandbox's limits keep the
command within about a minute whatever the program does. numpy, gymnasium and the task's env are imported
inside the command.
"""

from __future__ import annotations

from pathlib import Path

import typer

from autogai.cli._render import plain

MAX_TRANSITIONS = 10_000
MAX_TIME_LIMIT_S = 40.0
"""The sandbox's own ceiling: the command ends within about a minute whatever the program does."""


def _format_number(value: float) -> str:
    return f"{value:.4g}"


def check(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="Reward program (.py)."
    ),
    task: str = typer.Option("uav-nearfield", "--task", "-t", help="Task id (or a .py file defining TASK)."),
    transitions: int = typer.Option(256, "--transitions", "-n", help="Smoke-test steps (1 to 10000)."),
    time_limit: float = typer.Option(20.0, "--time-limit", help="Sandbox wall-clock limit, s (1 to 40)."),
    as_json: bool = typer.Option(False, "--json", help="Print the validation report as JSON."),
) -> int:
    """Validate a reward program (static checks, then a sandboxed smoke test on the task)."""
    from autogai.core.runfiles import read_user_text
    from autogai.core.validation import check_count, check_range, check_seconds, check_text
    from autogai.rewards.validation import validate_reward_program
    from autogai.tasks.registry import get_task

    check_text("--task", task)
    check_count("--transitions", transitions, high=MAX_TRANSITIONS, why="smoke-test steps")
    check_seconds("--time-limit", time_limit)
    check_range("--time-limit", time_limit, 1.0, MAX_TIME_LIMIT_S)
    source = read_user_text(file, "reward program")
    card = get_task(task)
    report = validate_reward_program(source, card, n_transitions=transitions, time_limit_s=time_limit)
    if as_json:
        typer.echo(report.to_json())
    report.raise_if_rejected()
    if as_json:
        return 0

    echo = typer.echo
    echo(
        f"accepted: {plain(file)} on task {plain(card.id)} ({report.n_transitions} random-action transitions, "
        f"{report.duration_s:.1f} s, slowest call {report.max_call_cpu_s * 1e3:.2f} ms CPU)"
    )
    echo("")
    if report.params:
        echo("PARAMS:")
        echo(f"  {'name':<24} {'default':>10} {'low':>10} {'high':>10}  log")
        for name, spec in report.params.items():
            echo(
                f"  {plain(name):<24} {_format_number(spec.default):>10} {_format_number(spec.low):>10} "
                f"{_format_number(spec.high):>10}  {'yes' if spec.log else 'no'}"
            )
    else:
        echo("PARAMS: none (nothing to tune)")
    echo("")
    echo("components (over the smoke-test transitions, default PARAMS):")
    echo(f"  {'name':<24} {'mean':>11} {'std':>11} {'min':>11} {'max':>11}")
    rows = dict(report.component_stats)
    if report.total_stats:
        rows["(total)"] = report.total_stats
    for name, stats in rows.items():
        echo(
            f"  {plain(name):<24} {_format_number(stats['mean']):>11} {_format_number(stats['std']):>11} "
            f"{_format_number(stats['min']):>11} {_format_number(stats['max']):>11}"
        )
    if report.warnings:
        echo("")
        echo("warnings:")
        for warning in report.warnings:
            echo(f"  - {plain(warning)}")
    return 0


def register(app: typer.Typer) -> None:
    reward_app = typer.Typer(
        name="reward",
        help="Reward programs: validate and smoke-test them.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    reward_app.command("check")(check)
    app.add_typer(reward_app, name="reward")
