"""``autogai report``: an HTML page with PNG plots beside it, built from the run directory's files only
(leaderboard.json, designs/*/curves.csv), so it works on a copied run without the storage."""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from autogai.core.text import escape_control
from autogai.pipeline.ranking import read_csv
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


def _plot_scores(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.get("score_mean") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(3, len(scored)) + 1))
    for i, row in enumerate(reversed(scored)):
        mean, low, high = row["score_mean"], row.get("ci_low"), row.get("ci_high")
        color = "tab:gray" if row.get("is_baseline") else "tab:blue"
        err = [[mean - low], [high - mean]] if low is not None and high is not None else None
        ax.errorbar(mean, i, xerr=err, fmt="o", color=color, capsize=4)
        if row.get("score_iqm") is not None:
            ax.plot(row["score_iqm"], i, marker="|", color="black", markersize=12)
    ax.set_yticks(range(len(scored)))
    ax.set_yticklabels([_label(r) for r in reversed(scored)])
    ax.set_xlabel("held-out fitness (mean, 95% bootstrap CI; | = IQM)")
    ax.set_title("Design scores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curves(run: RunDirectory, design_id: str) -> list[dict[str, str]]:
    return read_csv(run.design_dir(design_id) / "curves.csv")


def _plot_learning_curves(run: RunDirectory, rows: list[dict[str, Any]], path: Path) -> bool:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    drew = False
    for row in rows:
        by_step: dict[float, list[float]] = defaultdict(list)
        for c in _curves(run, row["design_id"]):
            if c.get("source") == "heldout":
                step, fitness = _float(c.get("step")), _float(c.get("fitness"))
                if math.isfinite(step) and math.isfinite(fitness):
                    by_step[step].append(fitness)
        if not by_step:
            continue
        steps = np.array(sorted(by_step))
        means = np.array([np.mean(by_step[s]) for s in steps])
        lows = np.array([np.min(by_step[s]) for s in steps])
        highs = np.array([np.max(by_step[s]) for s in steps])
        style = "--" if row.get("is_baseline") else "-"
        ax.plot(steps, means, style, label=_label(row))
        ax.fill_between(steps, lows, highs, alpha=0.15)
        drew = True
    if drew:
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation fitness (held-out seeds: mean, min-max)")
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
        curves = [c for c in _curves(run, row["design_id"]) if c.get("source") == "heldout"]
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
        ax.set_title("Rate vs power of each design (held-out evaluation)")
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
    board = json.loads(board_path.read_text())
    rows: list[dict[str, Any]] = board.get("designs", [])
    config = run.read_config() or {}
    run.plots_dir.mkdir(exist_ok=True)
    sections: list[str] = []

    _plot_scores(rows, run.plots_dir / "scores.png")
    sections.append('<h2>Design scores</h2><img src="plots/scores.png" alt="scores">')
    if _plot_learning_curves(run, rows, run.plots_dir / "learning_curves.png"):
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

    head = [
        "rank",
        "design_id",
        "name",
        "enhancers",
        "generation",
        "score_mean",
        "score_iqm",
        "ci_low",
        "ci_high",
        "n_seeds",
        "vs_baseline",
        "trials_complete",
        "trials_pruned",
        "trials_failed",
    ]
    metric_names = sorted({k for r in rows for k in (r.get("report_metrics") or {})})
    table = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head + metric_names) + "</tr>"]
    for r in rows:
        style = " class='baseline'" if r.get("is_baseline") else ""
        metrics = r.get("report_metrics") or {}
        table.append(
            f"<tr{style}>"
            + "".join(f"<td>{cell(r.get(h))}</td>" for h in head)
            + "".join(f"<td>{cell(metrics.get(m))}</td>" for m in metric_names)
            + "</tr>"
        )
    table.append("</table>")
    best = rows[0] if rows else None
    best_code = ""
    if best is not None and (run.design_dir(best["design_id"]) / "reward.py").is_file():
        source = (run.design_dir(best["design_id"]) / "reward.py").read_text()
        best_code = f"<h2>Best design's reward program ({html.escape(best['design_id'])})</h2><pre>{html.escape(escape_control(source, keep_newlines=True))}</pre>"
    oracle = board.get("oracle_fitness")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>autogai report: {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}tr.baseline{{background:#eee}}img{{max-width:100%}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>autogai run {html.escape(run.name)}</h1>
<p>Task <b>{html.escape(str(board.get("task")))}</b>, preset {html.escape(str(config.get("preset")))},
proposer {html.escape(str(config.get("llm")))}, action space {html.escape(str(config.get("action_space") or "default"))}.
Scores are the task fitness (never the reward) of each design's best configuration retrained on held-out seeds:
mean, IQM and a 95% percentile-bootstrap interval over seeds.{f" Oracle fitness: {oracle:.4g}." if isinstance(oracle, (int, float)) else ""}</p>
<h2>Leaderboard</h2>{"".join(table)}
{"".join(sections)}
{best_code}
</body></html>
"""
    out = run.path / "report.html"
    out.write_text(page)
    return out
