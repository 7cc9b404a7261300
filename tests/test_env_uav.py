"""The UAV near-field environment: Gymnasium contract, the physics numbers of docs/uav_env.md, seeding, decoding,
infeasible moves, configuration errors, the batched API and the oracle."""

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
    UAVNearFieldBatch,
    UAVNearFieldConfig,
    UAVNearFieldEnv,
    best_hover_point,
    oracle_episode_fitness,
    oracle_plan,
    physics,
)
from autogai.envs.uav.dynamics import dynamics_for

ENV_ID = "autogai/UAVNearField-v0"

# docs/uav_env.md "Sanity values" (written out here, independently of the module's copy).
SANITY = {
    (1.0, 0.0): (13.06, 18.70, 18.65, 4.09),
    (1.0, 1.0): (13.02, 18.66, 6.39, 4.10),
    (10.0, 10.0): (10.39, 16.03, 5.09, 4.24),
    (50.0, 60.0): (5.71, 11.33, 1.31, 5.12),
    (79.8, 106.4): (4.23, 9.80, 0.02, 6.21),
}
BEAMFORMERS = ("unit_norm", "unit_modulus", "author_code")
FULL_POWER_HOVER = np.array([0.0, 0.0, 1.0, 1.0])


def _mean_fitness(infos: list[dict]) -> float:
    return float(np.mean([info["fitness"] for info in infos]))


