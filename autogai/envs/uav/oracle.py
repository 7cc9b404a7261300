"""The UAV task's oracle: the best trajectory and powers for a scenario, and its episode fitness.

The slots are coupled only through the UAV's position (powers are chosen per slot), so the best episode
is found by dynamic programming over positions with the per-slot optimal powers
(:func:`autogai.envs.uav.physics.optimal_relay_powers`). The oracle is the physical reference that learned
policies are measured against; it is computed once per scenario and cached. The oracle plans and flies
its episode on the dynamics (:mod:`autogai.envs.uav.dynamics`), never through the Gymnasium env, so the env
can report its scenario's oracle without an import circle.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autogai.envs.uav import physics
from autogai.envs.uav.config import WAYPOINTS, UAVNearFieldConfig
from autogai.envs.uav.dynamics import STAY, dynamics_for
from autogai.envs.uav.scenario import Scenario, episode_scenarios

_WAYPOINT_INDEX = {step: index for index, step in enumerate(WAYPOINTS)}


def _hover_values(config: UAVNearFieldConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Best slot utility at (x, y) with utility-maximising continuous powers."""
    slot = dynamics_for(config).slot_physics(x, y)
    return physics.optimal_relay_powers(
        slot["bs_gain"],
        slot["user_gain"],
        slot["feasible"],
        config.noise_mw,
        config.max_power_bs_mw,
        config.max_power_uav_mw,
        config.rate_weight,
        config.power_weight,
    )[2]


def _zoom_argmax(
    objective: Callable[[np.ndarray, np.ndarray], np.ndarray],
    centre: tuple[float, float],
    schedule: Sequence[tuple[float, float]],
    clamp: tuple[float, float],
) -> tuple[tuple[float, float], float]:
    """Maximise ``objective`` over 2-D points by successively finer square grids (half-width, step)."""
    best, best_value = centre, -math.inf
    for half_width, step in schedule:
        count = round(2 * half_width / step) + 1
        offsets = np.linspace(-half_width, half_width, count)
        xs = np.clip(best[0] + offsets, *clamp)
        ys = np.clip(best[1] + offsets, *clamp)
        grid_x, grid_y = np.meshgrid(xs, ys, indexing="ij")
        values = objective(grid_x.ravel(), grid_y.ravel())
        index = int(np.argmax(values))
        if values[index] > best_value:
            best, best_value = (
                (float(grid_x.ravel()[index]), float(grid_y.ravel()[index])),
                float(values[index]),
            )
    return best, best_value


@functools.lru_cache(maxsize=1024)
def _best_hover_point(config: UAVNearFieldConfig) -> tuple[tuple[float, float], float]:
    size = config.area_size_m
    centre = (size / 2.0, size / 2.0)
    schedule = [(size / 2.0, size / 300.0), (size / 300.0, size / 6000.0), (size / 6000.0, size / 120000.0)]
    return _zoom_argmax(lambda xs, ys: _hover_values(config, xs, ys), centre, schedule, (0.0, size))


def best_hover_point(**env_kwargs: Any) -> tuple[tuple[float, float], float]:
    """The position with the highest single-slot utility (optimal powers), refined numerically.

    Returns ``((x, y), utility per slot)``. Default configuration: about (55, 71) and 43.2.
    """
    return _best_hover_point(UAVNearFieldConfig.from_kwargs(**env_kwargs))


