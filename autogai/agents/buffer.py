"""Replay buffer with preallocated numpy arrays; samples come back as a NamedTuple of torch tensors."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class ReplayBatch(NamedTuple):
    """A minibatch; every tensor has the batch as its first dimension."""

    obs: torch.Tensor  # [B, obs_dim]
    actions: torch.Tensor  # [B, action_dim] executed coords in [-1, 1]
    rewards: torch.Tensor  # [B, 1]
    next_obs: torch.Tensor  # [B, obs_dim]
    terminated: torch.Tensor  # [B, 1] 1.0 where the episode ended in a terminal state (no bootstrap)


class ReplayBuffer:
    """Circular buffer of transitions in preallocated float32 arrays (no Python lists).

    Sampling is uniform with replacement (as in SB3 and the TD3 paper). On CPU the sampled rows are wrapped
    with ``torch.from_numpy`` without a further copy.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        action_dim: int,
        *,
        device: torch.device | str = "cpu",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.capacity = int(capacity)
        self.device = torch.device(device)
        self.obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((self.capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros((self.capacity, 1), dtype=np.float32)
        self.terminated = np.zeros((self.capacity, 1), dtype=np.float32)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        """Store one transition, or a batch when ``obs`` is 2-D (rows of equal length for every field)."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 2:
            for i in range(obs.shape[0]):
                self.add(
                    obs[i],
                    np.asarray(action)[i],
                    float(np.asarray(reward).reshape(-1)[i]),
                    np.asarray(next_obs)[i],
                    bool(np.asarray(terminated).reshape(-1)[i]),
                )
            return
        i = self.position
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i, 0] = reward
        self.next_obs[i] = next_obs
        self.terminated[i, 0] = terminated
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> ReplayBatch:
        """Uniformly sample ``batch_size`` transitions (with replacement)."""
        idx = self.rng.integers(0, self.size, size=batch_size)
        return ReplayBatch(
            self._tensor(self.obs[idx]),
            self._tensor(self.actions[idx]),
            self._tensor(self.rewards[idx]),
            self._tensor(self.next_obs[idx]),
            self._tensor(self.terminated[idx]),
        )

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type != "cpu":
            tensor = tensor.to(self.device, non_blocking=True)
        return tensor
