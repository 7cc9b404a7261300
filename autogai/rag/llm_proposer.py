"""The LLM proposer: propose (generation 0), reflect (feedback -> improved designs), repair (a rejected
program goes back with the validator's reason for a bounded number of rounds).

Replies may be JSON (``{"designs": [...]}``, when the backend runs in structured mode) or free-form
Markdown: one or more fenced python programs with ``enhancers:``/``sources:``/``hyperparameters:``/
``rationale:`` lines around them, prose, ``<think>`` sections. Programs are extracted with
:mod:`autogai.rewards.extraction` and every one goes through the same validator as the offline
proposer's. A reply that yields no usable program becomes a failed :class:`ProposalRecord`; the round
continues with the other samples.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import LLMUnavailableError
from autogai.core.types import Design, DesignFeedback, EnhancerCombo
from autogai.rag.prompts import (
    HINT_KEYS,
    format_feedback,
    format_past_results,
    format_retrieved,
    load_template,
    render_enhancer_menu,
    render_reply_format,
    resolve_action_mode,
    task_variables,
)
from autogai.rag.proposers import (
    ProposalRecord,
    Proposer,
    enhancer_recommendations,
    retrieval_query,
    safe_query,
    validate_source,
    validation_reason,
)

if TYPE_CHECKING:
    from autogai.rag.knowledge import KnowledgeBase, RetrievedChunk
    from autogai.rag.llm import ChatBackend
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_DESIGN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(?:\**)\s*design\b.*$", re.IGNORECASE | re.MULTILINE)
_KEY_LINE = re.compile(
    r"^\s*(?:[-*]\s*)?(?:\*\*|__)?(?P<key>enhancers?|sources?|hyperparameters?|hints?|rationale|name|parent)"
    r"(?:\*\*|__)?\s*[:=]\s*(?:\*\*|__)?\s*(?P<value>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_PROGRAM_KEYS = ("reward_program", "program", "code", "reward", "source", "reward_source", "python")


@dataclass
class ParsedDesign:
    """What a reply says about one design, before validation."""

    program: str
    name: str = ""
    enhancers: Any = None
    hints: Any = None
    sources: Any = None
    rationale: str = ""
    parent: str | None = None
    notes: list[str] = field(default_factory=list)


def strip_thinking(text: str) -> str:
    """Drop ``<think>...</think>`` sections (DeepSeek-R1, Qwen3); an unclosed one up to the first fence."""
    text = _THINK.sub("", text)
    lowered = text.lower()
    if "<think>" in lowered:
        start = lowered.index("<think>")
        fence = text.find("```", start)
        text = text[:start] + (text[fence:] if fence >= 0 else "")
    return text


def _extract_programs(text: str) -> list[str]:
    from autogai.rewards.extraction import extract_reward_programs

    try:
        return list(extract_reward_programs(text))
    except Exception as exc:  # the extractor promises lists; be defensive about odd input
        logger.debug("extraction failed: %s", exc)
        return []


def _json_candidates(text: str) -> list[Any]:
    out = []
    stripped = text.strip()
    for candidate in [stripped] + [
        m.group("body") for m in _FENCE.finditer(text) if m.group("info").lower() in ("json", "")
    ]:
        try:
            out.append(json.loads(candidate))
        except ValueError:
            continue
    if not out and "{" in stripped:
        start, end = stripped.find("{"), stripped.rfind("}")
        if end > start:
            with contextlib.suppress(ValueError):
                out.append(json.loads(stripped[start : end + 1]))
    return out


def _designs_from_json(data: Any) -> list[ParsedDesign]:
    if isinstance(data, Mapping):
        items = data.get("designs")
        if items is None:
            items = [data]
    elif isinstance(data, list):
        items = data
    else:
        return []
    designs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        raw = next((item[k] for k in _PROGRAM_KEYS if isinstance(item.get(k), str)), None)
        if raw is None:
            continue
        programs = _extract_programs(raw) if "```" in raw else []
        program = programs[0] if programs else raw
        if "compute_reward" not in program:
            continue
        designs.append(
            ParsedDesign(
                program=program,
                name=str(item.get("name") or ""),
                enhancers=item.get("enhancers", item.get("enhancer")),
                hints=item.get("hyperparameters", item.get("hyperparameter_hints", item.get("hints"))),
                sources=item.get("sources"),
                rationale=str(item.get("rationale") or ""),
                parent=str(item["parent"]) if item.get("parent") else None,
            )
        )
    return designs


def _sections(text: str) -> list[str]:
    """Split a free-form reply into one section per design (headings, else one per program fence)."""
    headings = list(_DESIGN_HEADING.finditer(text))
    if headings:
        bounds = [h.start() for h in headings] + [len(text)]
        sections = [text[a:b] for a, b in itertools.pairwise(bounds)]
        preface = text[: headings[0].start()]
        if "compute_reward" in preface:  # a program before the first heading is a design too
            sections.insert(0, preface)
        return sections
    fences = [m for m in _FENCE.finditer(text) if "compute_reward" in m.group("body")]
    if len(fences) <= 1:
        return [text]
    sections = []
    start = 0
    for i, fence in enumerate(fences):
        end = fences[i + 1].start() if i + 1 < len(fences) else len(text)
        # metadata lines usually precede a program; text right after the last program belongs to it
        cut = end
        if i + 1 < len(fences):
            gap = text[fence.end() : fences[i + 1].start()]
            first_key = _KEY_LINE.search(gap)
            heading = re.search(r"^\s*(?:#{1,6}|\*\*|\d+[.)])", gap, re.MULTILINE)
            marks = [m.start() for m in (first_key, heading) if m is not None]
            cut = fence.end() + min(marks) if marks else end
        sections.append(text[start:cut])
        start = cut
    return sections


def _metadata(section: str) -> dict[str, str]:
    """``key: value`` lines outside code fences; rationale may continue over following lines."""
    outside = _FENCE.sub("\n", section)
    values: dict[str, str] = {}
    matches = list(_KEY_LINE.finditer(outside))
    for i, match in enumerate(matches):
        key = match.group("key").lower().rstrip("s")
        key = {"enhancer": "enhancers", "source": "sources", "hyperparameter": "hints", "hint": "hints"}.get(
            key, key
        )
        value = match.group("value").strip()
        if key == "rationale":
            end = matches[i + 1].start() if i + 1 < len(matches) else len(outside)
            block = outside[match.start("value") : end]
            value = block.split("\n\n")[0].strip() if block.strip() else value
        values.setdefault(key, value.strip().strip("*_`").strip())
    heading = _DESIGN_HEADING.search(section)
    if heading and "name" not in values:
        title = re.sub(
            r"^\s*#+\s*\**\s*design\b\s*\d*\s*[:.\-–—]?\s*", "", heading.group(0), flags=re.IGNORECASE
        )
        values["name"] = title.strip(" *`")
    return values


def parse_reply(text: str) -> list[ParsedDesign]:
    """Every design in a reply, JSON first, then free-form sections. Programs are not validated here."""
    cleaned = strip_thinking(text)
    for data in _json_candidates(cleaned):
        from_json = _designs_from_json(data)
        if from_json:
            return from_json
    designs: list[ParsedDesign] = []
    seen: set[str] = set()
    for section in _sections(cleaned):
        programs = _extract_programs(section)
        if not programs:
            continue
        program = programs[0]
        key = "\n".join(line.rstrip() for line in program.strip().splitlines())
        if key in seen:
            continue
        seen.add(key)
        meta = _metadata(section)
        rationale = meta.get("rationale", "")
        if not rationale:  # prose around the code is the rationale
            prose = _FENCE.sub("", section)
            prose = _KEY_LINE.sub("", prose)
            prose = _DESIGN_HEADING.sub("", prose)
            rationale = " ".join(prose.split())[:1200]
        designs.append(
            ParsedDesign(
                program=program,
                name=meta.get("name", ""),
                enhancers=meta.get("enhancers"),
                hints=meta.get("hints"),
                sources=meta.get("sources"),
                rationale=rationale,
                parent=meta.get("parent") or None,
            )
        )
    return designs


_ENHANCER_WORDS = {
    "gdm": "gdm",
    "diffusion": "gdm",
    "gan": "gan",
    "adversarial": "gan",
    "vae": "vae",
    "variational": "vae",
    "transformer": "transformer",
    "attention": "transformer",
}


def parse_enhancers(value: Any) -> tuple[EnhancerCombo, str | None]:
    """An enhancer combination from a reply field; ``(plain, note)`` when it cannot be understood."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return EnhancerCombo(), "no enhancers given; using plain TD3"
    try:
        if isinstance(value, Mapping):
            return EnhancerCombo.parse({str(k): str(v) for k, v in value.items()}), None
        if isinstance(value, (list, tuple)):
            return EnhancerCombo.parse("+".join(str(v) for v in value)), None
        text = str(value).strip().strip("`'\"*").lower()
        text = re.split(r"[(;\n]| - | — ", text)[0].strip().strip("`'\"*")
        text = re.sub(r"\s*\+\s*", "+", text)
        return EnhancerCombo.parse(text), None
    except Exception:
        words = re.findall(r"[a-z]+", str(value).lower())
        found = sorted({_ENHANCER_WORDS[w] for w in words if w in _ENHANCER_WORDS})
        if found:
            return EnhancerCombo.parse("+".join(found)), f"enhancers {value!r} read as {'+'.join(found)}"
        if any(w in ("plain", "none", "td3") for w in words):
            return EnhancerCombo(), None
        return EnhancerCombo(), f"enhancers {value!r} not understood; using plain TD3"


