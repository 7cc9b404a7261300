"""Terminal rendering shared by the search and inspection commands (rich)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autogai.core.text import escape_control


def safe(text: Any, *, keep_newlines: bool = False) -> str:
    """Untrusted text (names, paths, rationales, code, LLM replies) for a rich console: control characters
    escaped, rich markup inert."""
    return escape(escape_control(str(text), keep_newlines=keep_newlines))


def plain(text: Any, *, keep_newlines: bool = False) -> str:
    """Untrusted text for a plain ``typer.echo`` line: control characters escaped."""
    return escape_control(str(text), keep_newlines=keep_newlines)


def print_notes(notes: Sequence[str]) -> None:
    """Lines about a run that is about to start (its cost), on stderr so they never mix with results."""
    for note in notes:
        print(f"autogai: {plain(note)}", file=sys.stderr)


def _num(x: Any, digits: int = 4) -> str:
    if x is None or x == "":
        return "–"
    try:
        return f"{float(x):.{digits}g}"
    except (TypeError, ValueError, OverflowError):
        return safe(x)


def _signed(x: Any) -> str:
    try:
        return f"{float(x):+.3g}"
    except (TypeError, ValueError, OverflowError):
        return "?"  # a hand-edited leaderboard: shown as unknown, never raised


def _pair(row: Mapping[str, Any], key: str, low: str, high: str) -> tuple[Any, Any]:
    """An interval from a leaderboard.json row (``key``: [low, high]) or a leaderboard.csv row."""
    pair = row.get(key)
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return pair[0], pair[1]
    return row.get(low), row.get(high)


def _truthy(value: Any) -> bool:
    return str(value) in ("True", "true", "1")


def leaderboard_table(rows: Sequence[Mapping[str, Any]], title: str = "leaderboard") -> Table:
    table = Table(title=safe(title), title_justify="left")
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
            vs_text = _signed(diff)
            if d_low not in (None, ""):
                vs_text += f" [{_signed(d_low)}, {_signed(d_high)}]"
            if _truthy(row.get("beats_baseline")):
                vs_text += " better"
        name = safe(row.get("name") or "")  # LLM-chosen text: no codes, no markup
        seeds = str(row.get("n_seeds", ""))
        if row.get("failed_seeds") not in (None, "", 0, "0"):
            seeds += f" ({row.get('failed_seeds')} failed)"
        table.add_row(
            safe(row.get("rank", "")),
            safe(row.get("design_id", "")),
            name[:28],
            safe(row.get("enhancers", "")),
            safe(row.get("generation", "")),
            _num(row.get("iqm")),
            ci,
            safe(seeds),
            vs_text,
            _num(row.get("prob_improvement"), 2),
            _num(row.get("p_value_adjusted"), 2),
            _num(row.get("validation_iqm")),
            safe(
                f"{row.get('trials_complete', 0)}/{row.get('trials_pruned', 0)}/{row.get('trials_failed', 0)}"
            ),
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
                f"Design {safe(best['design_id'])} beats the baseline on {best['n_seeds']} test seeds: IQM "
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
                    f"; the best proposal {safe(best['design_id'])} differs by {best['diff_vs_baseline']:+.4g} "
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
        console.print("LLM: " + ", ".join(f"{safe(k)} {safe(v)}" for k, v in usage.items()))
    where = safe(summary.run_dir)
    console.print(f"run directory: {where}  (autogai leaderboard / show / report {where})")


class SearchProgressView:
    """Live progress on stderr: phase, designs, trials done/total, best score, ETA."""

    def __init__(self, *, quiet: bool = False, notes: Sequence[str] = ()) -> None:
        """``quiet``: no bar, only the ``notes`` (a large run's cost), which appear with the first update:
        once the run has started, so a refused run still prints its one error line alone."""
        self.quiet = quiet
        self.notes = list(notes)
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
        print_notes(self.notes)
        self.notes = []
        if self.quiet:
            # The plan and time-budget decisions still reach the terminal, on stdout with the leaderboard
            # (stderr stays for the one line of a failure).
            if p is not None and p.message:
                print(plain(p.message))
            return
        if not self.started:
            self.progress.start()
            self.started = True
        if p.message:
            self.progress.console.print(safe(p.message))
        best = f"best {p.best_score:.4g} ({safe(p.best_design)})" if p.best_score is not None else ""
        if getattr(p, "time_left_s", None) is not None:
            best += f" · {max(0.0, p.time_left_s) / 60:.1f} min left"
        description = f"gen {p.generation + 1}/{p.generations} · {p.designs} designs · {safe(p.phase)}"
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


def _score_lines(score: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) for a design's test score (a finalist after the final test) and validation score."""
    lines = []
    for label, key in (("test score", "iqm"), ("validation score", "validation_iqm")):
        value = score.get(key)
        if value is None or (key == "iqm" and score.get("score_source") != "test"):
            continue  # before the final test, a row's score is its validation score
        text = f"IQM {_num(value)}"
        interval = score.get(key + "_ci")
        if isinstance(interval, (list, tuple)) and len(interval) == 2 and None not in interval:
            text += f", 95% CI [{_num(interval[0])}, {_num(interval[1])}]"
        if key == "iqm":
            text += f" over {safe(score.get('n_seeds'))} test seeds"
        lines.append((label, text))
    return lines


def print_design(design_id: str, data: Mapping[str, Any], reward_source: str | None) -> None:
    """``autogai show``: every field of design.json escaped (names, rationales and code are LLM text)."""
    from rich.panel import Panel
    from rich.syntax import Syntax

    console = wide_console()
    console.rule(
        f"{safe(design_id)}  {safe(data.get('name') or '')}  [{safe(data.get('enhancers_short', ''))}]  "
        f"status: {safe(data.get('status', '?'))}"
    )
    meta = Table.grid(padding=(0, 2))
    meta.add_row("proposer", safe(data.get("proposer", "")))
    meta.add_row("generation", safe(data.get("generation", "")))
    meta.add_row("parent", safe(data.get("parent") or "–"))
    score = data.get("score")
    if isinstance(score, Mapping) and score:
        for label, text in _score_lines(score):
            meta.add_row(label, text)
        if data.get("diff_vs_baseline") is not None and data.get("proposer") != "baseline":
            adjusted = data.get("p_value_adjusted")
            extra = f" (Holm-adjusted p {_num(adjusted, 3)})" if adjusted is not None else ""
            meta.add_row("vs baseline", _signed(data["diff_vs_baseline"]) + extra)
    if data.get("chosen_config"):
        meta.add_row("configuration", f"chosen on validation seeds: {safe(data['chosen_config'])}")
    if data.get("rank"):
        meta.add_row("rank", safe(data["rank"]))
    metrics = data.get("report_metrics")
    for key, value in metrics.items() if isinstance(metrics, Mapping) else ():
        meta.add_row(safe(key), _num(value))
    console.print(meta)
    if data.get("rationale"):
        console.print(Panel(safe(data["rationale"], keep_newlines=True), title="rationale", expand=False))
    sources = data.get("sources")
    if isinstance(sources, list) and sources:
        console.print("sources: " + ", ".join(safe(source) for source in sources))
    if reward_source:
        code = escape_control(reward_source, keep_newlines=True)
        console.print(Syntax(code, "python", line_numbers=True, theme="ansi_dark"))
    params = data.get("best_params")
    if isinstance(params, Mapping) and params:
        table = Table(title="best hyperparameters", title_justify="left")
        table.add_column("name")
        table.add_column("value", justify="right")
        for key, value in params.items():
            table.add_row(safe(key), _num(value) if isinstance(value, float) else safe(value))
        console.print(table)
    if data.get("error"):
        console.print(f"[red]error:[/] {safe(data['error'])}")
    validation = data.get("validation")
    if isinstance(validation, Mapping) and not validation.get("ok", True):
        console.print(
            f"[red]rejected at {safe(validation.get('stage'))}:[/] {safe(validation.get('reason'))}"
        )
    if data.get("feedback"):
        console.print(
            Panel(
                safe(data["feedback"], keep_newlines=True),
                title="feedback given to the proposer",
                expand=False,
            )
        )


def print_design_diff(code_diff: str, config_diff: str) -> None:
    """``autogai diff``: the two unified diffs, highlighted, their text escaped."""
    from rich.syntax import Syntax

    console = wide_console()
    for title, text in (("reward program", code_diff), ("configuration", config_diff)):
        console.rule(title)
        body = escape_control(text, keep_newlines=True)
        console.print(Syntax(body, "diff", theme="ansi_dark") if body else "(identical)")


def print_train_results(request: Any, results: Sequence[Any]) -> None:
    """``autogai train``'s summary: one line per agent, its final evaluation, the IQM over agents."""
    import typer

    label = f"{plain(request.card.id)} {plain(request.combo.short_name)}"
    for index, result in enumerate(results):
        prefix = "" if len(results) == 1 else f"agent {index} "
        reason = f" ({plain(result.reason)})" if result.reason else ""
        typer.echo(
            f"{prefix}{result.status}: {label} seed {result.seed}, {result.steps_done} steps "
            f"in {result.wall_time_s:.1f} s{reason}"
        )
        if result.final_evaluation is not None:
            typer.echo(f"{prefix}evaluation: {plain(result.final_evaluation.summary())}")
    if len(results) > 1:
        from autogai.core.statistics import estimate

        score = estimate([r.fitness if r.fitness is not None else float("nan") for r in results])
        typer.echo(
            f"IQM fitness over {score.n} of {len(results)} agents: {score.iqm:.4g} "
            f"(95% bootstrap interval [{score.low:.4g}, {score.high:.4g}])"
        )
    typer.echo(f"run directory: {plain(request.run_dir)}")


def print_evaluation(evaluation: Any) -> None:
    """``autogai evaluate``'s table per agent: fitness, the task's metrics, infeasibility, the oracle."""
    import typer

    meta = evaluation.meta
    for info, result in zip(evaluation.agents, evaluation.results, strict=True):
        typer.echo(
            f"{plain(evaluation.card.id)} {plain(meta.get('enhancers_short', ''))} agent {plain(info.get('index'))} "
            f"(seed {plain(info.get('seed'))}) after {plain(meta.get('steps'))} steps, {result.episodes} episodes "
            f"(seed {result.seed}):"
        )
        typer.echo(f"  fitness            {result.fitness_mean:.4g} ± {result.fitness_std:.3g}")
        for name, value in result.report_metrics.items():
            typer.echo(f"  {plain(name):<18} {value:.4g}")
        if result.infeasible_fraction is not None:
            typer.echo(f"  infeasible         {result.infeasible_fraction:.1%} of slots")
        if result.oracle_fitness is not None:
            fraction = result.oracle_fraction
            typer.echo(
                f"  oracle fitness     {result.oracle_fitness:.4g}"
                + (f" (policy reaches {fraction:.1%})" if fraction is not None else "")
            )


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_table(records: Sequence[Any]) -> str:
    """The plain-text table ``propose`` prints: one row per record (columns sized to content, capped)."""
    columns = (("id", 12), ("name", 40), ("enhancers", 24), ("components", 48), ("valid", 5), ("sources", 64))
    rows = []
    for record in records:
        design = record.design
        if design is None:
            rows.append(("-", "(no design)", "-", "-", "no", "-"))
            continue
        rows.append(
            (
                plain(design.id),
                plain(design.name or "-"),
                plain(design.enhancers.short_name),
                plain(", ".join(record.component_names) or "?"),
                "yes" if record.ok else "no",
                plain(", ".join(design.sources) or "-"),
            )
        )
    widths = [
        min(cap, max([len(name), *(len(" ".join(str(row[i]).split())) for row in rows)]))
        for i, (name, cap) in enumerate(columns)
    ]
    lines = ["  ".join(name.ljust(w) for (name, _), w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(_cell(v, w).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return "\n".join(lines)


def print_proposal_round(result: Any) -> None:
    """``autogai propose``'s summary: the counts, the table, why each unusable reply was refused, the LLM
    usage and cost, where it was written."""
    import typer

    typer.echo(
        f"proposer {plain(result.proposer)} on {plain(result.task_id)}: {result.valid} valid of "
        f"{len(result.records)} design(s) in {result.seconds:.1f} s"
    )
    typer.echo(summary_table(result.records))
    for record in result.records:
        if not record.ok:
            label = record.design.id if record.design is not None else f"sample {record.sample_index}"
            typer.echo(f"  {plain(label)}: {plain(record.error)}")
    usage = result.usage
    cost = usage.get("cost_usd")
    if result.proposer != "offline" and isinstance(cost, (int, float)):
        typer.echo(
            f"LLM calls {usage.get('calls', 0)} (cache hits {usage.get('cache_hits', 0)}, errors "
            f"{usage.get('errors', 0)}), tokens in/out {usage.get('tokens_in', 0)}/{usage.get('tokens_out', 0)}, "
            f"estimated cost ${cost:.4f}"
        )
    typer.echo(f"written to {plain(result.run_dir)}")


def snippet(text: str, title: str, heading: str, width: int = 160) -> str:
    """The chunk text without its title/heading header, on one line, cut at ``width`` characters."""
    lines = text.splitlines()
    while lines and lines[0].strip() in ("", title, heading):
        lines.pop(0)
    flat = " ".join(" ".join(lines).split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"