# --- Gymnasium contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_check_env_passes_without_warnings(action_mode: str, obs_mode: str) -> None:
    register_envs()
    env = gym.make(ENV_ID, action_mode=action_mode, obs_mode=obs_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    expected_size = 106 if obs_mode == "normalized" else 55
    assert env.observation_space.shape == (expected_size,)


def test_truncates_at_horizon_and_needs_reset() -> None:
    env = UAVNearFieldEnv(horizon=3)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(FULL_POWER_HOVER)
    env.reset()
    flags = [env.step(FULL_POWER_HOVER)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(FULL_POWER_HOVER)


def test_info_has_every_metric_and_reward_is_fitness() -> None:
    env = UAVNearFieldEnv()
    env.reset()
    _, reward, _, _, info = env.step(np.array([0.4, 1.0, 0.2, 0.9]))
    assert set(METRIC_NAMES) <= set(info)
    assert reward == info["fitness"]
    expected = 10 * info["rate_df"] * info["feasible"] - 0.005 * info["power_total_mw"]
    assert info["fitness"] == pytest.approx(expected)
    assert info["rate_df"] == min(info["rate_bs_uav"], info["rate_uav_user"])
    assert info["power_bs_mw"] == pytest.approx(600.0) and info["power_uav_mw"] == pytest.approx(950.0)
    assert info["move_m"] == pytest.approx(math.hypot(2.0, 5.0))
    assert (info["x"], info["y"]) == pytest.approx((3.0, 6.0))


def test_observations_stay_in_the_declared_space() -> None:
    env = UAVNearFieldEnv(random_start=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for _ in range(100):  # flying out of the area at full speed
        obs, *_ = env.step(np.array([1.0, 1.0, 1.0, 1.0]))
        assert env.observation_space.contains(obs)
    author = UAVNearFieldEnv(obs_mode="author", beamformer="unit_modulus")
    author.reset(options={"uav_position": (0.0, 0.0)})
    obs, *_ = author.step(FULL_POWER_HOVER)
    assert author.observation_space.contains(obs)


def test_normalized_observation_layout() -> None:
    env = UAVNearFieldEnv()
    env.reset(options={"uav_position": (40.0, 30.0)})
    obs, _, _, _, info = env.step(np.array([0.0, 0.0, 1.0, 0.0]))
    config = env.config
    positions = np.array([[40.0, 30.0, 6.0]])
    channel = physics.near_field_channel(
        positions, config.elements_y, config.wavenumber, config.bs_reference_gain
    )[0]
    scale = info["distance_to_bs"] / math.sqrt(config.bs_reference_gain)
    np.testing.assert_allclose(obs[:3], [40 / 300, 30 / 300, 6 / 300], rtol=1e-6)
    np.testing.assert_allclose(obs[3:53], channel.real * scale, atol=1e-6)
    np.testing.assert_allclose(obs[53:103], channel.imag * scale, atol=1e-6)
    np.testing.assert_allclose(
        obs[103:], [info["rate_bs_uav"] / 20, info["rate_uav_user"] / 20, 0.01], rtol=1e-6
    )


def test_observation_token_groups_cover_the_observation() -> None:
    for obs_mode in OBS_MODES:
        env = UAVNearFieldEnv(obs_mode=obs_mode)
        groups = env.observation_token_groups()
        indices = np.concatenate([group.ravel() for group in groups])
        assert sorted(indices.tolist()) == list(range(env.observation_space.shape[0]))
        assert all(group.dtype.kind == "i" and group.ndim == 2 for group in groups)
    normalized = UAVNearFieldEnv().observation_token_groups()
    assert normalized[0].shape == (50, 2) and normalized[1].shape == (1, 6)
    assert normalized[0][0].tolist() == [3, 53]


# --- Physics --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column, beamformer", list(enumerate(BEAMFORMERS)))
def test_sanity_table_to_two_decimals(column: int, beamformer: str) -> None:
    env = UAVNearFieldEnv(beamformer=beamformer)
    config = env.config
    for (x, y), values in SANITY.items():
        env.reset(options={"uav_position": (x, y)})
        info = env.step(FULL_POWER_HOVER)[4]
        assert round(info["rate_bs_uav"], 2) == values[column], (x, y, info["rate_bs_uav"])
        assert round(info["rate_uav_user"], 2) == values[3], (x, y, info["rate_uav_user"])
        # The vectorised physics gives the same R1 from the explicit channel and beamformer.
        channel = physics.near_field_channel(
            np.array([x, y, 6.0]), config.elements_y, config.wavenumber, config.bs_reference_gain
        )
        gain = physics.beamforming_gain(channel, beamformer)
        assert float(physics.rate_bs_uav(1000.0, gain, config.noise_mw)) == pytest.approx(
            info["rate_bs_uav"], rel=1e-9
        )


def test_near_field_radius_is_the_authors_constant() -> None:
    config = UAVNearFieldConfig()
    assert config.wavelength_m == pytest.approx(3.75e-3)
    assert config.near_field_radius == pytest.approx(133.333, abs=1e-3)
    aperture = config.n_elements * config.element_spacing_m
    assert 2 * aperture**2 / config.wavelength_m == pytest.approx(
        4.69, abs=0.01
    )  # the true Rayleigh distance


def test_closed_form_gains_match_the_channel_for_batches_of_positions() -> None:
    config = UAVNearFieldConfig()
    rng = np.random.default_rng(0)
    positions = np.column_stack([rng.uniform(0, 300, (64, 2)), np.full(64, 6.0)])
    channel = physics.near_field_channel(
        positions, config.elements_y, config.wavenumber, config.bs_reference_gain
    )
    assert channel.shape == (64, 50)
    distance = physics.centre_distance(positions)
    for beamformer in ("unit_norm", "unit_modulus"):
        np.testing.assert_allclose(
            physics.beamforming_gain(channel, beamformer),
            physics.coherent_gain(distance, 50, config.bs_reference_gain, beamformer),
            rtol=1e-10,
        )
    phases = config.wavenumber * physics.element_distances(positions, config.elements_y)
    np.testing.assert_allclose(
        physics.beamforming_gain(channel, "author_code"),
        physics.author_code_gain(distance, phases, config.bs_reference_gain),
        rtol=1e-6,
    )


def test_optimal_relay_powers_solve_the_one_dimensional_problem() -> None:
    config = UAVNearFieldConfig()
    grid = np.linspace(0.0, 1000.0, 2001)
    for x, y in [(1.0, 1.0), (20.0, 30.0), (55.0, 71.0), (80.0, 100.0)]:
        slot = dynamics_for(config).slot_physics(x, y)
        p_bs, p_uav, value = physics.optimal_relay_powers(
            slot["bs_gain"], slot["user_gain"], slot["feasible"], config.noise_mw, 1000.0, 1000.0
        )
        rates_1 = physics.rate_bs_uav(grid[:, None], slot["bs_gain"], config.noise_mw)
        rates_2 = physics.rate_uav_user(grid[None, :], slot["user_gain"], config.noise_mw)
        brute = physics.utility(np.minimum(rates_1, rates_2), True, grid[:, None], grid[None, :]).max()
        assert float(value) >= brute - 1e-9
        assert float(value) - brute < 0.01  # the 0.5 mW grid is nearly as good
        achieved = physics.utility(
            min(
                physics.rate_bs_uav(p_bs, slot["bs_gain"], config.noise_mw),
                physics.rate_uav_user(p_uav, slot["user_gain"], config.noise_mw),
            ),
            True,
            p_bs,
            p_uav,
        )
        assert float(achieved) == pytest.approx(float(value), abs=1e-9)


# --- Seeding --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_same_seed_same_trajectory(action_mode: str) -> None:
    def trajectory(seed: int) -> list[tuple]:
        env = UAVNearFieldEnv(action_mode=action_mode, random_start=True)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        rows = [(obs.tobytes(), info["x"], info["y"])]
        for _ in range(30):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            rows.append((obs.tobytes(), reward, info["x"], info["y"]))
        return rows

    assert trajectory(7) == trajectory(7)
    assert trajectory(7)[0][1:] != trajectory(8)[0][1:]  # random_start draws a different start


def test_random_start_is_feasible_and_seeded() -> None:
    env = UAVNearFieldEnv(random_start=True)
    starts = set()
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert info["feasible"]
        starts.add((info["x"], info["y"]))
    assert len(starts) == 20
    _, info = env.reset(seed=3, options={"uav_position": (12.0, 34.0)})
    assert (info["x"], info["y"]) == (12.0, 34.0)


# --- Action decoding ----------------------------------------------------------------------------------


def test_discrete_decoding() -> None:
    env = UAVNearFieldEnv(action_mode="discrete", n_power_levels=3)
    env.reset(options={"uav_position": (50.0, 50.0)})
    info = env.step(np.array([0, 2, 0, 2]))[4]
    assert (info["x"], info["y"]) == (45.0, 55.0)
    assert (info["power_bs_mw"], info["power_uav_mw"]) == (0.0, 1000.0)
    info = env.step([1, 1, 1, 2])[4]
    assert (info["x"], info["y"], info["move_m"]) == (45.0, 55.0, 0.0)
    assert info["power_bs_mw"] == 500.0


def test_hybrid_decoding_covers_all_waypoints() -> None:
    env = UAVNearFieldEnv(action_mode="hybrid")
    for index, (sign_x, sign_y) in enumerate(WAYPOINTS):
        env.reset(options={"uav_position": (50.0, 50.0)})
        info = env.step((index, np.array([-1.0, 0.5], dtype=np.float32)))[4]
        assert (info["x"], info["y"]) == (50.0 + 5 * sign_x, 50.0 + 5 * sign_y)
        assert (info["power_bs_mw"], info["power_uav_mw"]) == (0.0, 750.0)
    assert WAYPOINTS[0] == (0, 0) and len(set(WAYPOINTS)) == 9


# --- Infeasible moves -------------------------------------------------------------------------------


def test_leaving_the_area_is_flagged_not_clipped() -> None:
    env = UAVNearFieldEnv()
    env.reset(options={"uav_position": (2.0, 50.0)})
    info = env.step(np.array([-1.0, 0.0, 1.0, 1.0]))[4]
    assert info["x"] == pytest.approx(-3.0)
    assert info["out_of_area"] and not info["outside_near_field"] and not info["feasible"]
    assert info["fitness"] == pytest.approx(-10.0)  # no rate credit, full power paid
    clipped = UAVNearFieldEnv(clip_to_area=True)
    clipped.reset(options={"uav_position": (2.0, 50.0)})
    info = clipped.step(np.array([-1.0, 0.0, 1.0, 1.0]))[4]
    assert info["x"] == 0.0 and not info["out_of_area"] and info["feasible"]


def test_leaving_the_near_field_is_flagged() -> None:
    env = UAVNearFieldEnv()
    env.reset(options={"uav_position": (90.0, 95.0)})  # 131 m from the BS
    info = env.step(np.array([1.0, 1.0, 1.0, 1.0]))[4]
    assert info["distance_to_bs"] > 133.34
    assert info["outside_near_field"] and not info["out_of_area"] and not info["feasible"]
    assert info["fitness"] == pytest.approx(-10.0)


def test_relay_violation_flags_r1_not_above_r2() -> None:
    env = UAVNearFieldEnv()
    env.reset(options={"uav_position": (80.0, 100.0)})  # R1 < R2 at full power here
    info = env.step(FULL_POWER_HOVER)[4]
    assert info["relay_violation"] and info["rate_df"] == info["rate_bs_uav"]
    env.reset()
    assert not env.step(FULL_POWER_HOVER)[4]["relay_violation"]


def test_author_settings_reproduce_the_authors_quirks() -> None:
    env = UAVNearFieldEnv(**AUTHOR_SETTINGS)
    obs, info = env.reset()
    assert obs.shape == (55,) and (info["x"], info["y"]) == (1.0, 0.0)
    assert info["out_of_area"]  # (1, 0) is on the boundary: the authors penalise it every slot
    _, _, _, _, info = env.step(np.array([0.54, 0.7, 1.0, 1.0]))
    assert (info["x"], info["y"]) == (3.0, 3.0)  # 1 + 2.7 and 0 + 3.5 truncated toward zero
    assert obs[3:53] == pytest.approx(np.full(50, obs[3]), abs=2e-5)  # raw Re(h), about 1e-5


# --- Configuration errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"action_mode": "mixed"}, "'continuous', 'discrete', 'hybrid'"),
        ({"obs_mode": "raw"}, "'normalized', 'author'"),
        ({"beamformer": "mrt"}, "'unit_norm', 'unit_modulus', 'author_code'"),
        ({"max_power_bs_mw": -1.0}, "max_power_bs_mw=-1.0 must be >= 0"),
        ({"max_power_uav_mw": float("nan")}, "max_power_uav_mw=nan must be a finite number"),
        ({"n_power_levels": 1}, "n_power_levels=1 must be >= 2"),
        ({"horizon": 0}, "horizon=0 must be a positive integer"),
        ({"start_position": (400.0, 1.0)}, "start_position=(400.0, 1.0) must lie inside the area"),
        ({"power": 3}, "valid arguments: action_mode, obs_mode"),
        ({"render_mode": "human"}, "does not render"),
    ],
)
def test_bad_kwargs_raise_one_clear_config_error(kwargs: dict, fragment: str) -> None:
    register_envs()
    with pytest.raises(ConfigError) as direct:
        UAVNearFieldEnv(**kwargs)
    assert fragment in str(direct.value)
    assert "\n" not in str(direct.value)
    with pytest.raises(ConfigError), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # gymnasium warns about an unknown render mode before the env refuses it
        gym.make(ENV_ID, **kwargs)


@pytest.mark.parametrize(
    "action_mode, action, fragment",
    [
        ("continuous", np.zeros(3), "expected shape (4,)"),
        ("continuous", np.zeros((1, 4)), "expected shape (4,)"),
        ("continuous", np.array([0.0, 0.0, 1.5, 0.0]), "[-1, 1]"),
        ("continuous", np.array([0.0, np.nan, 0.0, 0.0]), "[-1, 1]"),
        ("continuous", "up", "expected 4 numbers"),
        ("discrete", np.array([3, 0, 0, 0]), "moves must be 0, 1 or 2"),
        ("discrete", np.array([1, 1, 5, 0]), "power levels integers in [0, 4]"),
        ("discrete", np.array([1, 1, 0.5, 0]), "power levels integers"),
        ("hybrid", (9, np.zeros(2)), "way-point must be 0-8"),
        ("hybrid", (1.5, np.zeros(2)), "way-point index"),
        ("hybrid", (1, np.zeros(3)), "powers must have shape (2,)"),
        ("hybrid", (1, np.array([2.0, 0.0])), "powers must lie in [-1, 1]"),
    ],
)
def test_bad_actions_raise_config_error(action_mode: str, action: object, fragment: str) -> None:
    env = UAVNearFieldEnv(action_mode=action_mode)
    env.reset()
    with pytest.raises(ConfigError, match="is not in the action space") as error:
        env.step(action)
    assert fragment in str(error.value)


def test_bad_reset_options_raise_config_error() -> None:
    env = UAVNearFieldEnv()
    with pytest.raises(ConfigError, match="valid options: uav_position"):
        env.reset(options={"position": (1, 1)})
    with pytest.raises(ConfigError, match="inside the area"):
        env.reset(options={"uav_position": (-5.0, 1.0)})
    with pytest.raises(ConfigError, match="2 finite numbers"):
        env.reset(options={"uav_position": (1.0, 2.0, 3.0)})


# --- Batched API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_batch_equals_single_env_stepping(action_mode: str, obs_mode: str) -> None:
    count = 6
    kwargs = {"action_mode": action_mode, "obs_mode": obs_mode, "horizon": 25}
    if obs_mode == "author":
        kwargs["beamformer"] = "author_code"
    batch = UAVNearFieldBatch(count, **kwargs)
    envs = [UAVNearFieldEnv(batch.config) for _ in range(count)]
    starts = np.random.default_rng(1).uniform(0, 120, (count, 2))
    batch_obs, _ = batch.reset(options={"uav_position": starts})
    for env, start, row in zip(envs, starts, batch_obs, strict=True):
        np.testing.assert_allclose(env.reset(options={"uav_position": start})[0], row, rtol=1e-6, atol=1e-6)
    space = envs[0].action_space
    space.seed(2)
    for _ in range(25):
        actions = [space.sample() for _ in range(count)]
        if action_mode == "hybrid":
            batch_actions = (np.array([a[0] for a in actions]), np.stack([a[1] for a in actions]))
        else:
            batch_actions = np.stack(actions)
        obs, rewards, terminated, truncated, info = batch.step(batch_actions)
        assert obs.dtype == np.float32 and obs.shape == (count, envs[0].observation_space.shape[0])
        for i, env in enumerate(envs):
            single_obs, reward, single_terminated, single_truncated, single_info = env.step(actions[i])
            np.testing.assert_allclose(single_obs, obs[i], rtol=1e-6, atol=1e-6)
            assert reward == pytest.approx(rewards[i], rel=1e-7, abs=1e-7)
            assert (single_terminated, single_truncated) == (terminated[i], truncated[i])
            for name in METRIC_NAMES:
                assert single_info[name] == pytest.approx(info[name][i], rel=1e-7, abs=1e-7), name
    assert truncated.all()
    with pytest.raises(gym.error.ResetNeeded):
        batch.step(batch_actions)


def test_batch_random_start_and_errors() -> None:
    batch = UAVNearFieldBatch(64, random_start=True)
    first, info = batch.reset(seed=5)
    again, _ = batch.reset(seed=5)
    np.testing.assert_array_equal(first, again)
    assert info["feasible"].all() and len(set(info["x"].tolist())) == 64
    with pytest.raises(ConfigError, match=r"shape \[64, 4\]"):
        batch.step(np.zeros((63, 4)))
    with pytest.raises(ConfigError, match=r"\[-1, 1\]"):
        batch.step(np.full((64, 4), 2.0))


# --- Oracle --------------------------------------------------------------------------------------------


def test_best_hover_point_refines_the_reference() -> None:
    (x, y), utility = best_hover_point()
    assert math.hypot(x - 55.0, y - 71.0) < 3.0
    assert utility == pytest.approx(43.2, abs=0.05)
    env = UAVNearFieldEnv()
    env.reset(options={"uav_position": (x, y)})
    info = env.step(FULL_POWER_HOVER)[4]
    assert info["rate_bs_uav"] == pytest.approx(info["rate_uav_user"], abs=0.01)  # the hops balance
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1), (0.5, 0.5)]:
        env.reset(options={"uav_position": (x + dx, y + dy)})
        assert env.step(FULL_POWER_HOVER)[1] < utility


