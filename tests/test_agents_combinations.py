"""Contract suite: every enhancer combination x every action-space type builds, trains a few hundred updates
without NaN, and saves/loads to identical actions; plus a real-env smoke on Pendulum-v1."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from autogai.agents import TD3Agent, TD3Config, make_agent
from autogai.core.types import EnhancerCombo

torch.set_num_threads(1)

CONFIG = TD3Config(
    net_arch=(16, 16),
    batch_size=16,
    learning_starts=16,
    buffer_size=1_000,
    diffusion_steps=2,
    diffusion_hidden=16,
    bc_weight=0.1,
    transformer_dim=8,
    vae_latent_dim=4,
    vae_hidden=16,
    device="cpu",
)
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
    agent = make_agent(OBS_SPACE, action_space, combo, CONFIG, token_groups=TOKEN_GROUPS, seed=3)
    assert agent.enhancers == combo and agent.adapter.dim == 4
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, OBS_DIM).astype(np.float32)
    stats: dict[str, float] = {}
    for _ in range(CONFIG.learning_starts + ITERATIONS):
        coords = agent.act(obs, explore=True)
        assert coords.shape == (4,) and np.all(np.abs(coords) <= 1.0)
        assert action_space.contains(agent.adapter.to_env(coords))
        next_obs = np.clip(obs + rng.normal(0, 0.3, OBS_DIM), -1, 1).astype(np.float32)
        reward = float(-np.sum(coords**2) + next_obs[0])
        agent.add_transition(obs, coords, reward, next_obs, bool(rng.random() < 0.02))
        stats = agent.train_step(2) or stats
        obs = next_obs
    assert agent.num_updates >= 200
    assert stats and all(np.isfinite(v) for v in stats.values())
    assert all(torch.isfinite(p).all() for p in agent.actor.parameters())

    path = agent.save(tmp_path / "agent.pt")
    loaded = TD3Agent.load(path)
    assert loaded.enhancers == combo and loaded.config == CONFIG and loaded.num_updates == agent.num_updates
    probe = rng.uniform(-1, 1, (8, OBS_DIM)).astype(np.float32)
    assert np.array_equal(agent.act(probe, explore=False), loaded.act(probe, explore=False))
    assert np.array_equal(agent.act(probe[0], explore=False), loaded.act(probe[0], explore=False))
    # Optimiser states come back too: one more identical update on both gives identical weights.
    loaded.buffer, loaded.generator = agent.buffer, agent.generator
    state = (agent.buffer.rng.bit_generator.state, agent.generator.get_state())
    agent.train_step(1)
    after = [p.detach().clone() for p in agent.critic.parameters()]
    agent.buffer.rng.bit_generator.state, _ = state
    agent.generator.set_state(state[1])
    loaded.num_updates = agent.num_updates - 1
    loaded.train_step(1)
    for a, b in zip(after, loaded.critic.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("combo", ["plain", "gdm+gan+transformer+vae"])
def test_pendulum_smoke(combo: str, tmp_path: Path) -> None:
    env = gym.make("Pendulum-v1")
    agent = make_agent(env.observation_space, env.action_space, combo, CONFIG, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(200):
        coords = agent.act(obs, explore=True)
        action = agent.adapter.to_env(coords)
        assert env.action_space.contains(action)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.add_transition(obs, coords, float(reward), next_obs, terminated)
        agent.train_step(1)
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
    assert agent.num_updates > 100
    loaded = TD3Agent.load(agent.save(tmp_path / "pendulum.pt"))
    assert np.array_equal(agent.act(obs, explore=False), loaded.act(obs, explore=False))
    env.close()


@pytest.mark.parametrize("action_mode", ["continuous", "discrete", "hybrid"])
def test_uav_env_smoke(action_mode: str, tmp_path: Path) -> None:
    """The UAV env's three action modes with its token layout (and its way-point order as a codebook)."""
    uav = pytest.importorskip("autogai.envs.uav_nearfield")
    env = uav.UAVNearFieldEnv(action_mode=action_mode)
    codebook = np.asarray(uav.WAYPOINTS, dtype=np.float32) if action_mode == "hybrid" else None
    groups = [np.asarray(g) for g in env.observation_token_groups()]
    agent = make_agent(
        env.observation_space,
        env.action_space,
        "gdm+transformer",
        CONFIG,
        token_groups=groups,
        action_codebook=codebook,
    )
    if action_mode == "hybrid":
        assert agent.adapter.to_env(np.array([0.0, 1.0, 0.0, 0.0], np.float32))[0] == 1  # north
        assert agent.adapter.to_env(np.array([0.1, -0.1, 0.0, 0.0], np.float32))[0] == 0  # hover
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        coords = agent.act(obs, explore=True)
        next_obs, reward, terminated, _, _ = env.step(agent.adapter.to_env(coords))
        agent.add_transition(obs, coords, float(reward), next_obs, terminated)
        agent.train_step(1)
        obs = next_obs
    assert agent.num_updates > 0
    loaded = TD3Agent.load(agent.save(tmp_path / "uav.pt"))
    assert np.array_equal(agent.act(obs, explore=False), loaded.act(obs, explore=False))
