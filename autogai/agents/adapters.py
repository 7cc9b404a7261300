"""Action adapters: the actor always outputs coords in [-1, 1]^k; an adapter maps them to the env's space.

Coordinate layout (fixed; the critic is trained on the executed coords, i.e. after quantisation):

- ``Box(low, high, shape)``: one coord per element, scaled linearly from [-1, 1] to [low, high]
  (unbounded elements are passed through).
- ``MultiDiscrete(nvec)``: one coord per entry; level j of n sits at ``-1 + 2 j / (n - 1)`` and a coord
  is quantised to its nearest level (index 0 <-> -1, the middle index <-> 0).
- ``Discrete(n)``: a *codebook* of n points in [-1, 1]^c; a coord vector is quantised to the nearest
  codebook row and executed as that row's index. Default codebook: if n = m * m (e.g. the UAV's 9
  way-points) two coords on an m x m grid, index ``k <-> (-1 + 2 (k // m) / (m - 1), -1 + 2 (k % m) / (m - 1))``,
  so for Discrete(9) ``k <-> (dx, dy) = ((k // 3) - 1, (k % 3) - 1)`` in units of the maximum move and
  k = 4 is hover; otherwise one coord with n evenly spaced levels. An env whose way-points are ordered
  differently passes its own codebook (``action_codebook``: the (dx, dy) / max_move of each index).
  On the full grid nearest-row quantisation equals rounding each coord to {-1, 0, 1}.
- ``Tuple(...)`` of the above: the parts' coords concatenated in order (hybrid UAV action:
  ``Tuple(Discrete(9), Box(-1, 1, (2,)))`` -> coords ``(dx, dy, p_bs, p_uav)``).

A HyAR-style learned latent action space (Li et al., ICLR 2022) would be a further adapter; not built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from autogai.core.errors import ConfigError


def default_codebook(n: int) -> np.ndarray:
    """Coords of each index of a ``Discrete(n)``: an m x m grid when n = m * m (m >= 2), else 1-D levels."""
    m = math.isqrt(n)
    if m >= 2 and m * m == n:
        k = np.arange(n)
        return np.stack([_levels(m)[k // m], _levels(m)[k % m]], axis=1).astype(np.float32)
    return _levels(n)[:, None].astype(np.float32)


def _levels(n: int) -> np.ndarray:
    if n == 1:
        return np.zeros(1, dtype=np.float32)
    return (-1.0 + 2.0 * np.arange(n) / (n - 1)).astype(np.float32)


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass(eq=False)
class _Part:
    kind: str  # "box" | "multidiscrete" | "discrete"
    offset: int
    dim: int
    space: spaces.Space
    shape: tuple[int, ...] = ()
    dtype: Any = np.float32
    start: Any = 0  # MultiDiscrete / Discrete index offset
    low: np.ndarray = field(default_factory=_empty)  # box
    high: np.ndarray = field(default_factory=_empty)  # box
    bounded: np.ndarray = field(default_factory=_empty)  # box: both bounds finite
    nvec: np.ndarray = field(default_factory=_empty)  # multidiscrete
    codebook: np.ndarray = field(default_factory=_empty)  # discrete [n, dim]


class ActionAdapter:
    """Maps actor coords in [-1, 1]^dim to env actions and back. See the module docstring for the layout."""

    def __init__(self, action_space: spaces.Space, *, codebook: np.ndarray | None = None) -> None:
        self.space = action_space
        self.parts: list[_Part] = []
        offset = 0
        members = action_space.spaces if isinstance(action_space, spaces.Tuple) else (action_space,)
        for member in members:
            part = self._make_part(member, offset, codebook)
            self.parts.append(part)
            offset += part.dim
        self.dim = offset
        self.is_tuple = isinstance(action_space, spaces.Tuple)
        # Per-coordinate number of levels (0 = continuous) for the MultiDiscrete parts, used by quantize.
        self._levels = np.zeros(self.dim, dtype=np.int64)
        for part in self.parts:
            if part.kind == "multidiscrete":
                assert part.nvec is not None
                self._levels[part.offset : part.offset + part.dim] = part.nvec
        self.is_continuous = all(p.kind == "box" for p in self.parts)
        # Distance between neighbouring levels of each coord (0 for continuous coords); exploration noise on
        # discrete coords is scaled by it, since Gaussian noise of std 0.1 would almost never change a level.
        self.level_spacing = np.zeros(self.dim, dtype=np.float32)
        for part in self.parts:
            sl = slice(part.offset, part.offset + part.dim)
            if part.kind == "multidiscrete":
                self.level_spacing[sl] = np.where(part.nvec > 1, 2.0 / np.maximum(part.nvec - 1, 1), 0.0)
            elif part.kind == "discrete":
                for j in range(part.dim):
                    gaps = np.diff(np.unique(part.codebook[:, j]))
                    self.level_spacing[part.offset + j] = gaps.min() if gaps.size else 0.0
        self._torch_cache: dict[tuple[str, torch.dtype], list[tuple[int, str, torch.Tensor]]] = {}

    @staticmethod
    def _make_part(space: spaces.Space, offset: int, codebook: np.ndarray | None) -> _Part:
        if isinstance(space, spaces.Box):
            low = np.asarray(space.low, dtype=np.float64).reshape(-1)
            high = np.asarray(space.high, dtype=np.float64).reshape(-1)
            return _Part(
                "box",
                offset,
                low.size,
                space,
                space.shape,
                space.dtype,
                low=low,
                high=high,
                bounded=np.isfinite(low) & np.isfinite(high),
            )
        if isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec, dtype=np.int64).reshape(-1)
            start = np.asarray(space.start, dtype=np.int64).reshape(-1)
            return _Part(
                "multidiscrete", offset, nvec.size, space, space.shape, space.dtype, start, nvec=nvec
            )
        if isinstance(space, spaces.Discrete):
            n = int(space.n)
            book = default_codebook(n) if codebook is None else np.asarray(codebook, dtype=np.float32)
            if book.ndim == 1:
                book = book[:, None]
            if book.shape[0] != n:
                raise ConfigError(
                    f"action_codebook has {book.shape[0]} rows but the Discrete space has n={n}"
                )
            if np.abs(book).max() > 1.0 + 1e-6:
                raise ConfigError("action_codebook entries must lie in [-1, 1]")
            return _Part(
                "discrete", offset, book.shape[1], space, (), np.int64, int(space.start), codebook=book
            )
        raise ConfigError(
            f"action space {space} is not supported; use Box, MultiDiscrete, Discrete or a Tuple of them"
        )

    # ------------------------------------------------------------------ numpy side (acting)
    def quantize(self, coords: np.ndarray) -> np.ndarray:
        """Executed coords: clip to [-1, 1] and snap discrete coords to their level / codebook row.

        Idempotent. Accepts ``[..., dim]``; returns float32 of the same shape.
        """
        out = np.clip(np.asarray(coords, dtype=np.float32), -1.0, 1.0)
        if self.is_continuous:
            return out
        shape = out.shape
        out = np.array(out.reshape(-1, self.dim), dtype=np.float32)
        for part in self.parts:
            sl = slice(part.offset, part.offset + part.dim)
            if part.kind == "multidiscrete":
                out[:, sl] = self._index_to_levels(self._levels_to_index(out[:, sl], part.nvec), part.nvec)
            elif part.kind == "discrete":
                out[:, sl] = part.codebook[self._nearest_row(out[:, sl], part.codebook)]
        return out.reshape(shape)

    def to_env(self, coords: np.ndarray) -> Any:
        """The env action for coords ``[dim]`` (or a batch ``[B, dim]``: a tuple of batched parts)."""
        coords = np.clip(np.asarray(coords, dtype=np.float64), -1.0, 1.0)
        single = coords.ndim == 1
        batch = coords[None] if single else coords
        actions = []
        for part in self.parts:
            c = batch[:, part.offset : part.offset + part.dim]
            if part.kind == "box":
                scaled = np.where(part.bounded, part.low + (c + 1.0) * 0.5 * (part.high - part.low), c)
                action: Any = scaled.astype(part.dtype).reshape((-1, *part.shape))
            elif part.kind == "multidiscrete":
                idx = self._levels_to_index(c, part.nvec) + part.start
                action = idx.astype(part.dtype).reshape((-1, *part.shape))
            else:
                action = (self._nearest_row(c, part.codebook) + part.start).astype(np.int64)
            actions.append(action[0] if single else action)
        if single:
            actions = [a.item() if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in actions]
            actions = [int(a) if isinstance(a, np.integer) else a for a in actions]
        return tuple(actions) if self.is_tuple else actions[0]

    def from_env(self, action: Any) -> np.ndarray:
        """Coords ``[dim]`` of one env action (inverse of :meth:`to_env` on executed coords)."""
        members = action if self.is_tuple else (action,)
        out = np.zeros(self.dim, dtype=np.float32)
        for part, a in zip(self.parts, members, strict=True):
            sl = slice(part.offset, part.offset + part.dim)
            if part.kind == "box":
                a = np.asarray(a, dtype=np.float64).reshape(-1)
                span = np.where(part.bounded, part.high - part.low, 2.0)
                low = np.where(part.bounded, part.low, -1.0)
                out[sl] = 2.0 * (a - low) / span - 1.0
            elif part.kind == "multidiscrete":
                idx = np.asarray(a, dtype=np.int64).reshape(-1) - part.start
                out[sl] = self._index_to_levels(idx, part.nvec)
            else:
                out[sl] = part.codebook[int(a) - part.start]
        return out

    @staticmethod
    def _levels_to_index(c: np.ndarray, nvec: np.ndarray) -> np.ndarray:
        steps = np.maximum(nvec - 1, 1)
        return np.clip(np.rint((c + 1.0) * 0.5 * steps), 0, nvec - 1).astype(np.int64)

    @staticmethod
    def _index_to_levels(idx: np.ndarray, nvec: np.ndarray) -> np.ndarray:
        steps = np.maximum(nvec - 1, 1)
        return np.where(nvec > 1, -1.0 + 2.0 * idx / steps, 0.0).astype(np.float32)

    @staticmethod
    def _nearest_row(c: np.ndarray, book: np.ndarray) -> np.ndarray:
        dist = ((c[:, None, :] - book[None, :, :]) ** 2).sum(-1)  # [B, n]
        return dist.argmin(axis=1)

    # ------------------------------------------------------------------ torch side (targets)
    def quantize_torch(self, coords: torch.Tensor) -> torch.Tensor:
        """:meth:`quantize` for a ``[..., dim]`` tensor (used on target actions inside the update)."""
        coords = coords.clamp(-1.0, 1.0)
        if self.is_continuous:
            return coords
        shape = coords.shape
        coords = coords.reshape(-1, shape[-1])
        key = (str(coords.device), coords.dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = [
                (i, part.kind, torch.as_tensor(part.nvec if part.kind == "multidiscrete" else part.codebook))
                for i, part in enumerate(self.parts)
                if part.kind != "box"
            ]
            self._torch_cache[key] = [(i, k, t.to(coords.device)) for i, k, t in self._torch_cache[key]]
        pieces = list(coords.split([p.dim for p in self.parts], dim=1))
        for i, kind, table in self._torch_cache[key]:
            c = pieces[i]
            if kind == "multidiscrete":
                steps = (table - 1).clamp(min=1).to(c.dtype)
                idx = torch.minimum(
                    torch.round((c + 1.0) * 0.5 * steps).clamp(min=0), (table - 1).to(c.dtype)
                )
                q = torch.where(table > 1, -1.0 + 2.0 * idx / steps, torch.zeros_like(c))
            else:
                book = table.to(c.dtype)
                q = book[torch.cdist(c, book).argmin(dim=1)]
            pieces[i] = q
        return torch.cat(pieces, dim=1).view(shape)

    def describe(self) -> str:
        """One line per part, for logs and reports."""
        rows = []
        for part in self.parts:
            rows.append(f"coords {part.offset}..{part.offset + part.dim - 1}: {part.kind} {part.space}")
        return "; ".join(rows)


# ---------------------------------------------------------------------- space (de)serialisation
def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """Plain-data description of a Box / Discrete / MultiDiscrete / Tuple space (for checkpoints)."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": np.asarray(space.low, dtype=np.float64).reshape(-1).tolist(),
            "high": np.asarray(space.high, dtype=np.float64).reshape(-1).tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    raise ConfigError(f"space {space} cannot be saved; supported: Box, Discrete, MultiDiscrete, Tuple")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_dict`."""
    kind = data["type"]
    if kind == "Box":
        shape = tuple(data["shape"])
        dtype = np.dtype(data["dtype"])
        low = np.asarray(data["low"], dtype=dtype).reshape(shape)
        high = np.asarray(data["high"], dtype=dtype).reshape(shape)
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            np.asarray(data["nvec"]), dtype=np.dtype(data["dtype"]), start=np.asarray(data["start"])
        )
    if kind == "Tuple":
        return spaces.Tuple([space_from_dict(s) for s in data["spaces"]])
    raise ConfigError(f"unknown saved space type {kind!r}")