def _sliding_max(values: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """max of ``values`` over offsets -radius..radius along ``axis`` (cells beyond the edge are ignored)."""
    moved = np.moveaxis(values, axis, 0)
    length = moved.shape[0]
    width = 2 * radius + 1
    padded = np.full((length + 2 * radius, *moved.shape[1:]), -np.inf)
    padded[radius : radius + length] = moved
    span = 1
    while 2 * span <= width:  # padded[i] becomes the max over [i, i + 2 span)
        np.maximum(padded[:-span], padded[span:], out=padded[:-span])
        span *= 2
    result = np.maximum(padded[:length], padded[width - span : width - span + length])
    return np.moveaxis(result, 0, axis)


@dataclass(frozen=True)
class _Grid:
    """Candidate positions of the oracle's dynamic program: start + step * (i, j), inside the area."""

    xs: np.ndarray
    ys: np.ndarray
    radius: int
    """Cells reachable in one slot along each axis (max_move / step)."""
    start_index: tuple[int, int]


def _oracle_grid(config: UAVNearFieldConfig, start: tuple[float, float], hover: tuple[float, float]) -> _Grid:
    size = config.area_size_m
    if config.action_mode == "continuous":
        # 10 cells per move: every lattice path of the discrete/hybrid modes is on this grid too. The grid
        # spans the whole feasible region (the best path may swing well beyond the start-to-hover box,
        # e.g. along the near-field edge toward the user) and the start, wherever it is.
        radius, margin = 10, 10.0
        reach = math.sqrt(max(config.near_field_radius**2 - config.altitude_m**2, 0.0))
        low = [0.0, 0.0]
        high = [min(max(start[a], hover[a], reach) + margin, size) for a in (0, 1)]
    else:
        radius, low, high = 1, [0.0, 0.0], [size, size]
    step = config.max_move_m / radius
    axes = []
    for a in (0, 1):
        first = math.ceil((low[a] - start[a]) / step - 1e-9)
        last = math.floor((high[a] - start[a]) / step + 1e-9)
        axes.append(start[a] + step * np.arange(first, last + 1))
    xs, ys = axes
    start_index = (int(np.argmin(np.abs(xs - start[0]))), int(np.argmin(np.abs(ys - start[1]))))
    return _Grid(xs, ys, radius, start_index)


def _slot_utilities(config: UAVNearFieldConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Best slot utility at each position for the configuration's action mode (discrete: power levels)."""
    if config.action_mode != "discrete":
        return _hover_values(config, x, y)
    slot = dynamics_for(config).slot_physics(x, y)
    best = np.full(np.shape(x), -np.inf)
    for p_bs in config.power_levels_bs:
        rate_1 = physics.rate_bs_uav(p_bs, slot["bs_gain"], config.noise_mw)
        for p_uav in config.power_levels_uav:
            rate_2 = physics.rate_uav_user(p_uav, slot["user_gain"], config.noise_mw)
            value = physics.utility(
                np.minimum(rate_1, rate_2),
                slot["feasible"],
                p_bs,
                p_uav,
                config.rate_weight,
                config.power_weight,
            )
            np.maximum(best, value, out=best)
    return best


@dataclass(frozen=True)
class OraclePlan:
    """What the oracle decided for one start, with its episode fitness (all positions in m)."""

    start: tuple[float, float]
    best_hover_point: tuple[float, float]
    """Position of the best single-slot utility (continuous powers)."""
    best_hover_utility: float
    target: tuple[float, float]
    """Where the trajectory ends (and the UAV hovers)."""
    path: tuple[tuple[float, float], ...]
    """Position after each slot, 1..horizon."""
    planned_fitness: float
    """Episode fitness of the planned path (mean best slot utility along it)."""
    episode_fitness: float = math.nan
    """Episode fitness of the oracle policy rolled out in the environment."""
    extra: dict[str, float] = field(default_factory=dict)


@functools.lru_cache(maxsize=1024)
def _plan(config: UAVNearFieldConfig, start: tuple[float, float]) -> OraclePlan:
    """Best trajectory by dynamic programming over a position grid, then hovering on the exact best point.

    The slots are coupled only through the position (powers are chosen per slot), so the best episode is
    the path maximising the sum of per-slot best utilities U(p) under |dx|, |dy| <= max_move:
    V_t(p) = U(p) + max over the reachable square of V_{t+1}, a separable sliding maximum. Continuous mode
    uses a 0.5 m grid aligned with the start; discrete and hybrid modes the exact 5 m lattice they can reach.
    """
    hover, hover_value = _best_hover_point(config)
    grid = _oracle_grid(config, start, hover)
    grid_x, grid_y = np.meshgrid(grid.xs, grid.ys, indexing="ij")
    utilities = _slot_utilities(config, grid_x, grid_y)
    horizon = config.horizon
    values = [np.zeros_like(utilities)] * (horizon + 2)  # values[t] = V_t; V_{horizon+1} = 0
    for t in range(horizon, 0, -1):
        ahead = _sliding_max(_sliding_max(values[t + 1], grid.radius, 0), grid.radius, 1)
        values[t] = utilities + ahead
    exact_hover = config.action_mode == "continuous"
    hover_slot = float(_hover_values(config, np.array(hover[0]), np.array(hover[1])))
    i, j = grid.start_index
    position = start
    path: list[tuple[float, float]] = []
    gains: list[float] = []
    radius = grid.radius
    for t in range(1, horizon + 1):
        rows = slice(max(i - radius, 0), i + radius + 1)
        cols = slice(max(j - radius, 0), j + radius + 1)
        window = values[t][rows, cols]
        index = np.unravel_index(int(np.argmax(window)), window.shape)
        i, j = rows.start + int(index[0]), cols.start + int(index[1])
        candidate = (float(grid.xs[i]), float(grid.ys[j]))
        value = float(values[t][i, j])
        # The exact best hover point is the global maximum of U: once reachable and at least as good as the
        # grid's best continuation, fly there and stay.
        reachable = max(abs(hover[0] - position[0]), abs(hover[1] - position[1])) <= config.max_move_m
        if exact_hover and reachable and hover_slot * (horizon - t + 1) >= value:
            path.extend([hover] * (horizon - t + 1))
            gains.extend([hover_slot] * (horizon - t + 1))
            break
        position = candidate
        path.append(candidate)
        gains.append(float(utilities[i, j]))
    planned = float(np.mean(gains))
    return OraclePlan(start, hover, hover_value, path[-1], tuple(path), planned)


class OraclePolicy:
    """Scripted oracle: follow the best trajectory to the best hover point, choosing the best powers.

    The trajectory comes from a dynamic program over positions (:func:`oracle_plan`): it flies at full
    speed toward the best hover point along the path whose intermediate slots earn the most, then hovers
    on the numerically refined best point. Every slot it sets the utility-maximising powers for the
    position it is about to reach: the exact solution of the one-dimensional per-slot problem
    (:func:`autogai.envs.uav.physics.optimal_relay_powers`) in continuous/hybrid mode, the best of the L x L
    power levels in discrete mode.

    Use: ``action = policy(obs, info)`` with the ``info`` of ``reset``/``step`` (it reads the exact
    position ``info["x"], info["y"]`` and the slot ``info["t"]``; at ``t == 0`` it plans for that start).
    It plans for its configuration's user; in a random scenario use
    ``OraclePolicy(env.scenario.config(env.config))``.
    """

    def __init__(self, config: UAVNearFieldConfig | None = None, **env_kwargs: Any) -> None:
        if config is not None and env_kwargs:
            config = config.replace(**env_kwargs)
        self.config = config if config is not None else UAVNearFieldConfig.from_kwargs(**env_kwargs)
        self.plan: OraclePlan | None = None

    def reset(self, start: tuple[float, float]) -> None:
        """Plan the trajectory for an episode starting at ``start``."""
        self.plan = _plan(self.config, (float(start[0]), float(start[1])))

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> Any:
        x, y, t = float(info["x"]), float(info["y"]), int(info.get("t", 0))
        if self.plan is None or t == 0:
            self.reset((x, y))
        return self.act(x, y, t)

    def act(self, x: float, y: float, t: int) -> Any:
        """The action for a UAV at (x, y) after ``t`` slots, in the configuration's action mode."""
        cfg = self.config
        assert self.plan is not None, "call reset(start) first"
        goal = self.plan.path[min(t, len(self.plan.path) - 1)]
        step = cfg.max_move_m
        dx = min(max(goal[0] - x, -step), step)
        dy = min(max(goal[1] - y, -step), step)
        sign_x = 0 if abs(dx) < step / 2 else (1 if dx > 0 else -1)
        sign_y = 0 if abs(dy) < step / 2 else (1 if dy > 0 else -1)
        if cfg.action_mode != "continuous":
            dx, dy = sign_x * step, sign_y * step
        dynamics = dynamics_for(cfg)
        new_x, new_y = dynamics.move(x, y, dx, dy)
        slot = dynamics.slot_physics(new_x, new_y)
        if cfg.action_mode == "discrete":
            levels_bs = np.asarray(cfg.power_levels_bs)[:, None]
            levels_uav = np.asarray(cfg.power_levels_uav)[None, :]
            rate_df = np.minimum(
                physics.rate_bs_uav(levels_bs, slot["bs_gain"], cfg.noise_mw),
                physics.rate_uav_user(levels_uav, slot["user_gain"], cfg.noise_mw),
            )
            values = physics.utility(
                rate_df, slot["feasible"], levels_bs, levels_uav, cfg.rate_weight, cfg.power_weight
            )
            level_bs, level_uav = np.unravel_index(int(np.argmax(values)), np.shape(values))
            return np.array([sign_x + 1, sign_y + 1, level_bs, level_uav], dtype=np.int64)
        p_bs, p_uav, _ = physics.optimal_relay_powers(
            slot["bs_gain"],
            slot["user_gain"],
            slot["feasible"],
            cfg.noise_mw,
            cfg.max_power_bs_mw,
            cfg.max_power_uav_mw,
            cfg.rate_weight,
            cfg.power_weight,
        )
        a_bs = 2.0 * float(p_bs) / cfg.max_power_bs_mw - 1.0 if cfg.max_power_bs_mw > 0 else -1.0
        a_uav = 2.0 * float(p_uav) / cfg.max_power_uav_mw - 1.0 if cfg.max_power_uav_mw > 0 else -1.0
        powers = np.clip(np.array([a_bs, a_uav]), -1.0, 1.0)
        if cfg.action_mode == "hybrid":
            return (_WAYPOINT_INDEX[(sign_x, sign_y)], powers)
        return np.array([dx / step, dy / step, powers[0], powers[1]])


def oracle_plan(*, seed: int | None = None, **env_kwargs: Any) -> OraclePlan:
    """The oracle's plan for the configuration given by ``env_kwargs`` and its rolled-out episode fitness.

    ``seed`` matters only with ``random_start=True`` or ``scenario="random"``: the scenario is the one
    ``reset(seed=seed)`` draws.
    """
    config = UAVNearFieldConfig.from_kwargs(**env_kwargs)
    (scenario,) = episode_scenarios(config, np.random.default_rng(seed), 1, None)
    return _oracle_plan(scenario.config(config))


def scenario_oracle_fitness(config: UAVNearFieldConfig, scenario: Scenario) -> float:
    """Best achievable episode fitness in ``scenario`` under ``config`` (cached per scenario and config).

    Divide an episode's fitness by it for the episode's fraction of the oracle (1.0 = the physical limit).
    """
    return _oracle_plan(scenario.config(config)).episode_fitness


def _fly(config: UAVNearFieldConfig, policy: OraclePolicy) -> list[dict[str, Any]]:
    """The metrics of every slot of ``policy`` flown from the configuration's start, on the dynamics: what
    ``UAVNearFieldEnv`` returns as ``info`` for the same actions (it steps through the same transition)."""
    dynamics = dynamics_for(config)
    work = dynamics.workspace(())
    user_x, user_y = config.user_position[0], config.user_position[1]
    x, y = config.start_position
    info = dynamics.transition(x, y, STAY, 0, user_x, user_y, work)
    infos = []
    for t in range(1, config.horizon + 1):
        decoded = dynamics.decode(policy(work.obs, info), ())
        info = dynamics.transition(info["x"], info["y"], decoded, t, user_x, user_y, work)
        infos.append(info)
    return infos


@functools.lru_cache(maxsize=1024)
def _oracle_plan(config: UAVNearFieldConfig) -> OraclePlan:
    """Plan and roll out the oracle for a fixed-scenario configuration (one scenario: the LRU key)."""
    policy = OraclePolicy(config)
    infos = _fly(config, policy)
    assert policy.plan is not None
    fitness = float(np.mean([info["fitness"] for info in infos]))
    return dataclasses.replace(
        policy.plan,
        episode_fitness=fitness,
        extra={
            "mean_rate_df": float(np.mean([info["rate_df"] for info in infos])),
            "mean_power_total_mw": float(np.mean([info["power_total_mw"] for info in infos])),
            "arrival_slot": float(policy.plan.path.index(policy.plan.target) + 1),
        },
    )


def oracle_episode_fitness(*, seed: int | None = None, **env_kwargs: Any) -> float:
    """Best achievable episode fitness (mean utility per slot) of the oracle policy for this configuration.

    The physical reference the learned policies are measured against: the best trajectory (dynamic
    programming on a 0.5 m grid, then the exact best hover point) with the utility-maximising powers
    every slot; about 42.9 for the default configuration. ``seed`` as in :func:`oracle_plan`.
    """
    return oracle_plan(seed=seed, **env_kwargs).episode_fitness
