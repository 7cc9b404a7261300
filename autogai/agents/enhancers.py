"""TD3's four enhancer slots as data: every alternative of a slot is declared once, here.

A declaration (:class:`Enhancer`) names the slot it fills and its name there (the values of
:class:`~autogai.core.types.EnhancerCombo`), the factory that builds its module, and, for an enhancer with
knobs, its nested configuration: a frozen dataclass whose fields are the knobs, each made with :func:`knob`
from its default, the distribution the search samples it from and whether agents of one population may
differ in it. Everything else is derived from :data:`ENHANCERS`:

- :class:`~autogai.agents.config.TD3Config` holds one nested configuration per enhancer with knobs; its flat
  names (``diffusion_steps``, ``vae_beta``, ...: the enhancer's key, ``_``, the knob) are what files, the
  command line (``--set``), hyperparameter hints and Optuna trials use;
- the search's sampler tables (:mod:`autogai.search.space` turns the distributions, plain data here since the
  agents layer does not import Optuna, into Optuna suggestions);
- module construction in :meth:`~autogai.agents.td3.TD3Population._build_modules`.

``docs/agents.md`` shows how to add a knob or an enhancer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from autogai.agents.backbones import MLPBackbone, TransformerBackbone, default_token_groups
from autogai.agents.critics import BellmanDiscriminator, GANCritic, TwinCritic
from autogai.agents.encoders import VAEEncoder
from autogai.agents.policies import DeterministicHead, DiffusionPolicy
from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int, check_range

# --- distributions: plain data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatRange:
    """A float sampled from [low, high] (log-uniformly with ``log``)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``options``; ``small`` replaces them under a budget's ``enhancer_scale="small"``."""

    options: tuple[Any, ...]
    small: tuple[Any, ...] | None = None

    def for_scale(self, small: bool) -> tuple[Any, ...]:
        return self.small if small and self.small is not None else self.options


@dataclass(frozen=True)
class Fixed:
    """Not sampled: set to ``value`` (``small`` under ``enhancer_scale="small"``) whenever the enhancer is on;
    ``None`` leaves the knob at its default."""

    value: Any = None
    small: Any = None

    def for_scale(self, small: bool) -> Any:
        return self.small if small and self.small is not None else self.value


Distribution = FloatRange | Choice | Fixed


def knob(
    default: Any,
    *,
    search: Distribution | None = None,
    shape_fixed: Fixed | None = None,
    per_agent: bool = False,
    flat_name: str | None = None,
) -> Any:
    """A field of an enhancer's configuration and its search data.

    ``search``: how a trial sets it (``None``: it keeps its default). ``shape_fixed``: the knob changes tensor
    shapes or schedules, so trials that differ in it train as separate populations; a budget without
    ``shape_search`` sets it to this value instead of sampling it. ``per_agent``: agents of one population may
    differ in it (a scalar that changes no shape). ``flat_name``: its name outside the configuration when
    that is not ``<enhancer key>_<field>``.
    """
    metadata = {"search": search, "shape_fixed": shape_fixed, "per_agent": per_agent, "flat_name": flat_name}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Knob:
    """One knob of an enhancer, as the rest of the package sees it (see :func:`knob`)."""

    field: str
    flat_name: str
    default: Any
    search: Distribution | None
    shape_fixed: Fixed | None
    per_agent: bool


# --- module construction -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotInputs:
    """What every factory may build from: the population's shapes, widths and weight generators."""

    obs_dim: int
    action_dim: int
    net_arch: tuple[int, ...]
    generators: Sequence[torch.Generator]
    token_groups: list[np.ndarray] | None
    feat_dim: int = 0
    """Width of the features the encoder slot hands on (0 until the encoder is built)."""
    encoded: bool = False
    """Whether the features are an encoder's latent rather than the observation."""


# Factories by slot: encoder (inputs, config) -> (module or None, feature width); backbone (inputs, config)
# -> module; policy (inputs, config) -> head; critic (inputs, config) -> (critic, discriminator or None).
Factory = Callable[[SlotInputs, Any], Any]


@dataclass(frozen=True)
class Enhancer:
    """One alternative of one slot."""

    slot: str
    """The :class:`~autogai.core.types.EnhancerCombo` field it fills: encoder, backbone, policy or critic."""
    name: str
    """Its value in that field (``vae``, ``transformer``, ...)."""
    build: Factory
    key: str | None = None
    """Prefix of its knobs' flat names; ``None`` for an alternative without knobs."""
    config: type | None = None
    """Its configuration dataclass (fields made with :func:`knob`); ``None`` without knobs."""

    @property
    def knobs(self) -> tuple[Knob, ...]:
        if self.config is None:
            return ()
        return tuple(
            Knob(
                field=f.name,
                flat_name=f.metadata["flat_name"] or f"{self.key}_{f.name}",
                default=f.default,
                search=f.metadata["search"],
                shape_fixed=f.metadata["shape_fixed"],
                per_agent=f.metadata["per_agent"],
            )
            for f in dataclasses.fields(self.config)
        )


