"""Ranking: every design's configuration chosen on validation seeds, the finalists retrained once on test
seeds, scored with the IQM and its 95% bootstrap interval and compared with the baseline design by the
interval of the IQM difference, the probability of improvement (rliable's practice) and a one-sided
permutation test whose p-values are Holm-corrected across the run's finalists.

Two kinds of leaderboard come out of here. After each generation (``phase="validation"``) designs are ranked
on their validation scores: that ranking chooses finalists and feeds the proposer, and declares no verdict.
After the test phase (``phase="test"``) only test scores rank the finalists and decide wins: a design *beats
the baseline* when its difference interval lies above 0 (and is not degenerate) **and** its Holm-adjusted
p-value is below :data:`ALPHA`. Designs that did not reach the final keep their validation score in
``validation_iqm`` and no ``iqm``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.files import write_atomic
from autogai.core.statistics import ScoreEstimate, estimate
from autogai.core.types import Design
from autogai.pipeline.rundir import RunDirectory

if TYPE_CHECKING:
    from autogai.search.phases import ConfigScore
    from autogai.search.records import RunStore, TrialRecord

ALPHA = 0.05
"""Family-wise error rate of the run's "beats the baseline" claims."""


@dataclass
class DesignResult:
    """Everything the storage knows about one design of a run."""

    design: Design
    tuning: list[TrialRecord] = field(default_factory=list)
    """Trials of the tuning study."""
    validation: list[TrialRecord] = field(default_factory=list)
    """Runs of the validation study: (configuration, validation seed) pairs."""
    test: list[TrialRecord] = field(default_factory=list)
    """Runs of the test study (one per test seed; only finalists have any)."""

    @property
    def best_trial(self) -> TrialRecord | None:
        from autogai.search.records import best_trial

        return best_trial(self.tuning)

    @property
    def tuning_best(self) -> float | None:
        best = self.best_trial
        return None if best is None or best.value is None else float(best.value)

    @property
    def chosen(self) -> ConfigScore | None:
        """The configuration with the best validation IQM (the first queued among equals)."""
        from autogai.search.phases import chosen_configuration

        return chosen_configuration(self.validation)

    @property
    def validation_values(self) -> np.ndarray:
        chosen = self.chosen
        return chosen.values if chosen is not None else np.zeros(0)

    @property
    def validation_score(self) -> ScoreEstimate | None:
        values = self.validation_values
        return estimate(values) if values.size else None

    def runs(self, kind: str) -> list[TrialRecord]:
        return self.validation if kind == "validation" else self.test

    @property
    def test_values(self) -> np.ndarray:
        return np.array([t.value for t in self.test if t.complete], dtype=np.float64)  # [n_runs]

    @property
    def test_score(self) -> ScoreEstimate | None:
        values = self.test_values
        return estimate(values) if values.size else None

    def scored_runs(self) -> list[TrialRecord]:
        """The completed runs behind the design's current score: test runs where there are any, else the
        chosen configuration's validation runs."""
        complete = [t for t in self.test if t.complete]
        if complete:
            return complete
        chosen = self.chosen
        return [t for t in self.validation if t.complete and chosen and t.result.config_key == chosen.key]

    @property
    def representative_trial(self) -> TrialRecord | None:
        """The trial whose curve and components describe the design: the best tuning trial, else the first
        scored run (a design whose tuning all failed), else None."""
        runs = self.scored_runs()
        return self.best_trial or (runs[0] if runs else None)

    def state_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tuning:
            if not t.result.surplus:
                counts[t.state] = counts.get(t.state, 0) + 1
        return counts

    def mean_attr(self, key: str) -> dict[str, float]:
        """Mean over the scored runs of a dict-valued trial attribute (report metrics, ...)."""
        sums: dict[str, list[float]] = {}
        for t in self.scored_runs():
            for name, value in (getattr(t.result, key) or {}).items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    sums.setdefault(name, []).append(float(value))
        return {k: float(np.mean(v)) for k, v in sums.items()}

    def errors(self) -> list[str]:
        reasons: list[str] = []
        for t in [*self.tuning, *self.validation, *self.test]:
            reason = t.result.reason
            if t.state in ("FAIL", "PRUNED") and reason and "pruned" not in str(reason).lower():
                text = f"trial {t.number} {t.result.status or t.state.lower()}: {reason}"
                if text not in reasons:
                    reasons.append(text)
        return reasons


