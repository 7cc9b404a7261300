"""The offline proposer: K distinct valid designs from the shipped knowledge base, and a second round that
changes designs in response to feedback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from autogai.core.types import ComponentSummary, DesignFeedback
from autogai.pipeline.rundir import RunDirectory
from autogai.rag.offline_proposer import HONESTY, OfflineProposer
from autogai.rag.program_editing import apply_feedback_rules, parse_program
from autogai.rag.proposers import make_proposer
from autogai.tasks.registry import get_task

VALIDATION = {"n_transitions": 32}


def _params(source: str) -> dict[str, Any]:
    program = parse_program(source)
    assert program is not None
    return program.params


def _guard_names(program: Any) -> list[str]:
    """Components penalising the UAV card's failure flags (leaving the area or the near field)."""
    return [
        c.name
        for c in program.components
        if re.search(r"m\.(out_of_area|outside_near_field)\b", c.expression)
    ]


def _feedback(design: Any, score: float, **details: Any) -> DesignFeedback:
    """What a generation's ranking tells the proposer about ``design``."""
    return DesignFeedback(
        design_id=design.id,
        name=design.name,
        enhancers=design.enhancers.short_name,
        reward_source=design.reward_source,
        score_mean=score,
        **details,
    )


@pytest.mark.parametrize("task_id", ["uav-nearfield", "pendulum"])
def test_k_distinct_valid_designs(kb: Any, task_id: str, tmp_path: Path) -> None:
    task = get_task(task_id)
    proposer = make_proposer(None, kb=kb, validation_kwargs=VALIDATION)
    assert isinstance(proposer, OfflineProposer) and proposer.name == "offline"
    records = proposer.propose(task, n=3)
    valid = [r for r in records if r.ok]
    assert len(valid) == 3, [r.error for r in records]
    assert len({r.design.id for r in valid}) == 3
    for record in valid:
        design = record.design
        assert HONESTY in design.rationale and "no language model" in record.response
        assert design.proposer == "offline" and design.sources
        assert set(record.component_names) == {c.name for c in parse_program(design.reward_source).components}
        names = re.findall(r'p\["(\w+)"\]', design.reward_source)
        assert set(names) == set(_params(design.reward_source))  # every PARAM used, every use declared
    # deterministic: the same call gives the same designs
    again = proposer.propose(task, n=3)
    assert [r.design.id for r in again if r.ok] == [r.design.id for r in valid]
    written = [
        RunDirectory(tmp_path).write_proposal(r, label=f"rejected-g0-{i}") for i, r in enumerate(records)
    ]
    design_json = json.loads((written[0] / "design.json").read_text())
    assert design_json["validation"]["ok"] is True and (written[0] / "prompt.md").is_file()


def test_second_round_changes_designs_in_response_to_feedback(kb: Any) -> None:
    task = get_task("uav-nearfield")
    proposer = OfflineProposer(kb, validation_kwargs=VALIDATION)
    first = [r for r in proposer.propose(task, n=2) if r.ok]
    best = first[0].design
    program = parse_program(best.reward_source)
    names = [c.name for c in program.components]
    assert len(names) >= 2
    # The guards on the task's failure flags are never dropped (a later test checks that); any other
    # component that anti-correlates with fitness is.
    guards = set(_guard_names(program))
    bad, good = next(n for n in reversed(names) if n not in guards), names[0]
    weight = next(iter(program.params))
    spec = program.params[weight]
    best_value = (float(spec["low"]) + float(spec["high"])) / 2
    feedback = [
        _feedback(
            best,
            35.0,
            baseline_score=31.0,
            components={
                good: ComponentSummary(mean=40.0, min=30.0, max=50.0, fitness_correlation=0.8),
                bad: ComponentSummary(mean=-3.0, min=-5.0, max=0.0, fitness_correlation=-0.7),
            },
            best_params={f"reward.{weight}": best_value},
        ),
        _feedback(first[1].design, 20.0),
    ]
    second = proposer.propose(
        task, n=3, feedback=feedback, generation=1, past_designs=[r.design for r in first]
    )
    valid = [r for r in second if r.ok]
    assert len(valid) == 3, [r.error for r in second]
    ids = {r.design.id for r in valid}
    assert len(ids) == 3 and not ids & {r.design.id for r in first}
    child = valid[0].design
    assert child.parent == best.id and child.generation == 1
    child_program = parse_program(child.reward_source)
    assert bad not in [c.name for c in child_program.components]  # anti-correlated component dropped
    assert good in [c.name for c in child_program.components]  # what worked is kept
    assert f"dropped component {bad}" in child.rationale
    if weight in child_program.params:
        assert child_program.params[weight]["default"] == pytest.approx(best_value)
    # the enhancers that worked are kept on one child, the next recommended combination is tried on another
    assert child.enhancers == best.enhancers
    assert any(r.design.parent == best.id and r.design.enhancers != best.enhancers for r in valid)