# --- the declarations ----------------------------------------------------------------------------------------


def _no_encoder(inputs: SlotInputs, config: None) -> tuple[None, int]:
    return None, inputs.obs_dim


def _mlp_backbone(inputs: SlotInputs, config: None) -> nn.Module:
    return MLPBackbone(inputs.feat_dim, inputs.net_arch, inputs.generators)


def _deterministic_head(inputs: SlotInputs, config: None) -> nn.Module:
    return DeterministicHead(inputs.net_arch[-1], inputs.action_dim, inputs.generators)


def _twin_critic(inputs: SlotInputs, config: None) -> tuple[nn.Module, None]:
    return TwinCritic(inputs.feat_dim, inputs.action_dim, inputs.net_arch, inputs.generators), None


@dataclass(frozen=True)
class VAEConfig:
    """The VAE state encoder: the actor and critics read a latent of the observation."""

    latent_dim: int = knob(32, search=Choice((16, 32, 64), small=(8, 16)), shape_fixed=Fixed(16))
    """Latent size (the paper reduces the channel state to a small latent)."""
    hidden: int = knob(128, search=Fixed(small=64))
    """Hidden width of the encoder and decoder (one hidden layer each)."""
    beta: float = knob(0.1, search=FloatRange(0.01, 1.0, log=True), per_agent=True)
    """Weight of the KL term in the ELBO (beta-VAE); 1.0 is the plain ELBO."""
    sample_latent: bool = knob(False)
    """Actor and critics consume a sampled latent instead of the latent mean."""
    critic_gradients: bool = knob(False)
    """Let the critics' TD loss also train the encoder (SAC-AE style); the actor always sees detached latents."""

    def __post_init__(self) -> None:
        check_positive_int("vae_latent_dim", self.latent_dim)
        check_positive_int("vae_hidden", self.hidden)
        check_range("vae_beta", self.beta, 0.0)
        check_choice("vae_sample_latent", self.sample_latent, (False, True))
        check_choice("vae_critic_gradients", self.critic_gradients, (False, True))


def _vae_encoder(inputs: SlotInputs, config: VAEConfig) -> tuple[nn.Module, int]:
    encoder = VAEEncoder(
        inputs.obs_dim,
        config.latent_dim,
        config.hidden,
        inputs.generators,
        sample_latent=config.sample_latent,
    )
    return encoder, config.latent_dim


@dataclass(frozen=True)
class TransformerConfig:
    """The Transformer backbone: the actor's trunk attends over tokens cut from the features."""

    dim: int = knob(16, search=Choice((32, 64), small=(16, 32)), shape_fixed=Fixed(32, small=16))
    """Token embedding width d_model (small: the per-token layers run on B x n_tokens rows)."""
    heads: int = knob(2, search=Fixed(2))
    """Attention heads (must divide transformer_dim)."""
    layers: int = knob(1, search=Choice((1, 2), small=(1,)), shape_fixed=Fixed(1))
    """Encoder blocks (self-attention + feed-forward, pre-LayerNorm)."""
    max_tokens: int = knob(32)
    """Cap on the token sequence length; longer layouts merge runs of adjacent tokens of a group into one
    wider token. The UAV layout (50 antenna tokens + 1) becomes 25 tokens of two adjacent elements + 1,
    which keeps the Transformer within 3x the cost of plain TD3 (one token per element measured ~3.5x).
    0 = no cap (exactly one token per antenna element / feature)."""

    def __post_init__(self) -> None:
        check_positive_int("transformer_dim", self.dim)
        check_positive_int("transformer_heads", self.heads)
        check_positive_int("transformer_layers", self.layers)
        check_positive_int("transformer_max_tokens", self.max_tokens, allow_zero=True)
        if self.dim % self.heads:
            raise ConfigError(f"transformer_heads={self.heads} must divide transformer_dim={self.dim}")


def _transformer_backbone(inputs: SlotInputs, config: TransformerConfig) -> nn.Module:
    # The env's token layout indexes the observation; on an encoder's latent, one token per latent feature.
    groups = inputs.token_groups if (inputs.token_groups is not None and not inputs.encoded) else None
    return TransformerBackbone(
        inputs.feat_dim,
        groups if groups is not None else default_token_groups(inputs.feat_dim),
        inputs.generators,
        dim=config.dim,
        heads=config.heads,
        layers=config.layers,
        out_dim=inputs.net_arch[-1],
        max_tokens=config.max_tokens,
    )


