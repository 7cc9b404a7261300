"""Knowledge documents: Markdown files with YAML front matter, parsed, validated and split for retrieval.

A knowledge document looks like::

    ---
    title: Potential-based reward shaping
    kind: principle              # principle | reward-term | enhancer-guide | pitfall | case-study
    tags: [shaping, theory]
    applies_to: [any]            # task ids or "any"
    sources: ["Ng, Harada, Russell (1999) ..."]
    recommends:                  # enhancer guides only: action space -> enhancer short names, best first
      continuous: [gdm+gan, gdm, plain]
    ---
    ## Section
    ...

Rules (the same for :func:`load_documents` and ``autogai kb ingest``):

- Every ``*.md`` file under the directory is read, sub-folders included, hidden ones (``.x``) excluded.
- ``README.md`` files describe the folder; they are ignored without a report.
- Any other file that does not start with a ``---`` front matter block is **not** a knowledge document: it
  is skipped and reported with the reason ``no YAML front matter``, so a document whose front matter was
  forgotten never disappears silently.
- A malformed file (bad YAML, missing or invalid field, bad ``reward-term`` block, duplicate id) is
  skipped and reported by path with the reason; every other file is still loaded.

A ``reward-term`` document carries one or more fenced blocks tagged ``reward-term`` (see
:class:`RewardTerm`) from which the offline proposer composes reward programs.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import logging
import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from autogai.core.errors import AutoGAIError, ConfigError
from autogai.core.types import EnhancerCombo

if TYPE_CHECKING:
    from autogai.tasks.card import MetricSpec

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("principle", "reward-term", "enhancer-guide", "pitfall", "case-study")
REQUIRED_FIELDS: tuple[str, ...] = ("title", "kind", "tags", "applies_to", "sources")
TERM_ROLES: tuple[str, ...] = ("objective", "penalty", "shaping", "regulariser")
ACTION_SPACES: tuple[str, ...] = ("continuous", "discrete", "hybrid", "any")
# Attributes of ``m`` that every task provides besides its named metrics (docs/reward_programs.md).
ALWAYS_AVAILABLE: frozenset[str] = frozenset({"obs", "next_obs", "action"})

DEFAULT_MAX_CHUNK_CHARS = 1000
"""Chunk cap. all-MiniLM-L6-v2 reads at most 256 word pieces (about 900-1200 characters of this formula-heavy prose);
anything longer would be silently truncated by the encoder."""

# Bump when splitting or parsing changes what ends up in the store: every document is then re-ingested.
CHUNKER_VERSION = "2"

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
_FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_LIST_ITEM_RE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s")
_HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")


class KnowledgeDocumentError(AutoGAIError):
    """A knowledge file could not be used; the message is the reason shown next to its path."""


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


@dataclass(frozen=True)
class KnowledgeDocument:
    """One parsed knowledge file. ``id`` is the file stem and serves as the source id in designs."""

    id: str
    path: Path
    title: str
    kind: str
    tags: list[str]
    applies_to: list[str]
    sources: list[str]
    body: str
    """The Markdown after the front matter."""
    meta: dict[str, Any]
    """The whole front matter as parsed."""
    content_hash: str
    """SHA-256 of the file's text (and the chunker version): equal hash, nothing to re-ingest."""
    reward_terms: list[RewardTerm] = field(default_factory=list)
    recommends: dict[str, list[str]] = field(default_factory=dict)
    """Enhancer guides: action space -> enhancer short names, best first (canonical short names)."""

    def applies_to_task(self, task_id: str) -> bool:
        return "any" in self.applies_to or task_id in self.applies_to


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document: one section (or part of a long one)."""

    id: str
    """``<doc_id>#<n>``, n counting from 0 in document order."""
    doc_id: str
    index: int
    title: str
    kind: str
    heading: str
    """Section path inside the document, e.g. ``When it hurts > Scale``; empty for the preamble."""
    text: str
    """What is embedded and shown: the document title and section path on top of the section text, so a
    chunk read (or embedded) on its own still says what it is about."""


# --------------------------------------------------------------------------------------------- parsing