def test_feedback_rules_reweight_dominating_and_move_ranges() -> None:
    source = """PARAMS = {
    "rate_weight": {"default": 10.0, "low": 1.0, "high": 50.0},
    "power_weight": {"default": 0.005, "low": 0.0005, "high": 0.05, "log": True},
}


def compute_reward(m, p):
    components = {
        "rate": p["rate_weight"] * m.rate_df,
        "power": -p["power_weight"] * m.power_total_mw,
        "alive": 1.0,
    }
    return sum(components.values()), components
"""
    program = parse_program(source)
    assert program is not None
    feedback = DesignFeedback(
        design_id="d-1",
        name="x",
        enhancers="plain",
        reward_source=source,
        components={
            "rate": ComponentSummary(mean=500.0, min=0.0, max=900.0, fitness_correlation=0.9),
            "power": ComponentSummary(mean=-5.0, min=-10.0, max=0.0, fitness_correlation=0.3),
            "alive": ComponentSummary(mean=1.0, min=1.0, max=1.0),
        },
        best_params={"rate_weight": 20.0, "power_weight": 0.049},
    )
    changes = apply_feedback_rules(program, feedback)
    assert [c.name for c in program.components] == ["rate", "power"]  # the constant component is gone
    assert any("dropped component alive" in c for c in changes)
    assert any("scaled component rate" in c for c in changes)  # 500 vs 5: dominates
    rate = program.params["rate_weight"]
    assert rate["default"] < 20.0 and rate["high"] < 50.0  # best value, narrowed, then scaled down
    power = program.params["power_weight"]
    assert power["default"] == pytest.approx(0.049) and power["high"] == pytest.approx(0.2)  # edge: widened
    assert "def compute_reward" in program.source() and '"alive"' not in program.source()


def test_without_a_knowledge_base_the_baseline_is_varied_honestly() -> None:
    records = OfflineProposer(None, validation_kwargs=VALIDATION).propose(get_task("pendulum"), n=2)
    valid = [r for r in records if r.ok]
    assert len(valid) == 2 and len({r.design.id for r in valid}) == 2
    assert all("no reward-term blocks" in r.design.rationale for r in valid)


def test_reflection_never_drops_the_guard_on_a_failure_flag(kb: Any) -> None:
    """Feedback that condemns a hard-constraint penalty cannot remove it: the child still penalises leaving
    the area and the near field (the task card marks both as failures)."""
    task = get_task("uav-nearfield")
    proposer = OfflineProposer(kb, validation_kwargs=VALIDATION)
    first = proposer.propose(task, n=2)
    best = first[0].design
    program = parse_program(best.reward_source)
    guard_names = _guard_names(program)
    assert guard_names
    feedback = [
        _feedback(
            best,
            35.0,
            components={
                name: ComponentSummary(mean=-3.0, min=-5.0, max=0.0, fitness_correlation=-0.9)
                for name in guard_names
            },
        )
    ]
    second = proposer.propose(
        task, n=2, feedback=feedback, generation=1, past_designs=[r.design for r in first]
    )
    for record in second:
        assert record.ok, record.error
        source = record.design.reward_source
        assert "m.out_of_area" in source and "m.outside_near_field" in source
