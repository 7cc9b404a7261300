"""Task card ``pendulum``: Gymnasium's ``Pendulum-v1`` swing-up, to show autogai is not tied to one env.

Pendulum-v1's reward is ``-(theta^2 + 0.1 * theta_dot^2 + 0.001 * torque^2)`` computed from the state
*before* the step and the applied (clipped) torque. The metrics below are computed the same way from the
observation the action was chosen on, so the baseline program reproduces the native reward (up to the
float32 rounding of the observation), and the fitness is the native return.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from autogai.tasks.card import MetricSpec, TaskCard

MAX_TORQUE = 2.0
"""Pendulum-v1's torque limit in N m (actions are clipped to it)."""

_DESCRIPTION = """\
The classic inverted-pendulum swing-up (Gymnasium Pendulum-v1). A pendulum of length 1 m hangs from a
frictionless pivot; one end is fixed, the other is free. It starts at a random angle in [-pi, pi] with a
random angular velocity in [-1, 1] rad/s. The agent applies a torque in [-2, 2] N m at the pivot each
step (one continuous action). The goal is to swing the pendulum up and keep it balanced upright
(theta = 0) with little effort. The torque is too weak to lift the pendulum directly from the bottom,
so the agent must pump energy by swinging back and forth first. Episodes last 200 steps (truncation,
no termination). Observation: [cos(theta), sin(theta), theta_dot] with theta_dot in [-8, 8] rad/s.
"""

_FITNESS = """\
Episode fitness = the return of Pendulum-v1's native reward, the sum over 200 steps of
-(theta^2 + 0.1 * theta_dot^2 + 0.001 * torque^2) (theta normalised to [-pi, pi], 0 upright). It lies in
[-16.27, 0] per step; a random policy scores about -1200 to -1500, a good policy about -150. The reward
program cannot change the fitness.
"""

BASELINE_REWARD = '''\
"""Pendulum-v1's native reward, split into named components: -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)."""

PARAMS = {
    "angle_weight": {"default": 1.0, "low": 0.1, "high": 10.0, "log": True},
    "velocity_weight": {"default": 0.1, "low": 0.01, "high": 1.0, "log": True},
    "torque_weight": {"default": 0.001, "low": 0.0001, "high": 0.01, "log": True},
}


def compute_reward(m, p):
    components = {
        "angle": -p["angle_weight"] * m.theta**2,
        "velocity": -p["velocity_weight"] * m.theta_dot**2,
        "torque": -p["torque_weight"] * m.torque**2,
    }
    return sum(components.values()), components
'''

METRICS = (
    MetricSpec(
        "theta",
        "rad",
        "pole angle normalised to [-pi, pi] before the step; 0 is upright, +-pi hanging down",
        intent="target",
        target=0.0,
        bounds=(-math.pi, math.pi),
    ),
    MetricSpec(
        "theta_dot", "rad/s", "angular velocity before the step", intent="minimise", bounds=(-8.0, 8.0)
    ),
    MetricSpec(
        "torque",
        "N m",
        "applied torque (the action clipped to [-2, 2])",
        intent="minimise",
        bounds=(-MAX_TORQUE, MAX_TORQUE),
    ),
    MetricSpec(
        "upright",
        "1",
        "cos(theta) before the step: 1 upright, -1 hanging down",
        intent="maximise",
        bounds=(-1.0, 1.0),
    ),
    MetricSpec(
        "env_reward",
        "reward",
        "Pendulum-v1's native reward of the step (the fitness, in [-16.27, 0])",
        intent="maximise",
        bounds=(-16.2736044, 0.0),
    ),
)


def metrics_fn(
    obs: np.ndarray, action: Any, env_reward: float, next_obs: np.ndarray, info: Mapping[str, Any]
) -> dict[str, float]:
    """Angle, velocity and torque the native reward is computed from, plus the native reward."""
    cos_theta, sin_theta, theta_dot = (float(v) for v in np.asarray(obs, dtype=np.float64).reshape(-1)[:3])
    torque = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -MAX_TORQUE, MAX_TORQUE))
    return {
        "theta": math.atan2(sin_theta, cos_theta),
        "theta_dot": theta_dot,
        "torque": torque,
        "upright": cos_theta,
        "env_reward": float(env_reward),
    }


def fitness_fn(metrics: Mapping[str, float], env_reward: float) -> float:
    """The native reward (episode fitness is its sum)."""
    return float(metrics.get("env_reward", env_reward))


TASK = TaskCard(
    id="pendulum",
    title="Pendulum swing-up (Gymnasium Pendulum-v1)",
    description=_DESCRIPTION,
    env_id="Pendulum-v1",
    metrics=METRICS,
    fitness_description=_FITNESS,
    baseline_reward=BASELINE_REWARD,
    metrics_fn=metrics_fn,
    fitness_fn=fitness_fn,
    fitness_aggregate="sum",
    env_kwargs={},
    report_metrics=("upright", "theta_dot", "torque"),
    violation_metrics=(),
    action_modes=(),
    max_episode_steps=200,
    tags=("classic-control", "gymnasium", "continuous"),
    # The fitness is the native reward itself (env_reward): shaping it is the task, so no metric is judge-only.
    judge_metrics=(),
)
