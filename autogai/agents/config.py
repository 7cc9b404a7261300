"""TD3 hyperparameters and enhancer knobs in one frozen, validated, JSON-friendly dataclass.

Field names follow Stable-Baselines3's ``TD3`` so readers recognise them; the enhancer knobs are grouped
below the TD3 ones. Defaults suit the UAV near-field task (106-D normalised observations, 100-slot
episodes) and Pendulum-v1 alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int, check_range

DEVICES = ("cpu", "cuda", "auto")

PER_AGENT_FIELDS: tuple[str, ...] = (
    "learning_rate",
    "tau",
    "gamma",
    "exploration_noise",
    "discrete_exploration",
    "target_policy_noise",
    "target_noise_clip",
    "bc_weight",
    "vae_beta",
    "gan_adv_weight",
)
"""Fields that may differ between the agents of one population: scalars that change no tensor shape and no
schedule. Every other field (widths, batch size, buffer, schedules, diffusion steps, ...) must be equal, so
trials that differ in them train as separate populations."""


@dataclass(frozen=True)
class TD3Config:
    """Hyperparameters of TD3 (Fujimoto et al., ICML 2018) and of the four enhancer slots."""

    # --- TD3 (Stable-Baselines3 names) -------------------------------------------------------------
    learning_rate: float = 1e-3
    """Adam learning rate of actor, critics, VAE and discriminator (SB3's TD3 default)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions. Preallocated, so kept below SB3's 1e6: 1e5 UAV transitions
    already take ~85 MB and no budget of this project runs longer."""
    learning_starts: int = 1_000
    """Transitions collected with uniform random actions before the first update."""
    batch_size: int = 256
    """Minibatch size of every update (SB3 and the TD3 paper use 256/100)."""
    tau: float = 0.005
    """Polyak coefficient of the target networks: target <- (1 - tau) target + tau online."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Env steps between calls of ``train_step`` (the training loop reads it)."""
    gradient_steps: int = 1
    """Updates per ``train_step`` call (the training loop passes it)."""
    policy_delay: int = 2
    """Critic updates per actor and target update (TD3's delayed policy update)."""
    target_policy_noise: float = 0.2
    """Std of the Gaussian smoothing noise added to target actions, in action coordinates [-1, 1]."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to [-target_noise_clip, target_noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian exploration noise added to the actor's coords when acting with explore=True."""
    discrete_exploration: float = 0.3
    """Exploration std on discrete coords (MultiDiscrete levels, way-points) as a fraction of their level
    spacing; with 0.3 a coord leaves its level ~10% of the time. Not an SB3 name (SB3 has no discrete TD3)."""
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor trunk and of each critic (SB3's and the paper's 256x256)."""

    # --- diffusion policy (GDM) -------------------------------------------------------------------
    diffusion_steps: int = 5
    """Denoising steps T of the diffusion actor's reverse chain."""
    diffusion_hidden: int = 64
    """Width of the denoiser f(x_t, t, state). Small on purpose: it runs T times per action, while the
    state embedding (the actor trunk) runs once per chain."""
    diffusion_beta_min: float = 0.1
    """VP schedule's beta_min (Diffusion-QL)."""
    diffusion_beta_max: float = 10.0
    """VP schedule's beta_max (Diffusion-QL)."""
    bc_weight: float = 0.0
    """Weight of Diffusion-QL's denoising (behaviour-cloning) loss on replay actions, relative to the Q
    scale (the actor loss is -Q + bc_weight * mean|Q| * bc_loss). 0 switches the regulariser off."""

    # --- VAE encoder --------------------------------------------------------------------------------
    vae_latent_dim: int = 32
    """Latent size of the VAE state encoder (the paper reduces the channel state to a small latent)."""
    vae_hidden: int = 128
    """Hidden width of the VAE encoder and decoder (one hidden layer each)."""
    vae_beta: float = 0.1
    """Weight of the KL term in the ELBO (beta-VAE); 1.0 is the plain ELBO."""
    vae_sample_latent: bool = False
    """Actor and critics consume a sampled latent instead of the latent mean."""
    vae_critic_gradients: bool = False
    """Let the critics' TD loss also train the encoder (SAC-AE style); the actor always sees detached
    latents."""

    # --- Transformer backbone -----------------------------------------------------------------------
    transformer_dim: int = 16
    """Token embedding width d_model (small: the per-token layers run on B x n_tokens rows)."""
    transformer_heads: int = 2
    """Attention heads (must divide transformer_dim)."""
    transformer_layers: int = 1
    """Encoder blocks (self-attention + feed-forward, pre-LayerNorm)."""
    transformer_max_tokens: int = 32
    """Cap on the token sequence length; longer layouts merge runs of adjacent tokens of a group into one
    wider token. The UAV layout (50 antenna tokens + 1) becomes 25 tokens of two adjacent elements + 1,
    which keeps the Transformer within 3x the cost of plain TD3 (one token per element measured ~3.5x).
    0 = no cap (exactly one token per antenna element / feature)."""

    # --- GAN critic ---------------------------------------------------------------------------------
    gan_adv_weight: float = 0.1
    """Weight of the adversarial term in the generator (critic) loss, next to the TD error."""
    gan_noise_dim: int = 4
    """Size of the noise input z of each generator critic G(s, a, z)."""
    gan_z_samples: int = 0
    """z samples averaged for the actor's expected Q; 0 uses z = 0 (the noise mean), cheapest."""
    gan_discriminator_hidden: int = 64
    """Width of the discriminator's two hidden layers. It only judges a scalar q given (s, a), so it is
    kept narrower than the critics (keeps the GAN critic well within 3x the cost of plain TD3)."""
    gan_loss: str = "bce"
    """Adversarial loss: ``bce`` (non-saturating, BCEWithLogits) or ``wasserstein``."""

    # --- runtime ------------------------------------------------------------------------------------
    device: str = "auto"
    """``cpu``, ``cuda`` or ``auto`` (cuda when available)."""
    torch_threads: int = 1
    """torch intra-op threads set when a population is built. 1 is fastest per process for these small networks and
    leaves the other core to a second trial; raise it for wide networks on an idle machine."""

    def __post_init__(self) -> None:
        if not isinstance(self.net_arch, tuple):
            object.__setattr__(self, "net_arch", tuple(self.net_arch))
        check_range("learning_rate", self.learning_rate, 0.0, 1.0, low_inclusive=False)
        check_positive_int("buffer_size", self.buffer_size)
        check_positive_int("learning_starts", self.learning_starts, allow_zero=True)
        check_positive_int("batch_size", self.batch_size)
        check_range("tau", self.tau, 0.0, 1.0, low_inclusive=False)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_positive_int("train_freq", self.train_freq)
        check_positive_int("gradient_steps", self.gradient_steps)
        check_positive_int("policy_delay", self.policy_delay)
        check_range("target_policy_noise", self.target_policy_noise, 0.0)
        check_range("target_noise_clip", self.target_noise_clip, 0.0)
        check_range("exploration_noise", self.exploration_noise, 0.0)
        check_range("discrete_exploration", self.discrete_exploration, 0.0)
        if not self.net_arch:
            raise ConfigError("net_arch=() must name at least one hidden layer width")
        for width in self.net_arch:
            check_positive_int("net_arch entry", width)
        check_positive_int("diffusion_steps", self.diffusion_steps)
        check_positive_int("diffusion_hidden", self.diffusion_hidden)
        check_range("diffusion_beta_min", self.diffusion_beta_min, 0.0, low_inclusive=False)
        check_range("diffusion_beta_max", self.diffusion_beta_max, self.diffusion_beta_min)
        check_range("bc_weight", self.bc_weight, 0.0)
        check_positive_int("vae_latent_dim", self.vae_latent_dim)
        check_positive_int("vae_hidden", self.vae_hidden)
        check_range("vae_beta", self.vae_beta, 0.0)
        check_choice("vae_sample_latent", self.vae_sample_latent, (False, True))
        check_choice("vae_critic_gradients", self.vae_critic_gradients, (False, True))
        check_positive_int("transformer_dim", self.transformer_dim)
        check_positive_int("transformer_heads", self.transformer_heads)
        check_positive_int("transformer_layers", self.transformer_layers)
        check_positive_int("transformer_max_tokens", self.transformer_max_tokens, allow_zero=True)
        if self.transformer_dim % self.transformer_heads:
            raise ConfigError(
                f"transformer_heads={self.transformer_heads} must divide transformer_dim={self.transformer_dim}"
            )
        check_range("gan_adv_weight", self.gan_adv_weight, 0.0)
        check_positive_int("gan_noise_dim", self.gan_noise_dim)
        check_positive_int("gan_z_samples", self.gan_z_samples, allow_zero=True)
        check_positive_int("gan_discriminator_hidden", self.gan_discriminator_hidden)
        check_choice("gan_loss", self.gan_loss, ("bce", "wasserstein"))
        check_choice("device", self.device, DEVICES)
        check_positive_int("torch_threads", self.torch_threads)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (net_arch as a list)."""
        data = asdict(self)
        data["net_arch"] = list(self.net_arch)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TD3Config:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown TD3Config field(s) {unknown}; valid fields: {', '.join(sorted(names))}"
            )
        values = dict(data)
        if "net_arch" in values:
            values["net_arch"] = tuple(int(w) for w in values["net_arch"])
        return cls(**values)

    def replace(self, **changes: Any) -> TD3Config:
        """A copy with some fields changed (validated)."""
        return TD3Config.from_dict({**self.to_dict(), **changes})

    def population_key(self) -> tuple[Any, ...]:
        """The values that must be equal for two configurations to train in one population."""
        return tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in PER_AGENT_FIELDS)


def check_same_population(configs: Sequence[TD3Config]) -> TD3Config:
    """The shared configuration of a population; a ConfigError names the first field that differs."""
    if not configs:
        raise ConfigError("a population needs at least one agent configuration (got 0)")
    first = configs[0]
    for index, config in enumerate(configs[1:], start=1):
        if config.population_key() != first.population_key():
            for (name, a), (_, b) in zip(first.population_key(), config.population_key(), strict=True):
                if a != b:
                    raise ConfigError(
                        f"agent {index} differs from agent 0 in {name} ({b!r} vs {a!r}); only "
                        f"{', '.join(PER_AGENT_FIELDS)} may differ inside one population"
                    )
    return first
