"""``autogai report``: an HTML page with PNG plots beside it, built from the run directory's files only
(leaderboard.json, designs/*/curves.csv), so it works on a copied run without the storage."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from autogai.core.runfiles import list_of_records, read_csv_rows, read_json
from autogai.core.text import escape_control
from autogai.pipeline.rundir import RunDirectory, open_existing_run
from autogai.pipeline.stats import pareto_front

# Metric pairs for the multi-objective view: (x to maximise, y to minimise), first one present wins.
PARETO_PAIRS = (("rate_df", "power_total_mw"),)

_LOSS_PREFIXES = ("loss", "actor_loss", "critic_loss")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _label(row: dict[str, Any]) -> str:
    name = row.get("name") or row["design_id"]
    return f"{name} ({row.get('enhancers', '')})"


_REFERENCE_STYLES = ("tab:green", "tab:orange", "tab:purple", "tab:brown")


def _references(board: dict[str, Any]) -> dict[str, float]:
    """The oracle and the task's reference fitnesses (e.g. hovering at the start), where known."""
    refs = {k: v for k, v in (board.get("references") or {}).items() if isinstance(v, (int, float))}
    if isinstance(board.get("oracle_fitness"), (int, float)):
        refs = {"oracle": board["oracle_fitness"], **refs}
    return refs


def _plot_scores(rows: list[dict[str, Any]], path: Path, references: dict[str, float]) -> None:
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.get("iqm") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(3, len(scored)) + 1))
    for i, row in enumerate(reversed(scored)):
        iqm = row["iqm"]
        low, high = (row.get("iqm_ci") or [None, None])[:2]
        color = (
            "tab:gray" if row.get("is_baseline") else ("tab:red" if row.get("beats_baseline") else "tab:blue")
        )
        err = [[iqm - low], [high - iqm]] if low is not None and high is not None else None
        ax.errorbar(iqm, i, xerr=err, fmt="o", color=color, capsize=4)
    for (name, value), color in zip(references.items(), _REFERENCE_STYLES, strict=False):
        ax.axvline(value, linestyle=":", color=color, label=f"{name} ({value:.4g})")
    ax.set_yticks(range(len(scored)))
    ax.set_yticklabels([_label(r) for r in reversed(scored)])
    ax.set_xlabel("test fitness: IQM over seeds with its 95% bootstrap interval (red: beats the baseline)")
    ax.set_title("Design scores")
    if references:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curves(run: RunDirectory, design_id: str) -> list[dict[str, str]]:
    return read_csv_rows(run.design_dir(design_id) / "curves.csv")


def _plot_learning_curves(
    run: RunDirectory, rows: list[dict[str, Any]], path: Path, references: dict[str, float]
) -> bool:
    import matplotlib.pyplot as plt

    from autogai.core.statistics import estimate

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drew = False
    for row in rows:
        by_step: dict[float, list[float]] = defaultdict(list)
        curves = _curves(run, row["design_id"])
        # The runs behind the row's score: test runs of a finalist, else its validation runs.
        source = "test" if any(c.get("source") == "test" for c in curves) else "validation"
        for c in curves:
            if c.get("source") == source:
                step, fitness = _float(c.get("step")), _float(c.get("fitness"))
                if math.isfinite(step) and math.isfinite(fitness):
                    by_step[step].append(fitness)
        if not by_step:
            continue
        steps = np.array(sorted(by_step))
        scores = [estimate(by_step[s]) for s in steps]
        iqms = np.array([e.iqm for e in scores])
        lows = np.array([e.low if math.isfinite(e.low) else e.iqm for e in scores])
        highs = np.array([e.high if math.isfinite(e.high) else e.iqm for e in scores])
        style = "--" if row.get("is_baseline") else "-"
        ax.plot(steps, iqms, style, label=_label(row))
        ax.fill_between(steps, lows, highs, alpha=0.15)
        drew = True
    if drew:
        for (name, value), color in zip(references.items(), _REFERENCE_STYLES, strict=False):
            ax.axhline(value, linestyle=":", color=color, label=f"{name} ({value:.4g})")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation fitness (test or validation seeds: IQM, 95% band)")
        ax.set_title("Learning curves of each design's best configuration")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drew


