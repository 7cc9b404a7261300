"""Inspection verbs on a run directory: ``leaderboard``, ``show``, ``diff``, ``report``."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import typer

from autogai.cli._render import wide_console


def register(app: typer.Typer) -> None:
    app.command("leaderboard")(leaderboard)
    app.command("show")(show)
    app.command("diff")(diff)
    app.command("report")(report)


def _board(run_dir: Path) -> tuple[Any, list[dict[str, Any]]]:
    from autogai.core.errors import RunDirectoryError
    from autogai.pipeline.rundir import open_existing_run

    run = open_existing_run(run_dir)
    path = run.path / "leaderboard.json"
    if not path.is_file():
        raise RunDirectoryError(f"{run.path} has no leaderboard yet (no generation has been scored)")
    return run, json.loads(path.read_text()).get("designs", [])


def leaderboard(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print leaderboard.json instead of a table."),
) -> int:
    """Ranked designs with test (or, before the final test, validation) score intervals and trial counts."""
    from autogai.cli._render import print_leaderboard

    run, rows = _board(run_dir)
    if as_json:
        print((run.path / "leaderboard.json").read_text())
        return 0
    print_leaderboard(rows, title=f"{run.name}: leaderboard")
    return 0


def show(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    design: str = typer.Argument(..., help="Design id (or unique prefix), its name, or a leaderboard rank."),
) -> int:
    """A design: reward code (highlighted), rationale, sources, best hyperparameters, score, feedback."""
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table

    from autogai.pipeline.rundir import open_existing_run, resolve_design_id

    run = open_existing_run(run_dir)
    design_id = resolve_design_id(run, design)
    data = run.read_design_json(design_id) or {}
    console = wide_console()
    title = f"{design_id}  {data.get('name') or ''}  [{data.get('enhancers_short', '')}]  status: {data.get('status', '?')}"
    console.rule(title)
    meta = Table.grid(padding=(0, 2))
    meta.add_row("proposer", str(data.get("proposer", "")))
    meta.add_row("generation", str(data.get("generation", "")))
    meta.add_row("parent", str(data.get("parent") or "–"))
    score = data.get("score") or {}
    if score:
        for label, key, seeds in (
            ("test score", "iqm", "n_seeds"),
            ("validation score", "validation_iqm", None),
        ):
            value, interval = score.get(key), score.get(key + "_ci") or [None, None]
            if value is None:
                continue
            text = f"IQM {value:.4g}"
            if None not in interval:
                text += f", 95% CI [{interval[0]:.4g}, {interval[1]:.4g}]"
            if seeds and key == "iqm" and score.get("score_source") == "test":
                text += f" over {score.get(seeds)} test seeds"
            elif key == "iqm":
                continue  # before the final test, the row's score is its validation score
            meta.add_row(label, text)
        if data.get("diff_vs_baseline") is not None and data.get("proposer") != "baseline":
            adjusted = data.get("p_value_adjusted")
            extra = f" (Holm-adjusted p {adjusted:.3g})" if adjusted is not None else ""
            meta.add_row("vs baseline", f"{data['diff_vs_baseline']:+.4g}{extra}")
    if data.get("chosen_config"):
        meta.add_row("configuration", f"chosen on validation seeds: {data['chosen_config']}")
    if data.get("rank"):
        meta.add_row("rank", str(data["rank"]))
    for key, value in (data.get("report_metrics") or {}).items():
        meta.add_row(key, f"{value:.4g}")
    console.print(meta)
    if data.get("rationale"):
        console.print(Panel(data["rationale"], title="rationale", expand=False))
    if data.get("sources"):
        console.print("sources: " + ", ".join(data["sources"]))
    reward_path = run.design_dir(design_id) / "reward.py"
    if reward_path.is_file():
        console.print(Syntax(reward_path.read_text(), "python", line_numbers=True, theme="ansi_dark"))
    if data.get("best_params"):
        params = Table(title="best hyperparameters", title_justify="left")
        params.add_column("name")
        params.add_column("value", justify="right")
        for key, value in data["best_params"].items():
            params.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(params)
    if data.get("error"):
        console.print(f"[red]error:[/] {data['error']}")
    validation = data.get("validation") or {}
    if validation and not validation.get("ok", True):
        console.print(f"[red]rejected at {validation.get('stage')}:[/] {validation.get('reason')}")
    if data.get("feedback"):
        console.print(Panel(data["feedback"], title="feedback given to the proposer", expand=False))
    return 0


def diff(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    design_a: str = typer.Argument(..., help="First design (id, prefix, name or rank)."),
    design_b: str = typer.Argument(..., help="Second design."),
) -> int:
    """Unified diff of two designs' reward programs and of their configuration (enhancers, best params)."""
    from rich.syntax import Syntax

    from autogai.pipeline.rundir import open_existing_run, resolve_design_id

    run = open_existing_run(run_dir)
    a, b = resolve_design_id(run, design_a), resolve_design_id(run, design_b)
    console = wide_console()

    def code(design_id: str) -> list[str]:
        path = run.design_dir(design_id) / "reward.py"
        return path.read_text().splitlines(keepends=True) if path.is_file() else []

    def config(design_id: str) -> list[str]:
        data = run.read_design_json(design_id) or {}
        view = {
            "enhancers": data.get("enhancers"),
            "hyperparameter_hints": data.get("hyperparameter_hints"),
            "best_params": data.get("best_params"),
            "score": data.get("score"),
            "parent": data.get("parent"),
        }
        return (json.dumps(view, indent=2, sort_keys=True, default=str) + "\n").splitlines(keepends=True)

    code_diff = "".join(difflib.unified_diff(code(a), code(b), f"{a}/reward.py", f"{b}/reward.py"))
    config_diff = "".join(difflib.unified_diff(config(a), config(b), f"{a}/design.json", f"{b}/design.json"))
    console.rule("reward program")
    console.print(Syntax(code_diff, "diff", theme="ansi_dark") if code_diff else "(identical)")
    console.rule("configuration")
    console.print(Syntax(config_diff, "diff", theme="ansi_dark") if config_diff else "(identical)")
    return 0


def report(run_dir: Path = typer.Argument(..., help="Run directory.")) -> int:
    """Write report.html (learning curves, score intervals, reward components, rate-vs-power Pareto view)."""
    from autogai.pipeline.report import build_report

    path = build_report(run_dir)
    typer.echo(f"wrote {path} (plots in {path.parent / 'plots'})")
    return 0
