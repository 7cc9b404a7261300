"""Inspection verbs on a run directory: ``leaderboard``, ``show``, ``diff``, ``report``.

Run files are read through :mod:`autogai.pipeline.rundir` (damage is one error line) and every text they
hold is escaped before it reaches the terminal (:mod:`autogai.cli._render`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("leaderboard")(leaderboard)
    app.command("show")(show)
    app.command("diff")(diff)
    app.command("report")(report)


def leaderboard(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print leaderboard.json instead of a table."),
) -> int:
    """Ranked designs with test (or, before the final test, validation) score intervals and trial counts."""
    from autogai.cli._render import print_leaderboard
    from autogai.pipeline.rundir import open_existing_run

    run = open_existing_run(run_dir)
    rows = run.require_leaderboard()
    if as_json:  # re-serialised: JSON escapes every control character a hand-edited file may hold
        typer.echo(json.dumps({"designs": rows}, indent=2, sort_keys=True))
        return 0
    print_leaderboard(rows, title=f"{run.name}: leaderboard")
    return 0


def show(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    design: str = typer.Argument(..., help="Design id (or unique prefix), its name, or a leaderboard rank."),
) -> int:
    """A design: reward code (highlighted), rationale, sources, best hyperparameters, score, feedback."""
    from autogai.cli._render import print_design
    from autogai.pipeline.rundir import open_existing_run, resolve_design_id

    run = open_existing_run(run_dir)
    design_id = resolve_design_id(run, design)
    print_design(design_id, run.read_design_json(design_id) or {}, run.read_reward_source(design_id))
    return 0


def diff(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    design_a: str = typer.Argument(..., help="First design (id, prefix, name or rank)."),
    design_b: str = typer.Argument(..., help="Second design."),
) -> int:
    """Unified diff of two designs' reward programs and of their configuration (enhancers, best params)."""
    from autogai.cli._render import print_design_diff
    from autogai.pipeline.rundir import design_diff, open_existing_run, resolve_design_id

    run = open_existing_run(run_dir)
    code_diff, config_diff = design_diff(
        run, resolve_design_id(run, design_a), resolve_design_id(run, design_b)
    )
    print_design_diff(code_diff, config_diff)
    return 0


def report(run_dir: Path = typer.Argument(..., help="Run directory.")) -> int:
    """Write report.html (learning curves, score intervals, reward components, rate-vs-power Pareto view)."""
    from autogai.cli._render import plain
    from autogai.pipeline.report import build_report

    path = build_report(run_dir)
    typer.echo(f"wrote {plain(path)} (plots in {plain(path.parent / 'plots')})")
    return 0
