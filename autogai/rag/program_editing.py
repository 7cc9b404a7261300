"""Reward programs the offline proposer can edit: one canonical shape, read from source and written back.

The shape is ``PARAMS = {...}`` plus ``compute_reward`` ending in ``components = {...}`` and
``return sum(components.values()), components``. :func:`parse_program` reads a program of that shape (it goes
through :meth:`RewardProgram.from_source` first, the one parser of the contract); :meth:`EditableProgram.source`
writes it back. The edits are the ones the proposer makes: add a knowledge-base term as a component
(:func:`add_term`), keep a penalty on every failure flag of the card (:func:`add_failure_guards`), scale a
component (:func:`scale_component`), and the feedback rules of docs/search.md
(:func:`apply_feedback_rules`). Which edits to make, and when, is the strategy of
:mod:`autogai.rag.offline_proposer`.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autogai.core.errors import RewardRejectedError
from autogai.rewards.program import RewardProgram

if TYPE_CHECKING:
    from autogai.core.types import DesignFeedback
    from autogai.rag.reward_terms import RewardTerm
    from autogai.tasks.card import TaskCard

_PARAM_REF = re.compile(r"""p\[\s*(["'])(\w+)\1\s*\]""")
_METRIC_REF = re.compile(r"\bm\.(\w+)")


def metrics_read(text: str) -> set[str]:
    """The metrics ``text`` reads as ``m.<name>``."""
    return set(_METRIC_REF.findall(text))


@dataclass
class Component:
    """One component of a composed program: ``components[name] = expression``."""

    name: str
    expression: str
    role: str = "objective"
    doc_id: str = ""


@dataclass
class EditableProgram:
    """A reward program in the offline proposer's canonical shape (PARAMS + one components dict)."""

    params: dict[str, dict[str, Any]]
    components: list[Component]
    preamble: list[str] = field(default_factory=list)
    """Statements of ``compute_reward`` before the components dict (kept verbatim when reflecting)."""
    header: list[str] = field(default_factory=list)

    def source(self) -> str:
        lines = [f"# {line}".rstrip() for line in self.header]
        used = self.used_params()
        params = {k: v for k, v in self.params.items() if k in used}
        if params:
            lines.append("PARAMS = {")
            for name, spec in params.items():
                lines.append(f"    {name!r}: {_format_spec(spec)},".replace("'", '"'))
            lines.append("}")
        else:
            lines.append("PARAMS = {}")
        lines += ["", "", "def compute_reward(m, p):"]
        lines += [f"    {stmt}" for stmt in self.preamble]
        lines.append("    components = {")
        for comp in self.components:
            lines.append(f'        "{comp.name}": {comp.expression},')
        lines.append("    }")
        lines.append("    return sum(components.values()), components")
        return "\n".join(lines) + "\n"

    def used_params(self) -> set[str]:
        text = "\n".join([*self.preamble, *(c.expression for c in self.components)])
        return {match.group(2) for match in _PARAM_REF.finditer(text)}


def _format_number(value: float) -> str:
    value = float(value)
    if value == 0:
        return "0.0"
    if abs(value) >= 1e-3 and abs(value) < 1e6:
        text = f"{value:.6g}"
        return text if any(c in text for c in ".e") else text + ".0"
    return f"{value:.4g}"


def _format_spec(spec: dict[str, Any]) -> str:
    parts = [f'"{key}": {_format_number(spec[key])}' for key in ("default", "low", "high")]
    if spec.get("log"):
        parts.append('"log": True')
    return "{" + ", ".join(parts) + "}"


def parse_program(source: str) -> EditableProgram | None:
    """Read a program of the shape ``PARAMS = {...}`` + ``components = {...}`` + ``return ..., components``.

    Returns ``None`` for any other shape (the caller then composes afresh instead of editing).
    """
    try:
        checked = RewardProgram.from_source(source)  # the one PARAMS parser, with its checks
    except RewardRejectedError:
        return None
    params = {name: spec.to_dict() for name, spec in checked.params.items()}
    tree = ast.parse(source)
    function = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_reward"), None
    )
    if function is None or len(function.body) < 2:
        return None
    *body, last = function.body
    if not (
        isinstance(last, ast.Return)
        and isinstance(last.value, ast.Tuple)
        and len(last.value.elts) == 2
        and isinstance(last.value.elts[1], ast.Name)
        and last.value.elts[1].id == "components"
    ):
        return None
    assign = body[-1] if body else None
    if not (
        isinstance(assign, ast.Assign)
        and len(assign.targets) == 1
        and isinstance(assign.targets[0], ast.Name)
        and assign.targets[0].id == "components"
        and isinstance(assign.value, ast.Dict)
    ):
        return None
    components = []
    for key, value in zip(assign.value.keys, assign.value.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        expression = ast.get_source_segment(source, value)
        if expression is None:
            return None
        components.append(Component(key.value, " ".join(expression.split())))
    preamble = []
    for stmt in body[:-1]:
        segment = ast.get_source_segment(source, stmt)
        if segment is None or "\n" in segment.strip():
            return None  # multi-line statements are not re-indented safely; compose afresh
        preamble.append(segment.strip())
    return EditableProgram(params=params, components=components, preamble=preamble)


def _rename_param(expression: str, old: str, new: str) -> str:
    return re.sub(rf"""p\[\s*(["']){re.escape(old)}\1\s*\]""", f'p["{new}"]', expression)


def _clean_spec(spec: dict[str, Any]) -> dict[str, Any]:
    out = {key: float(spec[key]) for key in ("default", "low", "high")}
    if spec.get("log"):
        out["log"] = True
    return out


def add_term(program: EditableProgram, term: RewardTerm) -> Component:
    """Append ``term`` as a component of ``program``, renaming its PARAMS where they clash."""
    expression = term.expression.strip()
    for pname, spec in term.params.items():
        spec = _clean_spec(spec)
        final = pname
        if pname in program.params and program.params[pname] != spec:
            final = f"{term.name}_{pname}"
            expression = _rename_param(expression, pname, final)
        program.params[final] = spec
    names = {c.name for c in program.components}
    cname, suffix = term.name, 2
    while cname in names:
        cname = f"{term.name}_{suffix}"
        suffix += 1
    component = Component(cname, " ".join(expression.split()), term.role, term.doc_id)
    program.components.append(component)
    return component


def add_failure_guards(program: EditableProgram, task: TaskCard, terms: Sequence[RewardTerm]) -> list[str]:
    """Every metric the card marks as a failure (a hard constraint: UAV out of area or out of the near
    field) must be penalised by the program: add the knowledge base's penalty term for each one that no
    component reads. Reflection may drop components; it may never drop the guard. Returns what was added."""
    read = metrics_read(" ".join(c.expression for c in program.components))
    read |= metrics_read(" ".join(program.preamble))
    added = []
    for metric in (m.name for m in task.metrics if m.intent == "failure"):
        if metric in read:
            continue
        term = next(
            (
                t
                for t in terms
                if t.role == "penalty" and metrics_read(t.expression) | set(t.requires) == {metric}
            ),
            None,
        )
        if term is None:
            continue
        component = add_term(program, term)
        added.append(f"guard {component.name} on the failure flag {metric} (from {term.doc_id})")
    return added


def copy_program(program: EditableProgram) -> EditableProgram:
    return EditableProgram(
        params={k: dict(v) for k, v in program.params.items()},
        components=[Component(c.name, c.expression, c.role, c.doc_id) for c in program.components],
        preamble=list(program.preamble),
        header=list(program.header),
    )


def scale_component(program: EditableProgram, comp: Component, factor: float) -> None:
    """Scale a component by ``factor``: through its weights in PARAMS, or a new ``<name>_scale`` param."""
    names = [m.group(2) for m in _PARAM_REF.finditer(comp.expression)]
    weights = [n for n in names if n in program.params and float(program.params[n]["low"]) > 0]
    if weights:
        spec = program.params[weights[0]]
        for key in ("default", "low", "high"):
            spec[key] = float(spec[key]) * factor
        return
    pname = f"{comp.name}_scale"
    program.params[pname] = {
        "default": factor,
        "low": factor / 10.0,
        "high": min(1.0, factor * 10.0),
        "log": True,
    }
    comp.expression = f'p["{pname}"] * ({comp.expression})'


def best_param_value(best_params: Any, name: str) -> float | None:
    """The best value of reward parameter ``name`` (keys may carry a prefix like ``reward.``)."""
    for key, value in dict(best_params or {}).items():
        tail = re.split(r"[./:]", str(key))[-1]
        if (key == name or tail == name) and isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None


def program_from_terms(terms: Sequence[RewardTerm]) -> EditableProgram:
    """A program with one component per term, in order (PARAMS renamed where two terms' names clash)."""
    program = EditableProgram(params={}, components=[])
    for term in terms:
        add_term(program, term)
    return program


def apply_feedback_rules(
    program: EditableProgram, feedback: DesignFeedback, costs: frozenset[str] = frozenset()
) -> list[str]:
    """Apply the feedback rules to ``program`` in place; return what was changed (for the rationale).

    A component on a metric the task wants minimised (``costs``: UAV power) is halved, never dropped,
    when it anti-correlates with fitness: during exploration the high-fitness episodes are often the
    high-power ones, so the correlation says little about whether the cost belongs in the reward.
    """
    changes: list[str] = []
    stats = feedback.components
    means = {c.name: abs(stats[c.name].mean) for c in program.components if c.name in stats}
    keep: list[Component] = []
    for comp in program.components:
        summary = stats.get(comp.name)
        if summary is None:
            keep.append(comp)
            continue
        corr = summary.fitness_correlation
        if corr is not None and corr <= -0.2 and not metrics_read(comp.expression) & costs:
            changes.append(f"dropped component {comp.name} (fitness correlation {corr:+.2f})")
            continue
        if corr is not None and corr < 0:
            scale_component(program, comp, 0.5)
            changes.append(f"halved component {comp.name} (weakly negative fitness correlation {corr:+.2f})")
            keep.append(comp)
            continue
        if summary.max - summary.min <= 1e-12:
            changes.append(f"dropped component {comp.name} (constant {summary.mean:.3g}: carries no signal)")
            continue
        keep.append(comp)
    # dominance is judged among the components that stay
    kept_means = {c.name: means[c.name] for c in keep if c.name in means}
    for comp in keep:
        rest = sum(v for k, v in kept_means.items() if k != comp.name)
        if rest > 0 and kept_means.get(comp.name, 0.0) > 10.0 * rest:
            factor = max(0.01, min(0.5, 3.0 * rest / kept_means[comp.name]))
            scale_component(program, comp, factor)
            changes.append(
                f"scaled component {comp.name} by {factor:.3g} (mean |{kept_means[comp.name]:.3g}| dominated "
                f"the others' {rest:.3g})"
            )
    if not keep:  # never drop everything: keep the most positively correlated component
        best = max(
            program.components,
            key=lambda c: (stats[c.name].fitness_correlation or 0.0) if c.name in stats else 0.0,
        )
        keep = [best]
        changes = [c for c in changes if best.name not in c]
    program.components = keep
    # PARAMS: move to the best values found, narrow around them (or widen at an edge)
    for pname, spec in program.params.items():
        best_value = best_param_value(feedback.best_params, pname)
        if best_value is None or pname not in program.used_params():
            continue
        low, high = float(spec["low"]), float(spec["high"])
        if not low <= best_value <= high or high <= low:
            continue
        log = bool(spec.get("log")) and low > 0
        span = (math.log(high) - math.log(low)) if log else (high - low)
        position = ((math.log(best_value) - math.log(low)) if log else (best_value - low)) / span
        if position <= 0.1 or position >= 0.9:
            if position <= 0.1:
                # never let a non-negative weight turn negative: that would flip the term's meaning
                new_low = low / 4.0 if (log or low >= 0) else low - span / 2
                new_high = high
                if new_low == low:
                    continue
            else:
                new_low, new_high = low, (high * 4.0 if log else high + span / 2)
            spec.update(default=best_value, low=new_low, high=new_high)
            changes.append(
                f"{pname}: default -> best value {best_value:.4g}; it sat at the edge of [{low:.4g}, {high:.4g}], "
                f"so the range widens to [{new_low:.4g}, {new_high:.4g}]"
            )
        else:
            if log:
                new_low, new_high = max(low, best_value / 2.5), min(high, best_value * 2.5)
            else:
                new_low, new_high = max(low, best_value - span / 4), min(high, best_value + span / 4)
            spec.update(default=best_value, low=new_low, high=new_high)
            changes.append(
                f"{pname}: default -> best value {best_value:.4g}, range narrowed from [{low:.4g}, {high:.4g}] "
                f"to [{new_low:.4g}, {new_high:.4g}]"
            )
    return changes
