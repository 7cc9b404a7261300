"""TD3 (Fujimoto, van Hoof & Meger, ICML 2018) with four generative-model enhancer slots.

One TD3 for all 16 enhancer combinations (Sun et al., "Generative AI for Deep Reinforcement Learning",
arXiv 2405.20568): the slots only swap modules -- the state encoder (identity or VAE), the actor trunk (MLP or
Transformer), the actor head (deterministic or diffusion) and the critics (twin MLP or twin GAN generators with
a discriminator). The whole update reads top to bottom in :meth:`TD3Agent._update`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from autogai.agents.adapters import ActionAdapter, space_from_dict, space_to_dict
from autogai.agents.backbones import MLPBackbone, TransformerBackbone, default_token_groups
from autogai.agents.buffer import ReplayBuffer
from autogai.agents.config import TD3Config
from autogai.agents.critics import BellmanDiscriminator, GANCritic, TwinCritic
from autogai.agents.encoders import VAEEncoder
from autogai.agents.policies import Actor, DeterministicHead, DiffusionPolicy
from autogai.core.errors import ConfigError, TrainingDivergedError
from autogai.core.types import EnhancerCombo

CHECKPOINT_FORMAT = "autogai-td3/1"
# act(explore=False) with a diffusion actor draws its chain noise from this fixed seed every call, so the
# greedy policy is a deterministic function of the observation (and identical after save/load).
_GREEDY_NOISE_SEED = 12345


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a ConfigError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(device)


def target_policy_smoothing(actions: torch.Tensor, noise: torch.Tensor, noise_clip: float) -> torch.Tensor:
    """TD3's target action: ``clip(a' + clip(noise, -c, c), -1, 1)`` (noise already scaled by its std)."""
    return (actions + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def clipped_double_q_target(
    rewards: torch.Tensor, terminated: torch.Tensor, gamma: float, next_q: torch.Tensor
) -> torch.Tensor:
    """``y = r + gamma * (1 - terminated) * min_i Q'_i(s', a~)``; ``next_q`` is ``[2, B, 1]``, y ``[B, 1]``."""
    return rewards + gamma * (1.0 - terminated) * next_q.min(dim=0).values


class TD3Agent:
    """A TD3 agent whose modules come from the enhancer combination. Build it with :func:`make_agent`."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        enhancers: EnhancerCombo | str,
        config: TD3Config,
        *,
        token_groups: list[np.ndarray] | None = None,
        seed: int = 0,
        action_codebook: np.ndarray | None = None,
    ) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise ConfigError(f"observation space {observation_space} is not supported; TD3 needs a flat Box")
        self.observation_space = observation_space
        self.action_space = action_space
        self.enhancers = EnhancerCombo.parse(enhancers)
        self.config = config
        self.seed = int(seed)
        self.token_groups = (
            None if token_groups is None else [np.asarray(g, dtype=np.int64) for g in token_groups]
        )
        self.action_codebook = (
            None if action_codebook is None else np.asarray(action_codebook, dtype=np.float32)
        )
        self.device = resolve_device(config.device)
        if torch.get_num_threads() != config.torch_threads:
            torch.set_num_threads(config.torch_threads)

        self.adapter = ActionAdapter(action_space, codebook=self.action_codebook)
        # Per-coord exploration std: exploration_noise on continuous coords; on discrete coords at least
        # discrete_exploration x the level spacing (so a level changes with a useful probability).
        self._exploration_std = np.maximum(
            config.exploration_noise, config.discrete_exploration * self.adapter.level_spacing
        ).astype(np.float32)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.action_dim = self.adapter.dim
        self.num_updates = 0
        self.transitions_seen = 0

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._build_modules()
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self._greedy_generator = torch.Generator(device=self.device)
        self.rng = np.random.default_rng(self.seed)
        self.buffer = ReplayBuffer(
            config.buffer_size,
            self.obs_dim,
            self.action_dim,
            device=self.device,
            rng=np.random.default_rng([self.seed, 1]),
        )

    # ------------------------------------------------------------------------------------------ build
    def _build_modules(self) -> None:
        cfg, enh = self.config, self.enhancers
        arch = cfg.net_arch

        # Encoder slot: features = VAE latent (mean) or the observation itself.
        self.encoder: VAEEncoder | None = None
        feat_dim = self.obs_dim
        if enh.encoder == "vae":
            self.encoder = VAEEncoder(
                self.obs_dim,
                cfg.vae_latent_dim,
                cfg.vae_hidden,
                beta=cfg.vae_beta,
                sample_latent=cfg.vae_sample_latent,
            )
            feat_dim = cfg.vae_latent_dim
        self.feat_dim = feat_dim

        # Backbone slot: the actor's state trunk.
        backbone: nn.Module
        if enh.backbone == "transformer":
            # The env's token layout indexes the observation; on a VAE latent, one token per latent feature.
            groups = self.token_groups if (self.token_groups is not None and self.encoder is None) else None
            backbone = TransformerBackbone(
                feat_dim,
                groups if groups is not None else default_token_groups(feat_dim),
                dim=cfg.transformer_dim,
                heads=cfg.transformer_heads,
                layers=cfg.transformer_layers,
                out_dim=arch[-1],
                max_tokens=cfg.transformer_max_tokens,
            )
        else:
            backbone = MLPBackbone(feat_dim, arch)

        # Policy slot: the actor head on the state embedding.
        head: nn.Module
        if enh.policy == "diffusion":
            head = DiffusionPolicy(
                arch[-1],
                self.action_dim,
                hidden=cfg.diffusion_hidden,
                steps=cfg.diffusion_steps,
                beta_min=cfg.diffusion_beta_min,
                beta_max=cfg.diffusion_beta_max,
            )
        else:
            head = DeterministicHead(arch[-1], self.action_dim)
        self.actor = Actor(backbone, head).to(self.device)

        # Critic slot.
        self.critic: TwinCritic | GANCritic
        self.discriminator: BellmanDiscriminator | None = None
        if enh.critic == "gan":
            self.critic = GANCritic(
                feat_dim, self.action_dim, arch, noise_dim=cfg.gan_noise_dim, z_samples=cfg.gan_z_samples
            ).to(self.device)
            d_arch = (cfg.gan_discriminator_hidden, cfg.gan_discriminator_hidden)
            self.discriminator = BellmanDiscriminator(feat_dim, self.action_dim, d_arch).to(self.device)
        else:
            self.critic = TwinCritic(feat_dim, self.action_dim, arch).to(self.device)
        if self.encoder is not None:
            self.encoder.to(self.device)

        # Target networks: the whole actor (a diffusion actor too) and both critics.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._online_params: list[torch.Tensor] = [*self.actor.parameters(), *self.critic.parameters()]
        self._target_params: list[torch.Tensor] = [
            *self.actor_target.parameters(),
            *self.critic_target.parameters(),
        ]
        self._critic_params = list(self.critic.parameters())

        fused = self.device.type in ("cpu", "cuda")
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.learning_rate, fused=fused)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=cfg.learning_rate, fused=fused)
        self.encoder_optimizer = (
            torch.optim.Adam(self.encoder.parameters(), lr=cfg.learning_rate, fused=fused)
            if self.encoder
            else None
        )
        self.discriminator_optimizer = (
            torch.optim.Adam(self.discriminator.parameters(), lr=cfg.learning_rate, fused=fused)
            if self.discriminator
            else None
        )

    # ------------------------------------------------------------------------------------------ acting
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Executed action coords in [-1, 1]^k for one observation ``[obs_dim]`` or a batch ``[B, obs_dim]``.

        With ``explore``: uniform random coords until ``learning_starts`` transitions were seen, then the
        actor's coords plus Gaussian noise of std ``exploration_noise``. Discrete coords come back quantised.
        """
        obs_array = np.asarray(obs, dtype=np.float32)
        single = obs_array.ndim == 1
        batch = obs_array.reshape(1, -1) if single else obs_array.reshape(obs_array.shape[0], -1)
        if explore and self.transitions_seen < self.config.learning_starts:
            coords = self.rng.uniform(-1.0, 1.0, size=(batch.shape[0], self.action_dim)).astype(np.float32)
        else:
            generator = self.generator
            if not explore:
                generator = self._greedy_generator.manual_seed(_GREEDY_NOISE_SEED)
            with torch.inference_mode():
                x = torch.as_tensor(batch, device=self.device)
                feats = self.encoder(x, generator) if self.encoder is not None else x
                coords = self.actor(feats, generator).cpu().numpy()
            if explore:
                coords = coords + self.rng.normal(size=coords.shape) * self._exploration_std
        executed = self.adapter.quantize(coords)
        return executed[0] if single else executed

    def add_transition(
        self,
        obs: np.ndarray,
        coords_executed: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        """Store a transition (or a batch of them); pass ``terminated`` only, so time limits bootstrap."""
        self.buffer.add(obs, coords_executed, reward, next_obs, terminated)
        self.transitions_seen += 1 if np.asarray(obs).ndim == 1 else int(np.asarray(obs).shape[0])

    # ------------------------------------------------------------------------------------------ learning
    def train_step(self, gradient_steps: int = 1) -> dict[str, float]:
        """Run ``gradient_steps`` updates; returns mean losses. ``{}`` while the buffer is still warming up.

        Raises :class:`TrainingDivergedError` when any loss is non-finite.
        """
        warm = max(self.config.batch_size, self.config.learning_starts)
        if (
            len(self.buffer) < min(warm, self.config.buffer_size)
            or self.transitions_seen < self.config.learning_starts
        ):
            return {}
        history: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            for key, value in self._update().items():
                history.setdefault(key, []).append(value)
        names = list(history)
        means = torch.stack([torch.stack(history[k]).mean() for k in names])
        values = means.tolist()
        if not all(math.isfinite(v) for v in values):
            bad = [k for k, v in zip(names, values, strict=True) if not math.isfinite(v)]
            raise TrainingDivergedError(
                f"non-finite {', '.join(bad)} at update {self.num_updates} (enhancers {self.enhancers.short_name})"
            )
        return dict(zip(names, values, strict=True))

    def _update(self) -> dict[str, torch.Tensor]:
        """One TD3 update with whatever modules fill the slots (CleanRL-style, top to bottom)."""
        cfg = self.config
        gen = self.generator
        batch = self.buffer.sample(cfg.batch_size)
        self.num_updates += 1
        stats: dict[str, torch.Tensor] = {}

        # 1. State features. VAE: negative ELBO on this batch's states; the RL nets read the latent mean.
        vae_loss: torch.Tensor | None = None
        if self.encoder is not None:
            elbo = self.encoder.elbo(batch.obs, gen)
            vae_loss = elbo.loss
            feats = elbo.latent if cfg.vae_critic_gradients else elbo.latent.detach()
            with torch.no_grad():
                next_feats = self.encoder(batch.next_obs, gen)
            stats["vae_loss"] = vae_loss.detach()
        else:
            feats, next_feats = batch.obs, batch.next_obs

        # 2. Bellman target: target policy smoothing, executed (quantised) coords, clipped double Q.
        with torch.no_grad():
            next_actions = self.actor_target(next_feats, gen)
            noise = (
                torch.randn(next_actions.shape, generator=gen, device=self.device) * cfg.target_policy_noise
            )
            next_actions = self.adapter.quantize_torch(
                target_policy_smoothing(next_actions, noise, cfg.target_noise_clip)
            )
            next_q = self.critic_target(next_feats, next_actions, gen)  # [2, B, 1]
            target_q = clipped_double_q_target(batch.rewards, batch.terminated, cfg.gamma, next_q)  # [B, 1]

        # 3. Critic step: TD error of both critics (sum of MSEs, as SB3); GAN critic adds the adversarial term.
        current_q = self.critic(feats, batch.actions, gen)  # [2, B, 1]
        critic_loss = 2.0 * F.mse_loss(current_q, target_q.expand_as(current_q))
        if self.discriminator is not None:
            assert self.discriminator_optimizer is not None
            # D sees q normalised by the target batch's statistics, so its inputs are O(1) at any reward scale.
            centre, scale = target_q.mean(), target_q.std() + 1e-6
            d_feats, d_actions = feats.detach().expand(3, -1, -1), batch.actions.expand(3, -1, -1)
            # One D pass over [real y; fake G_1; fake G_2] (the generated samples detached for D's step).
            d_values = torch.cat([target_q.unsqueeze(0), current_q.detach()], dim=0)
            d_logits = self.discriminator(d_feats, d_actions, (d_values - centre) / scale)  # [3, B, 1]
            real_logits, fake_logits = d_logits[:1], d_logits[1:]
            if cfg.gan_loss == "bce":
                discriminator_loss = F.binary_cross_entropy_with_logits(
                    real_logits, torch.ones_like(real_logits)
                ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            else:  # Wasserstein critic with weight clipping (Arjovsky et al. 2017)
                discriminator_loss = fake_logits.mean() - real_logits.mean()
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            self.discriminator_optimizer.step()
            if cfg.gan_loss == "wasserstein":
                with torch.no_grad():
                    for p in self.discriminator.parameters():
                        p.clamp_(-0.01, 0.01)
            # Generator side: the updated D judges the generated q *with* its graph, so the adversarial
            # gradient flows through D into G. D's weights are frozen for this pass (autograd records
            # requires_grad at forward time), so no D weight gradients are computed.
            self.discriminator.requires_grad_(False)
            gen_logits = self.discriminator(d_feats[1:], d_actions[1:], (current_q - centre) / scale)
            self.discriminator.requires_grad_(True)
            if cfg.gan_loss == "bce":  # non-saturating generator loss
                adversarial_loss = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
            else:
                adversarial_loss = -gen_logits.mean()
            critic_loss = critic_loss + cfg.gan_adv_weight * adversarial_loss
            stats["discriminator_loss"] = discriminator_loss.detach()
            stats["adversarial_loss"] = adversarial_loss.detach()
        self.critic_optimizer.zero_grad(set_to_none=True)
        if vae_loss is not None:
            assert self.encoder_optimizer is not None
            self.encoder_optimizer.zero_grad(set_to_none=True)
            (critic_loss + vae_loss).backward()
            self.encoder_optimizer.step()
        else:
            critic_loss.backward()
        self.critic_optimizer.step()
        stats["critic_loss"] = critic_loss.detach()
        stats["q_mean"] = current_q.detach().mean()

        # 4. Delayed actor step (-Q1 through the whole actor, a diffusion chain included) and Polyak update.
        if self.num_updates % cfg.policy_delay == 0:
            actor_feats = feats.detach()
            for p in self._critic_params:  # no critic weight gradients in the actor's backward pass
                p.requires_grad_(False)
            embedding = self.actor.backbone(actor_feats)
            actions = self.actor.head(embedding, gen)
            q1 = self.critic.q1(actor_feats, actions, gen)
            actor_loss = -q1.mean()
            if self.actor.is_diffusion and cfg.bc_weight > 0:
                assert isinstance(self.actor.head, DiffusionPolicy)
                bc_loss = self.actor.head.bc_loss(embedding, batch.actions, gen)
                actor_loss = actor_loss + cfg.bc_weight * q1.abs().mean().detach() * bc_loss
                stats["bc_loss"] = bc_loss.detach()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            for p in self._critic_params:
                p.requires_grad_(True)
            with torch.no_grad():
                torch._foreach_lerp_(self._target_params, self._online_params, cfg.tau)
            stats["actor_loss"] = actor_loss.detach()
        return stats

    # ------------------------------------------------------------------------------------------ persistence
    def _modules(self) -> dict[str, nn.Module]:
        modules: dict[str, nn.Module] = {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        if self.encoder is not None:
            modules["encoder"] = self.encoder
        if self.discriminator is not None:
            modules["discriminator"] = self.discriminator
        return modules

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers: dict[str, torch.optim.Optimizer] = {
            "actor": self.actor_optimizer,
            "critic": self.critic_optimizer,
        }
        if self.encoder_optimizer is not None:
            optimizers["encoder"] = self.encoder_optimizer
        if self.discriminator_optimizer is not None:
            optimizers["discriminator"] = self.discriminator_optimizer
        return optimizers

    def save(self, path: str | Path) -> Path:
        """Write config, spaces, enhancers, weights, optimiser and RNG states to one file (not the replay)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "enhancers": self.enhancers.to_dict(),
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "token_groups": None if self.token_groups is None else [g.tolist() for g in self.token_groups],
            "action_codebook": None if self.action_codebook is None else self.action_codebook.tolist(),
            "seed": self.seed,
            "num_updates": self.num_updates,
            "transitions_seen": self.transitions_seen,
            "modules": {name: m.state_dict() for name, m in self._modules().items()},
            "optimizers": {name: o.state_dict() for name, o in self._optimizers().items()},
            "torch_generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> TD3Agent:
        """Rebuild an agent saved with :meth:`save`; ``device`` overrides the saved config's device."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no saved agent at {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{path} is not an autogai TD3 checkpoint (format {CHECKPOINT_FORMAT})")
        config = TD3Config.from_dict(payload["config"])
        if device is not None:
            config = config.replace(device=device)
        token_groups = payload["token_groups"]
        codebook = payload["action_codebook"]
        agent = cls(
            space_from_dict(payload["observation_space"]),
            space_from_dict(payload["action_space"]),
            EnhancerCombo.parse(payload["enhancers"]),
            config,
            token_groups=None
            if token_groups is None
            else [np.asarray(g, dtype=np.int64) for g in token_groups],
            seed=int(payload["seed"]),
            action_codebook=None if codebook is None else np.asarray(codebook, dtype=np.float32),
        )
        for name, module in agent._modules().items():
            module.load_state_dict(payload["modules"][name])
        for name, optimizer in agent._optimizers().items():
            optimizer.load_state_dict(payload["optimizers"][name])
        agent.num_updates = int(payload["num_updates"])
        agent.transitions_seen = int(payload["transitions_seen"])
        agent.generator.set_state(payload["torch_generator"])
        agent.rng.bit_generator.state = payload["numpy_rng"]
        return agent

    def __repr__(self) -> str:
        return (
            f"TD3Agent(enhancers={self.enhancers.short_name!r}, obs_dim={self.obs_dim}, "
            f"action={self.adapter.describe()}, updates={self.num_updates})"
        )


def make_agent(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    enhancers: EnhancerCombo | str,
    config: TD3Config,
    *,
    token_groups: list[np.ndarray] | None = None,
    seed: int = 0,
    action_codebook: np.ndarray | None = None,
) -> TD3Agent:
    """Build a TD3 agent for the given spaces and enhancer combination.

    ``token_groups`` (e.g. ``env.unwrapped.observation_token_groups()``) sets the Transformer's tokens; default
    one token per feature. ``action_codebook`` overrides the coords of a Discrete action's indices (see
    :mod:`autogai.agents.adapters`). Sets ``torch.set_num_threads(config.torch_threads)`` (process-wide).
    """
    return TD3Agent(
        observation_space,
        action_space,
        enhancers,
        config,
        token_groups=token_groups,
        seed=seed,
        action_codebook=action_codebook,
    )
