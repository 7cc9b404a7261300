"""``autogai env check``: Gymnasium's checker on every mode, the physics sanity table, the oracle bound
(:mod:`autogai.envs.check`); ``autogai env list``: the task cards.

gymnasium and the environment are imported inside the command, so ``autogai --help`` stays cheap.
"""

from __future__ import annotations

import time

import typer


def check() -> int:
    """Check the UAV environment: Gymnasium API on all 6 modes, sanity values, oracle bound. Exit 0 if all hold."""
    from autogai.envs.check import check_uav_environment

    started = time.perf_counter()
    failures = check_uav_environment(typer.echo)
    typer.echo("")
    elapsed = time.perf_counter() - started
    for failure in failures:
        typer.echo(f"FAILED: {failure}")
    if failures:
        typer.echo(f"env check: {len(failures)} problem(s) ({elapsed:.1f} s)")
        return 1
    typer.echo(f"env check: all checks passed ({elapsed:.1f} s)")
    return 0


def list_tasks() -> int:
    """List the registered task cards (built-in ones; pass a .py card or module:NAME to --task for others)."""
    from autogai.cli._render import plain
    from autogai.tasks import list_tasks as registered_tasks

    for card in registered_tasks():
        modes = f" [{', '.join(card.action_modes)}]" if card.action_modes else ""
        typer.echo(plain(f"{card.id:<16} {card.env_id:<26} {card.title}{modes}"))
        typer.echo(plain(f"{'':<16} metrics: {', '.join(card.metric_names)}"))
    return 0


def register(app: typer.Typer) -> None:
    env_app = typer.Typer(
        name="env",
        help="Check the UAV environment (Gymnasium API, physics, oracle bound); list the task cards.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
    )
    env_app.command("check")(check)
    env_app.command("list")(list_tasks)
    app.add_typer(env_app, name="env")
