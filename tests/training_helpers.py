"""Shared set-up of the training tests: tiny networks, short budgets, small reward programs."""

from __future__ import annotations

from typing import Any

from autogai.tasks.uav_nearfield import FITNESS_ALIGNED_REWARD

TINY: dict[str, Any] = {
    "net_arch": (16, 16),
    "batch_size": 32,
    "learning_starts": 50,
    "buffer_size": 2_000,
    "device": "cpu",
    "diffusion_hidden": 16,
    "transformer_dim": 8,
    "vae_latent_dim": 4,
    "vae_hidden": 16,
}

TINY_CLI_SETS: list[str] = [
    "--set",
    "net_arch=16,16",
    "--set",
    "batch_size=32",
    "--set",
    "learning_starts=50",
    "--set",
    "buffer_size=2000",
]


def tiny_config(**changes: Any) -> Any:
    from autogai.agents import TD3Config

    return TD3Config(**{**TINY, **changes})


def tiny_agent_config(**changes: Any) -> Any:
    """The agent tests' populations, smaller still: batches of 16, a 256-transition buffer, a two-step
    diffusion chain, a 3-dimensional VAE latent."""
    sizes = {"batch_size": 16, "learning_starts": 16, "buffer_size": 256, "diffusion_steps": 2}
    return tiny_config(**{**sizes, "vae_latent_dim": 3, **changes})


# Pendulum: a program that rewards upright, with two named components.
PENDULUM_UPRIGHT = """
PARAMS = {"w": {"default": 1.0, "low": 0.1, "high": 10.0}}

def compute_reward(m, p):
    components = {"upright": p["w"] * float(m.next_obs[0]), "effort": -0.01 * float(m.action[0]) ** 2}
    return sum(components.values()), components
"""

# Pendulum: a different reward (the negated one) for the "fitness ignores the reward" check.
PENDULUM_UPSIDE_DOWN = """
def compute_reward(m, p):
    value = -float(m.next_obs[0])
    return value, {"down": value}
"""

# Raises (ZeroDivisionError) as soon as the random warm-up applies a strong torque (within a few dozen steps).
PENDULUM_RAISES = """
def compute_reward(m, p):
    if m.torque > 1.5:
        return 1.0 / (m.torque - m.torque), {"zero": 0.0}
    return 0.0, {"zero": 0.0}
"""

# Finite but astronomically large: the critic's squared TD error overflows float32.
PENDULUM_HUGE = """
def compute_reward(m, p):
    return 1e30, {"huge": 1e30}
"""

# UAV: a reward aligned with the task fitness (DF rate while feasible, power, a penalty for leaving the
# feasible region), unlike the paper's baseline whose relay penalty fires whenever the hops are balanced.
UAV_FITNESS_ALIGNED = FITNESS_ALIGNED_REWARD
