"""Policy slot: TD3's deterministic tanh head or a diffusion (GDM) actor, for every agent of a population.

The diffusion actor follows Diffusion-QL (Wang, Hunt & Zhou, ICLR 2023) and the GDM actor of the paper
(Sun et al., arXiv 2405.20568): the reverse process of a denoising diffusion model with a VP noise schedule
(beta_min 0.1, beta_max 10) generates the action from Gaussian noise in T steps, conditioned on the state
embedding. It is trained by TD3's actor loss -Q1(s, pi(s)) back-propagated through the whole chain, with an
optional denoising (behaviour-cloning) loss on replay actions. Speed: the state embedding and the time
embeddings are computed once per chain; the denoiser itself is a small MLP.

Shapes: embeddings ``[P, B, embed_dim]`` in, actions ``[P, B, k]`` out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autogai.agents.networks import sinusoidal_embedding
from autogai.agents.stacked import StackedLinear, StackedMLP


class DeterministicHead(nn.Module):
    """TD3's actor output layer: ``tanh(W h + b)`` in [-1, 1]^k."""

    def __init__(self, embed_dim: int, action_dim: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.linear = StackedLinear(embed_dim, action_dim, generators)

    def forward(self, embedding: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.tanh(self.linear(embedding))


def vp_beta_schedule(steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> np.ndarray:
    """Discretised variance-preserving SDE schedule (Song et al. 2021; Diffusion-QL's ``vp_beta_schedule``)."""
    t = np.arange(1, steps + 1, dtype=np.float64)
    alpha = np.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / steps**2)
    return 1.0 - alpha


class DiffusionPolicy(nn.Module):
    """Denoising diffusion actor: x_T ~ N(0, I) -> ... -> x_0 = action, clamped to [-1, 1].

    The denoiser predicts the noise: eps(x_t, t, h) = W3 mish(W2 mish(Wx x_t + Ws h + time(t))). ``Ws h`` (the
    state branch) and ``time(t)`` for all t are evaluated once per chain and reused at every step.
    """

    time_features: torch.Tensor  # a buffer: [T, time_dim]

    def __init__(
        self,
        embed_dim: int,
        action_dim: int,
        generators: Sequence[torch.Generator],
        *,
        hidden: int = 64,
        steps: int = 5,
        beta_min: float = 0.1,
        beta_max: float = 10.0,
        time_dim: int = 16,
    ) -> None:
        super().__init__()
        self.action_dim = action_dim
        self.steps = steps
        self.time_dim = time_dim
        self.state_branch = StackedLinear(embed_dim, hidden, generators)
        self.action_branch = StackedLinear(action_dim, hidden, generators, bias=False)
        self.time_mlp = StackedMLP(time_dim, (2 * time_dim,), hidden, generators, activation="mish")
        self.hidden_layer = StackedLinear(hidden, hidden, generators)
        self.output_layer = StackedLinear(hidden, action_dim, generators)
        # The sinusoidal features of t = 0..T-1 are fixed; only the time MLP on top of them is learned.
        self.register_buffer(
            "time_features", sinusoidal_embedding(torch.arange(steps), time_dim), persistent=False
        )

        # The schedule is fixed, so its coefficients are plain Python floats (no tensor indexing per step).
        betas = vp_beta_schedule(steps, beta_min, beta_max)
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        posterior_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        self.sqrt_recip_alpha_bar = np.sqrt(1.0 / alpha_bar).tolist()
        self.sqrt_recipm1_alpha_bar = np.sqrt(1.0 / alpha_bar - 1.0).tolist()
        self.posterior_mean_coef_x0 = (betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar)).tolist()
        self.posterior_mean_coef_xt = ((1.0 - alpha_bar_prev) * np.sqrt(alphas) / (1.0 - alpha_bar)).tolist()
        self.posterior_std = np.exp(0.5 * np.log(np.maximum(posterior_var, 1e-20))).tolist()
        self._sqrt_alpha_bar = torch.as_tensor(np.sqrt(alpha_bar), dtype=torch.float32)
        self._sqrt_one_minus_alpha_bar = torch.as_tensor(np.sqrt(1.0 - alpha_bar), dtype=torch.float32)

    def _time_terms(self, population: int) -> torch.Tensor:
        features = self.time_features.expand(population, -1, -1)
        return self.time_mlp(features)  # [P, T, hidden]

    def _eps(self, x_t: torch.Tensor, state_term: torch.Tensor, time_term: torch.Tensor) -> torch.Tensor:
        h = F.mish(self.action_branch(x_t) + state_term + time_term)
        return self.output_layer(F.mish(self.hidden_layer(h)))

    def forward(self, embedding: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Run the reverse chain for state embeddings ``[P, B, embed_dim]``; returns ``[P, B, k]``."""
        return self.sample(embedding, generator)[0]

    def sample(
        self,
        embedding: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The chain's output and its intermediate x_t (x_T first), for inspection.

        ``noise`` ``[T, P, B, k]`` (x_T, then the posterior noise of steps T-1..1) is drawn when not given.
        """
        population, batch = embedding.shape[:2]
        state_term = self.state_branch(embedding)  # once per chain
        time_terms = self._time_terms(population)  # once per chain
        if noise is None:  # all noise of the chain in one draw
            noise = torch.randn(
                (self.steps, population, batch, self.action_dim),
                generator=generator,
                device=embedding.device,
                dtype=embedding.dtype,
            )
        x = noise[0]
        trajectory = [x]
        for i in reversed(range(self.steps)):
            eps = self._eps(x, state_term, time_terms[:, i : i + 1])
            x0 = (self.sqrt_recip_alpha_bar[i] * x - self.sqrt_recipm1_alpha_bar[i] * eps).clamp(-1.0, 1.0)
            x = self.posterior_mean_coef_x0[i] * x0 + self.posterior_mean_coef_xt[i] * x
            if i > 0:
                x = x + self.posterior_std[i] * noise[i]
            trajectory.append(x)
        return x.clamp(-1.0, 1.0), trajectory

    def bc_loss(
        self, embedding: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Diffusion-QL's denoising loss on (replay) actions, per agent: ``[P]``.

        || eps - eps_theta(sqrt(ab) a + sqrt(1-ab) eps, t, s) ||^2 averaged over the batch and action coords.
        """
        population, batch = actions.shape[:2]
        device = actions.device
        t = torch.randint(0, self.steps, (population, batch), generator=generator, device=device)
        eps = torch.randn(actions.shape, generator=generator, device=device, dtype=actions.dtype)
        sqrt_ab = self._sqrt_alpha_bar.to(device)[t].unsqueeze(-1)
        sqrt_1mab = self._sqrt_one_minus_alpha_bar.to(device)[t].unsqueeze(-1)
        x_t = sqrt_ab * actions + sqrt_1mab * eps
        time_terms = self._time_terms(population)  # [P, T, hidden]
        time_term = torch.gather(time_terms, 1, t.unsqueeze(-1).expand(-1, -1, time_terms.shape[-1]))
        predicted = self._eps(x_t, self.state_branch(embedding), time_term)
        return (predicted - eps).pow(2).mean(dim=(1, 2))


class Actor(nn.Module):
    """Backbone (state trunk) + policy head; maps state features to action coords in [-1, 1]^k."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, feats: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.head(self.backbone(feats), generator)

    @property
    def is_diffusion(self) -> bool:
        return isinstance(self.head, DiffusionPolicy)
