"""What every proposer shares: the :class:`Proposer` interface, the :class:`ProposalRecord` it returns,
and the steps both proposers take the same way (retrieval query, knowledge-base query, enhancer
recommendations, the one validator).

The implementations live beside it (:mod:`autogai.rag.offline_proposer`, :mod:`autogai.rag.llm_proposer`)
and :func:`autogai.rag.proposers.make_proposer` picks one; this module imports neither, so nothing here
runs in a circle.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autogai.core.types import Design, DesignFeedback, EnhancerCombo
    from autogai.rag.knowledge import KnowledgeBase, RetrievedChunk
    from autogai.rewards import ValidationReport
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)


@dataclass
class ProposalRecord:
    """One proposed design (or the failure to get one) with everything needed to audit it.

    ``design`` is set whenever a program could be extracted, even if validation rejected it; ``ok`` tells
    whether the design may be evaluated. ``prompt``/``response`` hold what was sent and received (for the
    offline proposer: its retrieval query and decision trace).
    """

    design: Design | None
    validation: ValidationReport | None
    prompt: str
    response: str
    error: str | None = None
    rounds: int = 1
    """Proposal rounds used: 1, plus one per repair round."""
    sample_index: int = 0
    notes: list[str] = field(default_factory=list)
    """Parser decisions a person should know about (e.g. unknown enhancers replaced by plain)."""

    @property
    def ok(self) -> bool:
        return (
            self.design is not None
            and self.error is None
            and self.validation is not None
            and bool(getattr(self.validation, "ok", False))
        )

    @property
    def component_names(self) -> list[str]:
        stats = getattr(self.validation, "component_stats", None) or {}
        return list(stats)

    def to_dict(self) -> dict[str, Any]:
        validation = None
        if self.validation is not None:
            to_dict = getattr(self.validation, "to_dict", None)
            validation = to_dict() if callable(to_dict) else {"ok": getattr(self.validation, "ok", None)}
        return {
            "ok": self.ok,
            "design": self.design.to_dict() if self.design is not None else None,
            "validation": validation,
            "error": self.error,
            "rounds": self.rounds,
            "sample_index": self.sample_index,
            "notes": list(self.notes),
        }


class Proposer(ABC):
    """A source of designs: ``propose`` one round, ``usage`` for the ledger totals."""

    name: str = "proposer"

    @abstractmethod
    def propose(
        self,
        task: TaskCard,
        *,
        n: int,
        feedback: Sequence[DesignFeedback] | None = None,
        generation: int = 0,
        action_mode: str | None = None,
        past_designs: Sequence[Design] = (),
        budget_steps: int | None = None,
    ) -> list[ProposalRecord]:
        """Propose up to ``n`` designs (an LLM reply may hold several); failures come back as records.

        ``budget_steps``: environment steps each design is trained for in this search (None: unknown); what
        pays at that budget differs (the diffusion actor needs far more steps than plain TD3).
        """

    def usage(self) -> dict[str, Any]:
        """Totals over this proposer's LLM calls (calls, cache hits, tokens, estimated cost)."""
        return {"calls": 0, "cache_hits": 0, "errors": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}


# ---------------------------------------------------------------------------------------------------
# Shared helpers (both proposers)


def retrieval_query(
    task: TaskCard, feedback: Sequence[DesignFeedback] | None = None, *, max_chars: int = 1500
) -> str:
    """Retrieval query = task description + what the feedback says went wrong (docs/search.md)."""
    parts = [task.title, task.description.strip(), task.fitness_description.strip()]
    for item in feedback or ():
        notes = []
        for name, summary in item.components.items():
            corr = summary.fitness_correlation
            if corr is not None and corr < 0:
                notes.append(f"component {name} anti-correlated with fitness")
        for name, rate in item.violation_rates.items():
            if rate > 0.05:
                notes.append(f"frequent {name.replace('_', ' ')} constraint violations")
        if item.curve_summary:
            notes.append(item.curve_summary)
        notes.extend(item.errors)
        if notes:
            parts.append("; ".join(notes))
    text = "\n".join(p for p in parts if p)
    return text[:max_chars]


def safe_query(kb: KnowledgeBase | None, text: str, k: int, **kwargs: Any) -> list[RetrievedChunk]:
    """``kb.query`` that degrades to no results (logged) when the store is empty or unavailable."""
    if kb is None:
        return []
    try:
        return list(kb.query(text, k=k, **kwargs))
    except Exception as exc:  # retrieval is advisory: a proposal can go on without excerpts
        from autogai.core.errors import ConfigError

        if isinstance(exc, ConfigError):
            raise
        logger.warning("knowledge-base query failed (%s); proposing without retrieved excerpts", exc)
        return []


def enhancer_recommendations(
    kb: KnowledgeBase | None, task: TaskCard, action_mode: str, chunks: Iterable[RetrievedChunk] = ()
) -> tuple[list[EnhancerCombo], list[str]]:
    """Recommended enhancer combinations for ``action_mode`` from the enhancer guides, best first, and
    the ids of the guides they came from. Guides retrieved for this query come first. The guides' names
    are parsed here, once; everything downstream works with :class:`EnhancerCombo` values."""
    from autogai.core.types import EnhancerCombo

    if kb is None:
        return [EnhancerCombo()], []
    try:
        docs = [d for d in kb.documents() if d.kind == "enhancer-guide" and d.recommends]
    except Exception as exc:
        logger.warning("cannot read knowledge documents (%s)", exc)
        return [EnhancerCombo()], []
    rank: dict[str, int] = {}
    for position, chunk in enumerate(chunks):
        rank.setdefault(chunk.doc_id, position)
    docs = [d for d in docs if d.applies_to_task(task.id)]
    docs.sort(key=lambda d: (rank.get(d.id, 10_000), d.id))
    combos: list[EnhancerCombo] = []
    used: list[str] = []
    for key in (action_mode, "any"):
        for doc in docs:
            for name in doc.recommends.get(key, []):
                try:
                    combo = EnhancerCombo.parse(name)
                except Exception:
                    continue
                if combo not in combos:
                    combos.append(combo)
                    if doc.id not in used:
                        used.append(doc.id)
    return (combos or [EnhancerCombo()]), used


_TRANSITIONS: dict[tuple[str, str, str | None, int, int], Any] = {}


def validate_source(
    source: str, task: TaskCard, *, action_mode: str | None = None, **kwargs: Any
) -> ValidationReport:
    """The one validator both proposers use (docs/reward_programs.md); never raises for a bad program.

    The smoke-test transitions (random actions in the design's action mode) are recorded once per task,
    mode, size and seed and shared by every candidate of the process, so a round of K candidates steps
    the environment once.
    """
    from autogai.rewards import collect_transitions, validate_reward_program

    if "transitions" not in kwargs:
        n = int(kwargs.pop("n_transitions", 256))
        seed = int(kwargs.get("seed", 0))
        mode = action_mode if task.action_modes else None
        key = (task.id, task.env_id, mode, n, seed)
        if key not in _TRANSITIONS:
            env_kwargs = {"action_mode": mode} if mode else None
            _TRANSITIONS[key] = collect_transitions(task, n, seed=seed, env_kwargs=env_kwargs)
        kwargs["transitions"] = _TRANSITIONS[key]
    return validate_reward_program(source, task, **kwargs)


def validation_reason(report: Any) -> str:
    stage = getattr(report, "stage", "validation")
    reason = getattr(report, "reason", "") or "rejected"
    line = getattr(report, "line", None)
    where = f" (line {line})" if line else ""
    return f"{stage}{where}: {reason}"
