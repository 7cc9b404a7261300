"""Plain-data types shared across layers: the enhancer combination and the design.

Both are JSON-serialisable so a design can live in ``design.json``, in an Optuna study's user attributes
and in an LLM prompt without translation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from autogai.core.errors import ConfigError

SLOT_CHOICES: dict[str, tuple[str, ...]] = {
    "encoder": ("none", "vae"),
    "backbone": ("mlp", "transformer"),
    "policy": ("deterministic", "diffusion"),
    "critic": ("mlp", "gan"),
}

# Short names of the paper's variants (arXiv 2405.20568, Fig. 4) -> the slot they switch on.
_SHORT_NAMES: dict[str, tuple[str, str]] = {
    "gdm": ("policy", "diffusion"),
    "diffusion": ("policy", "diffusion"),
    "gan": ("critic", "gan"),
    "vae": ("encoder", "vae"),
    "transformer": ("backbone", "transformer"),
}


@dataclass(frozen=True)
class EnhancerCombo:
    """Which generative-model enhancer fills each of TD3's four slots.

    Plain TD3 is ``none/mlp/deterministic/mlp``; the paper's GDM-GAN-Transformer-VAE is
    ``vae/transformer/diffusion/gan``.
    """

    encoder: str = "none"
    """State encoder: ``none`` or ``vae`` (latent state from a VAE trained with the ELBO)."""
    backbone: str = "mlp"
    """Actor trunk: ``mlp`` or ``transformer`` (self-attention over state tokens)."""
    policy: str = "deterministic"
    """Actor head: ``deterministic`` (TD3's tanh MLP) or ``diffusion`` (a denoising diffusion actor)."""
    critic: str = "mlp"
    """Critics: ``mlp`` (TD3's twin Q) or ``gan`` (generator critics with an adversarial Bellman term)."""

    def __post_init__(self) -> None:
        for slot, choices in SLOT_CHOICES.items():
            value = getattr(self, slot)
            if value not in choices:
                valid = ", ".join(choices)
                raise ConfigError(f"enhancer slot {slot}={value!r} is not valid; choose one of: {valid}")

    @classmethod
    def parse(cls, text: str | EnhancerCombo | Mapping[str, str]) -> EnhancerCombo:
        """Parse ``plain``, ``gdm+gan+transformer+vae`` (any order), or ``vae/transformer/diffusion/gan``.

        A mapping ``{"policy": "diffusion", ...}`` is accepted too (missing slots keep their defaults).
        """
        if isinstance(text, EnhancerCombo):
            return text
        if isinstance(text, Mapping):
            unknown = set(text) - set(SLOT_CHOICES)
            if unknown:
                raise ConfigError(
                    f"unknown enhancer slot(s) {sorted(unknown)}; slots are: {', '.join(SLOT_CHOICES)}"
                )
            return cls(**{k: str(v) for k, v in text.items()})
        spec = str(text).strip().lower()
        if spec in ("", "plain", "td3", "none"):
            return cls()
        if "/" in spec:
            parts = spec.split("/")
            if len(parts) != 4:
                raise ConfigError(
                    f"enhancers {text!r}: slot-by-slot form needs 4 parts encoder/backbone/policy/critic"
                )
            return cls(*parts)
        slots: dict[str, str] = {}
        for token in spec.replace(",", "+").replace("-", "+").split("+"):
            token = token.strip()
            if token in ("", "plain", "td3"):
                continue
            if token not in _SHORT_NAMES:
                valid = ", ".join(["plain", *sorted(set(_SHORT_NAMES) - {"diffusion"})])
                raise ConfigError(f"unknown enhancer {token!r} in {text!r}; valid names: {valid}")
            slot, value = _SHORT_NAMES[token]
            slots[slot] = value
        return cls(**slots)

    @property
    def short_name(self) -> str:
        """``plain`` or the paper's ``gdm+gan+transformer+vae`` order."""
        names = []
        if self.policy == "diffusion":
            names.append("gdm")
        if self.critic == "gan":
            names.append("gan")
        if self.backbone == "transformer":
            names.append("transformer")
        if self.encoder == "vae":
            names.append("vae")
        return "+".join(names) or "plain"

    @property
    def slot_name(self) -> str:
        return f"{self.encoder}/{self.backbone}/{self.policy}/{self.critic}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def all_combinations(cls) -> list[EnhancerCombo]:
        """All 16 combinations, plain first."""
        import itertools

        return [cls(*values) for values in itertools.product(*SLOT_CHOICES.values())]

    def __str__(self) -> str:
        return self.short_name


@dataclass(frozen=True)
class Design:
    """One candidate: a reward program plus an enhancer combination, with where it came from.

    ``id`` is a stable content hash of what determines behaviour (reward source, enhancers, hints),
    so the same design proposed twice is recognised and never evaluated twice.
    """

    reward_source: str
    """The reward program (Python source in the public contract) exactly as it will be run."""
    enhancers: EnhancerCombo = field(default_factory=EnhancerCombo)
    rationale: str = ""
    """Why the proposer believes this design will do well."""
    sources: tuple[str, ...] = ()
    """Knowledge-base chunk/document ids the proposer used."""
    parent: str | None = None
    """Id of the design this one was derived from (reflection), if any."""
    hyperparameter_hints: Mapping[str, Any] = field(default_factory=dict)
    """Optional TD3/enhancer hyperparameters to try first (enqueued as the first Optuna trial)."""
    proposer: str = "offline"
    """Who proposed it: ``offline``, ``baseline``, ``user`` or the LLM backend string."""
    generation: int = 0
    name: str = ""
    """A short human-friendly label (e.g. ``rate-power-shaping``)."""

    @property
    def id(self) -> str:
        payload = json.dumps(
            {
                "reward": self.reward_source.strip(),
                "enhancers": self.enhancers.slot_name,
                "hints": dict(sorted(self.hyperparameter_hints.items())),
            },
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
        return f"d-{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "reward_source": self.reward_source,
            "enhancers": self.enhancers.to_dict(),
            "enhancers_short": self.enhancers.short_name,
            "rationale": self.rationale,
            "sources": list(self.sources),
            "parent": self.parent,
            "hyperparameter_hints": dict(self.hyperparameter_hints),
            "proposer": self.proposer,
            "generation": self.generation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Design:
        return cls(
            reward_source=str(data["reward_source"]),
            enhancers=EnhancerCombo.parse(data.get("enhancers", "plain")),
            rationale=str(data.get("rationale", "")),
            sources=tuple(data.get("sources", ())),
            parent=data.get("parent"),
            hyperparameter_hints=dict(data.get("hyperparameter_hints", {})),
            proposer=str(data.get("proposer", "offline")),
            generation=int(data.get("generation", 0)),
            name=str(data.get("name", "")),
        )


@dataclass(frozen=True)
class ComponentSummary:
    """Statistics of one reward component over training (Eureka-style feedback)."""

    mean: float
    min: float
    max: float
    samples: tuple[float, ...] = ()
    """About ten values subsampled evenly over training, oldest first."""
    fitness_correlation: float | None = None
    """Correlation of the component's episode sums with episode fitness, where known."""


@dataclass(frozen=True)
class DesignFeedback:
    """How a design did, compact and text-ready: the pipeline writes it, proposers read it."""

    design_id: str
    name: str
    enhancers: str
    reward_source: str
    score_mean: float | None = None
    score_ci: tuple[float, float] | None = None
    baseline_score: float | None = None
    oracle_fitness: float | None = None
    components: Mapping[str, ComponentSummary] = field(default_factory=dict)
    violation_rates: Mapping[str, float] = field(default_factory=dict)
    curve_summary: str = ""
    best_params: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The summary a proposer puts into its prompt."""

        def fmt(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3g}"

        lines = [f"Design {self.name or self.design_id} ({self.design_id}), enhancers {self.enhancers}:"]
        if self.score_mean is not None:
            ci = f" [95% CI {fmt(self.score_ci[0])}, {fmt(self.score_ci[1])}]" if self.score_ci else ""
            ref = f"; baseline design {fmt(self.baseline_score)}" if self.baseline_score is not None else ""
            orc = f"; oracle {fmt(self.oracle_fitness)}" if self.oracle_fitness is not None else ""
            lines.append(f"  fitness score {fmt(self.score_mean)}{ci}{ref}{orc}")
        else:
            lines.append("  not scored")
        for name, c in self.components.items():
            corr = (
                f", corr. with fitness {c.fitness_correlation:+.2f}"
                if c.fitness_correlation is not None
                else ""
            )
            trace = ", ".join(f"{v:.3g}" for v in c.samples)
            lines.append(
                f"  component {name}: mean {c.mean:.3g}, min {c.min:.3g}, max {c.max:.3g}{corr}; over training [{trace}]"
            )
        if self.violation_rates:
            rates = ", ".join(f"{k} {v:.1%}" for k, v in self.violation_rates.items())
            lines.append(f"  constraint violations per step: {rates}")
        if self.curve_summary:
            lines.append(f"  learning curve: {self.curve_summary}")
        if self.best_params:
            params = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.best_params.items()
            )
            lines.append(f"  best hyperparameters: {params}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        return "\n".join(lines)
