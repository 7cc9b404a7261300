"""Encoder slot: a VAE state encoder (Kingma & Welling, ICLR 2014) trained with the ELBO on replay states.

The paper (Sun et al., arXiv 2405.20568) uses the VAE to compress the high-dimensional channel state into a
small latent that the actor and critics consume. Here the encoder is trained on the replay batch's states at
every update; by default actor and critics see the latent *mean* (detached), so the RL losses do not move the
representation (options: a sampled latent; the critics' TD loss also training the encoder, SAC-AE style).
Shapes: observations ``[P, B, obs_dim]``, latents ``[P, B, latent]``, losses per agent ``[P]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from autogai.agents.stacked import StackedLinear, StackedMLP


class ELBOTerms(NamedTuple):
    loss: torch.Tensor  # [P]: batch mean of recon + beta * kl
    reconstruction: torch.Tensor  # [P]: mean Gaussian NLL (unit variance, up to a constant)
    kl: torch.Tensor  # [P]: mean KL(q(z|s) || N(0, I))
    latent: torch.Tensor  # [P, B, latent]: mean or sample, as configured (with graph)


class VAEEncoder(nn.Module):
    """Gaussian encoder q(z|s) and decoder p(s|z), one hidden layer each, per agent."""

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int,
        hidden: int,
        generators: Sequence[torch.Generator],
        *,
        sample_latent: bool = False,
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.latent_dim = latent_dim
        self.sample_latent = sample_latent
        self.body = StackedMLP(obs_dim, (hidden,), None, generators)
        self.mean_head = StackedLinear(hidden, latent_dim, generators)
        self.logvar_head = StackedLinear(hidden, latent_dim, generators)
        self.decoder = StackedMLP(latent_dim, (hidden,), obs_dim, generators)

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(obs)
        # Clamped log-variance keeps exp() finite on out-of-distribution states.
        return self.mean_head(h), self.logvar_head(h).clamp(-10.0, 10.0)

    def forward(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The features actor and critics consume: the latent mean, or a sample if configured."""
        mean, logvar = self.encode(obs)
        if not self.sample_latent:
            return mean
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise * (0.5 * logvar).exp()

    def elbo(
        self, obs: torch.Tensor, beta: torch.Tensor, generator: torch.Generator | None = None
    ) -> ELBOTerms:
        """Negative ELBO (reparameterised) per agent with KL weights ``beta [P]``, plus the RL features."""
        mean, logvar = self.encode(obs)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + noise * (0.5 * logvar).exp()
        reconstruction = 0.5 * (self.decoder(z) - obs).pow(2).sum(dim=-1).mean(dim=-1)
        kl = -0.5 * (1.0 + logvar - mean.pow(2) - logvar.exp()).sum(dim=-1).mean(dim=-1)
        return ELBOTerms(reconstruction + beta * kl, reconstruction, kl, z if self.sample_latent else mean)
