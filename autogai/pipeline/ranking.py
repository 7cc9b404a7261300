"""Ranking: the best configuration of every design, retrained on held-out seeds, scored with the IQM and
its 95% bootstrap interval and compared with the baseline design by the interval of the IQM difference and
the probability of improvement (rliable's practice); leaderboard files and each design's trials.csv /
curves.csv. A design *beats the baseline* only when the difference interval lies above 0."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.files import write_atomic
from autogai.core.types import Design
from autogai.pipeline.rundir import RunDirectory
from autogai.pipeline.stats import ScoreSummary, summarize_scores

if TYPE_CHECKING:
    from autogai.search.records import RunStore, TrialRecord


@dataclass
class DesignResult:
    """Everything the storage knows about one design of a run."""

    design: Design
    tuning: list[TrialRecord] = field(default_factory=list)
    """Trials of the tuning study."""
    heldout: list[TrialRecord] = field(default_factory=list)
    """Frozen trials of the held-out study (one per seed)."""
    score: ScoreSummary | None = None
    heldout_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Fitness of each completed held-out seed ``[n_runs]``; failed seeds have none."""

    @property
    def best_trial(self) -> TrialRecord | None:
        from autogai.search.records import best_trial

        return best_trial(self.tuning)

    @property
    def tuning_best(self) -> float | None:
        best = self.best_trial
        return None if best is None or best.value is None else float(best.value)

    def heldout_complete(self) -> list[TrialRecord]:
        return [t for t in self.heldout if t.complete]

    @property
    def representative_trial(self) -> TrialRecord | None:
        """The trial whose curve and components describe the design: the best tuning trial, else the first
        completed held-out run (a design whose tuning all failed), else None."""
        complete = self.heldout_complete()
        return self.best_trial or (complete[0] if complete else None)

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tuning:
            if not t.user_attrs.get("surplus"):
                counts[t.state] = counts.get(t.state, 0) + 1
        return counts

    def mean_attr(self, key: str) -> dict[str, float]:
        """Mean over completed held-out runs of a dict-valued trial attribute (report metrics, ...)."""
        sums: dict[str, list[float]] = {}
        for t in self.heldout_complete():
            for name, value in (t.user_attrs.get(key) or {}).items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    sums.setdefault(name, []).append(float(value))
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def errors(self) -> list[str]:
        reasons: list[str] = []
        for t in [*self.tuning, *self.heldout]:
            reason = t.user_attrs.get("reason")
            if t.state in ("FAIL", "PRUNED") and reason and "pruned" not in str(reason).lower():
                text = f"trial {t.number} {t.user_attrs.get('status', t.state.lower())}: {reason}"
                if text not in reasons:
                    reasons.append(text)
        return reasons


