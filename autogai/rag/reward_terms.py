"""The term-template language of ``reward-term`` blocks: reusable reward components for the offline proposer.

A block is YAML (``name``, ``expression``, ``params``, ``requires``, ``role`` ...); see :class:`RewardTerm`.
A block with an ``intent`` is a task-agnostic *template*: its expression reads ``m.$metric`` and may use the
placeholders of :data:`TEMPLATE_PLACEHOLDERS`, filled from the task card's metric it is bound to
(:meth:`RewardTerm.bind`). docs/task_cards.md explains metric intents.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from autogai.rag.markdown import KnowledgeDocumentError, string_list, yaml_reason

if TYPE_CHECKING:
    from autogai.tasks.card import MetricSpec

TERM_ROLES: tuple[str, ...] = ("objective", "penalty", "shaping", "regulariser")
# Attributes of ``m`` that every task provides besides its named metrics (docs/reward_programs.md).
ALWAYS_AVAILABLE: frozenset[str] = frozenset({"obs", "next_obs", "action"})

_TERM_FIELDS = {
    "name",
    "expression",
    "params",
    "requires",
    "applies_to",
    "role",
    "description",
    "units",
    "intent",
}
# Placeholders of a task-agnostic (template) term, filled from the MetricSpec it is bound to.
TEMPLATE_PLACEHOLDERS: tuple[str, ...] = ("metric", "target", "low", "high", "span", "scale", "index")
_PLACEHOLDER_RE = re.compile(r"\$(?:(?P<plain>[A-Za-z_]\w*)|\{(?P<braced>[A-Za-z_]\w*)\})")
_PARAM_FIELDS = {"default", "low", "high", "log"}


@dataclass(frozen=True)
class RewardTerm:
    """A reusable reward component parsed from a ```` ```reward-term ```` block.

    The offline proposer composes reward programs as ``total = sum(components)`` with one component per
    term: ``components[name] = <expression>`` evaluated with ``m`` (the task's metrics) and ``p`` (the
    program's ``PARAMS`` values).
    """

    name: str
    """Component name (a Python identifier)."""
    expression: str
    """A Python expression over ``m.<metric>`` and ``p["<param>"]`` (the reward-program contract names)."""
    params: dict[str, dict[str, Any]]
    """Tunable weights: name -> ``{"default", "low", "high"}`` and optionally ``"log"`` (bool)."""
    requires: list[str]
    """Task metrics the expression reads; a term applies to a task only if the task has all of them."""
    applies_to: list[str]
    """Task ids or ``["any"]``; defaults to the document's ``applies_to``."""
    role: str
    """``objective``, ``penalty``, ``shaping`` or ``regulariser``."""
    doc_id: str
    """Id of the document the block came from (a source id for the design)."""
    description: str = ""
    units: str = ""
    intent: str | None = None
    """Set on a task-agnostic *template* term: it applies to every metric a task card gives this intent
    (see :meth:`bind`); its expression reads the metric as ``m.$metric``."""
    bound_to: str | None = None
    """The metric a template was bound to (None for a term written for a task)."""

    def applies_to_task(self, task_id: str) -> bool:
        return "any" in self.applies_to or task_id in self.applies_to

    @property
    def placeholders(self) -> set[str]:
        """Template placeholders the expression uses (empty for a concrete term)."""
        return {m.group("plain") or m.group("braced") for m in _PLACEHOLDER_RE.finditer(self.expression)}

    def bind(self, metric: MetricSpec) -> RewardTerm | None:
        """This template made concrete for ``metric``; None if the metric's intent differs or it lacks what
        the expression needs (bounds for ``$span``, a target, an ``obs_index``).

        The component is named ``<term>_<metric>`` and its params ``<term>_<metric>_<param>``, so one
        template can be bound to several metrics of a program without clashes.
        """
        if self.intent is None or metric.intent != self.intent:
            return None
        values = _placeholder_values(metric)
        if not self.placeholders <= set(values):
            return None
        name = f"{self.name}_{metric.name}"
        expression = string.Template(self.expression).substitute(values)
        params: dict[str, dict[str, Any]] = {}
        for pname, spec in self.params.items():
            bound = f"{name}_{pname}"
            expression = re.sub(rf"""p\[\s*(["']){re.escape(pname)}\1\s*\]""", f'p["{bound}"]', expression)
            params[bound] = dict(spec)
        return RewardTerm(
            name=name,
            expression=expression,
            params=params,
            requires=[metric.name],
            applies_to=["any"],
            role=self.role,
            doc_id=self.doc_id,
            description=self.description,
            units=self.units,
            bound_to=metric.name,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expression": self.expression,
            "params": {k: dict(v) for k, v in self.params.items()},
            "requires": list(self.requires),
            "applies_to": list(self.applies_to),
            "role": self.role,
            "doc_id": self.doc_id,
            "description": self.description,
            "units": self.units,
            "intent": self.intent,
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise KnowledgeDocumentError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _expression_names(expression: str, where: str) -> tuple[set[str], set[str]]:
    """``(metrics read as m.<name>, params read as p["<name>"])``; raise if it is not a Python expression."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise KnowledgeDocumentError(f"{where}: expression is not valid Python: {exc.msg}") from exc
    metrics: set[str] = set()
    params: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "m":
            metrics.add(node.attr)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "p":
            key = node.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise KnowledgeDocumentError(f"{where}: p[...] must be indexed with a string literal")
            params.add(key.value)
    return metrics, params


def _number_text(value: float) -> str:
    text = format(float(value), ".12g")  # 1.8, not 1.7999999999999998 (0.6 - -1.2)
    return f"({text})" if value < 0 else text


def _placeholder_values(metric: MetricSpec) -> dict[str, str]:
    """What a template may read of ``metric``: only the placeholders the card gives a value for."""
    values = {"metric": metric.name}
    if metric.target is not None:
        values["target"] = _number_text(metric.target)
    if metric.bounds is not None:
        low, high = metric.bounds
        values.update(
            low=_number_text(low),
            high=_number_text(high),
            span=_number_text(high - low),
            scale=_number_text(max(abs(low), abs(high))),
        )
    if metric.obs_index is not None:
        values["index"] = str(int(metric.obs_index))
    return values


def parse_reward_term(block: str, *, doc_id: str, doc_applies_to: Sequence[str], number: int) -> RewardTerm:
    """Parse and check one ``reward-term`` block (YAML). ``number`` (1-based) names it in errors."""
    where = f"reward-term block {number}"
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        raise KnowledgeDocumentError(f"{where}: invalid YAML: {yaml_reason(exc)}") from exc
    if not isinstance(data, Mapping):
        raise KnowledgeDocumentError(f"{where}: must be a YAML mapping with name, expression, params, ...")
    unknown = set(data) - _TERM_FIELDS
    if unknown:
        raise KnowledgeDocumentError(
            f"{where}: unknown field(s) {sorted(unknown)}; valid: {', '.join(sorted(_TERM_FIELDS))}"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise KnowledgeDocumentError(f"{where}: 'name' must be a Python identifier, got {name!r}")
    where = f"reward-term {name!r}"
    expression = data.get("expression")
    if isinstance(expression, (int, float)) and not isinstance(expression, bool):
        expression = str(expression)
    if not isinstance(expression, str) or not expression.strip():
        raise KnowledgeDocumentError(f"{where}: 'expression' is missing")
    expression = " ".join(expression.split())
    role = data.get("role")
    if role not in TERM_ROLES:
        raise KnowledgeDocumentError(f"{where}: role {role!r} is not valid; valid: {', '.join(TERM_ROLES)}")

    raw_params = data.get("params") or {}
    if not isinstance(raw_params, Mapping):
        raise KnowledgeDocumentError(f"{where}: 'params' must map parameter names to {{default, low, high}}")
    params: dict[str, dict[str, Any]] = {}
    for pname, spec in raw_params.items():
        pwhere = f"{where} param {pname!r}"
        if not isinstance(pname, str) or not pname.isidentifier():
            raise KnowledgeDocumentError(f"{pwhere}: name must be an identifier")
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"default": spec, "low": spec, "high": spec}
        if not isinstance(spec, Mapping):
            raise KnowledgeDocumentError(f"{pwhere}: must be {{default, low, high}}")
        unknown = set(spec) - _PARAM_FIELDS
        if unknown or not {"default", "low", "high"} <= set(spec):
            raise KnowledgeDocumentError(f"{pwhere}: needs exactly default, low, high (and optionally log)")
        default = _number(spec["default"], f"{pwhere} default")
        low = _number(spec["low"], f"{pwhere} low")
        high = _number(spec["high"], f"{pwhere} high")
        if not low <= default <= high:
            raise KnowledgeDocumentError(
                f"{pwhere}: needs low <= default <= high, got {low}, {default}, {high}"
            )
        entry: dict[str, Any] = {"default": default, "low": low, "high": high}
        if "log" in spec:
            if not isinstance(spec["log"], bool):
                raise KnowledgeDocumentError(f"{pwhere}: log must be true or false")
            if spec["log"] and low <= 0:
                raise KnowledgeDocumentError(f"{pwhere}: a log-scale range needs low > 0")
            entry["log"] = spec["log"]
        params[pname] = entry

    intent = data.get("intent")
    if intent is not None:
        return _template_term(data, name, expression, params, role, intent, doc_id, doc_applies_to, where)
    metrics_read, params_read = _expression_names(expression, where)
    undeclared = params_read - set(params)
    if undeclared:
        raise KnowledgeDocumentError(f"{where}: expression reads undeclared param(s) {sorted(undeclared)}")
    if "requires" in data:
        requires = string_list(data["requires"], f"{where} requires")
        missing = metrics_read - set(requires) - ALWAYS_AVAILABLE
        if missing:
            raise KnowledgeDocumentError(
                f"{where}: expression reads m.{sorted(missing)[0]} not listed in 'requires'"
            )
    else:
        requires = sorted(metrics_read - ALWAYS_AVAILABLE)
    applies_to = (
        string_list(data["applies_to"], f"{where} applies_to")
        if "applies_to" in data
        else list(doc_applies_to)
    )
    return RewardTerm(
        name=name,
        expression=expression,
        params=params,
        requires=requires,
        applies_to=applies_to or ["any"],
        role=role,
        doc_id=doc_id,
        description=str(data.get("description") or "").strip(),
        units=str(data.get("units") or "").strip(),
    )


def _template_term(
    data: Mapping[str, Any],
    name: str,
    expression: str,
    params: dict[str, dict[str, Any]],
    role: str,
    intent: Any,
    doc_id: str,
    doc_applies_to: Sequence[str],
    where: str,
) -> RewardTerm:
    """A task-agnostic term: checked as it will be once bound to a metric with every placeholder set."""
    from autogai.tasks.card import METRIC_INTENTS

    if intent not in METRIC_INTENTS:
        raise KnowledgeDocumentError(
            f"{where}: intent {intent!r} is not valid; valid: {', '.join(METRIC_INTENTS)}"
        )
    if data.get("requires"):
        raise KnowledgeDocumentError(
            f"{where}: a term with an intent reads m.$metric; it takes no 'requires'"
        )
    term = RewardTerm(
        name=name,
        expression=expression,
        params=params,
        requires=[],
        applies_to=string_list(data["applies_to"], f"{where} applies_to")
        if "applies_to" in data
        else list(doc_applies_to) or ["any"],
        role=role,
        doc_id=doc_id,
        description=str(data.get("description") or "").strip(),
        units=str(data.get("units") or "").strip(),
        intent=intent,
    )
    unknown = term.placeholders - set(TEMPLATE_PLACEHOLDERS)
    if unknown:
        raise KnowledgeDocumentError(
            f"{where}: unknown placeholder ${sorted(unknown)[0]}; valid: "
            + ", ".join(f"${p}" for p in TEMPLATE_PLACEHOLDERS)
        )
    if not term.placeholders & {"metric", "index"}:
        raise KnowledgeDocumentError(
            f"{where}: a term with an intent must read its metric (m.$metric, or m.next_obs[$index])"
        )
    from autogai.tasks.card import MetricSpec

    probe = MetricSpec("probe_metric", "1", "", intent=intent, target=0.5, bounds=(-1.0, 2.0), obs_index=0)
    bound = term.bind(probe)
    if bound is None:  # cannot happen: the probe offers every placeholder
        raise KnowledgeDocumentError(f"{where}: cannot bind the template to a metric")
    metrics_read, params_read = _expression_names(bound.expression, where)
    undeclared = params_read - set(bound.params)
    if undeclared:
        raise KnowledgeDocumentError(f"{where}: expression reads undeclared param(s) {sorted(undeclared)}")
    stray = metrics_read - {"probe_metric"} - ALWAYS_AVAILABLE
    if stray:
        raise KnowledgeDocumentError(
            f"{where}: a task-agnostic term may read only m.$metric, not m.{sorted(stray)[0]}"
        )
    return term