def content_hash(text: str) -> str:
    return hashlib.sha256(f"autogai-kb-v{CHUNKER_VERSION}\n{text}".encode()).hexdigest()


def split_front_matter(text: str) -> tuple[str, str] | None:
    """``(front_matter_yaml, body)``, or None when the text does not open with a ``---`` block."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    raise KnowledgeDocumentError("front matter opened with '---' is never closed")


def _string_list(value: Any, field_name: str, *, allow_scalar: bool = True) -> list[str]:
    if isinstance(value, str) and allow_scalar:
        value = [value]
    if not isinstance(value, list):
        raise KnowledgeDocumentError(
            f"front matter {field_name!r} must be a list, got {type(value).__name__}"
        )
    out = []
    for item in value:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            text = str(item).strip()
        elif isinstance(item, Mapping):  # a structured citation {authors:, title:, year:, url:}
            text = "; ".join(f"{k}: {v}" for k, v in item.items())
        else:
            raise KnowledgeDocumentError(f"front matter {field_name!r} holds a non-text item {item!r}")
        if text:
            out.append(text)
    return out


def _parse_recommends(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise KnowledgeDocumentError("'recommends' must map an action space to a list of enhancer names")
    out: dict[str, list[str]] = {}
    for space, names in value.items():
        space_name = str(space).strip().lower()
        if space_name not in ACTION_SPACES:
            raise KnowledgeDocumentError(
                f"'recommends' has unknown action space {space!r}; valid: {', '.join(ACTION_SPACES)}"
            )
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise KnowledgeDocumentError(
                f"'recommends.{space_name}' must be a non-empty list of enhancer names"
            )
        canonical = []
        for name in names:
            try:
                short = EnhancerCombo.parse(str(name)).short_name
            except ConfigError as exc:
                raise KnowledgeDocumentError(f"'recommends.{space_name}': {exc}") from exc
            if short not in canonical:
                canonical.append(short)
        out[space_name] = canonical
    return out


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
        raise KnowledgeDocumentError(f"{where}: invalid YAML: {_yaml_reason(exc)}") from exc
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
        requires = _string_list(data["requires"], f"{where} requires")
        missing = metrics_read - set(requires) - ALWAYS_AVAILABLE
        if missing:
            raise KnowledgeDocumentError(
                f"{where}: expression reads m.{sorted(missing)[0]} not listed in 'requires'"
            )
    else:
        requires = sorted(metrics_read - ALWAYS_AVAILABLE)
    applies_to = (
        _string_list(data["applies_to"], f"{where} applies_to")
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
        applies_to=_string_list(data["applies_to"], f"{where} applies_to")
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


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def _closes(fence: str, match: re.Match[str] | None) -> bool:
    """Whether a fence line closes the block opened by ``fence`` (same character, at least as long)."""
    return (
        match is not None
        and match["fence"][0] == fence[0]
        and len(match["fence"]) >= len(fence)
        and not match["info"].strip()
    )


def _fenced_blocks(body: str, info: str) -> list[str]:
    """Contents of the fenced code blocks whose info string is ``info`` (e.g. ``reward-term``)."""
    blocks: list[str] = []
    fence = ""  # the opening marker while inside any fenced block
    capture: list[str] | None = None  # lines of the block being collected, if it is an ``info`` block
    for line in body.splitlines():
        match = _FENCE_RE.match(line)
        if not fence:
            if match:
                fence = match["fence"]
                words = match["info"].split()
                capture = [] if words and words[0] == info else None
            continue
        if _closes(fence, match):
            if capture is not None:
                blocks.append("\n".join(capture))
            fence, capture = "", None
            continue
        if capture is not None:
            capture.append(line)
    if fence and capture is not None:
        raise KnowledgeDocumentError(f"a ```{info} block is never closed")
    return blocks


def parse_document(path: Path, text: str | None = None) -> KnowledgeDocument:
    """Parse one knowledge file; raise :class:`KnowledgeDocumentError` with the reason when unusable.

    Raises it with reason ``no YAML front matter`` for a file that is not a knowledge document at all.
    """
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise KnowledgeDocumentError("not UTF-8 text") from exc
        except OSError as exc:
            raise KnowledgeDocumentError(f"cannot read: {exc.strerror or exc}") from exc
    split = split_front_matter(text)
    if split is None:
        raise KnowledgeDocumentError(NO_FRONT_MATTER)
    front, body = split
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        raise KnowledgeDocumentError(f"invalid YAML front matter: {_yaml_reason(exc)}") from exc
    if not isinstance(meta, dict):
        raise KnowledgeDocumentError(
            "front matter must be a YAML mapping (title, kind, tags, applies_to, sources)"
        )
    missing = [name for name in REQUIRED_FIELDS if meta.get(name) in (None, "", [])]
    if missing:
        raise KnowledgeDocumentError(f"front matter misses required field(s): {', '.join(missing)}")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip():
        raise KnowledgeDocumentError("front matter 'title' must be text")
    kind = meta["kind"]
    if kind not in KINDS:
        raise KnowledgeDocumentError(f"kind {kind!r} is not valid; valid: {', '.join(KINDS)}")
    tags = _string_list(meta["tags"], "tags")
    applies_to = _string_list(meta["applies_to"], "applies_to")
    sources = _string_list(meta["sources"], "sources")
    if not body.strip():
        raise KnowledgeDocumentError("the document has no body after the front matter")
    doc_id = path.stem
    recommends = _parse_recommends(meta["recommends"]) if meta.get("recommends") is not None else {}
    blocks = _fenced_blocks(body, "reward-term")
    terms = [
        parse_reward_term(block, doc_id=doc_id, doc_applies_to=applies_to, number=i + 1)
        for i, block in enumerate(blocks)
    ]
    if kind == "reward-term" and not terms:
        raise KnowledgeDocumentError("a reward-term document needs at least one ```reward-term block")
    names = [term.name for term in terms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise KnowledgeDocumentError(f"reward-term name(s) used twice: {', '.join(duplicates)}")
    return KnowledgeDocument(
        id=doc_id,
        path=path,
        title=title.strip(),
        kind=kind,
        tags=tags,
        applies_to=applies_to,
        sources=sources,
        body=body,
        meta=meta,
        content_hash=content_hash(text),
        reward_terms=terms,
        recommends=recommends,
    )


NO_FRONT_MATTER = "no YAML front matter (not a knowledge document)"


def knowledge_files(directory: Path) -> list[Path]:
    """The Markdown files :func:`load_documents` considers, sorted (READMEs and hidden paths excluded)."""
    directory = Path(directory)
    files = []
    for path in sorted(directory.rglob("*.md")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.name.lower() == "readme.md" or not path.is_file():
            continue
        files.append(path)
    return files


def load_documents(directory: Path) -> tuple[list[KnowledgeDocument], list[tuple[Path, str]]]:
    """Parse every knowledge file under ``directory``.

    Returns ``(documents, skipped)`` where ``skipped`` lists ``(path, reason)`` for each file that was not
    loaded (see the module docstring for the rules). Raises :class:`ConfigError` if the directory is missing.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"knowledge base directory {directory} does not exist")
    documents: list[KnowledgeDocument] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for path in knowledge_files(directory):
        try:
            doc = parse_document(path)
        except KnowledgeDocumentError as exc:
            logger.info("skipping knowledge file %s: %s", path, exc)
            skipped.append((path, str(exc)))
            continue
        if doc.id in seen:
            reason = f"duplicate document id {doc.id!r} (also {seen[doc.id]})"
            logger.info("skipping knowledge file %s: %s", path, reason)
            skipped.append((path, reason))
            continue
        seen[doc.id] = path
        documents.append(doc)
    return documents, skipped


