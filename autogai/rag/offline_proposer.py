"""The offline proposer: deterministic, retrieval-driven reward design without a language model.

It is the default when no LLM is configured, and it says so in every rationale and trace. Generation 0
composes reward programs from the knowledge base's ``reward-term`` blocks (an objective, the penalties
and regularisers that apply to the task, optionally a shaping term), ranked by how well their documents
match the retrieval query, and pairs them with the enhancer combinations the enhancer guides recommend
for the action space. Later generations start from the best-scoring designs and apply the feedback rules
of docs/search.md: drop components that anti-correlate with fitness, scale down components that dominate,
drop constant ones, move ``PARAMS`` defaults to the best values found and narrow (or, at an edge, widen)
their ranges, and try the next recommended enhancer combination; what worked is kept. This module decides
which edits to make; the program model and the edits themselves are :mod:`autogai.rag.program_editing`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autogai.core.types import Design, DesignFeedback, EnhancerCombo
from autogai.rag.program_editing import (
    EditableProgram,
    add_failure_guards,
    apply_feedback_rules,
    copy_program,
    metrics_read,
    parse_program,
    program_from_terms,
)
from autogai.rag.prompts import resolve_action_mode
from autogai.rag.proposal import (
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
    from autogai.rag.reward_terms import RewardTerm
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

HONESTY = "autogai offline proposer (deterministic and retrieval-driven; no language model was used)"

_RESERVED_M = {"obs", "next_obs", "action"}


@dataclass
class Candidate:
    program: EditableProgram
    enhancers: EnhancerCombo
    name: str
    rationale: str
    sources: list[str]
    parent: str | None = None
    trace: list[str] = field(default_factory=list)


class OfflineProposer(Proposer):
    """Composes designs from ``reward-term`` blocks; see the module docstring.

    Args:
        kb: the knowledge base (``documents()`` for the terms and guides, ``query`` for ranking/sources).
        seed: kept for the interface; the proposer is deterministic.
        validation_kwargs: extra arguments of ``validate_reward_program`` (e.g. ``n_transitions``).
        retrieval_k: chunks retrieved per round (ranking and cited sources).
        max_penalties: penalty/regulariser terms per program at most.
    """

    name = "offline"

    def __init__(
        self,
        kb: KnowledgeBase | None,
        *,
        seed: int = 0,
        validation_kwargs: dict[str, Any] | None = None,
        retrieval_k: int = 16,
        max_penalties: int = 3,
    ) -> None:
        self.kb = kb
        self.seed = seed
        self.validation_kwargs = dict(validation_kwargs or {})
        self.retrieval_k = retrieval_k
        self.max_penalties = max_penalties
        self._told_no_intents: set[str] = set()  # task ids already told about (once per proposer)

    # -- knowledge ----------------------------------------------------------------------------------

    def _terms(self, task: TaskCard, chunks: Sequence[RetrievedChunk]) -> list[RewardTerm]:
        if self.kb is None:
            return []
        try:
            docs = self.kb.documents()
        except Exception as exc:
            logger.warning("cannot read knowledge documents (%s)", exc)
            return []
        available = set(task.metric_names) | _RESERVED_M
        rank: dict[str, tuple[int, float]] = {}
        for position, chunk in enumerate(chunks):
            rank.setdefault(chunk.doc_id, (position, -float(chunk.score)))
        # Terms written for this task first, then task-agnostic terms bound to the card's metric
        # intents. Within each: fitness-aligned terms first (those reading the metric the fitness is,
        # then those reading the metrics the task reports next to fitness; UAV: rate, power), then those
        # reading its constraint-violation metrics, then the rest; retrieval rank orders within each group.
        fitness: set[str] = {task.fitness_metric} if task.fitness_metric else set()
        report, violations = set(task.report_metrics), set(task.violation_metrics)
        keyed = []
        for doc in docs:
            bound_metrics: set[str] = set()  # a template document's blocks are alternatives per metric
            for written in doc.reward_terms:
                if written.intent is not None:
                    bound = [written.bind(m) for m in task.metrics if m.name not in bound_metrics]
                    usable = [(4, term) for term in bound if term is not None]
                    bound_metrics |= {term.bound_to for _, term in usable if term.bound_to}
                elif written.applies_to_task(task.id):
                    usable = [(0, written)]
                else:
                    usable = []
                for generic, term in usable:
                    reads = set(term.requires) | metrics_read(term.expression)
                    if not reads <= available:
                        continue
                    alignment = next(
                        (i for i, aligned in enumerate((fitness, report, violations)) if reads & aligned), 3
                    )
                    group = generic + alignment
                    keyed.append(((group, rank.get(term.doc_id, (10_000, 0.0)), term.doc_id), term))
        # A task-agnostic term adds nothing where a term written for the task already plays its part on
        # the same metric (Pendulum's velocity cost and a generic effort cost on theta_dot).
        covered = {
            (metric, _family(term.role))
            for (group, _, _), term in keyed
            if group < 4
            for metric in term.requires
        }
        keyed = [
            (key, term)
            for key, term in keyed
            if term.bound_to is None or (term.bound_to, _family(term.role)) not in covered
        ]
        keyed.sort(key=lambda item: item[0])
        return [term for _, term in keyed]

    @staticmethod
    def _sources_for(doc_ids: Sequence[str], chunks: Sequence[RetrievedChunk]) -> list[str]:
        sources: list[str] = []
        for doc_id in doc_ids:
            hits = [c.chunk_id for c in chunks if c.doc_id == doc_id][:2]
            for source in hits or [doc_id]:
                if source not in sources:
                    sources.append(source)
        return sources

    # -- generation 0: compose ------------------------------------------------------------------------

    def _compose(
        self, terms: Sequence[RewardTerm], maximised: frozenset[str] = frozenset()
    ) -> Iterator[tuple[list[RewardTerm], str]]:
        """Term sets, most promising first: objective + penalties/regularisers (+ one shaping term).

        Objectives that read more of the metrics the task wants maximised come first (UAV: the relay rate
        gated by feasibility covers both ``rate_df`` and ``feasible``, as the fitness does); ties keep the
        knowledge base's ranking.
        """
        objectives = [t for t in terms if t.role == "objective"]
        objectives.sort(key=lambda t: -len(_reads(t) & maximised))
        costs = [t for t in terms if t.role in ("penalty", "regulariser")]
        shaping = [t for t in terms if t.role == "shaping"]
        # a document often offers alternative blocks ("use one of the two"): one term per document
        costs = _one_per_document(costs)[: self.max_penalties]
        shaping = _one_per_document(shaping)
        cost_variants: list[tuple[list[RewardTerm], str]] = [(costs, "all applicable penalties")]
        if len(costs) > 1:
            cost_variants.append((costs[:1], f"only the top-ranked penalty ({costs[0].name})"))
            cost_variants.append((costs[:-1], f"without the {costs[-1].name} penalty"))
        if costs:
            cost_variants.append(([], "no penalties"))
        shaping_variants: list[tuple[list[RewardTerm], str]] = [([], "")]
        generic_shaping = [s for s in shaping if s.bound_to is not None][:3]
        if len({s.bound_to for s in generic_shaping}) > 1:
            # Task-agnostic shaping bound to different metrics of the card (a target's distance, a
            # momentum) guides different parts of the task, and the potential-based forms add up without
            # changing the optimal policy: together before alone.
            names = ", ".join(s.name for s in generic_shaping)
            shaping_variants.append((generic_shaping, f"shaping terms {names}"))
        shaping_variants += [([s], f"shaping term {s.name}") for s in shaping[:3]]
        seen: set[tuple[str, ...]] = set()
        options = itertools.product(
            range(len(objectives)), range(len(cost_variants)), range(len(shaping_variants))
        )
        for i, j, k in sorted(options, key=lambda ijk: (sum(ijk), ijk[2] == 0, ijk)):
            chosen = [objectives[i], *cost_variants[j][0], *shaping_variants[k][0]]
            key = tuple(sorted(f"{t.doc_id}:{t.name}" for t in chosen))
            if key in seen:
                continue
            seen.add(key)
            how = ", ".join(
                x
                for x in (f"objective {objectives[i].name}", cost_variants[j][1], shaping_variants[k][1])
                if x
            )
            yield chosen, how

    def _fresh_candidates(
        self,
        task: TaskCard,
        terms: Sequence[RewardTerm],
        recommended: Sequence[EnhancerCombo],
        chunks: Sequence[RetrievedChunk],
        guide_ids: Sequence[str],
        *,
        exclude_components: set[str] = frozenset(),  # type: ignore[assignment]
        generation: int = 0,
    ) -> Iterator[Candidate]:
        usable = [t for t in terms if t.name not in exclude_components]
        maximised = frozenset(m.name for m in task.metrics if m.intent == "maximise")
        compositions = list(self._compose(usable, maximised))
        # The baseline reward is evaluated as the reference anyway: a composition that rebuilds exactly its
        # components (Pendulum's angle + velocity + torque) comes after those that add something.
        baseline = parse_program(task.baseline_reward)
        baseline_names = {c.name for c in baseline.components} if baseline is not None else set()
        compositions.sort(key=lambda chosen_how: {t.name for t in chosen_how[0]} == baseline_names)
        enhancers = list(recommended) or [EnhancerCombo()]
        if not compositions:
            program = parse_program(task.baseline_reward)
            if program is None:
                return
            for enh in enhancers:
                program.header = [f"{task.id} baseline reward (no applicable reward-term blocks in the KB)"]
                yield Candidate(
                    program,
                    enh,
                    f"baseline-{enh.short_name}",
                    f"{HONESTY}. The knowledge base has no reward-term blocks for {task.id}, so this design "
                    f"keeps the task's baseline reward and tries the enhancers {enh.short_name} "
                    "(recommended for this action space).",
                    list(guide_ids),
                )
            return
        pairs = [(j, j % len(enhancers)) for j in range(len(compositions))]
        pairs += [
            (j, e)
            for j, e in itertools.product(range(len(compositions)), range(len(enhancers)))
            if (j, e) not in pairs
        ]
        for j, e in pairs:
            chosen, how = compositions[j]
            enh = enhancers[e]
            program = program_from_terms(chosen)
            doc_ids = list(dict.fromkeys(t.doc_id for t in chosen))
            program.header = [
                f"Composed by the {HONESTY}.",
                f"Terms: {', '.join(f'{c.name} ({c.role}, {c.doc_id})' for c in program.components)}.",
            ]
            name = "-".join(c.name.replace("_", "-") for c in program.components[:3]) + f"-{enh.short_name}"
            rationale = (
                f"{HONESTY}. Composed from the knowledge base's reward-term blocks ranked for this task: "
                f"{how}. Components: "
                + "; ".join(
                    f"{c.name} = {c.expression} ({c.role}, from {c.doc_id})" for c in program.components
                )
                + f". Enhancers {enh.short_name}: position {e + 1} of the enhancer guides' recommendations "
                f"for this action space ({_names(recommended)}). Weights start at the documented defaults; "
                "Optuna tunes them within the documented ranges."
            )
            yield Candidate(
                program,
                enh,
                name,
                rationale,
                self._sources_for([*doc_ids, *guide_ids], chunks),
                trace=[f"compose: {how}; enhancers {enh.short_name}"],
            )

    def _recalled_candidates(self, task: TaskCard, query: str) -> Iterator[Candidate]:
        """Designs that beat the baseline in earlier searches on this task (the knowledge base's results
        collection), best first: a new search starts from what worked."""
        if self.kb is None:
            return
        try:
            past = sorted(self.kb.query_results(task.id, query, k=3), key=lambda r: -r.score)
        except Exception as exc:  # past results help; their absence must not stop a proposal
            logger.debug("no past results for %s: %s", task.id, exc)
            return
        for result in past:
            design = result.to_design()
            program = parse_program(design.reward_source)
            if program is None:
                continue
            yield Candidate(
                program,
                design.enhancers,
                f"{design.name or design.id}-recalled",
                f"{HONESTY}. Recalled from an earlier search on {task.id}, where design {design.id} scored "
                f"{result.score:.4g} and beat the baseline: {result.summary.strip()[:300]}",
                [f"results:{task.id}/{design.id}"],
                parent=design.id,
                trace=[f"recall {design.id} (score {result.score:.4g}) from the results collection"],
            )

    # -- later generations: reflect -------------------------------------------------------------------

    def _reflect_candidates(
        self,
        task: TaskCard,
        feedback: Sequence[DesignFeedback],
        terms: Sequence[RewardTerm],
        recommended: Sequence[EnhancerCombo],
        chunks: Sequence[RetrievedChunk],
        guide_ids: Sequence[str],
        tried: set[str],
        generation: int,
    ) -> Iterator[Candidate]:
        ranked = sorted(
            (f for f in feedback if f.score_mean is not None and math.isfinite(f.score_mean)),
            key=lambda f: -float(f.score_mean or 0.0),
        )[:3]
        bad = {
            name
            for f in feedback
            for name, summary in f.components.items()
            if summary.fitness_correlation is not None and summary.fitness_correlation <= -0.2
        }
        children: list[list[Candidate]] = []
        for parent in ranked:
            base = parse_program(parent.reward_source)
            if base is None:
                continue
            costs = frozenset(m.name for m in task.metrics if m.intent == "minimise")
            changes = apply_feedback_rules(base, parent, costs)
            parent_enh = EnhancerCombo.parse(parent.enhancers)
            # What paid at this budget: the enhancers of the best-scoring design so far (the baseline's
            # plain TD3 included), when they differ from the parent's.
            paying = _paying_enhancers(feedback)
            if paying is not None and paying != parent_enh:
                changes.append(
                    f"enhancers {parent_enh.short_name} -> {paying.short_name}: the best-scoring design so far "
                    f"used {paying.short_name}"
                )
                parent_enh = paying
            score = f"fitness {parent.score_mean:.4g}"
            if parent.baseline_score is not None:
                score += f" vs baseline {parent.baseline_score:.4g}"
            head = f"{HONESTY}. Derived from {parent.name or parent.design_id} ({parent.design_id}, {score})."
            what = (
                (" Changes: " + "; ".join(changes) + ".")
                if changes
                else " The feedback asked for no reward change."
            )
            base.header = [
                f"Reflected by the {HONESTY}",
                f"from {parent.design_id}: " + ("; ".join(changes) or "no reward change"),
            ]
            stem = (parent.name or parent.design_id).split("-g")[0][:40]
            kept = [c.name for c in base.components]
            family = []
            # A: the adjusted reward with the enhancers that worked
            family.append(
                Candidate(
                    copy_program(base),
                    parent_enh,
                    f"{stem}-g{generation}",
                    head
                    + what
                    + f" Kept components {', '.join(kept)} and enhancers {parent_enh.short_name}.",
                    self._sources_for(
                        [c.doc_id for c in base.components if c.doc_id] + list(guide_ids), chunks
                    ),
                    parent=parent.design_id,
                    trace=[f"reflect {parent.design_id}: {changes or 'unchanged'}"],
                )
            )
            # B: the adjusted reward with the next recommended enhancer combination not tried yet
            next_enh = _next_enhancers(recommended, parent_enh, tried)
            if next_enh is not None:
                family.append(
                    Candidate(
                        copy_program(base),
                        next_enh,
                        f"{stem}-{next_enh.short_name}-g{generation}",
                        head
                        + what
                        + f" Enhancers {parent_enh.short_name} -> {next_enh.short_name}: the next "
                        f"combination the enhancer guides recommend ({_names(recommended)}) not tried yet.",
                        self._sources_for(list(guide_ids), chunks),
                        parent=parent.design_id,
                        trace=[f"reflect {parent.design_id}: enhancers -> {next_enh.short_name}"],
                    )
                )
            # C: add the best-ranked shaping term the parent lacks (exploration around what worked)
            present = {c.name for c in base.components}
            for term in terms:
                if term.role != "shaping" or term.name in present or term.name in bad:
                    continue
                extra = copy_program(base)
                addition = program_from_terms([term])
                for pname, spec in addition.params.items():
                    if pname not in extra.params:
                        extra.params[pname] = spec
                extra.components.append(addition.components[0])
                family.append(
                    Candidate(
                        extra,
                        parent_enh,
                        f"{stem}-{term.name.replace('_', '-')}-g{generation}",
                        head
                        + what
                        + f" Added shaping term {term.name} = {term.expression} (from {term.doc_id}).",
                        self._sources_for([term.doc_id, *guide_ids], chunks),
                        parent=parent.design_id,
                        trace=[f"reflect {parent.design_id}: + shaping {term.name}"],
                    )
                )
                break
            children.append(family)
        for round_robin in itertools.zip_longest(*children):
            for candidate in round_robin:
                if candidate is not None:
                    yield candidate
        yield from self._fresh_candidates(
            task, terms, recommended, chunks, guide_ids, exclude_components=bad, generation=generation
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
        mode = resolve_action_mode(task, action_mode)
        query = retrieval_query(task, feedback)
        chunks = safe_query(self.kb, query, self.retrieval_k, task_id=task.id)
        terms = self._terms(task, chunks)
        note = no_intents_note(task, terms)
        if note is not None and task.id not in self._told_no_intents:
            self._told_no_intents.add(task.id)
            logger.warning("%s", note)
        recommended, guide_ids = enhancer_recommendations(self.kb, task, mode, chunks)
        recommended = _order_for_budget(recommended, budget_steps, feedback or ())
        tried = {EnhancerCombo.parse(f.enhancers).short_name for f in feedback or ()}
        tried |= {d.enhancers.short_name for d in past_designs}
        known_ids = {d.id for d in past_designs} | {f.design_id for f in feedback or ()}
        prompt = _trace_prompt(task, mode, query, chunks, terms, recommended, generation, feedback)
        if feedback:
            candidates = self._reflect_candidates(
                task, feedback, terms, recommended, chunks, guide_ids, tried, generation
            )
        else:
            candidates = itertools.chain(
                self._recalled_candidates(task, query),
                self._fresh_candidates(task, terms, recommended, chunks, guide_ids, generation=generation),
            )
        records: list[ProposalRecord] = []
        seen = set(known_ids)
        valid = 0
        attempts = 0
        variants = _param_variants(candidates)
        for candidate in variants:
            if valid >= n or attempts >= 3 * n + 3:
                break
            guards = add_failure_guards(candidate.program, task, terms)
            if guards:
                candidate.trace.extend(guards)
                candidate.rationale += " Hard constraints kept: " + "; ".join(guards) + "."
            design = Design(
                reward_source=candidate.program.source(),
                enhancers=candidate.enhancers,
                rationale=candidate.rationale,
                sources=tuple(candidate.sources),
                parent=candidate.parent,
                proposer="offline",
                generation=generation,
                name=candidate.name,
            )
            if design.id in seen:
                continue
            seen.add(design.id)
            attempts += 1
            report = validate_source(design.reward_source, task, action_mode=mode, **self.validation_kwargs)
            error = None if report.ok else f"rejected: {validation_reason(report)}"
            response = "\n".join(
                [
                    f"# {HONESTY}",
                    "",
                    *(f"- {line}" for line in candidate.trace),
                    "",
                    f"Design {design.id} ({design.name}), enhancers {design.enhancers.short_name}",
                    "",
                    f"Rationale: {design.rationale}",
                    "",
                    f"Sources: {', '.join(design.sources) or 'none'}",
                    "",
                    f"Validation: {'ok' if report.ok else validation_reason(report)}",
                    "",
                    "```python",
                    design.reward_source.rstrip(),
                    "```",
                    "",
                ]
            )
            records.append(
                ProposalRecord(
                    design=design,
                    validation=report,
                    prompt=prompt,
                    response=response,
                    error=error,
                    rounds=1,
                    sample_index=len(records),
                )
            )
            valid += int(report.ok)
        if valid < n:
            logger.warning(
                "offline proposer: only %d distinct valid design(s) for %s (asked %d)", valid, task.id, n
            )
        return records


def no_intents_note(task: TaskCard, terms: Sequence[RewardTerm]) -> str | None:
    """One line for a card that declares no metric intents (valid: intents are optional), None otherwise.

    Without intents the knowledge base's task-agnostic terms bind to no metric of the card: the proposer can
    compose only from terms written for this task id, and with none of those only re-weight the baseline.
    """
    if any(metric.intent is not None for metric in task.metrics):
        return None
    what = (
        f"it composes only from the {len(terms)} reward term(s) written for {task.id}"
        if terms
        else "it proposes only the baseline reward (its weights varied) with the recommended enhancers"
    )
    return (
        f"task card {task.id} declares no metric intents, so the offline proposer cannot compose rewards from "
        f"the knowledge base's generic terms (an intent binds them to a metric): {what}; docs/task_cards.md "
        '("Metrics and their intents") explains how to declare them'
    )


def _names(combos: Sequence[EnhancerCombo]) -> str:
    return ", ".join(combo.short_name for combo in combos)


def _family(role: str) -> str:
    """Penalties and regularisers both cost; objectives and shaping terms each stand alone."""
    return "cost" if role in ("penalty", "regulariser") else role


def _reads(term: RewardTerm) -> set[str]:
    """The metrics a term reads (``m.<name>`` in its expression, and what it declares it requires)."""
    return metrics_read(term.expression) | set(term.requires)


def _one_per_document(terms: Sequence[RewardTerm]) -> list[RewardTerm]:
    """The first of each document's alternative blocks; a task-agnostic document offers its alternatives
    once per metric it was bound to."""
    seen: set[tuple[str, str | None]] = set()
    out = []
    for term in terms:
        key = (term.doc_id, term.bound_to)
        if key in seen:
            continue
        seen.add(key)
        out.append(term)
    return out


SMALL_BUDGET_STEPS = 50_000
"""Below this many training steps per run, plain TD3 and the cheap GAN critic come first: the diffusion actor,
the VAE and the Transformer cost 1.5-3.5x as much per step and need far longer to pay off (our measurements:
docs/paper_case_study.md; the paper trained 600k steps)."""


def _order_for_budget(
    recommended: Sequence[EnhancerCombo], budget_steps: int | None, feedback: Sequence[DesignFeedback]
) -> list[EnhancerCombo]:
    """The guides' recommendations, reordered for the run's budget: at small budgets plain TD3 and the GAN
    critic first; once feedback exists, combinations ordered by the best score each reached."""
    combos = list(recommended)
    if budget_steps is not None and budget_steps < SMALL_BUDGET_STEPS:
        cheap = [EnhancerCombo(), EnhancerCombo.parse("gan")]
        combos = cheap + [c for c in combos if c not in cheap]
    scores: dict[str, float] = {}
    for f in feedback:
        if f.score_mean is not None and math.isfinite(f.score_mean):
            name = EnhancerCombo.parse(f.enhancers).short_name
            scores[name] = max(scores.get(name, -math.inf), float(f.score_mean))
    if scores:  # stable: untried combinations keep their place after the scored ones
        combos.sort(key=lambda c: (c.short_name not in scores, -scores.get(c.short_name, 0.0)))
    return combos


def _paying_enhancers(feedback: Sequence[DesignFeedback]) -> EnhancerCombo | None:
    scored = [f for f in feedback if f.score_mean is not None and math.isfinite(f.score_mean)]
    if not scored:
        return None
    return EnhancerCombo.parse(max(scored, key=lambda f: float(f.score_mean or 0.0)).enhancers)


def _next_enhancers(
    recommended: Sequence[EnhancerCombo], current: EnhancerCombo, tried: set[str]
) -> EnhancerCombo | None:
    combos = list(recommended)
    for combo in combos:
        if combo.short_name not in tried and combo != current:
            return combo
    if current in combos and len(combos) > 1:
        return combos[(combos.index(current) + 1) % len(combos)]
    others = [c for c in combos if c != current]
    return others[0] if others else None


def _param_variants(candidates: Iterator[Candidate]) -> Iterator[Candidate]:
    """The candidates, then (if more distinct designs are needed) copies with shifted weight defaults."""
    seen: list[Candidate] = []
    for candidate in candidates:
        seen.append(candidate)
        yield candidate
    for step, factor in enumerate((0.5, 2.0, 0.25, 4.0), start=1):
        for candidate in seen:
            program = copy_program(candidate.program)
            changed = []
            for pname, spec in program.params.items():
                value = min(float(spec["high"]), max(float(spec["low"]), float(spec["default"]) * factor))
                if value != spec["default"]:
                    spec["default"] = value
                    changed.append(pname)
            if not changed:
                continue
            yield Candidate(
                program,
                candidate.enhancers,
                f"{candidate.name}-v{step}",
                candidate.rationale
                + f" Variant: weight defaults ×{factor:g} ({', '.join(changed)}) to start "
                "the search elsewhere in the same ranges.",
                candidate.sources,
                candidate.parent,
                [*candidate.trace, f"defaults ×{factor:g}"],
            )


def _trace_prompt(
    task: TaskCard,
    mode: str,
    query: str,
    chunks: Sequence[RetrievedChunk],
    terms: Sequence[RewardTerm],
    recommended: Sequence[EnhancerCombo],
    generation: int,
    feedback: Sequence[DesignFeedback] | None,
) -> str:
    lines = [
        f"# {HONESTY}",
        "",
        f"No prompt was sent to a language model. Task {task.id}, action mode {mode}, generation {generation}.",
        "",
        "## Retrieval query",
        "",
        query,
        "",
        "## Retrieved chunks",
        "",
    ]
    lines += [f"- {c.chunk_id} ({c.kind}, score {c.score:.3f}): {c.title}" for c in chunks] or ["- none"]
    lines += ["", "## Applicable reward terms (ranked)", ""]
    lines += [f"- {t.name} ({t.role}, {t.doc_id}): {t.expression}" for t in terms] or ["- none"]
    lines += ["", f"## Recommended enhancers for {mode}", "", _names(recommended)]
    if feedback:
        lines += ["", "## Feedback", ""]
        lines += [f.to_text() for f in feedback]
    return "\n".join(lines) + "\n"
