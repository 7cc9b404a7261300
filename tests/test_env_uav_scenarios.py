"""The UAV task's physics written once (single env == batch of one, row by row) and its scenario distribution:
reproducible random scenarios, their oracle never beaten, training and held-out scenario seeds disjoint."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from autogai.core.errors import ConfigError
from autogai.envs import register_envs
from autogai.envs.episode import run_episode
from autogai.envs.uav import (
    ACTION_MODES,
    AUTHOR_SETTINGS,
    METRIC_NAMES,
    OBS_MODES,
    WAYPOINTS,
    OraclePolicy,
    Scenario,
    UAVNearFieldBatch,
    UAVNearFieldConfig,
    UAVNearFieldEnv,
    draw_scenario,
    oracle_episode_fitness,
    physics,
    scenario_oracle_fitness,
    scenario_seeds,
)
from autogai.envs.uav.config import FLAG_METRICS
from autogai.envs.uav.dynamics import dynamics_for
from autogai.envs.uav.scenario import USER_MIN_DISTANCE_FACTOR, split_of

ENV_ID = "autogai/UAVNearField-v0"
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
FLOAT32 = {"rtol": 1e-6, "atol": 1e-7}
"""Observations are float32: the same float64 value can round to neighbouring float32 values when a batch's
matrix product sums in another order (a difference of 1e-16 in a phase)."""


def _batch_action(action_mode: str, actions: list) -> object:
    if action_mode == "hybrid":
        return np.array([a[0] for a in actions]), np.stack([a[1] for a in actions])
    return np.stack(actions)


def _assert_same_step(single: tuple, batch: tuple, row: int) -> None:
    obs, reward, terminated, truncated, info = single
    batch_obs, rewards, batch_terminated, batch_truncated, batch_info = batch
    np.testing.assert_allclose(obs, batch_obs[row], **FLOAT32)
    assert reward == pytest.approx(rewards[row], rel=1e-12, abs=1e-12)
    assert (terminated, truncated) == (batch_terminated[row], batch_truncated[row])
    assert tuple(info) == METRIC_NAMES and tuple(batch_info) == METRIC_NAMES
    for name in METRIC_NAMES:
        assert info[name] == pytest.approx(batch_info[name][row], rel=1e-12, abs=1e-12), name


# --- One transition: the single env is the batch of one ------------------------------------------------------


@pytest.mark.parametrize("scenario", ["fixed", "random"])
@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_single_env_equals_the_batch_of_one_for_a_whole_episode(
    action_mode: str, obs_mode: str, scenario: str
) -> None:
    kwargs = {"action_mode": action_mode, "obs_mode": obs_mode, "scenario": scenario}
    if obs_mode == "author":
        kwargs["beamformer"] = "author_code"
    env = UAVNearFieldEnv(**kwargs, random_start=True)
    batch = UAVNearFieldBatch(1, env.config)
    obs, info = env.reset(seed=11)
    batch_obs, batch_info = batch.reset(seed=11)
    np.testing.assert_allclose(obs, batch_obs[0], **FLOAT32)
    assert info == pytest.approx({name: values[0] for name, values in batch_info.items()}, rel=1e-12)
    assert env.scenario == batch.scenarios[0]
    space = env.action_space
    space.seed(3)
    for _ in range(env.config.horizon):  # random actions fly out of the area and back: every flag changes
        action = space.sample()
        _assert_same_step(env.step(action), batch.step(_batch_action(action_mode, [action])), 0)
    assert env.slot == env.config.horizon


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_every_batch_row_steps_like_its_own_single_env(action_mode: str) -> None:
    count = 5
    batch = UAVNearFieldBatch(count, action_mode=action_mode, scenario="random", horizon=30)
    batch.reset(seed=4)
    envs = [UAVNearFieldEnv(batch.config) for _ in range(count)]
    for env, scenario in zip(envs, batch.scenarios, strict=True):
        env.reset(options={"scenario_seed": scenario.seed})
        assert env.scenario == scenario
    rng = np.random.default_rng(0)
    space = envs[0].action_space
    space.seed(5)
    for _ in range(30):
        actions = [space.sample() for _ in range(count)]
        if action_mode == "continuous":  # also exact corners and rounding just past them (clipped)
            actions[0] = rng.choice([-1.0 - 1e-7, -1.0, 1.0, 1.0 + 1e-7], size=4)
        result = batch.step(_batch_action(action_mode, actions))
        for row, env in enumerate(envs):
            _assert_same_step(env.step(actions[row]), result, row)


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_single_env_info_holds_plain_python_values(action_mode: str) -> None:
    """One UAV steps on Python floats: info is JSON-ready (bool flags, int slot, float otherwise)."""
    for kwargs in ({}, AUTHOR_SETTINGS, {"clip_to_area": True, "scenario": "random"}):
        env = UAVNearFieldEnv(action_mode=action_mode, **kwargs)
        env.action_space.seed(0)
        _, reset_info = env.reset(seed=0)
        infos = [reset_info] + [env.step(env.action_space.sample())[4] for _ in range(5)]
        for info in infos:
            for name, value in info.items():
                expected = bool if name in FLAG_METRICS else int if name == "t" else float
                assert type(value) is expected, (kwargs, name, type(value))


def test_metrics_follow_the_physics_formulas_in_a_random_scenario() -> None:
    env = UAVNearFieldEnv(scenario="random")
    env.reset(seed=2)
    user_x, user_y, user_z = env.scenario.user_position
    _, reward, _, _, info = env.step(np.array([0.3, -0.2, 0.1, 0.6]))
    distance_to_user = math.dist((info["x"], info["y"], 6.0), (user_x, user_y, user_z))
    assert info["distance_to_user"] == pytest.approx(distance_to_user, rel=1e-12)
    gain = physics.user_channel_gain(distance_to_user, env.config.user_reference_gain)
    assert info["rate_uav_user"] == pytest.approx(
        float(physics.rate_uav_user(info["power_uav_mw"], gain, env.config.noise_mw)), rel=1e-12
    )
    assert (
        reward
        == info["fitness"]
        == pytest.approx(10 * info["rate_df"] * info["feasible"] - 0.005 * info["power_total_mw"])
    )


# --- Scenario distribution -----------------------------------------------------------------------------------


def test_random_scenario_is_reproducible_from_its_seed_and_within_its_ranges() -> None:
    config = UAVNearFieldConfig(scenario="random")
    assert draw_scenario(config, 12) == draw_scenario(config, 12)
    users = set()
    dynamics = dynamics_for(config)
    for seed in scenario_seeds("train", 200):
        scenario = draw_scenario(config, seed)
        user_x, user_y, user_z = scenario.user_position
        users.add((user_x, user_y))
        assert 0.0 <= user_x <= 300.0 and 0.0 <= user_y <= 300.0 and user_z == 0.0
        assert math.hypot(user_x, user_y) >= USER_MIN_DISTANCE_FACTOR * config.near_field_radius
        start = scenario.start_position
        assert dynamics.slot_physics(*start)["feasible"]
    assert len(users) == 200
    # The env draws the same scenarios from the same reset seed, and others from other seeds.
    env = UAVNearFieldEnv(scenario="random")
    first, info = env.reset(seed=21)
    scenario = env.scenario
    again, info_again = env.reset(seed=21)
    np.testing.assert_array_equal(first, again)
    assert env.scenario == scenario and info == info_again
    assert (info["x"], info["y"]) == scenario.start_position
    env.reset(seed=22)
    assert env.scenario != scenario
    env.reset(options={"scenario_seed": scenario.seed})
    assert env.scenario == scenario


def test_random_scenario_puts_the_user_in_the_observation_and_passes_check_env() -> None:
    register_envs()
    for action_mode in ACTION_MODES:
        for obs_mode in OBS_MODES:
            env = gym.make(ENV_ID, scenario="random", action_mode=action_mode, obs_mode=obs_mode).unwrapped
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                check_env(env)
            fixed_size = 106 if obs_mode == "normalized" else 55
            assert env.observation_space.shape == (fixed_size + 2,)
            obs, _ = env.reset(seed=1)
            user_x, user_y, _ = env.scenario.user_position
            scale = 300.0 if obs_mode == "normalized" else 1.0
            np.testing.assert_allclose(obs[-2:], [user_x / scale, user_y / scale], rtol=1e-6)
            groups = env.observation_token_groups()
            assert sorted(np.concatenate([g.ravel() for g in groups]).tolist()) == list(range(fixed_size + 2))


def test_batch_rows_have_their_own_scenarios_from_the_reset_seed() -> None:
    batch = UAVNearFieldBatch(16, scenario="random")
    batch.reset(seed=8)
    scenarios = batch.scenarios
    assert len({s.user_position for s in scenarios}) == 16
    batch.reset(seed=8)
    assert batch.scenarios == scenarios
    obs, info = batch.reset(options={"scenario_seed": [s.seed for s in scenarios]})
    assert batch.scenarios == scenarios
    np.testing.assert_allclose(info["x"], [s.start_position[0] for s in scenarios])
    np.testing.assert_allclose(obs[:, -2] * 300.0, [s.user_position[0] for s in scenarios], rtol=1e-6)


def test_scenario_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="'fixed', 'random'"):
        UAVNearFieldEnv(scenario="mixed")
    with pytest.raises(ConfigError, match="scenario_seed needs scenario='random'"):
        UAVNearFieldEnv().reset(options={"scenario_seed": 3})
    env = UAVNearFieldEnv(scenario="random")
    for bad in (-1, 2**63, 1.5, "7", True):
        with pytest.raises(ConfigError, match="scenario_seed"):
            env.reset(options={"scenario_seed": bad})
    with pytest.raises(ConfigError, match="needs 4 seed"):
        UAVNearFieldBatch(4, scenario="random").reset(options={"scenario_seed": [1, 3]})
    with pytest.raises(ConfigError, match="valid options: uav_position, scenario_seed"):
        env.reset(options={"seed": 3})
    with pytest.raises(ConfigError, match="split='test' is not valid"):
        scenario_seeds("test", 3)  # type: ignore[arg-type]


def test_held_out_scenarios_never_appear_in_training() -> None:
    train = {seed for base in (0, 7, 1000) for seed in scenario_seeds("train", 500, base)}
    heldout = {seed for base in (0, 7, 1000) for seed in scenario_seeds("heldout", 500, base)}
    assert len(scenario_seeds("heldout", 500)) == len(set(scenario_seeds("heldout", 500))) == 500
    assert not train & heldout
    assert {split_of(seed) for seed in train} == {"train"}
    assert {split_of(seed) for seed in heldout} == {"heldout"}
    # Scenarios an env or a batch draws for itself are training scenarios.
    env = UAVNearFieldEnv(scenario="random")
    drawn = set()
    for seed in range(50):
        env.reset(seed=seed)
        drawn.add(env.scenario.seed)
    batch = UAVNearFieldBatch(64, scenario="random")
    for seed in range(100, 105):  # not the env's reset seeds: the batch's first row would draw the same
        batch.reset(seed=seed)
        drawn.update(s.seed for s in batch.scenarios)
    assert len(drawn) == 50 + 5 * 64
    assert {split_of(seed) for seed in drawn} == {"train"} and not drawn & heldout


# --- The oracle of a scenario --------------------------------------------------------------------------------


def _greedy(env: UAVNearFieldEnv) -> object:
    """Myopic policy: each slot, the move whose landing point has the best slot utility, optimal powers."""
    config = env.config
    user_x, user_y, _ = env.scenario.user_position
    dynamics = dynamics_for(config)
    if config.action_mode == "hybrid":
        moves = np.asarray(WAYPOINTS, dtype=np.float64)
    else:
        grid = np.linspace(-1.0, 1.0, 9)
        moves = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)

    def policy(obs: np.ndarray, info: dict) -> object:
        x = info["x"] + config.max_move_m * moves[:, 0]
        y = info["y"] + config.max_move_m * moves[:, 1]
        slot = dynamics.slot_physics(x, y, user_x, user_y)
        p_bs, p_uav, value = physics.optimal_relay_powers(
            slot["bs_gain"], slot["user_gain"], slot["feasible"], config.noise_mw, 1000.0, 1000.0
        )
        best = int(np.argmax(value))
        powers = np.array([p_bs[best] / 500.0 - 1.0, p_uav[best] / 500.0 - 1.0]).clip(-1.0, 1.0)
        if config.action_mode == "hybrid":
            return best, powers
        return np.concatenate([moves[best], powers])

    return policy


def _fitness(infos: list[dict]) -> float:
    return float(np.mean([info["fitness"] for info in infos]))


@pytest.mark.parametrize("action_mode", ["continuous", "hybrid"])
def test_no_tested_policy_beats_the_oracle_of_its_scenario(action_mode: str) -> None:
    config = UAVNearFieldConfig(action_mode=action_mode, scenario="random")
    seeds = [*scenario_seeds("train", 3, base_seed=40), *scenario_seeds("heldout", 2, base_seed=40)]
    full_power_hover = (0, np.ones(2)) if action_mode == "hybrid" else np.array([0.0, 0.0, 1.0, 1.0])
    for seed in seeds:
        env = UAVNearFieldEnv(config)
        options = {"scenario_seed": seed}
        env.reset(options=options)
        oracle = env.oracle_fitness()
        assert oracle == scenario_oracle_fitness(config, env.scenario)
        scenario_config = env.scenario.config(config)
        oracle_rollout = _fitness(
            run_episode(UAVNearFieldEnv(scenario_config), OraclePolicy(scenario_config))
        )
        assert oracle_rollout == pytest.approx(oracle, abs=1e-9)
        contenders = {
            "full-power hover": _fitness(
                run_episode(env, lambda obs, info: full_power_hover, options=options)
            ),
            "greedy": _fitness(run_episode(env, _greedy(env), options=options)),
        }
        space = env.action_space
        for policy_seed in range(3):
            space.seed(policy_seed)
            contenders[f"random {policy_seed}"] = _fitness(
                run_episode(env, lambda obs, info, space=space: space.sample(), options=options)
            )
        for name, value in contenders.items():
            assert value <= oracle + 1e-9, (seed, name, value, oracle)
        assert contenders["greedy"] > 0.5 * oracle  # a sensible contender, not a straw man


def test_oracle_fraction_of_an_episode_is_fitness_over_the_scenario_oracle() -> None:
    batch = UAVNearFieldBatch(3, scenario="random")
    batch.reset(options={"scenario_seed": scenario_seeds("heldout", 3)})
    oracles = batch.oracle_fitness()
    assert oracles.shape == (3,) and len(set(oracles.tolist())) == 3
    env = UAVNearFieldEnv(scenario="random")
    for scenario, oracle in zip(batch.scenarios, oracles, strict=True):
        env.reset(options={"scenario_seed": scenario.seed})
        assert env.oracle_fitness() == oracle
    # The fixed scenario's oracle is the paper configuration's.
    fixed = Scenario((150.0, 200.0, 0.0), (1.0, 1.0))
    assert scenario_oracle_fitness(UAVNearFieldConfig(), fixed) == oracle_episode_fitness()


@pytest.mark.slow
@pytest.mark.parametrize("action_mode", ["continuous", "hybrid"])
def test_greedy_never_beats_the_oracle_on_a_hundred_held_out_scenarios(action_mode: str) -> None:
    """The greedy flight is nearly optimal in this task, so it is the sharpest test of the oracle's plan."""
    env = UAVNearFieldEnv(scenario="random", action_mode=action_mode)
    fractions = []
    for seed in scenario_seeds("heldout", 100, base_seed=500):
        options = {"scenario_seed": seed}
        env.reset(options=options)
        oracle = env.oracle_fitness()
        greedy = _fitness(run_episode(env, _greedy(env), options=options))
        assert greedy <= oracle + 1e-9, (seed, greedy, oracle)
        fractions.append(greedy / oracle)
    assert np.median(fractions) > 0.95
