"""Encoder slot: a VAE state encoder (Kingma & Welling, ICLR 2014) trained with the ELBO on replay states.

The paper (Sun et al., arXiv 2405.20568) uses the VAE to compress the high-dimensional channel state into a
small latent that the actor and critics consume. Here the encoder is trained on the replay batch's states at
every update; by default actor and critics see the latent *mean* (detached), so the RL losses do not move the
representation (options: a sampled latent; the critics' TD loss also training the encoder, SAC-AE style).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ELBOTerms(NamedTuple):
    loss: torch.Tensor  # scalar: mean over the batch of recon + beta * kl
    reconstruction: torch.Tensor  # scalar: mean Gaussian NLL (unit variance, up to a constant)
    kl: torch.Tensor  # scalar: mean KL(q(z|s) || N(0, I))
    latent: torch.Tensor  # [B, latent]: mean or sample, as configured (with graph)


class VAEEncoder(nn.Module):
    """Gaussian encoder q(z|s) and decoder p(s|z), one hidden layer each."""

    def __init__(
        self, obs_dim: int, latent_dim: int, hidden: int, *, beta: float = 1.0, sample_latent: bool = False
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.latent_dim = latent_dim
        self.beta = beta
        self.sample_latent = sample_latent
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU())
        self.mean_head = nn.Linear(hidden, latent_dim)
        self.logvar_head = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim))

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

    def elbo(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
        """Negative ELBO (reparameterised) on a batch of states, plus the latent features for RL."""
        mean, logvar = self.encode(obs)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + noise * (0.5 * logvar).exp()
        reconstruction = 0.5 * (self.decoder(z) - obs).pow(2).sum(dim=1).mean()
        kl = -0.5 * (1.0 + logvar - mean.pow(2) - logvar.exp()).sum(dim=1).mean()
        return ELBOTerms(
            reconstruction + self.beta * kl, reconstruction, kl, z if self.sample_latent else mean
        )