@dataclass(frozen=True)
class DiffusionConfig:
    """The diffusion policy (GDM): a denoising diffusion actor head on the state embedding."""

    steps: int = knob(5, search=Choice((5, 10), small=(3, 5)), shape_fixed=Fixed(5))
    """Denoising steps T of the reverse chain."""
    hidden: int = knob(64, search=Fixed(small=32))
    """Width of the denoiser f(x_t, t, state). Small on purpose: it runs T times per action, while the
    state embedding (the actor trunk) runs once per chain."""
    beta_min: float = knob(0.1)
    """VP schedule's beta_min (Diffusion-QL)."""
    beta_max: float = knob(10.0)
    """VP schedule's beta_max (Diffusion-QL)."""
    bc_weight: float = knob(0.0, search=Choice((0.0, 0.1, 1.0)), per_agent=True, flat_name="bc_weight")
    """Weight of Diffusion-QL's denoising (behaviour-cloning) loss on replay actions, relative to the Q
    scale (the actor loss is -Q + bc_weight * mean|Q| * bc_loss). 0 switches the regulariser off."""

    def __post_init__(self) -> None:
        check_positive_int("diffusion_steps", self.steps)
        check_positive_int("diffusion_hidden", self.hidden)
        check_range("diffusion_beta_min", self.beta_min, 0.0, low_inclusive=False)
        check_range("diffusion_beta_max", self.beta_max, self.beta_min)
        check_range("bc_weight", self.bc_weight, 0.0)


def _diffusion_head(inputs: SlotInputs, config: DiffusionConfig) -> nn.Module:
    return DiffusionPolicy(
        inputs.net_arch[-1],
        inputs.action_dim,
        inputs.generators,
        hidden=config.hidden,
        steps=config.steps,
        beta_min=config.beta_min,
        beta_max=config.beta_max,
    )


GAN_LOSSES = ("bce", "wasserstein")


@dataclass(frozen=True)
class GANConfig:
    """The GAN critic: twin generator critics G(s, a, z) with a discriminator on Bellman targets."""

    adv_weight: float = knob(0.1, search=FloatRange(0.01, 1.0, log=True), per_agent=True)
    """Weight of the adversarial term in the generator (critic) loss, next to the TD error."""
    noise_dim: int = knob(4)
    """Size of the noise input z of each generator critic."""
    z_samples: int = knob(0)
    """z samples averaged for the actor's expected Q; 0 uses z = 0 (the noise mean), cheapest."""
    discriminator_hidden: int = knob(64)
    """Width of the discriminator's two hidden layers. It only judges a scalar q given (s, a), so it is
    kept narrower than the critics (keeps the GAN critic well within 3x the cost of plain TD3)."""
    loss: str = knob("bce")
    """Adversarial loss: ``bce`` (non-saturating, BCEWithLogits) or ``wasserstein``."""

    def __post_init__(self) -> None:
        check_range("gan_adv_weight", self.adv_weight, 0.0)
        check_positive_int("gan_noise_dim", self.noise_dim)
        check_positive_int("gan_z_samples", self.z_samples, allow_zero=True)
        check_positive_int("gan_discriminator_hidden", self.discriminator_hidden)
        check_choice("gan_loss", self.loss, GAN_LOSSES)


def _gan_critic(inputs: SlotInputs, config: GANConfig) -> tuple[nn.Module, nn.Module]:
    critic = GANCritic(
        inputs.feat_dim,
        inputs.action_dim,
        inputs.net_arch,
        inputs.generators,
        noise_dim=config.noise_dim,
        z_samples=config.z_samples,
    )
    widths = (config.discriminator_hidden, config.discriminator_hidden)
    discriminator = BellmanDiscriminator(inputs.feat_dim, inputs.action_dim, widths, inputs.generators)
    return critic, discriminator


ENHANCERS: tuple[Enhancer, ...] = (
    Enhancer("encoder", "none", _no_encoder),
    Enhancer("backbone", "mlp", _mlp_backbone),
    Enhancer("policy", "deterministic", _deterministic_head),
    Enhancer("critic", "mlp", _twin_critic),
    # With knobs, in the order their flat names appear in TD3Config.to_dict and their knobs are sampled.
    Enhancer("policy", "diffusion", _diffusion_head, key="diffusion", config=DiffusionConfig),
    Enhancer("encoder", "vae", _vae_encoder, key="vae", config=VAEConfig),
    Enhancer("backbone", "transformer", _transformer_backbone, key="transformer", config=TransformerConfig),
    Enhancer("critic", "gan", _gan_critic, key="gan", config=GANConfig),
)
"""Every alternative of every slot (the EnhancerCombo names each slot's default and enhancers)."""

CONFIGURED: tuple[Enhancer, ...] = tuple(e for e in ENHANCERS if e.config is not None)
"""The enhancers with knobs: one nested configuration each in TD3Config."""


def enhancer(slot: str, name: str) -> Enhancer:
    """The declaration filling ``slot`` with ``name`` (``enhancer("policy", "diffusion")``)."""
    for candidate in ENHANCERS:
        if candidate.slot == slot and candidate.name == name:
            return candidate
    raise ConfigError(f"no enhancer {name!r} is declared for the {slot} slot (autogai/agents/enhancers.py)")


def active(combo: Any) -> list[Enhancer]:
    """The enhancers with knobs that an :class:`~autogai.core.types.EnhancerCombo` switches on, in order."""
    return [e for e in CONFIGURED if getattr(combo, e.slot) == e.name]
