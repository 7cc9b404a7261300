"""Small building blocks shared by the enhancer modules: time embeddings (the stacked layers live in
:mod:`autogai.agents.stacked`)."""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of (diffusion) time steps: ``[N] -> [N, dim]``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / max(half - 1, 1)
    )
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)