# ------------------------------------------------------------------------------------------- splitting


def _sections(body: str) -> list[tuple[list[str], str]]:
    """Split Markdown at ``#``/``##``/``###`` headings outside code fences: ``[(heading_path, text)]``.

    ``#`` (a repeated title) opens a new top-level path; ``####`` and deeper stay inside their section.
    """
    sections: list[tuple[list[str], str]] = []
    path: list[str] = []
    current: list[str] = []
    fence = ""

    def flush() -> None:
        text = "\n".join(current).strip()
        if text:
            sections.append((list(path), text))
        current.clear()

    for line in body.splitlines():
        fence_match = _FENCE_RE.match(line)
        if fence_match:
            marker = fence_match["fence"]
            if not fence:
                fence = marker
            elif _closes(fence, fence_match):
                fence = ""
            current.append(line)
            continue
        heading = _HEADING_RE.match(line) if not fence else None
        if heading and len(heading["hashes"]) <= 3:
            flush()
            level = len(heading["hashes"])
            text = heading["text"].strip()
            if level == 1:
                path = []  # the H1 repeats the title: its text goes nowhere, the preamble follows
            elif level == 2:
                path = [text]
            else:
                path = [*path[:1], text] if path else [text]
            continue
        current.append(line)
    flush()
    return sections


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, never cutting through a fenced code block."""
    paragraphs: list[str] = []
    current: list[str] = []
    fence = ""
    for line in text.splitlines():
        fence_match = _FENCE_RE.match(line)
        if fence_match:
            if not fence:
                fence = fence_match["fence"]
            elif _closes(fence, fence_match):
                fence = ""
        if not line.strip() and not fence:
            if current:
                paragraphs.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def _hard_split(text: str, limit: int) -> list[str]:
    """Split an over-long paragraph into pieces of at most ``limit`` characters.

    List items (with their wrapped lines) are kept whole and packed together; an item or prose paragraph
    longer than the limit is cut at sentence ends, then at spaces.
    """
    items: list[str] = []  # list items with their wrapped continuation lines, or the whole prose paragraph
    for line in text.splitlines():
        if not items or _LIST_ITEM_RE.match(line):
            items.append(line)
        else:
            items[-1] += "\n" + line
    units: list[str] = []
    for item in items:
        if len(item) <= limit:
            units.append(item)
            continue
        current = ""
        for sentence in re.split(r"(?<=[.!?;])\s+", " ".join(item.split())):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                if current:
                    units.append(current)
                    current = ""
                units.append(sentence[:cut].rstrip())
                sentence = sentence[cut:].lstrip()
            if current and len(current) + 1 + len(sentence) > limit:
                units.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            units.append(current)
    pieces: list[str] = []
    current = ""
    for unit in units:
        if current and len(current) + 1 + len(unit) > limit:
            pieces.append(current)
            current = unit
        else:
            current = f"{current}\n{unit}" if current else unit
    if current:
        pieces.append(current)
    return pieces


def _pack(paragraphs: Iterable[str], limit: int) -> list[str]:
    """Greedily join paragraphs into pieces of at most ``limit`` characters (long ones are hard-split)."""
    pieces: list[str] = []
    current = ""
    for paragraph in paragraphs:
        parts = [paragraph] if len(paragraph) <= limit else _hard_split(paragraph, limit)
        for part in parts:
            if current and len(current) + 2 + len(part) > limit:
                pieces.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def split_by_headings(doc: KnowledgeDocument, *, max_chars: int = DEFAULT_MAX_CHUNK_CHARS) -> list[Chunk]:
    """Split ``doc`` into chunks at ``##``/``###`` headings, each at most about ``max_chars`` long.

    Every chunk's text starts with the document title and the section path, so the embedding of a
    section like "When it hurts" still knows which reward term it talks about. Sections longer than the
    cap are split at paragraphs (never inside a code block unless the block alone is too long), then at
    sentences.
    """
    chunks: list[Chunk] = []
    for heading_path, text in _sections(doc.body):
        heading = " > ".join(heading_path)
        header = f"{doc.title}\n{heading}\n\n" if heading else f"{doc.title}\n\n"
        budget = max(200, max_chars - len(header))
        for piece in _pack(_paragraphs(text), budget):
            chunks.append(
                Chunk(
                    id=f"{doc.id}#{len(chunks)}",
                    doc_id=doc.id,
                    index=len(chunks),
                    title=doc.title,
                    kind=doc.kind,
                    heading=heading,
                    text=header + piece,
                )
            )
    if not chunks:  # a body of headings only: still retrievable by its title
        chunks.append(Chunk(f"{doc.id}#0", doc.id, 0, doc.title, doc.kind, "", doc.title))
    return chunks
