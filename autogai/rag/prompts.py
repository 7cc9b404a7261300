"""Prompt templates (``prompts/*.md``) and the helpers that fill them from a task card, retrieved
knowledge and feedback.

Templates are ``string.Template`` text (``$name`` placeholders, ``$$`` for a literal dollar) whose header
comment names every variable (``variables: a, b, c``). Loading checks that the header and the body agree;
rendering fails with an error naming the missing variable, so a template and the code that fills it cannot
drift apart silently. Prompt text is versioned with the code in ``prompts/``.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import ConfigError
from autogai.core.paths import prompts_dir
from autogai.core.text import escape_control

if TYPE_CHECKING:
    from autogai.core.types import Design, DesignFeedback, EnhancerCombo
    from autogai.tasks.card import TaskCard

TEMPLATE_NAMES: tuple[str, ...] = (
    "system",
    "propose",
    "reflect",
    "repair",
    "enhancer_menu",
    "enhancer_menu_compact",
    "metric_legend",
    "advice_propose",
    "advice_reflect",
    "reply_format_markdown",
    "reply_format_json",
)
"""Every template the proposers use (files ``prompts/<name>.md``)."""

HINT_KEYS: tuple[str, ...] = (
    "learning_rate",
    "batch_size",
    "buffer_size",
    "learning_starts",
    "tau",
    "gamma",
    "train_freq",
    "gradient_steps",
    "policy_delay",
    "target_policy_noise",
    "target_noise_clip",
    "exploration_noise",
    "net_arch",
    "diffusion_steps",
    "diffusion_hidden",
    "bc_weight",
    "vae_latent_dim",
    "vae_beta",
    "transformer_dim",
    "transformer_heads",
    "transformer_layers",
    "gan_adv_weight",
    "gan_noise_dim",
    "gan_z_samples",
)
"""TD3Config field names a design may suggest as hyperparameter hints (SB3 names plus enhancer knobs)."""

_HEADER = re.compile(r"\A\s*<!--(.*?)-->\s*\n?", re.DOTALL)
_VARIABLES_LINE = re.compile(r"^\s*variables:\s*(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """One template file: its name, body (header stripped) and the variables it declares."""

    name: str
    body: str
    variables: tuple[str, ...]
    path: Path | None = None

    def render(self, **values: Any) -> str:
        """Fill every declared variable; a missing one raises :class:`ConfigError` naming it."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ConfigError(
                f"prompt template {self.name!r} needs variable(s) {', '.join(missing)} "
                f"(declared: {', '.join(self.variables) or 'none'})"
            )
        text_values = {k: _as_text(values[k]) for k in self.variables}
        try:
            return string.Template(self.body).substitute(text_values).strip() + "\n"
        except KeyError as exc:  # pragma: no cover - load_template checks declared == used
            raise ConfigError(f"prompt template {self.name!r}: undeclared variable {exc}") from exc


def _as_text(value: Any) -> str:
    if isinstance(value, str):  # program text and reasons: no control characters reach the model
        return escape_control(value.strip(), keep_newlines=True)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, indent=None, default=str)
    return str(value)


def parse_template(name: str, text: str, path: Path | None = None) -> PromptTemplate:
    """Parse a template's header (``variables: a, b``) and check it against the ``$names`` in the body."""
    header = _HEADER.match(text)
    if header is None:
        raise ConfigError(f"prompt template {name!r} has no header comment (<!-- ... variables: ... -->)")
    declared_match = _VARIABLES_LINE.search(header.group(1))
    if declared_match is None:
        raise ConfigError(f"prompt template {name!r}: header does not name its variables ('variables: ...')")
    declared_text = declared_match.group(1).strip()
    declared = tuple(
        v.strip() for v in declared_text.split(",") if v.strip() and declared_text.strip() != "(none)"
    )
    body = text[header.end() :]
    template = string.Template(body)
    if not template.is_valid():
        raise ConfigError(f"prompt template {name!r}: invalid $-placeholder (write $$ for a literal $)")
    used = tuple(dict.fromkeys(template.get_identifiers()))
    undeclared = [v for v in used if v not in declared]
    unused = [v for v in declared if v not in used]
    if undeclared or unused:
        raise ConfigError(
            f"prompt template {name!r}: header and body disagree "
            f"(used but not declared: {undeclared or 'none'}; declared but not used: {unused or 'none'})"
        )
    return PromptTemplate(name=name, body=body, variables=declared, path=path)


@functools.lru_cache(maxsize=64)
def _load_cached(path: Path, mtime: float) -> PromptTemplate:
    return parse_template(path.stem, path.read_text(encoding="utf-8"), path)


