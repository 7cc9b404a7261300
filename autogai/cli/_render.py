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


def _pair(row: Mapping[str, Any], key: str, low: str, high: str) -> tuple[Any, Any]:
    """An interval from a leaderboard.json row (``key``: [low, high]) or a leaderboard.csv row."""
    pair = row.get(key)
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return pair[0], pair[1]
    return row.get(low), row.get(high)


def _truthy(value: Any) -> bool:
    return str(value) in ("True", "true", "1")


def leaderboard_table(rows: Sequence[Mapping[str, Any]], title: str = "leaderboard") -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("#", "right"),
        ("design", "left"),
        ("name", "left"),
        ("enhancers", "left"),
        ("gen", "right"),
        ("IQM", "right"),
        ("95% CI", "left"),
        ("seeds", "right"),
        ("Δ IQM vs baseline [95% CI]", "left"),
        ("P(better)", "right"),
        ("p (Holm)", "right"),
        ("validation IQM", "right"),
        ("trials c/p/f", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        low, high = _pair(row, "iqm_ci", "iqm_low", "iqm_high")
        ci = f"[{_num(low)}, {_num(high)}]" if low not in (None, "") else "–"
        diff = row.get("diff_vs_baseline")
        d_low, d_high = _pair(row, "diff_vs_baseline_ci", "diff_low", "diff_high")
        if _truthy(row.get("is_baseline")):
            vs_text = "reference"
        elif diff in (None, ""):
            vs_text = "–"
        else:
            vs_text = f"{float(diff):+.3g}"
            if d_low not in (None, ""):
                vs_text += f" [{float(d_low):+.3g}, {float(d_high):+.3g}]"
            if _truthy(row.get("beats_baseline")):
                vs_text += " better"
        name = escape(escape_control(str(row.get("name") or "")))  # LLM-chosen text: no codes, no markup
        seeds = str(row.get("n_seeds", ""))
        if row.get("failed_seeds") not in (None, "", 0, "0"):
            seeds += f" ({row.get('failed_seeds')} failed)"
        table.add_row(
            str(row.get("rank", "")),
            str(row.get("design_id", "")),
            name[:28],
            str(row.get("enhancers", "")),
            str(row.get("generation", "")),
            _num(row.get("iqm")),
            ci,
            seeds,
            vs_text,
            _num(row.get("prob_improvement"), 2),
            _num(row.get("p_value_adjusted"), 2),
            _num(row.get("validation_iqm")),
            f"{row.get('trials_complete', 0)}/{row.get('trials_pruned', 0)}/{row.get('trials_failed', 0)}",
        )
    return table


def wide_console() -> Console:
    """A console that does not squeeze tables to 80 columns when output goes to a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def print_leaderboard(rows: Sequence[Mapping[str, Any]], title: str = "leaderboard") -> None:
    wide_console().print(leaderboard_table(rows, title))


def _signed_interval(pair: Any) -> str:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or None in pair:
        return "no interval: too few seeds"
    return f"95% CI [{pair[0]:+.4g}, {pair[1]:+.4g}]"


def print_summary_footer(summary: Any) -> None:
    console = wide_console()
    base = summary.baseline
    winners = [r for r in summary.leaderboard if r.get("beats_baseline")]
    if base is not None and base.get("iqm") is not None:
        if winners:
            best = winners[0]
            console.print(
                f"Design {best['design_id']} beats the baseline on {best['n_seeds']} test seeds: IQM "
                f"{best['iqm']:.4g} vs {base['iqm']:.4g}, difference {best['diff_vs_baseline']:+.4g} "
                f"({_signed_interval(best['diff_vs_baseline_ci'])}), P(better) "
                f"{_num(best.get('prob_improvement'), 2)}, Holm-adjusted p {_num(best.get('p_value_adjusted'), 2)}."
            )
        else:
            best = next(
                (
                    r
                    for r in summary.leaderboard
                    if not r.get("is_baseline") and r.get("diff_vs_baseline") is not None
                ),
                None,
            )
            detail = ""
            if best is not None:
                detail = (
                    f"; the best proposal {best['design_id']} differs by {best['diff_vs_baseline']:+.4g} "
                    f"({_signed_interval(best.get('diff_vs_baseline_ci'))}, Holm-adjusted p "
                    f"{_num(best.get('p_value_adjusted'), 2)})"
                )
            console.print(f"No design beat the baseline (IQM {base['iqm']:.4g}){detail}.")
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.trial_counts.items()))
    plan = summary.plan or {}
    budget = plan.get("budget_s")
    timing = f"wall time {summary.wall_time_s:.0f} s"
    if budget:
        timing += f" of a {budget:.0f} s budget"
    timing += f"; coordinator CPU {summary.coordinator_cpu_s:.0f} s"
    console.print(f"trials: {counts}; {timing}")
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
        self.started = False  # the bar appears with the first update: a refused search prints one line

    def update(self, p: Any) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if p.message:
            self.progress.console.print(escape(escape_control(p.message)))
        best = f"best {p.best_score:.4g} ({p.best_design})" if p.best_score is not None else ""
        if getattr(p, "time_left_s", None) is not None:
            best += f" · {max(0.0, p.time_left_s) / 60:.1f} min left"
        description = f"gen {p.generation + 1}/{p.generations} · {p.designs} designs · {p.phase}"
        self.progress.update(
            self.task_id,
            description=description,
            completed=p.trials_done,
            total=max(p.trials_total, 1),
            best=best,
        )

    def close(self) -> None:
        if self.started:
            self.progress.stop()
