"""Backbone slot: the actor's state trunk, an MLP (TD3) or a Transformer encoder over state tokens.

The backbone maps state features ``[P, B, feat_dim]`` to a state embedding ``[P, B, out_dim]`` for each of
the P agents of a population. The deterministic head reads it directly; the diffusion policy uses it as the
state branch of its denoiser (computed once per denoising chain), which is the paper's "Transformer improves
the denoising network of GDM" (Sun et al., arXiv 2405.20568).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from autogai.agents.stacked import StackedLayerNorm, StackedLinear, StackedMLP
from autogai.core.errors import ConfigError


class MLPBackbone(nn.Module):
    """TD3's actor trunk: ReLU MLP of widths ``net_arch``."""

    def __init__(self, feat_dim: int, net_arch: Sequence[int], generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.out_dim = int(net_arch[-1])
        self.net = StackedMLP(feat_dim, net_arch, None, generators)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)


def default_token_groups(feat_dim: int) -> list[np.ndarray]:
    """One token per feature: a single group of shape ``[feat_dim, 1]``."""
    return [np.arange(feat_dim, dtype=np.int64)[:, None]]


class SelfAttention(nn.Module):
    """Multi-head self-attention with learned Q/K/V and output projections, per agent."""

    def __init__(self, dim: int, heads: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = StackedLinear(dim, 3 * dim, generators)
        self.out = StackedLinear(dim, dim, generators)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p, b, n, d = x.shape
        q, k, v = self.qkv(x.reshape(p, b * n, d)).split(d, dim=-1)
        # [P, B*N, d] -> [P*B, heads, N, d_head] (views; matmul handles the strides)
        q, k, v = (t.reshape(p * b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        return q, k, v

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """softmax(Q K^T / sqrt(d_head)): ``[P, B, heads, N, N]``."""
        q, k, _ = self._split(x)
        weights = torch.softmax(torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1)), dim=-1)
        return weights.view(x.shape[0], x.shape[1], *weights.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Explicit softmax attention: for these short sequences and tiny heads it is faster on CPU than
        # F.scaled_dot_product_attention's flash kernel (measured here, forward + backward).
        p, b, n, d = x.shape
        q, k, v = self._split(x)
        weights = torch.softmax(torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1)), dim=-1)
        y = torch.matmul(weights, v).transpose(1, 2).reshape(p, b * n, d)
        return self.out(y).view(p, b, n, d)


class EncoderBlock(nn.Module):
    """Pre-LayerNorm Transformer encoder block: x + MHSA(LN(x)), then x + FF(LN(x))."""

    def __init__(self, population: int, dim: int, heads: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.norm1 = StackedLayerNorm(population, dim)
        self.attention = SelfAttention(dim, heads, generators)
        self.norm2 = StackedLayerNorm(population, dim)
        self.feed_forward = StackedMLP(dim, (2 * dim,), dim, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.feed_forward(self.norm2(x))


class TransformerBackbone(nn.Module):
    """A Transformer encoder (Vaswani et al. 2017) over tokens cut from the state vector.

    ``token_groups`` is a list of int arrays ``[n_tokens, token_dim]`` indexing the feature vector; every
    group has its own learned projection token_dim -> d_model (e.g. UAV: one group of 50 antenna tokens
    (Re_i, Im_i) and one group holding (x, y, z, R1, R2, t)). Each token gets a learned element embedding
    (its identity/position), then ``layers`` pre-LN blocks of multi-head self-attention and feed-forward,
    a final LayerNorm, mean pooling over tokens and a ReLU projection to ``out_dim``.

    ``max_tokens > 0`` caps the sequence length for speed: when the groups hold more tokens, runs of adjacent
    tokens of a group are merged into one wider token (e.g. 50 antenna tokens -> 13 tokens of 4 adjacent
    elements). Self-attention costs O(n_tokens^2) and every per-token layer O(n_tokens).
    """

    def __init__(
        self,
        feat_dim: int,
        token_groups: Sequence[np.ndarray],
        generators: Sequence[torch.Generator],
        *,
        dim: int,
        heads: int,
        layers: int,
        out_dim: int,
        max_tokens: int = 0,
    ) -> None:
        super().__init__()
        population = len(generators)
        self.out_dim = int(out_dim)
        groups = [np.asarray(g, dtype=np.int64) for g in token_groups]
        if not groups:
            raise ConfigError("token_groups is empty; give at least one [n_tokens, token_dim] index array")
        for g in groups:
            if g.ndim != 2 or g.size == 0:
                raise ConfigError(f"each token group must be a non-empty 2-D int array, got shape {g.shape}")
            if g.min() < 0 or g.max() >= feat_dim:
                raise ConfigError(
                    f"token group indices must lie in [0, {feat_dim}); got {g.min()}..{g.max()}"
                )
        self.pad = False
        total = sum(g.shape[0] for g in groups)
        if 0 < max_tokens < total:
            groups = [self._merge(g, math.ceil(total / max_tokens), feat_dim) for g in groups]
            self.pad = any((g == feat_dim).any() for g in groups)
        self.token_groups = groups
        for i, g in enumerate(groups):
            self.register_buffer(f"group_index_{i}", torch.as_tensor(g.reshape(-1)), persistent=False)
        self.projections = nn.ModuleList(StackedLinear(g.shape[1], dim, generators) for g in groups)
        self.n_tokens = sum(g.shape[0] for g in groups)
        embedding = torch.empty(population, self.n_tokens, dim)
        for i, generator in enumerate(generators):
            embedding[i].normal_(0.0, 0.02, generator=generator)
        self.element_embedding = nn.Parameter(embedding)
        self.blocks = nn.ModuleList(EncoderBlock(population, dim, heads, generators) for _ in range(layers))
        self.final_norm = StackedLayerNorm(population, dim)
        self.pool_projection = StackedLinear(dim, out_dim, generators)

    @staticmethod
    def _merge(group: np.ndarray, factor: int, pad_index: int) -> np.ndarray:
        """Merge runs of ``factor`` adjacent tokens into one (the last run padded with a zero feature)."""
        n, width = group.shape
        if n == 1 or factor <= 1:
            return group
        n_new = math.ceil(n / factor)
        padded = np.full((n_new * factor, width), pad_index, dtype=np.int64)
        padded[:n] = group
        return padded.reshape(n_new, factor * width)

    def tokens(self, feats: torch.Tensor) -> torch.Tensor:
        """Embedded tokens before the blocks: ``[P, B, n_tokens, dim]``."""
        if self.pad:
            feats = torch.nn.functional.pad(feats, (0, 1))
        p, b = feats.shape[:2]
        pieces = []
        for i, (g, projection) in enumerate(zip(self.token_groups, self.projections, strict=True)):
            index = getattr(self, f"group_index_{i}")
            gathered = feats.index_select(2, index).view(p, b * g.shape[0], g.shape[1])
            pieces.append(projection(gathered).view(p, b, g.shape[0], -1))
        x = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
        return x + self.element_embedding.unsqueeze(1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.tokens(feats)
        for block in self.blocks:
            x = block(x)
        pooled = self.final_norm(x).mean(dim=2)  # [P, B, dim]
        return torch.relu(self.pool_projection(pooled))

    def attention_maps(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every block, each ``[P, B, heads, n_tokens, n_tokens]``."""
        maps = []
        x = self.tokens(feats)
        for block in self.blocks:
            assert isinstance(block, EncoderBlock)
            maps.append(block.attention.attention_weights(block.norm1(x)))
            x = block(x)
        return maps