def load_template(name: str, directory: Path | None = None) -> PromptTemplate:
    """Load ``<directory>/<name>.md`` (default: the shipped ``prompts/``)."""
    folder = Path(directory) if directory is not None else prompts_dir()
    path = folder / f"{name}.md"
    if not path.is_file():
        valid = ", ".join(sorted(p.stem for p in folder.glob("*.md"))) or "none"
        raise ConfigError(f"prompt template {name!r} not found in {folder} (available: {valid})")
    return _load_cached(path.resolve(), path.stat().st_mtime)


def render_template(name: str, directory: Path | None = None, /, **values: Any) -> str:
    """Load and render a template in one call."""
    return load_template(name, directory).render(**values)


# ---------------------------------------------------------------------------------------------------
# Variable builders: what the proposers put into the templates.


_ACTION_SPACES: dict[tuple[str, str, str | None], str] = {}


def _action_space_text(task: TaskCard, action_mode: str | None) -> str:
    key = (task.id, task.env_id, action_mode)
    if key not in _ACTION_SPACES:
        overrides = {"action_mode": action_mode} if action_mode and task.action_modes else {}
        try:
            env = task.make_env(**overrides)
        except Exception:  # an env that cannot be built here still gets a prompt
            return action_mode or "the environment's own action space"
        try:
            _ACTION_SPACES[key] = str(env.action_space)
        finally:
            env.close()
    return _ACTION_SPACES[key]


def resolve_action_mode(task: TaskCard, action_mode: str | None) -> str:
    """The action mode a design is for: the requested one, the card's, or ``continuous``."""
    if action_mode:
        if task.action_modes and action_mode not in task.action_modes:
            valid = ", ".join(task.action_modes)
            raise ConfigError(f"task {task.id} has no action mode {action_mode!r}; valid: {valid}")
        return action_mode
    card_mode = task.env_kwargs.get("action_mode") if task.env_kwargs else None
    if card_mode:
        return str(card_mode)
    return task.action_modes[0] if task.action_modes else "continuous"


def describe_action_space(task: TaskCard, action_mode: str | None) -> str:
    """``"<mode>: <gymnasium space>"`` for prompts (falls back to the mode name)."""
    mode = resolve_action_mode(task, action_mode)
    space = _action_space_text(task, mode if task.action_modes else None)
    return f"{mode}: {space}" if space != mode else mode


def task_variables(task: TaskCard) -> dict[str, str]:
    """Template variables that come from the task card."""
    return {
        "task_id": task.id,
        "task_title": task.title,
        "task_description": task.description.strip(),
        "metrics_table": task.metrics_table(),
        "fitness_description": task.fitness_description.strip(),
        "baseline_reward": task.baseline_reward.strip(),
    }


LEFT_OUT = "none (left out to fit the model's context window)"


def format_retrieved(chunks: Sequence[Any], *, max_chars: int = 1200, trimmed: bool = False) -> str:
    """Retrieved chunks as ``[id] title`` blocks (the ids the LLM cites); ``none`` when empty."""
    if not chunks:
        return LEFT_OUT if trimmed else "none (the knowledge base returned nothing for this task)"
    blocks = []
    for chunk in chunks:
        text = str(getattr(chunk, "text", "")).strip()
        if len(text) > max_chars:
            text = text[:max_chars].rsplit(" ", 1)[0] + " ..."
        kind = getattr(chunk, "kind", "")
        title = getattr(chunk, "title", "")
        blocks.append(f"[{chunk.chunk_id}] {title} ({kind})\n{text}")
    return "\n\n".join(blocks)


def format_feedback(feedback: Iterable[DesignFeedback], *, trimmed: bool = False) -> str:
    """Every feedback block (``DesignFeedback.to_text()``) followed by the design's reward program."""
    blocks = []
    for item in feedback:
        blocks.append(f"{item.to_text()}\n\n```python\n{item.reward_source.strip()}\n```")
    return "\n\n".join(blocks) if blocks else (LEFT_OUT if trimmed else "none")


def format_past_results(
    results: Sequence[Any] = (), designs: Sequence[Design] = (), *, trimmed: bool = False
) -> str:
    """Past good designs (knowledge-base results collection and/or explicit designs) for the prompt."""
    blocks = []
    for result in results:
        design = getattr(result, "design", {}) or {}
        score = getattr(result, "score", None)
        summary = str(getattr(result, "summary", "")).strip()
        head = f"{design.get('name') or design.get('id', 'design')} (enhancers {design.get('enhancers_short', '?')}"
        head += f", score {score:.3g})" if isinstance(score, (int, float)) else ")"
        source = str(design.get("reward_source", "")).strip()
        blocks.append(f"{head}: {summary}\n```python\n{source}\n```" if source else f"{head}: {summary}")
    for d in designs:
        blocks.append(
            f"{d.name or d.id} (enhancers {d.enhancers.short_name}): {d.rationale.strip()}\n"
            f"```python\n{d.reward_source.strip()}\n```"
        )
    return "\n\n".join(blocks) if blocks else (LEFT_OUT if trimmed else "none yet")


