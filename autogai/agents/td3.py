"""TD3 (Fujimoto, van Hoof & Meger, ICML 2018) for a population of agents, with four generative-model slots.

One TD3 for all 16 enhancer combinations (Sun et al., "Generative AI for Deep Reinforcement Learning",
arXiv 2405.20568): the slots only swap modules -- the state encoder (identity or VAE), the actor trunk (MLP or
Transformer), the actor head (deterministic or diffusion) and the critics (twin MLP or twin GAN generators with
a discriminator). The whole update reads top to bottom in :meth:`TD3Population._update`.

The learner always holds a *population*: P agents of one architecture whose parameters are stacked along a
leading dimension (:mod:`autogai.agents.stacked`). P = 1 is the single agent; there is no other TD3. Agents
may differ in their seed and in the scalars of :data:`~autogai.agents.config.PER_AGENT_FIELDS` (learning
rate, tau, gamma, noises, loss weights). Each agent's loss depends on its own parameters and data only, and
the population's loss is the sum of the agents' losses, so every agent receives exactly the gradient it would
receive alone. An agent can leave (:meth:`TD3Population.keep`) and no compute is spent on it afterwards.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from autogai.agents.adapters import ActionAdapter, space_from_dict, space_to_dict
from autogai.agents.buffer import ReplayBuffer
from autogai.agents.config import TD3Config, check_same_population
from autogai.agents.critics import BellmanDiscriminator, GANCritic, TwinCritic
from autogai.agents.encoders import VAEEncoder
from autogai.agents.enhancers import SlotInputs, enhancer
from autogai.agents.policies import Actor, DiffusionPolicy
from autogai.agents.stacked import agent_generators
from autogai.core.errors import ConfigError
from autogai.core.files import write_atomic
from autogai.core.types import EnhancerCombo

CHECKPOINT_FORMAT = "autogai-td3-population/1"
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


class TD3Population:
    """P TD3 agents of one architecture trained at once.

    Arguments:
        observation_space: a flat ``Box`` (the single env's).
        action_space: ``Box``, ``MultiDiscrete``, ``Discrete`` or a ``Tuple`` of them (see the adapters).
        enhancers: the enhancer combination, e.g. ``"plain"`` or ``"gdm+gan"``.
        configs: one :class:`TD3Config` per agent (equal except :data:`PER_AGENT_FIELDS`), or one for all.
        seeds: one seed per agent (sets its initial weights); its length is the population size.
        token_groups: the Transformer's token layout (``env.observation_token_groups()``).
        action_codebook: coords of a Discrete action's indices (see :mod:`autogai.agents.adapters`).
        capacity: replay rows per agent (default ``buffer_size``; a trainer passes its step budget).

    Arrays in and out carry the population first: observations ``[P, N, obs_dim]`` -> coords ``[P, N, k]``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        enhancers: EnhancerCombo | str,
        configs: TD3Config | Sequence[TD3Config],
        *,
        seeds: Sequence[int] | int = 0,
        token_groups: list[np.ndarray] | None = None,
        action_codebook: np.ndarray | None = None,
        capacity: int | None = None,
        _meta: bool = False,
    ) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise ConfigError(f"observation space {observation_space} is not supported; TD3 needs a flat Box")
        seed_list = [int(seeds)] if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
        if not seed_list:
            raise ConfigError("a population needs at least one agent (got 0 seeds)")
        config_list = [configs] * len(seed_list) if isinstance(configs, TD3Config) else list(configs)
        if len(config_list) != len(seed_list):
            raise ConfigError(f"{len(config_list)} configurations for {len(seed_list)} seeds")
        self.config = check_same_population(config_list)
        self.configs = config_list
        self.seeds = seed_list
        self.observation_space = observation_space
        self.action_space = action_space
        self.enhancers = EnhancerCombo.parse(enhancers)
        self.token_groups = (
            None if token_groups is None else [np.asarray(g, dtype=np.int64) for g in token_groups]
        )
        self.action_codebook = (
            None if action_codebook is None else np.asarray(action_codebook, dtype=np.float32)
        )
        # ``_meta``: shapes only, no memory (``estimate_bytes`` sizes a population before building it).
        self.device = torch.device("meta") if _meta else resolve_device(self.config.device)
        if torch.get_num_threads() != self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)

        self.adapter = ActionAdapter(action_space, codebook=self.action_codebook)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.action_dim = self.adapter.dim
        self.capacity = min(int(capacity), self.config.buffer_size) if capacity else self.config.buffer_size
        self.num_updates = 0
        self.transitions_seen = 0  # per agent
        self._build_modules(agent_generators(self.seeds))
        self._set_agent_values()
        # One generator for the population's training noise: agents draw different numbers from it, and
        # none of them depends on another's parameters or data.
        generator_device = "cpu" if _meta else self.device
        self.generator = torch.Generator(device=generator_device).manual_seed(self.seeds[0])
        self._greedy_generator = torch.Generator(device=generator_device)
        self.rng = np.random.default_rng(self.seeds)
        self._buffer: ReplayBuffer | None = None

    @classmethod
    def estimate_bytes(
        cls,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        enhancers: EnhancerCombo | str,
        configs: TD3Config | Sequence[TD3Config],
        *,
        seeds: Sequence[int] | int = 0,
        token_groups: list[np.ndarray] | None = None,
        action_codebook: np.ndarray | None = None,
        capacity: int | None = None,
    ) -> int:
        """Memory a population would take (see :meth:`memory_bytes`), computed on the ``meta`` device: the
        networks are laid out but nothing is allocated, so even a configuration far too large is sized."""
        with torch.device("meta"):
            shapes = cls(
                observation_space,
                action_space,
                enhancers,
                configs,
                seeds=seeds,
                token_groups=token_groups,
                action_codebook=action_codebook,
                capacity=capacity,
                _meta=True,
            )
        return shapes.memory_bytes()

    @property
    def size(self) -> int:
        """Agents in the population now (P)."""
        return len(self.seeds)

    # ------------------------------------------------------------------------------------------ build
    def _build_modules(self, generators: list[torch.Generator]) -> None:
        """Each slot's module from the factory its enhancer declares (:mod:`autogai.agents.enhancers`)."""
        cfg, enh = self.config, self.enhancers

        def build(slot: str, inputs: SlotInputs) -> Any:
            declared = enhancer(slot, getattr(enh, slot))
            return declared.build(inputs, None if declared.key is None else cfg.enhancer(declared.key))

        inputs = SlotInputs(self.obs_dim, self.action_dim, cfg.net_arch, generators, self.token_groups)
        self.encoder: VAEEncoder | None
        self.encoder, self.feat_dim = build("encoder", inputs)
        inputs = dataclasses.replace(inputs, feat_dim=self.feat_dim, encoded=self.encoder is not None)
        self.actor = Actor(build("backbone", inputs), build("policy", inputs)).to(self.device)
        self.critic: TwinCritic | GANCritic
        self.discriminator: BellmanDiscriminator | None
        self.critic, self.discriminator = build("critic", inputs)
        self.critic.to(self.device)
        if self.discriminator is not None:
            self.discriminator.to(self.device)
        if self.encoder is not None:
            self.encoder.to(self.device)

        # Target networks: the whole actor (a diffusion actor too) and both critics.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._make_optimizers()

    def _make_optimizers(self) -> None:
        # Per-agent learning rates: Adam steps with lr = 1 and each agent's step is then scaled by its own
        # rate (exactly Adam with that rate: the update is lr * m_hat / (sqrt(v_hat) + eps)). When all
        # agents share a rate (seeds of one configuration) Adam takes it directly and nothing is rescaled.
        rates = [c.learning_rate for c in self.configs]
        self._shared_lr = rates[0] if all(r == rates[0] for r in rates) else None
        lr = self._shared_lr if self._shared_lr is not None else 1.0
        fused = self.device.type in ("cpu", "cuda")

        def adam(module: nn.Module) -> torch.optim.Adam:
            return torch.optim.Adam(module.parameters(), lr=lr, fused=fused)

        self.optimizers: dict[str, torch.optim.Adam] = {
            "actor": adam(self.actor),
            "critic": adam(self.critic),
        }
        if self.encoder is not None:
            self.optimizers["encoder"] = adam(self.encoder)
        if self.discriminator is not None:
            self.optimizers["discriminator"] = adam(self.discriminator)
        self._online_params: list[torch.Tensor] = [*self.actor.parameters(), *self.critic.parameters()]
        self._target_params: list[torch.Tensor] = [
            *self.actor_target.parameters(),
            *self.critic_target.parameters(),
        ]
        self._critic_params = list(self.critic.parameters())

    def _set_agent_values(self) -> None:
        """Per-agent hyperparameters as tensors shaped to broadcast over ``[P, ...]``."""
        configs, device = self.configs, self.device

        def column(name: str) -> torch.Tensor:
            return torch.tensor([c.get(name) for c in configs], dtype=torch.float32, device=device)

        self._lr = column("learning_rate")
        self._tau = column("tau")
        taus = [c.tau for c in configs]
        self._shared_tau = taus[0] if all(t == taus[0] for t in taus) else None
        self._gamma = column("gamma").view(-1, 1, 1)
        self._target_noise = column("target_policy_noise").view(-1, 1, 1)
        self._noise_clip = column("target_noise_clip").view(-1, 1, 1)
        self._bc_weight = column("bc_weight")
        self._any_bc = any(c.get("bc_weight") > 0 for c in configs)
        self._gan_adv_weight = column("gan_adv_weight")
        self._vae_beta = column("vae_beta")
        # Per-coord exploration std: exploration_noise on continuous coords; on discrete coords at least
        # discrete_exploration x the level spacing (so a level changes with a useful probability).
        spacing = self.adapter.level_spacing
        self._exploration_std = np.stack(
            [np.maximum(c.exploration_noise, c.discrete_exploration * spacing) for c in configs]
        ).astype(np.float32)[:, None, :]  # [P, 1, k]

    # ------------------------------------------------------------------------------------------ acting
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Executed action coords ``[P, N, k]`` in [-1, 1] for observations ``[P, N, obs_dim]``.

        With ``explore``: uniform random coords until ``learning_starts`` transitions per agent were seen,
        then the actor's coords plus Gaussian noise of each agent's ``exploration_noise``. Discrete coords come
        back quantised. Non-finite coords of a diverged agent come back as they are (the caller removes it).
        """
        batch = np.asarray(obs, dtype=np.float32).reshape(self.size, -1, self.obs_dim)
        if explore and self.transitions_seen < self.config.learning_starts:
            coords = self.rng.uniform(-1.0, 1.0, size=(*batch.shape[:2], self.action_dim)).astype(np.float32)
        else:
            coords = self.policy_coords(torch.as_tensor(batch, device=self.device), explore).cpu().numpy()
            if explore:
                coords = (
                    coords + self.rng.normal(size=coords.shape).astype(np.float32) * self._exploration_std
                )
        return self.adapter.quantize(coords)

    def policy_coords(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
        """The actors' raw coords ``[P, N, k]`` for ``obs [P, N, obs_dim]`` (no exploration noise)."""
        generator = self.generator
        if not explore:
            generator = self._greedy_generator.manual_seed(_GREEDY_NOISE_SEED)
        with torch.inference_mode():
            feats = self.encoder(obs, generator) if self.encoder is not None else obs
            return self.actor(feats, generator)

    def add_transitions(
        self,
        obs: np.ndarray,
        coords_executed: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """Store ``N`` transitions per agent (``obs [P, N, obs_dim]``, ``rewards [P, N]``, ...).

        Pass ``terminated`` only (not truncated), so time limits bootstrap.
        """
        if self._buffer is None:
            self._buffer = ReplayBuffer(
                self.size, self.capacity, self.obs_dim, self.action_dim, device=self.device
            )

        n = np.asarray(obs).shape[1]
        shape = (self.size, n, -1)
        self._buffer.add(
            np.asarray(obs, dtype=np.float32).reshape(shape),
            np.asarray(coords_executed, dtype=np.float32).reshape(shape),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(next_obs, dtype=np.float32).reshape(shape),
            np.asarray(terminated, dtype=np.float32),
        )
        self.transitions_seen += n

    # ------------------------------------------------------------------------------------------ learning
    def train_step(self, gradient_steps: int = 1) -> dict[str, np.ndarray]:
        """Run ``gradient_steps`` updates; returns each loss's mean per agent (``[P]``). ``{}`` while warming.

        Divergence is not raised here: a non-finite entry marks an agent the caller should remove.
        """
        warm = min(max(self.config.batch_size, self.config.learning_starts), self.capacity)
        if (
            self._buffer is None
            or len(self._buffer) < warm
            or self.transitions_seen < self.config.learning_starts
        ):
            return {}
        if gradient_steps == 1:  # the common case: no averaging over updates
            stats = self._update()
            values = torch.stack(list(stats.values())).cpu().numpy()
            return dict(zip(stats, values, strict=True))
        history: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            for key, value in self._update().items():
                history.setdefault(key, []).append(value)
        names = list(history)
        means = torch.stack([torch.stack(history[k]).mean(dim=0) for k in names]).cpu().numpy()
        return {name: means[i] for i, name in enumerate(names)}

    def _update(self) -> dict[str, torch.Tensor]:
        """One TD3 update of every agent with whatever modules fill the slots (CleanRL-style, top to bottom).

        Each loss below is per agent (``[P]``); the population backpropagates their sum.
        """
        cfg = self.config
        gen = self.generator
        assert self._buffer is not None
        batch = self._buffer.sample(cfg.batch_size, gen)
        self.num_updates += 1
        stats: dict[str, torch.Tensor] = {}

        # 1. State features. VAE: negative ELBO on this batch's states; the RL nets read the latent mean.
        vae_loss: torch.Tensor | None = None
        if self.encoder is not None:
            elbo = self.encoder.elbo(batch.obs, self._vae_beta, gen)
            vae_loss = elbo.loss
            feats = elbo.latent if cfg.enhancer("vae").critic_gradients else elbo.latent.detach()
            with torch.no_grad():
                next_feats = self.encoder(batch.next_obs, gen)
            stats["vae_loss"] = vae_loss.detach()
        else:
            feats, next_feats = batch.obs, batch.next_obs

        # 2. Bellman target: target policy smoothing, executed (quantised) coords, clipped double Q.
        with torch.no_grad():
            next_actions = self.actor_target(next_feats, gen)  # [P, B, k]
            noise = torch.randn(next_actions.shape, generator=gen, device=self.device) * self._target_noise
            noise = torch.clamp(noise, -self._noise_clip, self._noise_clip)
            next_actions = self.adapter.quantize_torch((next_actions + noise).clamp(-1.0, 1.0))
            next_q = self.critic_target(next_feats, next_actions, gen)  # [P, 2, B, 1]
            target_q = batch.rewards + self._gamma * (1.0 - batch.terminated) * next_q.min(dim=1).values

        # 3. Critic step: TD error of both critics (sum of MSEs, as SB3); GAN critic adds the adversarial term.
        current_q = self.critic(feats, batch.actions, gen)  # [P, 2, B, 1]
        critic_loss = 2.0 * (current_q - target_q.unsqueeze(1)).pow(2).mean(dim=(1, 2, 3))  # [P]
        if self.discriminator is not None:
            adversarial_loss = self._discriminator_step(feats, batch.actions, target_q, current_q, stats)
            critic_loss = critic_loss + self._gan_adv_weight * adversarial_loss
        self.optimizers["critic"].zero_grad(set_to_none=True)
        if vae_loss is not None:
            self.optimizers["encoder"].zero_grad(set_to_none=True)
            (critic_loss + vae_loss).sum().backward()
            self._step("encoder")
        else:
            critic_loss.sum().backward()
        self._step("critic")
        stats["critic_loss"] = critic_loss.detach()
        stats["q_mean"] = current_q.detach().mean(dim=(1, 2, 3))

        # 4. Delayed actor step (-Q1 through the whole actor, a diffusion chain included) and Polyak update.
        if self.num_updates % cfg.policy_delay == 0:
            actor_feats = feats.detach()
            for p in self._critic_params:  # no critic weight gradients in the actor's backward pass
                p.requires_grad_(False)
            embedding = self.actor.backbone(actor_feats)
            actions = self.actor.head(embedding, gen)
            q1 = self.critic.q1(actor_feats, actions, gen)  # [P, B, 1]
            actor_loss = -q1.mean(dim=(1, 2))
            if self.actor.is_diffusion and self._any_bc:
                assert isinstance(self.actor.head, DiffusionPolicy)
                bc_loss = self.actor.head.bc_loss(embedding, batch.actions, gen)
                actor_loss = actor_loss + self._bc_weight * q1.abs().mean(dim=(1, 2)).detach() * bc_loss
                stats["bc_loss"] = bc_loss.detach()
            self.optimizers["actor"].zero_grad(set_to_none=True)
            actor_loss.sum().backward()
            self._step("actor")
            for p in self._critic_params:
                p.requires_grad_(True)
            self._polyak_update()
            stats["actor_loss"] = actor_loss.detach()
        return stats

    def _discriminator_step(
        self,
        feats: torch.Tensor,
        actions: torch.Tensor,
        target_q: torch.Tensor,
        current_q: torch.Tensor,
        stats: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Train D on Bellman targets (real) vs generated q (fake); return G's adversarial loss ``[P]``."""
        assert self.discriminator is not None
        cfg = self.config
        # D sees q normalised by each agent's target batch statistics, so its inputs are O(1) at any scale.
        centre = target_q.mean(dim=(1, 2), keepdim=True).unsqueeze(1)  # [P, 1, 1, 1]
        scale = target_q.std(dim=(1, 2), keepdim=True).unsqueeze(1) + 1e-6
        d_feats = feats.detach().unsqueeze(1).expand(-1, 3, -1, -1)
        d_actions = actions.unsqueeze(1).expand(-1, 3, -1, -1)
        # One D pass over [real y; fake G_1; fake G_2] (the generated samples detached for D's step).
        d_values = torch.cat([target_q.unsqueeze(1), current_q.detach()], dim=1)  # [P, 3, B, 1]
        d_logits = self.discriminator(d_feats, d_actions, (d_values - centre) / scale)
        real_logits, fake_logits = d_logits[:, :1], d_logits[:, 1:]
        if cfg.enhancer("gan").loss == "bce":
            discriminator_loss = _bce_per_agent(real_logits, 1.0) + _bce_per_agent(fake_logits, 0.0)
        else:  # Wasserstein critic with weight clipping (Arjovsky et al. 2017)
            discriminator_loss = fake_logits.mean(dim=(1, 2, 3)) - real_logits.mean(dim=(1, 2, 3))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        discriminator_loss.sum().backward()
        self._step("discriminator")
        if cfg.enhancer("gan").loss == "wasserstein":
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-0.01, 0.01)
        # Generator side: the updated D judges the generated q *with* its graph, so the adversarial gradient
        # flows through D into G. D's weights are frozen for this pass (autograd records requires_grad at
        # forward time), so no D weight gradients are computed.
        self.discriminator.requires_grad_(False)
        gen_logits = self.discriminator(d_feats[:, 1:], d_actions[:, 1:], (current_q - centre) / scale)
        self.discriminator.requires_grad_(True)
        if cfg.enhancer("gan").loss == "bce":  # non-saturating generator loss
            adversarial_loss = _bce_per_agent(gen_logits, 1.0)
        else:
            adversarial_loss = -gen_logits.mean(dim=(1, 2, 3))
        stats["discriminator_loss"] = discriminator_loss.detach()
        stats["adversarial_loss"] = adversarial_loss.detach()
        return adversarial_loss

    def _step(self, name: str) -> None:
        """Adam step of one optimiser, with each agent's own learning rate."""
        optimizer = self.optimizers[name]
        if self._shared_lr is not None:
            optimizer.step()
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        with torch.no_grad():
            before = [p.detach().clone() for p in params]
            optimizer.step()  # lr = 1: the raw Adam direction
            for p, old in zip(params, before, strict=True):
                p.lerp_(old, 1.0 - self._lr.view(-1, *([1] * (p.dim() - 1))))  # old + lr (new - old)

    def _polyak_update(self) -> None:
        with torch.no_grad():
            if self._shared_tau is not None:
                torch._foreach_lerp_(self._target_params, self._online_params, self._shared_tau)
                return
            for target, online in zip(self._target_params, self._online_params, strict=True):
                target.lerp_(online, self._tau.view(-1, *([1] * (target.dim() - 1))))

    # ------------------------------------------------------------------------------------------ leaving
    def keep(self, agents: Sequence[int]) -> None:
        """Keep only the agents at positions ``agents`` (in that order): the others leave for good.

        Every parameter, optimiser moment and replay row of a leaving agent is freed; the survivors'
        values are copied unchanged.
        """
        index_list = [int(i) for i in agents]
        if not index_list:
            raise ConfigError("a population cannot keep zero agents")
        if sorted(set(index_list)) != sorted(index_list) or not all(0 <= i < self.size for i in index_list):
            raise ConfigError(f"agents to keep {index_list} must be distinct positions in 0..{self.size - 1}")
        if index_list == list(range(self.size)):
            return
        index = torch.as_tensor(index_list, dtype=torch.long, device=self.device)
        old_states = {
            name: [(p, optimizer.state.get(p, {})) for g in optimizer.param_groups for p in g["params"]]
            for name, optimizer in self.optimizers.items()
        }
        replaced: dict[int, nn.Parameter] = {}
        for module in self._modules().values():
            for owner in module.modules():
                for key, param in list(owner._parameters.items()):
                    if param is None:
                        continue
                    new = nn.Parameter(
                        param.detach().index_select(0, index), requires_grad=param.requires_grad
                    )
                    owner._parameters[key] = new
                    replaced[id(param)] = new
        self.seeds = [self.seeds[i] for i in index_list]
        self.configs = [self.configs[i] for i in index_list]
        self._make_optimizers()
        for name, pairs in old_states.items():
            optimizer = self.optimizers[name]
            for old_param, state in pairs:
                new_param = replaced[id(old_param)]
                optimizer.state[new_param] = {
                    k: (v.index_select(0, index) if torch.is_tensor(v) and v.dim() > 0 else v)
                    for k, v in state.items()
                }
        self._set_agent_values()
        if self._buffer is not None:
            self._buffer.keep(index)

    def nonfinite_agents(self) -> list[int]:
        """Positions of agents with any non-finite parameter."""
        bad = torch.zeros(self.size, dtype=torch.bool, device=self.device)
        with torch.no_grad():
            for module in self._modules().values():
                for param in module.parameters():
                    bad |= ~torch.isfinite(param.reshape(self.size, -1)).all(dim=1)
        return [int(i) for i in torch.nonzero(bad).flatten().tolist()]

    # ------------------------------------------------------------------------------------------ sizes
    def memory_bytes(self, capacity: int | None = None) -> int:
        """Estimated memory of the population: parameters with targets, gradients and Adam moments, plus
        the replay buffer of ``capacity`` rows per agent (default: this population's)."""
        params = sum(p.numel() for m in self._modules().values() for p in m.parameters())
        rows = self.capacity if capacity is None else capacity
        return 4 * params * 4 + ReplayBuffer.bytes_needed(self.size, rows, self.obs_dim, self.action_dim)

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

    def save(self, path: str | Path) -> Path:
        """Write configs, seeds, spaces, enhancers, every agent's weights, optimiser and RNG states (no replay)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "configs": [c.to_dict() for c in self.configs],
            "seeds": self.seeds,
            "enhancers": self.enhancers.to_dict(),
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "token_groups": None if self.token_groups is None else [g.tolist() for g in self.token_groups],
            "action_codebook": None if self.action_codebook is None else self.action_codebook.tolist(),
            "num_updates": self.num_updates,
            "transitions_seen": self.transitions_seen,
            "modules": {name: m.state_dict() for name, m in self._modules().items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "torch_generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        write_atomic(path, buffer.getvalue())  # a full disk leaves the previous file whole
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> TD3Population:
        """Rebuild a population saved with :meth:`save`; ``device`` overrides the saved device."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no saved agents at {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{path} is not an autogai TD3 checkpoint (format {CHECKPOINT_FORMAT})")
        configs = [TD3Config.from_dict(c) for c in payload["configs"]]
        if device is not None:
            configs = [c.replace(device=device) for c in configs]
        token_groups = payload["token_groups"]
        codebook = payload["action_codebook"]
        population = cls(
            space_from_dict(payload["observation_space"]),
            space_from_dict(payload["action_space"]),
            EnhancerCombo.parse(payload["enhancers"]),
            configs,
            seeds=[int(s) for s in payload["seeds"]],
            token_groups=None
            if token_groups is None
            else [np.asarray(g, dtype=np.int64) for g in token_groups],
            action_codebook=None if codebook is None else np.asarray(codebook, dtype=np.float32),
        )
        for name, module in population._modules().items():
            module.load_state_dict(payload["modules"][name])
        for name, optimizer in population.optimizers.items():
            optimizer.load_state_dict(payload["optimizers"][name])
        population.num_updates = int(payload["num_updates"])
        population.transitions_seen = int(payload["transitions_seen"])
        population.generator.set_state(payload["torch_generator"])
        population.rng.bit_generator.state = payload["numpy_rng"]
        return population

    def __repr__(self) -> str:
        return (
            f"TD3Population(size={self.size}, enhancers={self.enhancers.short_name!r}, obs_dim={self.obs_dim}, "
            f"action={self.adapter.describe()}, updates={self.num_updates})"
        )


def _bce_per_agent(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy with logits against a constant label, averaged per agent: ``[P]``."""
    labels = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(
        dim=tuple(range(1, logits.dim()))
    )


__all__ = ["CHECKPOINT_FORMAT", "TD3Population", "resolve_device"]
