"""Terminal rendering shared by the search and inspection commands (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autogai.core.text import escape_control


def _num(x: Any, digits: int = 4) -> str:
    if x is None or x == "":
        return "–"
    try:
        return f"{float(x):.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def leaderboard_table(rows: Sequence[Mapping[str, Any]], title: str = "leaderboard") -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("#", "right"),
        ("design", "left"),
        ("name", "left"),
        ("enhancers", "left"),
        ("gen", "right"),
        ("score mean", "right"),
        ("IQM", "right"),
        ("95% CI", "left"),
        ("seeds", "right"),
        ("vs baseline", "right"),
        ("trials c/p/f", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        ci = (
            f"[{_num(row.get('ci_low'))}, {_num(row.get('ci_high'))}]"
            if row.get("ci_low") not in (None, "")
            else "–"
        )
        vs = row.get("vs_baseline")
        vs_text = (
            "reference"
            if str(row.get("is_baseline")) in ("True", "true", "1")
            else ("–" if vs in (None, "") else f"{float(vs):+.3g}")
        )
        name = escape(escape_control(str(row.get("name") or "")))  # LLM-chosen text: no codes, no markup
        table.add_row(
            str(row.get("rank", "")),
            str(row.get("design_id", "")),
            name[:28],
            str(row.get("enhancers", "")),
            str(row.get("generation", "")),
            _num(row.get("score_mean")),
            _num(row.get("score_iqm")),
            ci,
            str(row.get("n_seeds", "")),
            vs_text,
            f"{row.get('trials_complete', 0)}/{row.get('trials_pruned', 0)}/{row.get('trials_failed', 0)}",
        )
    return table


def wide_console() -> Console:
    """A console that does not squeeze tables to 80 columns when output goes to a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def print_leaderboard(rows: Sequence[Mapping[str, Any]], title: str = "leaderboard") -> None:
    wide_console().print(leaderboard_table(rows, title))


def print_summary_footer(summary: Any) -> None:
    console = wide_console()
    best, base = summary.best, summary.baseline
    if (
        best is not None
        and base is not None
        and best.get("score_mean") is not None
        and base.get("score_mean") is not None
    ):
        if best["design_id"] == base["design_id"]:
            console.print(f"No design beat the baseline (score {base['score_mean']:.4g}).")
        else:
            diff = best["score_mean"] - base["score_mean"]
            console.print(
                f"Best design {best['design_id']} scores {best['score_mean']:.4g} vs baseline "
                f"{base['score_mean']:.4g} ({diff:+.4g})."
            )
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.trial_counts.items()))
    console.print(f"trials: {counts}; wall time {summary.wall_time_s:.0f} s")
    usage = summary.llm_usage or {}
    if usage:
        console.print("LLM: " + ", ".join(f"{k} {v}" for k, v in usage.items()))
    console.print(
        f"run directory: {summary.run_dir}  (autogai leaderboard / show / report {summary.run_dir})"
    )


class SearchProgressView:
    """Live progress on stderr: phase, designs, trials done/total, best score, ETA."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        if not self.console.is_terminal:
            self.console = Console(stderr=True, width=160)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("trials"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[best]}"),
            console=self.console,
            transient=False,
        )
        self.task_id = self.progress.add_task("starting", total=None, best="")
        self.progress.start()

    def update(self, p: Any) -> None:
        best = f"best {p.best_score:.4g} ({p.best_design})" if p.best_score is not None else ""
        description = f"gen {p.generation + 1}/{p.generations} · {p.designs} designs · {p.phase}"
        self.progress.update(
            self.task_id,
            description=description,
            completed=p.trials_done,
            total=max(p.trials_total, 1),
            best=best,
        )

    def close(self) -> None:
        self.progress.stop()