def parse_hints(value: Any) -> tuple[dict[str, Any], list[str]]:
    """Hyperparameter hints restricted to TD3Config names with plain values."""
    notes: list[str] = []
    if value is None or value == "":
        return {}, notes
    data: Any = value
    if isinstance(value, str):
        text = value.strip().strip("`")
        if text.lower() in ("none", "n/a", "-", "{}"):
            return {}, notes
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
            for part in re.split(r"[,;]", text):
                key, sep, raw = part.partition("=") if "=" in part else part.partition(":")
                if not sep:
                    continue
                try:
                    data[key.strip().strip("\"'")] = json.loads(raw.strip())
                except ValueError:
                    data[key.strip().strip("\"'")] = raw.strip()
    if not isinstance(data, Mapping):
        return {}, [f"hyperparameters {value!r} not understood; ignored"]
    hints: dict[str, Any] = {}
    dropped = []
    for key, raw in data.items():
        if key not in HINT_KEYS:
            dropped.append(str(key))
            continue
        if isinstance(raw, bool):
            dropped.append(str(key))
        elif isinstance(raw, (int, float)) and math.isfinite(raw):
            hints[key] = raw
        elif key == "net_arch" and isinstance(raw, (list, tuple)) and all(isinstance(x, int) for x in raw):
            hints[key] = list(raw)
        else:
            dropped.append(str(key))
    if dropped:
        notes.append(f"ignored unknown or non-numeric hyperparameters: {', '.join(dropped)}")
    return hints, notes


