"""Replay for a population: one preallocated buffer ``[P, capacity, ...]``; each agent samples its own rows.

Agents never share transitions: agent ``i`` stores what its own envs produced in row ``i`` and samples
indices of its own. The tensors live on the learner's device, so sampling on a GPU never leaves it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class ReplayBatch(NamedTuple):
    """A minibatch per agent; every tensor is ``[P, B, ...]``."""

    obs: torch.Tensor  # [P, B, obs_dim]
    actions: torch.Tensor  # [P, B, action_dim] executed coords in [-1, 1]
    rewards: torch.Tensor  # [P, B, 1]
    next_obs: torch.Tensor  # [P, B, obs_dim]
    terminated: torch.Tensor  # [P, B, 1] 1.0 where the episode ended in a terminal state (no bootstrap)


class ReplayBuffer:
    """Circular buffers of transitions for P agents in preallocated float32 tensors.

    All agents add the same number of transitions per call (each from its own envs), so one write position
    serves all of them. Sampling is uniform with replacement (as in SB3 and the TD3 paper).
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(
        self,
        population: int,
        capacity: int,
        obs_dim: int,
        action_dim: int,
        *,
        device: torch.device | str = "cpu",
    ) -> None:
        self.capacity = int(capacity)
        self.device = torch.device(device)

        def zeros(width: int) -> torch.Tensor:
            return torch.zeros((population, self.capacity, width), dtype=torch.float32, device=self.device)

        self.obs = zeros(obs_dim)
        self.next_obs = zeros(obs_dim)
        self.actions = zeros(action_dim)
        self.rewards = zeros(1)
        self.terminated = zeros(1)
        self.position = 0
        self.size = 0
        self._numpy_views()

    def _numpy_views(self) -> None:
        # On the CPU, writes go through numpy views of the same memory: for the few rows a step adds,
        # numpy slicing costs a fraction of torch's indexing machinery.
        self._views = (
            {name: getattr(self, name).numpy() for name in self.FIELDS} if self.device.type == "cpu" else None
        )

    def __len__(self) -> int:
        return self.size

    @staticmethod
    def bytes_needed(population: int, capacity: int, obs_dim: int, action_dim: int) -> int:
        """Memory the buffer's tensors take (for the memory check before training starts)."""
        return 4 * population * capacity * (2 * obs_dim + action_dim + 2)

    def add(
        self,
        obs: torch.Tensor | np.ndarray,
        actions: torch.Tensor | np.ndarray,
        rewards: torch.Tensor | np.ndarray,
        next_obs: torch.Tensor | np.ndarray,
        terminated: torch.Tensor | np.ndarray,
    ) -> None:
        """Store ``n`` transitions per agent: ``obs [P, n, obs_dim]``, ``rewards [P, n]``, ... (numpy arrays
        or tensors on the buffer's device)."""
        n = obs.shape[1]
        start = self.position
        if self._views is not None and start + n <= self.capacity:
            population = obs.shape[0]
            view = self._views
            view["obs"][:, start : start + n] = np.asarray(obs)
            view["actions"][:, start : start + n] = np.asarray(actions)
            view["rewards"][:, start : start + n] = np.asarray(rewards).reshape(population, n, 1)
            view["next_obs"][:, start : start + n] = np.asarray(next_obs)
            view["terminated"][:, start : start + n] = np.asarray(terminated).reshape(population, n, 1)
            self.position = (start + n) % self.capacity
            self.size = min(self.size + n, self.capacity)
            return
        obs, actions, rewards, next_obs, terminated = (
            torch.as_tensor(
                np.asarray(x, dtype=np.float32) if isinstance(x, np.ndarray) else x, device=self.device
            )
            for x in (obs, actions, rewards, next_obs, terminated)
        )
        # A plain slice when the rows do not wrap around (every step but one per lap): no index tensor.
        rows: slice | torch.Tensor = (
            slice(start, start + n)
            if start + n <= self.capacity
            else torch.arange(start, start + n, device=self.device) % self.capacity
        )
        self.obs[:, rows] = obs
        self.actions[:, rows] = actions
        self.rewards[:, rows] = rewards.reshape(obs.shape[0], n, 1)
        self.next_obs[:, rows] = next_obs
        self.terminated[:, rows] = terminated.reshape(obs.shape[0], n, 1)
        self.position = (start + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> ReplayBatch:
        """``batch_size`` transitions per agent, each agent its own uniform indices (with replacement)."""
        population = self.obs.shape[0]
        index = torch.randint(0, self.size, (population, batch_size), generator=generator, device=self.device)
        flat = (index + torch.arange(population, device=self.device).unsqueeze(1) * self.capacity).view(-1)

        def take(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.view(-1, tensor.shape[-1]).index_select(0, flat).view(population, batch_size, -1)

        return ReplayBatch(
            take(self.obs), take(self.actions), take(self.rewards), take(self.next_obs), take(self.terminated)
        )

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the agents ``index`` (in that order); the others' transitions are freed."""
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name).index_select(0, index).contiguous())
        self._numpy_views()
