"""The LLM proposer: propose (generation 0), reflect (feedback -> improved designs), repair (a rejected
program goes back with the validator's reason for a bounded number of rounds).

Replies are read by :mod:`autogai.rag.replies` (structured JSON, other JSON or free-form Markdown,
reasoning blocks, several designs per reply) and every program goes through the same validator as the
offline proposer's. A reply that yields no usable program becomes a failed :class:`ProposalRecord`; the
round continues with the other samples.

Every prompt is fitted to the model's context window (:func:`autogai.rag.prompts.fit_prompt`): the task,
the reward contract and the reply format stay whole; knowledge excerpts, feedback and past results are
trimmed, lowest-ranked first, and what was left out is noted in the proposal record and the ledger.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import LLMUnavailableError
from autogai.core.types import Design, DesignFeedback, EnhancerCombo
from autogai.rag.llm_calls import MIN_REPLY_TOKENS, StructuredRepliesRefused
from autogai.rag.prompts import (
    FittedPrompt,
    PromptParts,
    fit_prompt,
    format_feedback,
    format_past_results,
    format_retrieved,
    load_template,
    render_enhancer_menu,
    render_reply_format,
    render_template,
    resolve_action_mode,
    task_variables,
)
from autogai.rag.proposal import (
    ProposalRecord,
    Proposer,
    enhancer_recommendations,
    retrieval_query,
    safe_query,
    validate_source,
    validation_reason,
)
from autogai.rag.replies import (
    ParsedDesign,
    extract_reward_programs,
    parse_enhancers,
    parse_hints,
    parse_reply,
    parse_sources,
    reply_schema,
)

if TYPE_CHECKING:
    from autogai.rag.knowledge import KnowledgeBase, RetrievedChunk
    from autogai.rag.llm import ChatBackend
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)


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

    def _context_label(self) -> str:
        window = self.backend.context_window()
        return f"the {window.tokens}-token context of {self.backend.name} ({window.source})"

    def build_prompt(
        self,
        task: TaskCard,
        *,
        n_designs: int,
        chunks: Sequence[RetrievedChunk],
        recommended: Sequence[EnhancerCombo],
        action_mode: str,
        feedback: Sequence[DesignFeedback] | None,
        generation: int,
        past_results: Sequence[Any] = (),
        past_designs: Sequence[Design] = (),
    ) -> FittedPrompt:
        """The chat messages of a propose (or, with feedback, reflect) round, fitted to the context."""
        folder = self.prompts_directory
        menus = {
            compact: render_enhancer_menu(task, action_mode, recommended, folder, compact=compact)
            for compact in (False, True)
        }
        name = "reflect" if feedback else "propose"
        guidance = {
            "metric_legend": render_template("metric_legend", folder),
            "advice": render_template(f"advice_{name}", folder),
        }
        reply_formats = {
            compact: render_reply_format(
                n_designs, structured=self.backend.structured, directory=folder, compact=compact
            )
            for compact in (False, True)
        }
        fixed: dict[str, Any] = {**task_variables(task), "n_designs": n_designs}
        template = load_template(name, folder)

        def render(parts: PromptParts) -> list[Any]:
            values = dict(fixed)
            values["enhancer_menu"] = menus[parts.compact]
            values["reply_format"] = reply_formats[parts.compact]
            values.update(guidance if parts.guidance else dict.fromkeys(guidance, ""))
            values["retrieved_knowledge"] = format_retrieved(
                parts.chunks, max_chars=parts.excerpt_chars, trimmed=parts.trimmed
            )
            if feedback:
                values.update(
                    feedback=format_feedback(parts.feedback, trimmed=parts.trimmed), generation=generation
                )
            else:
                values["past_results"] = format_past_results(
                    parts.past_results, parts.past_designs, trimmed=parts.trimmed
                )
            return self._messages(template.render(**values))

        parts = PromptParts(
            chunks=tuple(chunks),
            feedback=tuple(feedback or ()),
            past_results=tuple(past_results) if not feedback else (),
            past_designs=tuple(past_designs) if not feedback else (),
        )
        return fit_prompt(
            render,
            parts,
            budget=self.backend.prompt_budget(),
            count=self.backend.count_tokens,
            context=self._context_label(),
            last_resort_budget=self.backend.prompt_budget(MIN_REPLY_TOKENS),
        )

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
        budget_steps: int | None = None,
    ) -> list[ProposalRecord]:
        # The budget reaches the LLM through the feedback of earlier generations (scores per enhancer
        # combination); the templates carry no separate budget line.
        del budget_steps
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
        prompt_args: dict[str, Any] = {
            "n_designs": 1,
            "chunks": chunks,
            "recommended": recommended,
            "action_mode": mode,
            "feedback": feedback,
            "generation": generation,
            "past_results": past_results,
            "past_designs": past_designs,
        }
        purpose = "reflect" if feedback else "propose"
        fitted = self.build_prompt(task, **prompt_args)
        try:
            completions = self._ask(fitted, n, purpose)
        except StructuredRepliesRefused as exc:  # auto mode: the server refused schemas; ask in free text
            logger.warning("%s; asking for free-text replies instead", exc)
            fitted = self.build_prompt(task, **prompt_args)
            completions = self._ask(fitted, n, purpose)
        messages = fitted.messages
        prompt_text = _messages_markdown(messages)
        fit_note = fitted.note(self._context_label())
        if self._reply_tokens(fitted.tokens) < self.backend.reply_tokens():
            fit_note += f"; the reply is limited to {self._reply_tokens(fitted.tokens)} tokens"
        if fit_note:
            prompt_text += f"\n## Left out to fit the context (not sent)\n\n{fit_note}\n"
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
                if fit_note:
                    item.notes.append(fit_note)
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

    def _reply_tokens(self, prompt_tokens: int) -> int:
        """The reply's limit: its usual share, or what a prompt that took part of it leaves."""
        return min(self.backend.reply_tokens(), self.backend.context_window().tokens - prompt_tokens)

    def _ask(self, fitted: FittedPrompt, n: int, purpose: str) -> list[Any]:
        details: dict[str, Any] = {
            "context_tokens": self.backend.context_window().tokens,
            "prompt_tokens_estimate": fitted.tokens,
            "prompt_tokens_before_fit": fitted.tokens_before,
        }
        if fitted.left_out:
            details["left_out"] = list(fitted.left_out)
        reply_tokens = self._reply_tokens(fitted.tokens)
        details["reply_tokens"] = reply_tokens
        return self.backend.complete(
            fitted.messages,
            n=n,
            first_sample=self.seed * 1000,
            purpose=purpose,
            schema=reply_schema(1),
            details=details,
            reply_tokens=reply_tokens,
        )

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
            needed = self.backend.count_tokens(repair_messages)
            if needed > self.backend.prompt_budget(MIN_REPLY_TOKENS):
                error = (
                    f"repair skipped: its prompt needs about {needed} tokens, more than "
                    f"{self._context_label()} leaves ({self.backend.prompt_budget(MIN_REPLY_TOKENS)})"
                )
                break
            try:
                fixed = self.backend.complete(
                    repair_messages,
                    n=1,
                    first_sample=sample,
                    purpose="repair",
                    reply_tokens=self._reply_tokens(needed),
                )[0]
            except LLMUnavailableError as exc:
                error = f"repair failed: {exc}"
                break
            rounds += 1
            response_log += f"\n\n---\n\n# Repair round {rounds - 1}\n\n{fixed.text or fixed.error or ''}"
            programs = extract_reward_programs(fixed.text or "")
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