# ---------------------------------------------------------------------------------------------------
# Fitting a prompt to the model's context window.

EXCERPT_CHARS: tuple[int, ...] = (1200, 600, 300)
"""Lengths knowledge excerpts are cut to, one step at a time, before any is left out."""


@dataclass(frozen=True)
class PromptParts:
    """The parts of a prompt that may be trimmed, each ranked best first.

    Everything else (format instructions, the task, the metric table, the reward contract in the system
    message) is fixed and never cut.
    """

    chunks: tuple[Any, ...] = ()
    feedback: tuple[DesignFeedback, ...] = ()
    past_results: tuple[Any, ...] = ()
    past_designs: tuple[Design, ...] = ()
    excerpt_chars: int = EXCERPT_CHARS[0]
    compact: bool = False
    """The enhancer menu as one paragraph instead of its table; no optional hyperparameters field."""
    guidance: bool = True
    """The metric-intent legend and the advice paragraphs."""
    left_out: tuple[str, ...] = ()

    @property
    def trimmed(self) -> bool:
        return bool(self.left_out)


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt fitted to a token budget: its messages, its size before and after, what was left out."""

    messages: list[Any]
    parts: PromptParts
    tokens: int
    tokens_before: int
    budget: int
    left_out: tuple[str, ...] = field(default_factory=tuple)

    def note(self, context: str) -> str:
        """One line for the proposal's notes and the prompt record (empty when nothing was left out)."""
        if not self.left_out:
            return ""
        return (
            f"prompt fitted to {context}: about {self.tokens_before} -> {self.tokens} tokens "
            f"(budget {self.budget}); left out: {'; '.join(self.left_out)}"
        )


def _feedback_rank(item: DesignFeedback) -> float:
    return item.score_mean if isinstance(item.score_mean, (int, float)) else float("-inf")


def _trim_steps(parts: PromptParts) -> Iterable[PromptParts]:
    """Ever smaller versions of ``parts``: shorter excerpts, no past results, a one-paragraph enhancer menu,
    no guidance prose, then excerpts and feedback left out one by one, the lowest-ranked first."""
    current = parts
    for chars in EXCERPT_CHARS:
        if current.chunks and chars < current.excerpt_chars:
            current = replace(
                current,
                excerpt_chars=chars,
                left_out=(*current.left_out, f"knowledge excerpts cut to {chars} characters"),
            )
            yield current
    while current.past_designs:
        last = current.past_designs[-1]
        current = replace(
            current,
            past_designs=current.past_designs[:-1],
            left_out=(*current.left_out, f"earlier design {last.name or last.id}"),
        )
        yield current
    while current.past_results:
        last = current.past_results[-1]
        name = (getattr(last, "design", {}) or {}).get("name") or "a past result"
        current = replace(
            current,
            past_results=current.past_results[:-1],
            left_out=(*current.left_out, f"past result {name}"),
        )
        yield current
    current = replace(
        current,
        compact=True,
        left_out=(*current.left_out, "the enhancer table (one paragraph instead), the hyperparameters field"),
    )
    yield current
    current = replace(
        current, guidance=False, left_out=(*current.left_out, "the metric-intent legend and the advice")
    )
    yield current
    while current.chunks:
        last = current.chunks[-1]
        current = replace(
            current,
            chunks=current.chunks[:-1],
            left_out=(*current.left_out, f"knowledge excerpt {getattr(last, 'chunk_id', '?')}"),
        )
        yield current
    ranked = sorted(current.feedback, key=_feedback_rank, reverse=True)
    while ranked:
        worst = ranked.pop()
        current = replace(
            current,
            feedback=tuple(f for f in current.feedback if f is not worst),
            left_out=(*current.left_out, f"feedback on design {worst.name or worst.design_id}"),
        )
        yield current