def _plot_components(run: RunDirectory, row: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    curves = [c for c in _curves(run, row["design_id"]) if c.get("source") == "tuning"]
    if not curves:
        curves = [c for c in _curves(run, row["design_id"]) if c.get("source") in ("validation", "test")]
        first_seed = curves[0].get("seed") if curves else None
        curves = [c for c in curves if c.get("seed") == first_seed]
    columns = list(curves[0]) if curves else []
    # The training loop names reward components ``component/<name>``; plot those when present.
    names = [k for k in columns if k.startswith("component/")]
    if not names:
        skip = {
            "source",
            "trial",
            "seed",
            "step",
            "fitness",
            "fitness_std",
            "updates",
            "wall_time_s",
            "episodes",
        }
        names = [k for k in columns if k not in skip and "loss" not in k and not k.startswith(_LOSS_PREFIXES)]
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    steps = [_float(c.get("step")) for c in curves]
    for name in names:
        values = [_float(c.get(name)) for c in curves]
        if any(math.isfinite(v) for v in values):
            ax.plot(steps, values, label=name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean per step over the last window")
    ax.set_title(f"Reward components and training statistics: {_label(row)}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_pareto(rows: list[dict[str, Any]], path: Path) -> tuple[str, str] | None:
    import matplotlib.pyplot as plt

    for x_name, y_name in PARETO_PAIRS:
        points: list[tuple[dict[str, Any], float, float]] = []
        for r in rows:
            metrics = r.get("report_metrics") or {}
            x, y = metrics.get(x_name), metrics.get(y_name)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                points.append((r, float(x), float(y)))
        if not points:
            continue
        values = np.array([[x, y] for _, x, y in points], dtype=np.float64)  # [n_designs, 2]
        front = pareto_front(values, maximize=(True, False))
        fig, ax = plt.subplots(figsize=(7, 5))
        for (row, x, y), on_front in zip(points, front, strict=True):
            ax.scatter(
                x,
                y,
                color="tab:red" if on_front else "tab:blue",
                marker="s" if row.get("is_baseline") else "o",
            )
            ax.annotate(
                row.get("name") or row["design_id"],
                (x, y),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        order = np.argsort(values[front, 0])
        ax.plot(values[front, 0][order], values[front, 1][order], "r--", alpha=0.5, label="Pareto front")
        ax.set_xlabel(f"{x_name} (higher is better)")
        ax.set_ylabel(f"{y_name} (lower is better)")
        ax.set_title("Rate vs power of each design (scored runs)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return x_name, y_name
    return None


def build_report(run_dir: Path | str) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into the run directory; returns the HTML path."""
    import matplotlib

    matplotlib.use("Agg")
    run = open_existing_run(run_dir)
    board_path = run.path / "leaderboard.json"
    if not board_path.is_file():
        from autogai.core.errors import RunDirectoryError

        raise RunDirectoryError(
            f"{run.path} has no leaderboard.json yet; let the search score a generation first"
        )
    board = read_json(board_path, dict, check=list_of_records("designs", "design_id"))
    rows: list[dict[str, Any]] = board.get("designs", [])
    config = run.read_config() or {}
    run.plots_dir.mkdir(exist_ok=True)
    sections: list[str] = []

    references = _references(board)
    _plot_scores(rows, run.plots_dir / "scores.png", references)
    sections.append('<h2>Design scores</h2><img src="plots/scores.png" alt="scores">')
    if _plot_learning_curves(run, rows, run.plots_dir / "learning_curves.png", references):
        sections.append('<h2>Learning curves</h2><img src="plots/learning_curves.png" alt="learning curves">')
    pareto = _plot_pareto(rows, run.plots_dir / "pareto.png")
    if pareto:
        sections.append(
            f'<h2>Multi-objective view: {pareto[0]} vs {pareto[1]}</h2><img src="plots/pareto.png" alt="pareto">'
        )
    for row in rows[:3] + [r for r in rows[3:] if r.get("is_baseline")]:
        name = f"components_{row['design_id']}.png"
        if _plot_components(run, row, run.plots_dir / name):
            sections.append(
                f"<h3>Reward components: {html.escape(_label(row))}</h3><img src='plots/{name}' alt='components'>"
            )

    def cell(x: Any) -> str:
        if isinstance(x, float):
            return f"{x:.4g}"
        return html.escape(escape_control("" if x is None else str(x)))

    def interval(pair: Any, signed: bool = False) -> str:
        if not isinstance(pair, (list, tuple)) or pair[0] is None:
            return ""
        fmt = "{:+.3g}" if signed else "{:.4g}"
        return "[" + fmt.format(pair[0]) + ", " + fmt.format(pair[1]) + "]"

    # A compact table that fits the page: the score, the comparison, and the two headline task metrics.
    head = [
        "#",
        "design",
        "enhancers",
        "gen",
        "IQM",
        "95% CI",
        "seeds",
        "Δ vs baseline",
        "95% CI of Δ",
        "P(better)",
        "trials c/p/f",
    ]
    metric_names = [
        m for m in ("rate_df", "power_total_mw") if any(m in (r.get("report_metrics") or {}) for r in rows)
    ]
    table = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head + metric_names) + "</tr>"]
    for r in rows:
        style = (
            " class='baseline'"
            if r.get("is_baseline")
            else (" class='winner'" if r.get("beats_baseline") else "")
        )
        metrics = r.get("report_metrics") or {}
        values = [
            r.get("rank"),
            f"{r.get('name') or ''} ({r['design_id']})",
            r.get("enhancers"),
            r.get("generation"),
            r.get("iqm"),
            interval(r.get("iqm_ci")),
            r.get("n_seeds"),
            "reference" if r.get("is_baseline") else r.get("diff_vs_baseline"),
            interval(r.get("diff_vs_baseline_ci"), signed=True),
            r.get("prob_improvement"),
            f"{r.get('trials_complete', 0)}/{r.get('trials_pruned', 0)}/{r.get('trials_failed', 0)}",
        ]
        table.append(
            f"<tr{style}>"
            + "".join(f"<td>{cell(v)}</td>" for v in values)
            + "".join(f"<td>{cell(metrics.get(m))}</td>" for m in metric_names)
            + "</tr>"
        )
    table.append("</table>")
    designs_html = []
    for r in rows:
        stored = run.read_design_json(r["design_id"]) or {}
        source = run.read_reward_source(r["design_id"]) or ""
        designs_html.append(
            f"<details{' open' if r is rows[0] else ''}><summary><b>{html.escape(_label(r))}</b> "
            f"{html.escape(r['design_id'])}, rank {cell(r.get('rank'))}</summary>"
            f"<p><i>Rationale:</i> {html.escape(escape_control(str(stored.get('rationale') or '')))}</p>"
            f"<p><i>Feedback after scoring:</i></p><pre>{html.escape(escape_control(str(stored.get('feedback') or 'none yet'), keep_newlines=True))}</pre>"
            f"<p><i>Reward program:</i></p><pre>{html.escape(escape_control(source, keep_newlines=True))}</pre></details>"
        )
    best_code = "<h2>Designs: reward code, rationale, feedback</h2>" + "".join(designs_html)
    oracle = board.get("oracle_fitness")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>autogai report: {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:12px}}tr.baseline{{background:#eee}}tr.winner{{background:#e8f6e8}}img{{max-width:100%}}
table{{width:100%;table-layout:auto}}td{{word-break:break-word}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>autogai run {html.escape(run.name)}</h1>
<p>Task <b>{html.escape(str(board.get("task")))}</b>, preset {html.escape(str(config.get("preset")))},
proposer {html.escape(str(config.get("llm")))}, action space {html.escape(str(config.get("action_space") or "default"))}.
Each design's configuration is chosen on validation seeds; the finalists and the baseline are then retrained
once on test seeds that nothing else saw, and only those scores rank them: the task fitness (never the reward),
as the interquartile mean (IQM) over seeds with its 95% percentile-bootstrap interval. A design beats the
baseline only when the 95% interval of its IQM difference to the baseline lies above zero and its one-sided
p-value, Holm-corrected across the finalists, is below {board.get("alpha", 0.05)}; P(better) is the probability
that a run of the design scores above a run of the baseline. Designs that did not reach the final show their
validation score only.{f" Oracle fitness: {oracle:.4g}." if isinstance(oracle, (int, float)) else ""}</p>
<h2>Leaderboard</h2>{"".join(table)}
{"".join(sections)}
{best_code}
</body></html>
"""
    out = run.path / "report.html"
    out.write_text(page)
    return out