def parse_sources(value: Any, known: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """Cited ids that were actually offered (chunk ids or their documents); others are dropped."""
    if value is None:
        return (), []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\s]+", str(value))
    known_set = set(known) | {k.split("#")[0] for k in known}
    kept: list[str] = []
    dropped: list[str] = []
    for item in items:
        source = str(item).strip().strip("[]`'\"*()").strip()
        if not source or source.lower() in ("none", "n/a", "-"):
            continue
        if source in known_set:
            if source not in kept:
                kept.append(source)
        else:
            dropped.append(source)
    notes = (
        [f"dropped sources that were not among the retrieved excerpts: {', '.join(dropped)}"]
        if dropped
        else []
    )
    return tuple(kept), notes


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48]


class LLMProposer(Proposer):
    """Designs from a chat model: propose, reflect on feedback, repair rejected programs.

    Args:
        backend: the configured :class:`~autogai.rag.llm.ChatBackend` (cache, ledger, retries).
        kb: the knowledge base for retrieved excerpts, enhancer guides and past results (optional).
        max_repair_rounds: repair attempts per rejected program.
        retrieval_k: excerpts put into the prompt.
        validation_kwargs: extra arguments of ``validate_reward_program``.
        prompts_directory: template directory (default: the shipped ``prompts/``).
        seed: shifts the sample indices (a different seed asks for, and caches, different samples).
    """

    def __init__(
        self,
        backend: ChatBackend,
        kb: KnowledgeBase | None = None,
        *,
        max_repair_rounds: int = 2,
        retrieval_k: int = 6,
        validation_kwargs: dict[str, Any] | None = None,
        prompts_directory: Path | None = None,
        seed: int = 0,
    ) -> None:
        self.backend = backend
        self.kb = kb
        self.max_repair_rounds = max(0, int(max_repair_rounds))
        self.retrieval_k = retrieval_k
        self.validation_kwargs = dict(validation_kwargs or {})
        self.prompts_directory = prompts_directory
        self.seed = seed

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.backend.name

    def usage(self) -> dict[str, Any]:
        return self.backend.usage()

    # -- prompts --------------------------------------------------------------------------------------

    def _messages(self, user: str) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        system = load_template("system", self.prompts_directory).render()
        return [SystemMessage(content=system), HumanMessage(content=user)]

    def build_prompt(
        self,
        task: TaskCard,
        *,
        n_designs: int,
        chunks: Sequence[RetrievedChunk],
        recommended: Sequence[str],
        action_mode: str,
        feedback: Sequence[DesignFeedback] | None,
        generation: int,
        past_results: Sequence[Any] = (),
        past_designs: Sequence[Design] = (),
    ) -> str:
        values: dict[str, Any] = {
            **task_variables(task),
            "enhancer_menu": render_enhancer_menu(task, action_mode, recommended, self.prompts_directory),
            "retrieved_knowledge": format_retrieved(chunks),
            "reply_format": render_reply_format(
                n_designs, structured=self.backend.structured, directory=self.prompts_directory
            ),
            "n_designs": n_designs,
        }
        if feedback:
            template = load_template("reflect", self.prompts_directory)
            values.update(feedback=format_feedback(feedback), generation=generation)
        else:
            template = load_template("propose", self.prompts_directory)
            values["past_results"] = format_past_results(past_results, past_designs)
        return template.render(**values)

    # -- the round ------------------------------------------------------------------------------------

    def propose(
        self,
        task: TaskCard,
        *,
        n: int,
        feedback: Sequence[DesignFeedback] | None = None,
        generation: int = 0,
        action_mode: str | None = None,
        past_designs: Sequence[Design] = (),
    ) -> list[ProposalRecord]:
        mode = resolve_action_mode(task, action_mode)
        query = retrieval_query(task, feedback)
        chunks = safe_query(self.kb, query, self.retrieval_k, task_id=task.id, max_per_document=2)
        recommended, _ = enhancer_recommendations(self.kb, task, mode, chunks)
        past_results: list[Any] = []
        if not feedback and self.kb is not None:
            try:
                past_results = list(self.kb.query_results(task.id, query, k=3))
            except Exception as exc:
                logger.debug("no past results: %s", exc)
        user = self.build_prompt(
            task,
            n_designs=1,
            chunks=chunks,
            recommended=recommended,
            action_mode=mode,
            feedback=feedback,
            generation=generation,
            past_results=past_results,
            past_designs=past_designs,
        )
        messages = self._messages(user)
        prompt_text = _messages_markdown(messages)
        purpose = "reflect" if feedback else "propose"
        completions = self.backend.complete(messages, n=n, first_sample=self.seed * 1000, purpose=purpose)
        known_sources = [c.chunk_id for c in chunks]
        parents = {f.design_id for f in feedback or ()} | {d.id for d in past_designs}
        seen = {d.id for d in past_designs} | {f.design_id for f in feedback or ()}
        records: list[ProposalRecord] = []
        for completion in completions:
            sample = completion.sample_index - self.seed * 1000
            if not completion.ok:
                records.append(
                    ProposalRecord(
                        None,
                        None,
                        prompt_text,
                        "",
                        error=f"LLM call failed: {completion.error}",
                        sample_index=sample,
                    )
                )
                continue
            reply = completion.text or ""
            parsed = parse_reply(reply)
            if not parsed:
                records.append(
                    ProposalRecord(
                        None,
                        None,
                        prompt_text,
                        reply,
                        error="no reward program found in the reply (expected a fenced python block or JSON "
                        "with a 'reward_program' defining compute_reward(m, p))",
                        sample_index=sample,
                    )
                )
                continue
            for j, item in enumerate(parsed):
                record = self._finish(
                    task,
                    item,
                    reply,
                    prompt_text,
                    messages,
                    known_sources,
                    parents,
                    generation,
                    sample,
                    j,
                    mode,
                )
                if record.design is not None and record.design.id in seen:
                    record.error = f"duplicate of design {record.design.id} proposed earlier"
                if record.design is not None:
                    seen.add(record.design.id)
                records.append(record)
        return records

    def _finish(
        self,
        task: TaskCard,
        item: ParsedDesign,
        reply: str,
        prompt_text: str,
        messages: list[Any],
        known_sources: Sequence[str],
        parents: set[str],
        generation: int,
        sample: int,
        position: int,
        action_mode: str | None = None,
    ) -> ProposalRecord:
        notes = list(item.notes)
        enhancers, note = parse_enhancers(item.enhancers)
        if note:
            notes.append(note)
        hints, hint_notes = parse_hints(item.hints)
        notes += hint_notes
        sources, source_notes = parse_sources(item.sources, known_sources)
        notes += source_notes
        parent = item.parent.strip().strip("`") if item.parent else None
        if parent and parent not in parents:
            notes.append(f"parent {parent!r} is not a known design; ignored")
            parent = None
        name = _slug(item.name) or f"llm-g{generation}-s{sample}" + (f"-{position}" if position else "")
        rationale = item.rationale.strip() or "(the reply gave no rationale)"
        program = item.program.strip() + "\n"
        prompt_log = prompt_text
        response_log = reply
        rounds = 1
        report = validate_source(program, task, action_mode=action_mode, **self.validation_kwargs)
        error: str | None = None
        while not report.ok and rounds <= self.max_repair_rounds:
            repair_user = load_template("repair", self.prompts_directory).render(
                task_id=task.id,
                metrics_table=task.metrics_table(),
                program=program.strip(),
                stage=getattr(report, "stage", "validation"),
                reason=validation_reason(report),
                warnings="; ".join(getattr(report, "warnings", []) or []) or "none",
                attempt=rounds,
                max_attempts=self.max_repair_rounds,
            )
            repair_messages = [messages[0], *self._messages(repair_user)[1:]]
            prompt_log += f"\n\n---\n\n# Repair round {rounds}\n\n" + _messages_markdown(repair_messages[1:])
            try:
                fixed = self.backend.complete(repair_messages, n=1, first_sample=sample, purpose="repair")[0]
            except LLMUnavailableError as exc:
                error = f"repair failed: {exc}"
                break
            rounds += 1
            response_log += f"\n\n---\n\n# Repair round {rounds - 1}\n\n{fixed.text or fixed.error or ''}"
            programs = _extract_programs(strip_thinking(fixed.text or ""))
            if not programs:
                notes.append(f"repair round {rounds - 1} returned no program")
                continue
            program = programs[0].strip() + "\n"
            report = validate_source(program, task, action_mode=action_mode, **self.validation_kwargs)
            notes.append(
                f"repaired in round {rounds - 1}"
                if report.ok
                else f"repair round {rounds - 1} still rejected"
            )
        if error is None and not report.ok:
            error = f"rejected after {rounds - 1} repair round(s): {validation_reason(report)}"
        design = Design(
            reward_source=program,
            enhancers=enhancers,
            rationale=rationale,
            sources=sources,
            parent=parent,
            hyperparameter_hints=hints,
            proposer=self.backend.name,
            generation=generation,
            name=name,
        )
        return ProposalRecord(
            design,
            report,
            prompt_log,
            response_log,
            error=error,
            rounds=rounds,
            sample_index=sample,
            notes=notes,
        )


def _messages_markdown(messages: Sequence[Any]) -> str:
    parts = []
    for message in messages:
        role = {"system": "System", "human": "User", "ai": "Assistant"}.get(
            getattr(message, "type", ""), "Message"
        )
        parts.append(f"## {role}\n\n{message.content}")
    return "\n\n".join(parts) + "\n"