def collect_results(store: RunStore, designs: Iterable[Design]) -> dict[str, DesignResult]:
    results: dict[str, DesignResult] = {}
    for design in designs:
        results[design.id] = DesignResult(
            design,
            tuning=store.tuning_trials(design.id),
            validation=store.scoring_trials(design.id, "validation"),
            test=store.scoring_trials(design.id, "test"),
        )
    return results


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _pair(low: float, high: float) -> list[Any]:
    return [_clean(float(low)), _clean(float(high))]


@dataclass
class LeaderboardRow:
    """One design on the leaderboard: the one form the terminal table, ``leaderboard.json``/``.csv``, the
    report and ``design.json`` read (one name per field; :meth:`to_dict` is what the files hold)."""

    design_id: str
    name: str
    enhancers: str
    generation: int
    proposer: str
    parent: str | None
    is_baseline: bool
    score_source: str | None
    """``test`` (the final verdict), ``validation`` (during the generations) or None (unscored)."""
    iqm: float | None
    iqm_ci: list[float | None] | None
    n_seeds: int
    failed_seeds: int
    mean: float | None
    validation_iqm: float | None
    validation_iqm_ci: list[float | None] | None
    validation_seeds: int
    diff_vs_baseline: float | None
    diff_vs_baseline_ci: list[float | None] | None
    prob_improvement: float | None
    prob_improvement_ci: list[float | None] | None
    degenerate_interval: bool
    p_value: float | None
    """One-sided permutation p-value of the IQM difference to the baseline."""
    p_value_adjusted: float | None
    """``p_value`` Holm-adjusted across every comparison with the baseline in this leaderboard."""
    beats_baseline: bool
    tuning_best: float | None
    trials_complete: int
    trials_pruned: int
    trials_failed: int
    report_metrics: dict[str, float]
    violation_rates: dict[str, float]
    best_params: dict[str, Any]
    chosen_config: str | None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(
    design_id: str,
    r: DesignResult,
    values: np.ndarray,
    base_values: np.ndarray,
    phase: str,
    is_baseline: bool,
) -> tuple[LeaderboardRow, Any]:
    from autogai.core.statistics import compare, improvement_p_value

    s = estimate(values) if values.size else None
    validation = r.validation_score
    chosen = r.chosen
    versus = compare(values, base_values) if s and base_values.size and not is_baseline else None
    counts = r.state_counts()
    row = LeaderboardRow(
        design_id=design_id,
        name=r.design.name,
        enhancers=r.design.enhancers.short_name,
        generation=r.design.generation,
        proposer=r.design.proposer,
        parent=r.design.parent,
        is_baseline=is_baseline,
        score_source=phase if s else None,
        iqm=_clean(s.iqm) if s else None,
        iqm_ci=_pair(s.low, s.high) if s else None,
        n_seeds=s.n if s else 0,
        failed_seeds=sum(1 for t in r.runs(phase) if t.state == "FAIL"),
        mean=_clean(s.mean) if s else None,
        validation_iqm=_clean(validation.iqm) if validation else None,
        validation_iqm_ci=_pair(validation.low, validation.high) if validation else None,
        validation_seeds=validation.n if validation else 0,
        diff_vs_baseline=_clean(versus.difference) if versus else None,
        diff_vs_baseline_ci=_pair(versus.difference_low, versus.difference_high) if versus else None,
        prob_improvement=_clean(versus.probability_of_improvement) if versus else None,
        prob_improvement_ci=_pair(versus.probability_low, versus.probability_high) if versus else None,
        degenerate_interval=bool(versus.degenerate) if versus else False,
        p_value=improvement_p_value(values, base_values) if versus else None,
        p_value_adjusted=None,
        beats_baseline=False,
        tuning_best=r.tuning_best,
        trials_complete=counts.get("COMPLETE", 0),
        trials_pruned=counts.get("PRUNED", 0),
        trials_failed=counts.get("FAIL", 0),
        report_metrics=r.mean_attr("report_metrics"),
        violation_rates=r.mean_attr("eval_violation_rates"),
        best_params=dict(chosen.params) if chosen is not None else {},
        chosen_config=chosen.source if chosen is not None else None,
    )
    return row, versus


