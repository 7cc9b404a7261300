"""A task card written outside autogai for a task with a ``Discrete`` action space: Gymnasium's CartPole-v1.

Use it wherever a task is accepted: ``autogai propose --task examples/tasks/cartpole.py``. TD3 acts on
``Discrete(2)`` through autogai's action adapter (a codebook of two points); the metric intents let the
offline proposer compose rewards for the task from the knowledge base's task-agnostic terms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from autogai.tasks import NATIVE_REWARD_BASELINE, MetricSpec, TaskCard, native_fitness

X_LIMIT = 2.4
"""CartPole-v1 terminates when the cart leaves [-2.4, 2.4] ..."""
THETA_LIMIT = 12 * 2 * math.pi / 360
"""... or the pole leans more than 12 degrees (0.2094 rad) from upright."""


def metrics_fn(
    obs: np.ndarray, action: Any, env_reward: float, next_obs: np.ndarray, info: Mapping[str, Any]
) -> dict[str, float]:
    """The state after the step and whether it ended the episode (the same test as CartPole-v1's)."""
    x, x_dot, theta, theta_dot = (float(v) for v in np.asarray(next_obs, dtype=np.float64).reshape(-1)[:4])
    return {
        "cart_position": x,
        "cart_velocity": x_dot,
        "pole_angle": theta,
        "pole_angular_velocity": theta_dot,
        "fell": float(abs(x) > X_LIMIT or abs(theta) > THETA_LIMIT),
        "env_reward": float(env_reward),
    }


TASK = TaskCard(
    id="cartpole",
    title="Cart-pole balancing with two discrete pushes (Gymnasium CartPole-v1)",
    description=(
        "A pole is hinged on a cart that moves along a frictionless track. Each step the agent pushes the "
        "cart left or right with a fixed force (a Discrete(2) action). The episode fails when the pole "
        "leans more than 12 degrees from upright or the cart leaves the track ([-2.4, 2.4]); it is cut "
        "off after 500 steps. The goal is to keep the pole up, near the centre, for as long as possible."
    ),
    env_id="CartPole-v1",
    metrics=(
        MetricSpec(
            "cart_position",
            "m",
            "cart position after the step; the track ends at +-2.4",
            intent="target",
            target=0.0,
            bounds=(-X_LIMIT, X_LIMIT),
            obs_index=0,
        ),
        MetricSpec("cart_velocity", "m/s", "cart velocity after the step", obs_index=1),
        MetricSpec(
            "pole_angle",
            "rad",
            "pole angle from upright after the step; the episode fails beyond +-0.2094",
            intent="target",
            target=0.0,
            bounds=(-THETA_LIMIT, THETA_LIMIT),
            obs_index=2,
        ),
        MetricSpec(
            "pole_angular_velocity",
            "rad/s",
            "pole angular velocity after the step; a still pole is easier to keep up",
            intent="minimise",
            obs_index=3,
        ),
        MetricSpec("fell", "0/1", "1 on the step the pole fell or the cart left the track", intent="failure"),
        MetricSpec("env_reward", "reward", "the native reward: +1 for every step", intent="maximise"),
    ),
    fitness_description="Steps balanced: the return of the native +1-per-step reward (at most 500).",
    baseline_reward=NATIVE_REWARD_BASELINE,
    metrics_fn=metrics_fn,
    fitness_fn=native_fitness,
    fitness_aggregate="sum",
    report_metrics=("pole_angle", "cart_position"),
    violation_metrics=("fell",),
    max_episode_steps=500,
    tags=("classic-control", "gymnasium", "discrete"),
)
