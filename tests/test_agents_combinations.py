"""Contract suite: every enhancer combination x every action-space type trains as a population of two agents
with different learning rates and taus for a few hundred updates without NaN, and saves/loads to identical
actions; plus real-env smokes on Pendulum-v1 and the UAV env's three action modes."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from training_helpers import tiny_agent_config

from autogai.agents import TD3Population
from autogai.core.types import EnhancerCombo

torch.set_num_threads(1)

CONFIG = tiny_agent_config(buffer_size=1_000, bc_weight=0.1, vae_latent_dim=4)
# Two agents of one shape with their own learning rate and tau (the per-agent Adam and Polyak paths).
CONFIGS = [CONFIG, CONFIG.replace(learning_rate=3e-4, tau=0.02)]
OBS_DIM = 6
OBS_SPACE = spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
TOKEN_GROUPS = [np.array([[0, 1], [2, 3]]), np.array([[4, 5]])]
ACTION_SPACES = {
    "box": spaces.Box(-1.0, 1.0, (4,), np.float32),
    "multidiscrete": spaces.MultiDiscrete([3, 3, 5, 5]),
    "hybrid": spaces.Tuple((spaces.Discrete(9), spaces.Box(-1.0, 1.0, (2,), np.float32))),
}
ITERATIONS = 101  # x 2 gradient steps each -> 200 updates after the warm-up


@pytest.mark.parametrize("action_kind", list(ACTION_SPACES))
@pytest.mark.parametrize("combo", EnhancerCombo.all_combinations(), ids=lambda c: c.short_name)
def test_combination_trains_and_round_trips(combo: EnhancerCombo, action_kind: str, tmp_path: Path) -> None:
    action_space = ACTION_SPACES[action_kind]
    population = TD3Population(
        OBS_SPACE, action_space, combo, CONFIGS, seeds=[3, 4], token_groups=TOKEN_GROUPS
    )
    assert population.enhancers == combo and population.adapter.dim == 4 and population.size == 2
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (2, 1, OBS_DIM)).astype(np.float32)
    losses: dict[str, np.ndarray] = {}
    for _ in range(CONFIG.learning_starts + ITERATIONS):
        coords = population.act(obs, explore=True)
        assert coords.shape == (2, 1, 4) and np.all(np.abs(coords) <= 1.0)
        assert all(action_space.contains(population.adapter.to_env(coords[i, 0])) for i in range(2))
        next_obs = np.clip(obs + rng.normal(0, 0.3, obs.shape), -1, 1).astype(np.float32)
        reward = -np.sum(coords**2, axis=-1) + next_obs[..., 0]
        population.add_transitions(obs, coords, reward, next_obs, rng.random((2, 1)) < 0.02)
        losses = population.train_step(2) or losses
        obs = next_obs
    assert population.num_updates >= 200
    assert losses and all(v.shape == (2,) and np.isfinite(v).all() for v in losses.values())
    assert population.nonfinite_agents() == []
    # The two agents' different rates really trained them differently (from the same kind of start).
    assert losses["critic_loss"][0] != losses["critic_loss"][1]

    path = population.save(tmp_path / "agents.pt")
    loaded = TD3Population.load(path)
    assert loaded.enhancers == combo and loaded.configs == CONFIGS and loaded.seeds == [3, 4]
    assert loaded.num_updates == population.num_updates
    probe = rng.uniform(-1, 1, (2, 8, OBS_DIM)).astype(np.float32)
    assert np.array_equal(population.act(probe, explore=False), loaded.act(probe, explore=False))
    # Optimiser and RNG states come back too: one more update on the same replay gives identical weights.
    loaded._buffer = population._buffer
    population.train_step(1)
    loaded.train_step(1)
    for a, b in zip(population.critic.parameters(), loaded.critic.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(population.actor.parameters(), loaded.actor.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def _step_envs(envs: list, population: TD3Population, obs: np.ndarray) -> np.ndarray:
    """One exploring step of every agent in its own env; stores the transitions, returns the next obs."""
    coords = population.act(obs, explore=True)
    next_obs, following = np.empty_like(obs), np.empty_like(obs)
    rewards, terminated = np.empty((len(envs), 1)), np.zeros((len(envs), 1), bool)
    for i, env in enumerate(envs):
        action = population.adapter.to_env(coords[i, 0])
        assert env.action_space.contains(action)
        o, reward, term, trunc, _ = env.step(action)
        next_obs[i, 0], rewards[i, 0], terminated[i, 0] = o, reward, term
        following[i, 0] = env.reset()[0] if term or trunc else o
    population.add_transitions(obs, coords, rewards, next_obs, terminated)
    population.train_step(1)
    return following


@pytest.mark.parametrize("combo", ["plain", "gdm+gan+transformer+vae"])
def test_pendulum_smoke(combo: str, tmp_path: Path) -> None:
    envs = [gym.make("Pendulum-v1") for _ in range(2)]
    population = TD3Population(envs[0].observation_space, envs[0].action_space, combo, CONFIGS, seeds=[0, 1])
    obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])[:, None, :].astype(np.float32)
    for _ in range(200):
        obs = _step_envs(envs, population, obs)
    assert population.num_updates > 100
    loaded = TD3Population.load(population.save(tmp_path / "pendulum.pt"))
    assert np.array_equal(population.act(obs, explore=False), loaded.act(obs, explore=False))
    for env in envs:
        env.close()


@pytest.mark.parametrize("action_mode", ["continuous", "discrete", "hybrid"])
def test_uav_env_smoke(action_mode: str, tmp_path: Path) -> None:
    """The UAV env's three action modes with its token layout (and its way-point order as a codebook)."""
    from autogai.envs import uav

    envs = [uav.UAVNearFieldEnv(action_mode=action_mode) for _ in range(2)]
    codebook = np.asarray(uav.WAYPOINTS, dtype=np.float32) if action_mode == "hybrid" else None
    groups = [np.asarray(g) for g in envs[0].observation_token_groups()]
    population = TD3Population(
        envs[0].observation_space,
        envs[0].action_space,
        "gdm+transformer",
        CONFIGS,
        seeds=[0, 1],
        token_groups=groups,
        action_codebook=codebook,
    )
    if action_mode == "hybrid":
        assert population.adapter.to_env(np.array([0.0, 1.0, 0.0, 0.0], np.float32))[0] == 1  # north
        assert population.adapter.to_env(np.array([0.1, -0.1, 0.0, 0.0], np.float32))[0] == 0  # hover
    obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])[:, None, :].astype(np.float32)
    for _ in range(40):
        obs = _step_envs(envs, population, obs)
    assert population.num_updates > 0
    loaded = TD3Population.load(population.save(tmp_path / "uav.pt"))
    assert np.array_equal(population.act(obs, explore=False), loaded.act(obs, explore=False))