def leaderboard_rows(
    results: Mapping[str, DesignResult], baseline_id: str | None, *, phase: str = "validation"
) -> list[dict[str, Any]]:
    """Rows (``LeaderboardRow.to_dict()``) sorted by score, unscored designs last; see the module docstring
    for the two phases."""
    from autogai.core.statistics import holm_adjust

    def values_of(r: DesignResult) -> np.ndarray:
        return r.test_values if phase == "test" else r.validation_values

    baseline = results.get(baseline_id) if baseline_id else None
    base_values = values_of(baseline) if baseline is not None else np.zeros(0)
    made = [
        _row(design_id, r, values_of(r), base_values, phase, design_id == baseline_id)
        for design_id, r in results.items()
    ]
    # Holm across every comparison with the baseline made in this phase (the run's family of claims).
    tested = [(row, versus) for row, versus in made if row.p_value is not None]
    for (row, versus), adjusted in zip(tested, holm_adjust([row.p_value for row, _ in tested]), strict=True):
        row.p_value_adjusted = float(adjusted)
        row.beats_baseline = bool(versus.better and adjusted < ALPHA)
    rows = sorted(
        (row for row, _ in made), key=lambda r: (r.iqm is None, -(r.iqm or 0.0), r.validation_iqm is None)
    )
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
    return [row.to_dict() for row in rows]


_CSV_COLUMNS = (
    "rank",
    "design_id",
    "name",
    "enhancers",
    "generation",
    "proposer",
    "is_baseline",
    "score_source",
    "iqm",
    "iqm_low",
    "iqm_high",
    "n_seeds",
    "failed_seeds",
    "mean",
    "validation_iqm",
    "diff_vs_baseline",
    "diff_low",
    "diff_high",
    "prob_improvement",
    "p_value",
    "p_value_adjusted",
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
    phase: str = "validation",
    plan: Mapping[str, Any] | None = None,
) -> None:
    metric_names = sorted({k for row in rows for k in row.get("report_metrics", {})})
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow([*_CSV_COLUMNS, *metric_names])
    for row in rows:
        metrics = row.get("report_metrics", {})
        diff = row.get("diff_vs_baseline_ci") or [None, None]
        ci = row.get("iqm_ci") or [None, None]
        flat = {**row, "diff_low": diff[0], "diff_high": diff[1], "iqm_low": ci[0], "iqm_high": ci[1]}
        writer.writerow(
            [_fmt(flat.get(c)) for c in _CSV_COLUMNS] + [_fmt(metrics.get(m)) for m in metric_names]
        )
    write_atomic(run.path / "leaderboard.csv", handle.getvalue())
    payload = {
        "task": task_id,
        "phase": phase,
        "alpha": ALPHA,
        "correction": "Holm (one-sided permutation test of the IQM difference vs the baseline)",
        "plan": dict(plan or {}),
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
    """trials.csv (every trial: tuning, validation, test) and curves.csv (best tuning trial + scored runs)."""
    directory = run.design_dir(result.design.id)
    directory.mkdir(parents=True, exist_ok=True)
    trials = (
        [("tuning", t) for t in result.tuning]
        + [("validation", t) for t in result.validation]
        + [("test", t) for t in result.test]
    )

    def params_of(study: str, t: TrialRecord) -> dict[str, Any]:
        return dict(t.params) if study == "tuning" else dict(t.result.params)

    param_names = sorted({p for study, t in trials for p in params_of(study, t)})
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
        r, params = t.result, params_of(study, t)
        writer.writerow(
            [
                study,
                t.number,
                t.state,
                _fmt(t.value),
                _fmt(r.duration_s),
                _fmt(r.seed),
                r.status,
                _fmt(r.steps_done),
                _fmt(t.retry_of),
                str(r.reason or "").replace("\n", " ")[:300],
            ]
            + [_fmt(params.get(p)) for p in param_names]
        )
    write_atomic(directory / "trials.csv", handle.getvalue())
    curve_rows: list[dict[str, Any]] = []
    best = result.best_trial
    if best is not None:
        for row in best.result.curve:
            curve_rows.append({"source": "tuning", "trial": best.number, "seed": best.result.seed, **row})
    for study, t in trials:
        if study == "tuning" or not t.complete:
            continue
        for row in t.result.curve:
            curve_rows.append({"source": study, "trial": t.number, "seed": t.result.seed, **row})
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