def test_oracle_policy_reaches_the_oracle_value_and_beats_constant_policies() -> None:
    register_envs()
    oracle = oracle_episode_fitness()
    plan = oracle_plan()
    assert 42.0 < oracle < plan.best_hover_utility
    assert plan.planned_fitness == pytest.approx(oracle, abs=1e-9)
    infos = run_episode(gym.make(ENV_ID), OraclePolicy())
    assert _mean_fitness(infos) == pytest.approx(oracle, abs=1e-9)
    assert len(infos) == 100 and all(info["feasible"] for info in infos)

    start_hover = _mean_fitness(run_episode(UAVNearFieldEnv(), lambda obs, info: FULL_POWER_HOVER))
    assert start_hover == pytest.approx(31.0, abs=0.05)
    constants = [
        np.array([dx, dy, p_bs, p_uav])
        for dx, dy in [(0.0, 0.0), (1.0, 1.0), (0.5, 0.7), (0.2, 0.25), (0.05, 0.07), (0.0, 1.0)]
        for p_bs, p_uav in [(1.0, 1.0), (0.0, 0.0), (-0.5, 1.0), (-1.0, -1.0)]
    ]
    best_constant = max(
        _mean_fitness(run_episode(UAVNearFieldEnv(), lambda obs, info, a=action: a)) for action in constants
    )
    assert best_constant < oracle - 1.0
    # Hovering anywhere reachable from the start with any constant power is worse too.
    hover_anywhere = _mean_fitness(
        run_episode(
            UAVNearFieldEnv(),
            lambda obs, info: FULL_POWER_HOVER,
            options={"uav_position": plan.best_hover_point},
        )
    )
    assert hover_anywhere > oracle  # starting at the best point would be better: travel costs slots


