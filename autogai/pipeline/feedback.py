"""Feedback for the next generation: one :class:`DesignFeedback` per evaluated design."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autogai.core.types import ComponentSummary, DesignFeedback
from autogai.pipeline.ranking import DesignResult


def _component_summaries(raw: Mapping[str, Any]) -> dict[str, ComponentSummary]:
    out: dict[str, ComponentSummary] = {}
    for name, data in (raw or {}).items():
        if not isinstance(data, Mapping):
            continue

        def num(key: str, data: Mapping[str, Any] = data) -> float:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) else float("nan")

        corr = data.get("fitness_correlation")
        out[name] = ComponentSummary(
            mean=num("mean"),
            min=num("min"),
            max=num("max"),
            samples=tuple(float(x) for x in data.get("samples") or () if isinstance(x, (int, float))),
            fitness_correlation=float(corr) if isinstance(corr, (int, float)) else None,
        )
    return out


def curve_summary(result: DesignResult) -> str:
    """Where the learning curve of the best trial started and ended, and how the trials went."""
    parts: list[str] = []
    source = result.representative_trial
    curve = source.result.curve if source is not None else []
    points = [
        (row.get("step"), float(f)) for row in curve if isinstance(f := row.get("fitness"), (int, float))
    ]
    if points:
        (s0, f0), (s1, f1) = points[0], points[-1]
        peak = max(f for _, f in points)
        trend = "rising" if f1 > f0 else "flat" if math.isclose(f1, f0, rel_tol=0.02) else "falling"
        parts.append(
            f"fitness {f0:.3g} at step {int(s0 or 0)} -> {f1:.3g} at step {int(s1 or 0)} ({trend}, peak {peak:.3g})"
        )
    counts = result.state_counts()
    if counts:
        parts.append(
            f"{sum(counts.values())} tuning trials: {counts.get('COMPLETE', 0)} complete, "
            f"{counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} failed"
        )
    return "; ".join(parts)


def build_feedback(
    result: DesignResult, *, baseline_score: float | None, oracle_fitness: float | None
) -> DesignFeedback:
    """Score + interval, component statistics over training, violation rates, curve, best params, errors."""
    design = result.design
    best = result.best_trial
    source = result.representative_trial
    components = _component_summaries(source.result.components) if source is not None else {}
    violations = dict(result.mean_attr("eval_violation_rates"))
    if not violations and source is not None:
        violations = {
            k: float(v) for k, v in source.result.violation_rates.items() if isinstance(v, (int, float))
        }
    score = result.validation_score
    # The proposer sees validation scores only: test seeds are used once, for the final verdict.
    mean = score.iqm if score is not None and math.isfinite(score.iqm) else None
    ci = (score.low, score.high) if score is not None and mean is not None else None
    return DesignFeedback(
        design_id=design.id,
        name=design.name,
        enhancers=design.enhancers.short_name,
        reward_source=design.reward_source,
        score_mean=mean,
        score_ci=ci,
        baseline_score=baseline_score,
        oracle_fitness=oracle_fitness,
        components=components,
        violation_rates=violations,
        curve_summary=curve_summary(result),
        best_params=dict(best.params) if best is not None else {},
        errors=tuple(result.errors()[:3]),
    )
