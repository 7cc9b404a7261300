"""The UAV near-field relay task, gathered under one name: import its public pieces from here.

The task is the case study of Sun et al., "Generative AI for Deep Reinforcement Learning: Framework,
Analysis, and Use Cases" (arXiv 2405.20568); ``docs/uav_env.md`` describes it. Each module has one job:

- :mod:`autogai.envs.uav.physics` — the formulas (channel, gains, rates, utility, optimal powers);
- :mod:`autogai.envs.uav.config` — :class:`UAVNearFieldConfig`, the constants and the metric list;
- :mod:`autogai.envs.uav.spaces` — action and observation spaces, token layout, hybrid codebook;
- :mod:`autogai.envs.uav.dynamics` — the slot transition, written once for one UAV or a batch;
- :mod:`autogai.envs.uav.scenario` — fixed and random scenarios, training / held-out scenario seeds;
- :mod:`autogai.envs.uav.env` — :class:`UAVNearFieldEnv`, the Gymnasium env ``autogai/UAVNearField-v0``;
- :mod:`autogai.envs.uav.batch` — :class:`UAVNearFieldBatch`, B UAVs stepped at once;
- :mod:`autogai.envs.uav.oracle` — the oracle (best trajectory and powers) and its episode fitness;
- :mod:`autogai.envs.uav.reference` — the sanity values the environment must reproduce.
"""

from __future__ import annotations

from autogai.envs.uav.batch import UAVNearFieldBatch
from autogai.envs.uav.config import (
    ACTION_MODES,
    AUTHOR_SETTINGS,
    METRIC_NAMES,
    OBS_MODES,
    SCENARIOS,
    WAYPOINTS,
    UAVNearFieldConfig,
)
from autogai.envs.uav.env import UAVNearFieldEnv
from autogai.envs.uav.oracle import (
    OraclePlan,
    OraclePolicy,
    best_hover_point,
    oracle_episode_fitness,
    oracle_plan,
    scenario_oracle_fitness,
)
from autogai.envs.uav.reference import SANITY_TABLE, hover_rates
from autogai.envs.uav.scenario import Scenario, draw_scenario, scenario_seeds

__all__ = [
    "ACTION_MODES",
    "AUTHOR_SETTINGS",
    "METRIC_NAMES",
    "OBS_MODES",
    "SANITY_TABLE",
    "SCENARIOS",
    "WAYPOINTS",
    "OraclePlan",
    "OraclePolicy",
    "Scenario",
    "UAVNearFieldBatch",
    "UAVNearFieldConfig",
    "UAVNearFieldEnv",
    "best_hover_point",
    "draw_scenario",
    "hover_rates",
    "oracle_episode_fitness",
    "oracle_plan",
    "scenario_oracle_fitness",
    "scenario_seeds",
]
