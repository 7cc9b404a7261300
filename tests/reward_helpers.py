"""Helpers of the reward tests: a tiny task card over Pendulum-v1 and process bookkeeping."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from autogai.tasks.card import MetricSpec, TaskCard

TINY_BASELINE = """\
PARAMS = {
    "angle_weight": {"default": 1.0, "low": 0.1, "high": 10.0, "log": True},
    "speed_weight": {"default": 0.1, "low": 0.01, "high": 1.0, "log": True},
}


def compute_reward(m, p):
    components = {
        "angle": -p["angle_weight"] * m.angle**2,
        "speed": -p["speed_weight"] * m.speed**2,
    }
    return sum(components.values()), components
"""


def _metrics(
    obs: Any, action: Any, env_reward: float, next_obs: Any, info: Mapping[str, Any]
) -> dict[str, float]:
    cos_theta, sin_theta, speed = (float(v) for v in np.asarray(obs, dtype=np.float64)[:3])
    return {
        "angle": math.atan2(sin_theta, cos_theta),
        "speed": speed,
        "torque": float(np.clip(np.asarray(action, dtype=np.float64)[0], -2.0, 2.0)),
        "upright": cos_theta,
        "native": float(env_reward),
        "fitness": float(env_reward),
    }


TINY_TASK = TaskCard(
    id="reward-test-pendulum",
    title="Pendulum for the reward tests",
    description="Pendulum-v1 with a few metrics.",
    env_id="Pendulum-v1",
    metrics=(
        MetricSpec("angle", "rad", "pole angle, 0 upright"),
        MetricSpec("speed", "rad/s", "angular velocity"),
        MetricSpec("torque", "N m", "applied torque"),
        MetricSpec("upright", "1", "cos(angle)"),
        MetricSpec("native", "reward", "the env's own reward"),
        MetricSpec("fitness", "reward", "the judge (judge-only by default: programs cannot read it)"),
    ),
    fitness_description="the native return",
    baseline_reward=TINY_BASELINE,
    metrics_fn=_metrics,
    fitness_fn=lambda metrics, env_reward: float(metrics["fitness"]),
    fitness_aggregate="sum",
)


def child_pids(parent: int | None = None) -> set[int]:
    """Live (non-zombie) children of ``parent`` (default: this process), from /proc."""
    parent = os.getpid() if parent is None else parent
    children: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and state != b"Z":
            children.add(int(name))
    return children


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)
