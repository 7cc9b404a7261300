"""Critic slot: TD3's twin Q networks, or twin GAN generator critics with a Bellman discriminator.

GAN critic (GAN Q-learning, Doan et al. 2018; GAN-powered distributional RL, Hua et al., IEEE JSAC 2020):
each critic is a generator G_i(s, a, z) with a noise input z, so it models a distribution of returns. A
discriminator D((s, a), q) learns to tell Bellman target samples y = r + gamma * min_i G'_i(s', a~, z') from
generated samples G_i(s, a, z); the generators minimise the TD error plus a weighted adversarial term that
back-propagates through D into G. The actor maximises the expected Q1 (z = 0, or a mean over z samples).

Shapes, for a population of P agents: features ``[P, B, f]``, actions ``[P, B, k]``; both critics together
``[P, 2, B, 1]``, Q1 alone ``[P, B, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autogai.agents.stacked import StackedMLP


class TwinCritic(nn.Module):
    """TD3's two Q networks Q_1, Q_2 per agent (evaluated together as one two-member ensemble)."""

    def __init__(
        self, feat_dim: int, action_dim: int, net_arch: Sequence[int], generators: Sequence[torch.Generator]
    ) -> None:
        super().__init__()
        self.q_networks = StackedMLP(feat_dim + action_dim, net_arch, 1, generators, members=2)

    def forward(
        self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Both critics: ``[P, 2, B, 1]``."""
        return self.q_networks(torch.cat([feats, actions], dim=-1))

    def q1(
        self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Q_1 alone (the actor's objective): ``[P, B, 1]``."""
        return self.q_networks.forward_member(torch.cat([feats, actions], dim=-1), 0)


class GANCritic(nn.Module):
    """Twin generator critics G_1, G_2 (s, a, z) -> q with z ~ N(0, I) of size ``noise_dim``."""

    def __init__(
        self,
        feat_dim: int,
        action_dim: int,
        net_arch: Sequence[int],
        generators: Sequence[torch.Generator],
        *,
        noise_dim: int = 4,
        z_samples: int = 0,
    ) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.z_samples = z_samples
        self.generators = StackedMLP(feat_dim + action_dim + noise_dim, net_arch, 1, generators, members=2)

    def forward(
        self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One sample of each generator, independent z per critic and transition: ``[P, 2, B, 1]``."""
        state_action = torch.cat([feats, actions], dim=-1)
        population, batch = state_action.shape[:2]
        z = torch.randn(
            (population, 2, batch, self.noise_dim),
            generator=generator,
            device=feats.device,
            dtype=feats.dtype,
        )
        return self.generators(torch.cat([state_action.unsqueeze(1).expand(-1, 2, -1, -1), z], dim=-1))

    def q1(
        self, feats: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Expected Q_1 for the actor: G_1 at z = 0, or the mean over ``z_samples`` draws. ``[P, B, 1]``."""
        state_action = torch.cat([feats, actions], dim=-1)
        population, batch = state_action.shape[:2]
        if self.z_samples == 0:
            z = state_action.new_zeros(population, batch, self.noise_dim)
            return self.generators.forward_member(torch.cat([state_action, z], dim=-1), 0)
        k = self.z_samples
        z = torch.randn(
            (population, k * batch, self.noise_dim),
            generator=generator,
            device=feats.device,
            dtype=feats.dtype,
        )
        q = self.generators.forward_member(torch.cat([state_action.repeat(1, k, 1), z], dim=-1), 0)
        return q.view(population, k, batch, 1).mean(dim=1)


class BellmanDiscriminator(nn.Module):
    """D((s, a), q) -> logit that q is a Bellman target sample (real) rather than a generated one (fake).

    q enters normalised by each agent's batch target statistics (detached), so D sees values of order one
    whatever the reward scale (UAV returns are in the thousands).
    """

    def __init__(
        self, feat_dim: int, action_dim: int, net_arch: Sequence[int], generators: Sequence[torch.Generator]
    ) -> None:
        super().__init__()
        self.net = StackedMLP(feat_dim + action_dim + 1, net_arch, 1, generators)

    def forward(self, feats: torch.Tensor, actions: torch.Tensor, q_normalised: torch.Tensor) -> torch.Tensor:
        """``feats [P, ..., B, f]``, ``actions [P, ..., B, k]``, ``q [P, ..., B, 1]`` -> logits ``[P, ..., B, 1]``."""
        return self.net(torch.cat([feats, actions, q_normalised], dim=-1))