def collect_results(store: RunStore, designs: Iterable[Design]) -> dict[str, DesignResult]:
    results: dict[str, DesignResult] = {}
    for design in designs:
        result = DesignResult(design)
        result.tuning = store.tuning_trials(design.id)
        result.heldout = store.heldout_trials(design.id)
        values = np.array([t.value for t in result.heldout_complete()], dtype=np.float64)  # [n_runs]
        result.heldout_values = values
        if values.size:
            result.score = summarize_scores(values)
        results[design.id] = result
    return results


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def leaderboard_rows(results: Mapping[str, DesignResult], baseline_id: str | None) -> list[dict[str, Any]]:
    """Rows sorted by held-out IQM (unscored designs last)."""
    from autogai.core.statistics import compare

    baseline = results.get(baseline_id) if baseline_id else None
    base_values = baseline.heldout_values if baseline is not None else np.zeros(0)
    rows = []
    for design_id, r in results.items():
        s = r.score
        counts = r.state_counts()
        versus = (
            compare(r.heldout_values, base_values)
            if s and base_values.size and design_id != baseline_id
            else None
        )
        failed_seeds = sum(1 for t in r.heldout if t.state == "FAIL")
        row: dict[str, Any] = {
            "design_id": design_id,
            "name": r.design.name,
            "enhancers": r.design.enhancers.short_name,
            "generation": r.design.generation,
            "proposer": r.design.proposer,
            "parent": r.design.parent,
            "is_baseline": design_id == baseline_id,
            "iqm": _clean(s.iqm) if s else None,
            "iqm_ci": [_clean(s.ci_low), _clean(s.ci_high)] if s else None,
            "n_seeds": s.n_runs if s else 0,
            "failed_seeds": failed_seeds,
            "mean": _clean(s.mean) if s else None,
            "diff_vs_baseline": _clean(versus.difference) if versus else None,
            "diff_vs_baseline_ci": [_clean(versus.difference_low), _clean(versus.difference_high)]
            if versus
            else None,
            "prob_improvement": _clean(versus.probability_of_improvement) if versus else None,
            "prob_improvement_ci": [_clean(versus.probability_low), _clean(versus.probability_high)]
            if versus
            else None,
            "beats_baseline": bool(versus.better) if versus else False,
            # Older names kept for the terminal table and the report: the IQM and its interval.
            "score_mean": _clean(s.iqm) if s else None,
            "score_iqm": _clean(s.iqm) if s else None,
            "ci_low": _clean(s.ci_low) if s else None,
            "ci_high": _clean(s.ci_high) if s else None,
            "vs_baseline": _clean(versus.difference) if versus else None,
            "tuning_best": r.tuning_best,
            "trials_complete": counts.get("COMPLETE", 0),
            "trials_pruned": counts.get("PRUNED", 0),
            "trials_failed": counts.get("FAIL", 0),
            "report_metrics": r.mean_attr("report_metrics"),
            "violation_rates": r.mean_attr("eval_violation_rates"),
            "best_params": dict(r.best_trial.params) if r.best_trial is not None else {},
        }
        rows.append(row)
    rows.sort(key=lambda row: (row["score_mean"] is None, -(row["score_mean"] or 0.0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


_CSV_COLUMNS = (
    "rank",
    "design_id",
    "name",
    "enhancers",
    "generation",
    "proposer",
    "is_baseline",
    "iqm",
    "ci_low",
    "ci_high",
    "n_seeds",
    "failed_seeds",
    "mean",
    "diff_vs_baseline",
    "diff_low",
    "diff_high",
    "prob_improvement",
    "beats_baseline",
    "tuning_best",
    "trials_complete",
    "trials_pruned",
    "trials_failed",
    "parent",
)


def write_leaderboard(
    run: RunDirectory,
    rows: Sequence[Mapping[str, Any]],
    *,
    task_id: str,
    oracle_fitness: float | None,
    references: Mapping[str, float] | None = None,
) -> None:
    metric_names = sorted({k for row in rows for k in row.get("report_metrics", {})})
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow([*_CSV_COLUMNS, *metric_names])
    for row in rows:
        metrics = row.get("report_metrics", {})
        diff = row.get("diff_vs_baseline_ci") or [None, None]
        flat = {**row, "diff_low": diff[0], "diff_high": diff[1]}
        writer.writerow(
            [_fmt(flat.get(c)) for c in _CSV_COLUMNS] + [_fmt(metrics.get(m)) for m in metric_names]
        )
    write_atomic(run.path / "leaderboard.csv", handle.getvalue())
    payload = {
        "task": task_id,
        "oracle_fitness": oracle_fitness,
        "references": dict(references or {}),
        "designs": list(rows),
    }
    write_atomic(run.path / "leaderboard.json", json.dumps(payload, indent=2, default=str) + "\n")


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_design_tables(run: RunDirectory, result: DesignResult) -> None:
    """trials.csv (every trial of tuning and held-out) and curves.csv (best tuning trial + held-out runs)."""
    directory = run.design_dir(result.design.id)
    directory.mkdir(parents=True, exist_ok=True)
    trials = [("tuning", t) for t in result.tuning] + [("heldout", t) for t in result.heldout]
    param_names = sorted({p for _, t in trials for p in t.params})
    fixed = [
        "study",
        "number",
        "state",
        "value",
        "duration_s",
        "seed",
        "status",
        "steps_done",
        "retry_of",
        "reason",
    ]
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(fixed + param_names)
    for study, t in trials:
        attrs = t.user_attrs
        params = dict(t.params) if study == "tuning" else dict(attrs.get("params") or {})
        writer.writerow(
            [
                study,
                t.number,
                t.state,
                _fmt(t.value),
                _fmt(attrs.get("duration_s")),
                _fmt(attrs.get("seed")),
                attrs.get("status", ""),
                _fmt(attrs.get("steps_done")),
                _fmt(t.retry_of),
                str(attrs.get("reason") or "").replace("\n", " ")[:300],
            ]
            + [_fmt(params.get(p)) for p in param_names]
        )
    write_atomic(directory / "trials.csv", handle.getvalue())
    curve_rows: list[dict[str, Any]] = []
    best = result.best_trial
    if best is not None:
        for row in best.user_attrs.get("curve") or []:
            curve_rows.append(
                {"source": "tuning", "trial": best.number, "seed": best.user_attrs.get("seed"), **row}
            )
    for t in result.heldout_complete():
        for row in t.user_attrs.get("curve") or []:
            curve_rows.append(
                {"source": "heldout", "trial": t.number, "seed": t.user_attrs.get("seed"), **row}
            )
    columns: list[str] = []
    for row in curve_rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    curves = io.StringIO(newline="")
    dict_writer = csv.DictWriter(curves, fieldnames=columns or ["source", "trial", "seed", "step", "fitness"])
    dict_writer.writeheader()
    for row in curve_rows:
        dict_writer.writerow({k: _fmt(v) for k, v in row.items()})
    write_atomic(directory / "curves.csv", curves.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