@pytest.mark.parametrize("action_mode", ["discrete", "hybrid"])
def test_oracle_policy_in_discrete_and_hybrid_modes(action_mode: str) -> None:
    fitness = oracle_episode_fitness(action_mode=action_mode)
    assert 40.0 < fitness <= oracle_episode_fitness() + 1e-9
    infos = run_episode(UAVNearFieldEnv(action_mode=action_mode), OraclePolicy(action_mode=action_mode))
    assert _mean_fitness(infos) == pytest.approx(fitness, abs=1e-9)


def test_oracle_with_random_start_plans_per_start() -> None:
    values = {oracle_episode_fitness(random_start=True, seed=seed) for seed in (0, 1)}
    assert len(values) == 2
    assert all(30.0 < value < 43.2 for value in values)


def test_hybrid_codebook_row_is_the_move_of_its_waypoint() -> None:
    """Agents quantise [-1, 1]^2 coords to the nearest codebook row: row i must be way-point i's move."""
    env = UAVNearFieldEnv(action_mode="hybrid")
    codebook = env.action_codebook()
    assert codebook is not None and codebook.shape == (9, 2)
    for index, (sign_x, sign_y) in enumerate(codebook):
        env.reset(seed=0, options={"uav_position": (100.0, 100.0)})
        _, _, _, _, info = env.step((index, np.zeros(2, dtype=np.float32)))
        assert (info["x"], info["y"]) == pytest.approx((100.0 + 5.0 * sign_x, 100.0 + 5.0 * sign_y))
    assert UAVNearFieldEnv(action_mode="continuous").action_codebook() is None
