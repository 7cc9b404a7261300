"""Layers of a population: P independent networks of one architecture, evaluated by batched matmuls.

Every parameter here has the population as its first dimension (``[P, ...]``); that invariant is what lets
:class:`~autogai.agents.td3.TD3Population` drop an agent by indexing dim 0 of every tensor it owns. A layer
of P agents is one ``baddbmm`` instead of P ``addmm`` calls: for the small networks of this project the
per-operation overhead dominates, and a population pays it once (measured in ``bench/population.py``).

Why not ``torch.func`` (``stack_module_state`` + ``vmap(grad(functional_call))``): on one CPU thread a critic
regression step on stacked weights with ``baddbmm`` and ordinary autograd ran 2.5x as many network-updates
per second as the vmapped one at P=1 (2.5-4x), 2x at P=4 and still 1.1-1.3x at P=16-32
(``bench/population.py --compare-vmap``; raw output in ``bench/results/population_vmap.txt``). P=1 is the
single agent, so the layer that is fastest there wins.

Initialisation follows ``nn.Linear`` (uniform in +-1/sqrt(fan_in) for weights and biases) and draws each
agent's numbers from that agent's own generator, so an agent starts from the same weights whether it is
trained alone or inside a population.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def agent_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per agent, seeded with the agent's seed (initialisation only)."""
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds]


def _uniform(shape: Sequence[int], bound: float, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """``[P, *shape]`` with agent ``i``'s slice drawn from ``generators[i]``."""
    out = torch.empty(len(generators), *shape)
    for i, generator in enumerate(generators):
        out[i].uniform_(-bound, bound, generator=generator)
    return out


class StackedLinear(nn.Module):
    """P (times ``members``) independent linear layers: weight ``[P, (M,) in, out]``, bias ``[P, (M,) 1, out]``.

    ``forward`` takes ``x [P * M, rows, in]`` (agent-major when M > 1) and returns ``[P * M, rows, out]``.
    ``members`` > 1 holds an ensemble per agent (TD3's twin critics) in the same tensors.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        generators: Sequence[torch.Generator],
        *,
        members: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.members = int(in_dim), int(out_dim), int(members)
        inner = (self.members,) if self.members > 1 else ()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(_uniform((*inner, in_dim, out_dim), bound, generators))
        self.bias = nn.Parameter(_uniform((*inner, 1, out_dim), bound, generators)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.reshape(-1, self.in_dim, self.out_dim)
        if self.bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(self.bias.reshape(-1, 1, self.out_dim), x, weight)

    def forward_member(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """Member ``member`` of every agent only: ``x [P, rows, in] -> [P, rows, out]``."""
        assert self.members > 1
        weight = self.weight[:, member]
        if self.bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(self.bias[:, member], x, weight)


class StackedMLP(nn.Module):
    """An MLP per agent (and per ensemble member): Linear-activation layers, a final linear to ``out_dim``.

    ``forward``: ``x [P, ..., in]`` shared by the members, or ``[P, M, rows, in]`` per member; returns
    ``[P, ..., out]`` for M = 1 and ``[P, M, rows, out]`` for M > 1.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None,
        generators: Sequence[torch.Generator],
        *,
        members: int = 1,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        dims = [int(in_dim), *(int(h) for h in hidden)]
        if out_dim is not None:
            dims.append(int(out_dim))
        self.members = int(members)
        self.layers = nn.ModuleList(
            StackedLinear(a, b, generators, members=members) for a, b in itertools.pairwise(dims)
        )
        # The last layer is linear unless the MLP is a trunk (out_dim None: every layer activated).
        self.activate_last = out_dim is None
        self.activation: Callable[[torch.Tensor], torch.Tensor] = {"relu": torch.relu, "mish": F.mish}[
            activation
        ]
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        population = x.shape[0]
        if self.members > 1:
            if x.dim() == 3:  # shared input: one copy per member
                x = x.unsqueeze(1).expand(-1, self.members, -1, -1)
            lead = x.shape[:3]
        else:
            lead = x.shape[:-1]
        h = x.reshape(population * self.members, -1, x.shape[-1])
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last or self.activate_last:
                h = self.activation(h)
        return h.view(*lead, self.out_dim)

    def forward_member(self, x: torch.Tensor, member: int) -> torch.Tensor:
        """Member ``member`` only (the actor's Q1): ``x [P, rows, in] -> [P, rows, out]``."""
        last = len(self.layers) - 1
        h = x
        for i, layer in enumerate(self.layers):
            h = cast("StackedLinear", layer).forward_member(h, member)
            if i < last or self.activate_last:
                h = self.activation(h)
        return h


class StackedLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a per-agent affine: ``x [P, ..., dim]``."""

    def __init__(self, population: int, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.weight = nn.Parameter(torch.ones(population, dim))
        self.bias = nn.Parameter(torch.zeros(population, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (self.dim,)
        normalised = F.layer_norm(x, (self.dim,))
        return torch.addcmul(self.bias.view(shape), normalised, self.weight.view(shape))
