"""Small building blocks shared by the enhancer modules: MLPs, a twin (ensemble) MLP, time embeddings."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int | None, *, activation: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """Linear-activation stack; a final linear layer to ``out_dim`` unless it is None."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation()]
        last = width
    if out_dim is not None:
        layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class EnsembleMLP(nn.Module):
    """``members`` independent MLPs evaluated in one batched matmul per layer (TD3's twin critics).

    Weights are ``[members, in, out]`` and initialised like ``nn.Linear``. Computing both critics with one
    ``baddbmm`` per layer instead of two separate networks halves the kernel launches and Python overhead
    of the critic, which dominates a TD3 update at these sizes on CPU.
    """

    def __init__(self, members: int, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.members = members
        dims = [in_dim, *hidden, out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(dims):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, in]`` (shared by all members) or ``[members, B, in]``; returns ``[members, B, out]``."""
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(bias, x, weight) if x.dim() == 3 else torch.matmul(x, weight) + bias
            if i < last:
                x = torch.relu(x)
        return x

    def forward_member(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """One member only (the actor loss needs Q1 alone): ``[B, in] -> [B, out]``."""
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.addmm(bias[member], x, weight[member])
            if i < last:
                x = torch.relu(x)
        return x


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of (diffusion) time steps: ``[N] -> [N, dim]``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / max(half - 1, 1)
    )
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)
