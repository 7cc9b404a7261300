"""A task card written outside autogai: Gymnasium's MountainCarContinuous-v0.

Use it wherever a task is accepted: ``autogai propose --task examples/tasks/mountain_car.py``. The metric
intents (target, momentum, bounds, observation index, minimise, maximise) let the offline proposer compose rewards
for it from the knowledge base's task-agnostic terms; docs/task_cards.md explains each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autogai.tasks import NATIVE_REWARD_BASELINE, MetricSpec, TaskCard, native_fitness

GOAL_POSITION = 0.45
"""MountainCarContinuous-v0's flag: the episode ends when the car's position reaches it."""


def metrics_fn(
    obs: np.ndarray, action: Any, env_reward: float, next_obs: np.ndarray, info: Mapping[str, Any]
) -> dict[str, float]:
    """Position and velocity after the step, the applied force, whether the flag is reached."""
    return {
        "position": float(next_obs[0]),
        "velocity": float(next_obs[1]),
        "force": float(np.clip(np.asarray(action, dtype=float).reshape(-1)[0], -1.0, 1.0)),
        "at_goal": float(next_obs[0] >= GOAL_POSITION),
        "env_reward": float(env_reward),
    }


TASK = TaskCard(
    id="mountain-car",
    title="Mountain car with continuous force (Gymnasium MountainCarContinuous-v0)",
    description=(
        "An underpowered car in a valley must reach the flag on the right hill (position 0.45). "
        "It has to swing back and forth to build momentum: driving straight at the hill fails. Each step "
        "the agent applies a force in [-1, 1]. The episode ends at the flag or after 999 steps."
    ),
    env_id="MountainCarContinuous-v0",
    metrics=(
        MetricSpec(
            "position",
            "m",
            "car position after the step; the goal is at 0.45",
            intent="target",
            target=GOAL_POSITION,
            bounds=(-1.2, 0.6),
            obs_index=0,
        ),
        MetricSpec(
            "velocity",
            "m/step",
            "car velocity after the step; the car must build up speed by swinging to climb the hill",
            intent="momentum",
            bounds=(-0.07, 0.07),
            obs_index=1,
        ),
        MetricSpec("force", "1", "applied force", intent="minimise", bounds=(-1.0, 1.0)),
        MetricSpec("at_goal", "0/1", "1 once the car reached the flag", intent="maximise", bounds=(0.0, 1.0)),
        MetricSpec(
            "env_reward",
            "reward",
            "the native reward: +100 at the goal minus 0.1 force^2 per step",
            intent="maximise",
        ),
    ),
    fitness_description="Return of the native reward over an episode (999 steps or until the goal).",
    baseline_reward=NATIVE_REWARD_BASELINE,
    metrics_fn=metrics_fn,
    fitness_fn=native_fitness,
    fitness_aggregate="sum",
    report_metrics=("position", "at_goal"),
    max_episode_steps=999,
    tags=("classic-control", "gymnasium", "continuous", "sparse-reward"),
)