def fit_prompt(
    render: Callable[[PromptParts], list[Any]],
    parts: PromptParts,
    *,
    budget: int,
    count: Callable[[list[Any]], int],
    context: str,
    last_resort_budget: int | None = None,
) -> FittedPrompt:
    """The largest version of the prompt that fits ``budget`` tokens.

    ``render`` turns parts into chat messages and ``count`` measures them. When everything that may go
    has gone and the prompt is still over ``budget``, it may take up to ``last_resort_budget`` (the
    caller then shortens the reply). Raises :class:`ConfigError` when even that is too small for the
    fixed parts (``context`` names the window for the message).
    """
    messages = render(parts)
    before = tokens = count(messages)
    current = parts
    for smaller in _trim_steps(parts):
        if tokens <= budget:
            break
        current = smaller
        messages = render(current)
        tokens = count(messages)
    limit = max(budget, last_resort_budget or budget)
    if tokens > limit:
        raise ConfigError(
            f"the prompt needs about {tokens} tokens even with every excerpt, feedback block and past "
            f"result left out, but {context} leaves at most {limit} for it; serve the model with a larger "
            "context (llama.cpp --n_ctx, Ollama num_ctx) and pass --llm-context, or use a larger model"
        )
    return FittedPrompt(messages, current, tokens, before, budget, current.left_out)


def format_recommendations(recommended: Sequence[EnhancerCombo]) -> str:
    if not recommended:
        return "- no recommendation in the knowledge base; plain TD3 is the safe default"
    return "\n".join(f"{i}. {combo.short_name}" for i, combo in enumerate(recommended, start=1))


def render_enhancer_menu(
    task: TaskCard,
    action_mode: str | None,
    recommended: Sequence[EnhancerCombo],
    directory: Path | None = None,
    *,
    compact: bool = False,
) -> str:
    """The enhancer choices: the full table, or one paragraph (``compact``) for a small context window."""
    if compact:
        return render_template(
            "enhancer_menu_compact",
            directory,
            action_space=describe_action_space(task, action_mode),
            recommended=", ".join(c.short_name for c in recommended) or "plain",
        )
    return render_template(
        "enhancer_menu",
        directory,
        action_space=describe_action_space(task, action_mode),
        recommended=format_recommendations(recommended),
    )


def render_reply_format(
    n_designs: int, *, structured: bool, directory: Path | None = None, compact: bool = False
) -> str:
    """The reply format block: JSON (its schema goes with the request) or the free-text layout, whose
    optional hyperparameters field is left out when ``compact``."""
    if structured:
        return render_template("reply_format_json", directory, n_designs=n_designs)
    hint_field = (
        ""
        if compact
        else (
            '\nhyperparameters: <optional JSON object of TD3 hyperparameters to try first, e.g. {"learning_rate": 0.0003}>'
        )
    )
    hint_names = "" if compact else f"Valid hyperparameter names: {', '.join(HINT_KEYS)}."
    return render_template(
        "reply_format_markdown", directory, n_designs=n_designs, hint_field=hint_field, hint_names=hint_names
    )


def render_all_for_task(task: TaskCard, directory: Path | None = None) -> dict[str, str]:
    """Render every template with representative values for ``task`` (used by tests and ``--dry-run``)."""
    from autogai.core.types import DesignFeedback, EnhancerCombo

    examples = [EnhancerCombo.parse(name) for name in ("gdm+gan", "gdm", "plain")]
    menu = render_enhancer_menu(task, None, examples, directory)
    reply = render_reply_format(2, structured=False, directory=directory)
    feedback = DesignFeedback(
        design_id="d-0000000000",
        name="baseline",
        enhancers="plain",
        reward_source=task.baseline_reward,
        score_mean=1.0,
    )
    common: Mapping[str, Any] = {
        **task_variables(task),
        "metric_legend": render_template("metric_legend", directory),
        "enhancer_menu": menu,
        "retrieved_knowledge": format_retrieved([]),
        "reply_format": reply,
        "n_designs": 2,
    }
    return {
        "system": render_template("system", directory),
        "enhancer_menu": menu,
        "reply_format_markdown": reply,
        "reply_format_json": render_reply_format(2, structured=True, directory=directory),
        "enhancer_menu_compact": render_enhancer_menu(task, None, examples, directory, compact=True),
        "metric_legend": common["metric_legend"],
        "advice_propose": render_template("advice_propose", directory),
        "advice_reflect": render_template("advice_reflect", directory),
        "propose": render_template(
            "propose",
            directory,
            **common,
            past_results=format_past_results(),
            advice=render_template("advice_propose", directory),
        ),
        "reflect": render_template(
            "reflect",
            directory,
            **common,
            advice=render_template("advice_reflect", directory),
            feedback=format_feedback([feedback]),
            generation=1,
        ),
        "repair": render_template(
            "repair",
            directory,
            task_id=task.id,
            metrics_table=task.metrics_table(),
            program=task.baseline_reward,
            stage="smoke",
            reason="example reason",
            warnings="none",
            attempt=1,
            max_attempts=2,
        ),
    }
