"""Task card ``uav-nearfield``: the UAV near-field relay task of Sun et al. (arXiv 2405.20568).

The environment is :class:`autogai.envs.uav.UAVNearFieldEnv`; its ``info`` holds every metric
below after each step, and its own step reward is the step's fitness (the utility), so
``metrics_fn`` and ``fitness_fn`` only read what the environment computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autogai.tasks.card import MetricSpec, TaskCard

_DESCRIPTION = """\
A base station (BS) with a 50-element uniform linear antenna array at the origin (80 GHz carrier,
half-wavelength spacing) must deliver data to a ground user at (150, 200, 0) m that it cannot serve well
directly. A UAV flying at a fixed altitude of 6 m acts as a decode-and-forward relay. The UAV is inside
the BS's near field (spherical-wave channel, maximum-ratio beamforming: the BS->UAV gain falls with the
squared UAV-BS distance) and the user is in the UAV's far field (free-space line of sight: the UAV->user
gain falls with the squared UAV-user distance). Moving toward the user raises the UAV->user rate R2 and
lowers the BS->UAV rate R1; the relay delivers only min(R1, R2).

An episode has 100 time slots. Each slot the agent moves the UAV by at most 5 m along each horizontal
axis and chooses the BS and UAV transmit powers (each 0-1000 mW). The UAV must stay inside the
300 m x 300 m service area and within 133.33 m of the BS (the authors' near-field service radius); the
relay delivers nothing in a slot where it is outside either. The UAV starts at (1, 1, 6) m, next to the
BS, where R1 is high and R2 is low. The best place to hover is about (55, 71) m, where R1 and R2 at full
power balance near 5.3 bit/s/Hz.

Objective (the paper's): a high relay rate at low total transmit power. Trade-offs: flying toward the
user costs travel slots; full power raises both rates but costs 0.005 per mW per slot; the rate is
limited by the weaker hop, so power spent on the stronger hop is wasted. The paper's own reward rewards
R2 (not the relay rate) and subtracts fixed penalties of 50 for leaving the area, leaving the near-field
radius, and for R1 <= R2 ("relay violation") - the last penalty fires whenever the hops are balanced,
which is exactly where the relay rate is highest.

Action modes: continuous (dx, dy, P_BS, P_UAV in [-1, 1]), discrete (3 x 3 moves and 5 power levels each),
hybrid (9 way-points and continuous powers).

Scenarios (env option `scenario`): "fixed" (the default, the paper's single scenario above) or "random":
every episode draws, from its scenario seed, the user's position anywhere in the service area at least
160 m from the BS (1.2 near-field radii, so the relay always trades R1 against R2) and the UAV's start
anywhere feasible; the observation then also holds the user's (x, y). A policy trained on random
scenarios must generalise across geometries instead of memorising one flight plan; it is judged on
held-out scenarios that training never sees, as a fraction of each scenario's oracle.
"""

_FITNESS = """\
Per slot: utility = 10 * rate_df * feasible - 0.005 * power_total_mw, where rate_df = min(R1, R2) in
bit/s/Hz and feasible = inside the service area and inside the near-field radius. Episode fitness = mean
utility per slot over the 100 slots. Hovering at the start with full power scores about 31; the oracle
(best trajectory to the best hover point, optimal powers every slot) about 42.85; the best single slot
about 43.2. The reward program cannot change the fitness.
"""

BASELINE_REWARD = '''\
"""The paper's reward (Sun et al., arXiv 2405.20568, and the authors' code): UAV->user rate minus power,
minus fixed penalties for leaving the area, leaving the near field and R1 <= R2."""

PARAMS = {
    "rate_weight": {"default": 10.0, "low": 1.0, "high": 50.0},
    "power_weight": {"default": 0.005, "low": 0.0005, "high": 0.05, "log": True},
    "area_penalty": {"default": 50.0, "low": 0.0, "high": 200.0},
    "near_field_penalty": {"default": 50.0, "low": 0.0, "high": 200.0},
    "relay_penalty": {"default": 50.0, "low": 0.0, "high": 200.0},
}


def compute_reward(m, p):
    components = {
        "rate": p["rate_weight"] * m.rate_uav_user,
        "power": -p["power_weight"] * m.power_total_mw,
        "out_of_area": -p["area_penalty"] * float(m.out_of_area),
        "outside_near_field": -p["near_field_penalty"] * float(m.outside_near_field),
        "relay_violation": -p["relay_penalty"] * float(m.relay_violation),
    }
    return sum(components.values()), components
'''

METRICS = (
    MetricSpec("x", "m", "UAV x position after the move (the service area is 0-300 m)"),
    MetricSpec("y", "m", "UAV y position after the move (the service area is 0-300 m)"),
    MetricSpec("z", "m", "UAV altitude (fixed, 6 m)"),
    MetricSpec("t", "slot", "slots completed in the episode, 1-100"),
    MetricSpec(
        "distance_to_bs", "m", "3-D distance from the UAV to the BS array centre (feasible <= 133.33 m)"
    ),
    MetricSpec(
        "distance_to_user",
        "m",
        "3-D distance from the UAV to the ground user (at (150, 200, 0) m when fixed)",
    ),
    MetricSpec("rate_bs_uav", "bit/s/Hz", "R1, BS->UAV rate, log2(1 + P_BS * beamforming gain / noise)"),
    MetricSpec("rate_uav_user", "bit/s/Hz", "R2, UAV->user rate, log2(1 + P_UAV * alpha / d_user^2 / noise)"),
    MetricSpec(
        "rate_df",
        "bit/s/Hz",
        "decode-and-forward relay rate min(R1, R2): what the user receives",
        intent="maximise",
    ),
    MetricSpec("power_bs_mw", "mW", "BS transmit power this slot, 0-1000"),
    MetricSpec("power_uav_mw", "mW", "UAV transmit power this slot, 0-1000"),
    MetricSpec("power_total_mw", "mW", "P_BS + P_UAV, 0-2000", intent="minimise", bounds=(0.0, 2000.0)),
    MetricSpec(
        "out_of_area", "0/1", "1 if the UAV is outside the 300 m x 300 m service area", intent="failure"
    ),
    MetricSpec(
        "outside_near_field", "0/1", "1 if the UAV is farther than 133.33 m from the BS", intent="failure"
    ),
    MetricSpec("relay_violation", "0/1", "1 if R1 <= R2 (the paper's relay constraint; fires when balanced)"),
    MetricSpec("move_m", "m", "distance flown this slot, 0-7.07"),
    MetricSpec(
        "feasible",
        "0/1",
        "1 if inside the area and inside the near-field radius (else rate_df earns 0)",
        intent="maximise",
    ),
    MetricSpec(
        "fitness",
        "utility",
        "the slot's task utility, the judge of designs; a reward program must not read it",
    ),
)

METRIC_NAMES = tuple(spec.name for spec in METRICS)


def metrics_fn(
    obs: np.ndarray, action: Any, env_reward: float, next_obs: np.ndarray, info: Mapping[str, Any]
) -> dict[str, float]:
    """The step's metrics from the env's ``info`` (booleans as 0.0 / 1.0)."""
    return {name: float(info[name]) for name in METRIC_NAMES}


def fitness_fn(metrics: Mapping[str, float], env_reward: float) -> float:
    """The slot's utility as the environment computed it."""
    return float(metrics["fitness"])


def _deterministic(env_kwargs: Mapping[str, Any]) -> bool:
    """A fixed start and fixed users (the paper's setting): every episode of a policy is the same."""
    return not env_kwargs.get("random_start", False) and env_kwargs.get("scenario", "fixed") == "fixed"


def _hover_at_start_fitness() -> float:
    """Episode fitness of staying at the start with both powers at maximum: what any design must beat."""
    from autogai.envs.uav.env import UAVNearFieldEnv

    env = UAVNearFieldEnv(action_mode="continuous")
    env.reset()
    utilities = [env.step(np.array([0.0, 0.0, 1.0, 1.0]))[1] for _ in range(env.config.horizon)]
    return float(np.mean(utilities))


def _oracle_fitness() -> float:
    from autogai.envs.uav import oracle_episode_fitness

    return oracle_episode_fitness()


TASK = TaskCard(
    id="uav-nearfield",
    title="UAV relay in the near field of a large antenna array (trajectory and power control)",
    description=_DESCRIPTION,
    env_id="autogai/UAVNearField-v0",
    metrics=METRICS,
    fitness_description=_FITNESS,
    baseline_reward=BASELINE_REWARD,
    metrics_fn=metrics_fn,
    fitness_fn=fitness_fn,
    fitness_aggregate="mean",
    env_kwargs={},
    report_metrics=(
        "rate_df",
        "power_total_mw",
        "feasible",
        "rate_bs_uav",
        "rate_uav_user",
        "distance_to_bs",
    ),
    violation_metrics=("out_of_area", "outside_near_field", "relay_violation"),
    oracle_fitness=_oracle_fitness,
    action_modes=("continuous", "discrete", "hybrid"),
    max_episode_steps=100,
    tags=("wireless", "uav", "near-field", "relay", "multi-objective", "paper-case-study"),
    deterministic=_deterministic,
    references={"hover at the start": _hover_at_start_fitness},
    judge_metrics=("fitness",),  # the slot utility ranks designs: a reward that reads it games the score
)


# A reward aligned with the task fitness (DF rate while feasible, power, a penalty for leaving the feasible
# region), unlike the paper's baseline whose relay penalty fires whenever the two hops are balanced, i.e. at
# the optimum. The learning benchmark and tests use it to measure what TD3 reaches when the reward is right.
FITNESS_ALIGNED_REWARD = """
PARAMS = {
    "rate_weight": {"default": 10.0, "low": 1.0, "high": 50.0},
    "power_weight": {"default": 0.005, "low": 0.0001, "high": 0.05, "log": True},
    "exit_penalty": {"default": 20.0, "low": 0.0, "high": 100.0},
}

def compute_reward(m, p):
    components = {
        "rate": p["rate_weight"] * m.rate_df * float(m.feasible),
        "power": -p["power_weight"] * m.power_total_mw,
        "exit": -p["exit_penalty"] * (1.0 - float(m.feasible)),
    }
    return sum(components.values()), components
"""
