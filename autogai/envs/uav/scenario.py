"""Scenarios of the UAV task: where the user is and where the UAV starts, fixed or drawn from a seed.

With ``scenario="fixed"`` (the paper's) every episode has the configuration's user and start. With
``scenario="random"`` every episode has its own :class:`Scenario`, a pure function of an integer
*scenario seed* (:func:`draw_scenario`):

- the user: uniform over the part of the service area [0, area]^2 that lies at least
  ``USER_MIN_DISTANCE_FACTOR`` (1.2) times the near-field radius from the BS (160 m to the far corner's
  424 m by default, at any bearing from 0 to 90 degrees), on the ground (the configured user height).
  Why: the user must lie outside the UAV's feasible region, otherwise the UAV simply hovers over it and
  there is no trade-off between the two hops; the 20 % margin keeps the user clearly beyond the region's
  edge, as the paper's user (250 m away) is. Inside the area, because that is the region the task models.
  The user's distance and bearing are the BS-user geometry of the scenario; the BS itself stays at the
  origin with its array along the y-axis, the frame in which the area and the near-field radius are
  defined, and the altitude stays fixed (it sets the channel's scale, not the geometry).
- the UAV's start: uniform over the feasible region (inside the area and within the near-field radius),
  the set of places a relay may legitimately be when an episode begins.

Training and held-out scenarios never meet: training scenarios have even seeds, held-out ones odd seeds
(:func:`scenario_seeds`). An environment that draws its own scenario (``reset`` without the
``scenario_seed`` option) draws an even one, so training never sees a held-out scenario; an evaluator
passes held-out seeds explicitly with ``reset(options={"scenario_seed": seed})``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autogai.core.errors import ConfigError
from autogai.envs.uav.config import UAVNearFieldConfig
from autogai.envs.uav.dynamics import dynamics_for

USER_MIN_DISTANCE_FACTOR = 1.2
"""A random user is at least this many near-field radii from the BS."""

SPLITS = ("train", "heldout")
_SPLIT_PARITY = {"train": 0, "heldout": 1}
_SEED_LIMIT = 2**62
"""Scenario seeds are integers in [0, 2^63): seed = 2 j + parity with j < 2^62."""


@dataclass(frozen=True)
class Scenario:
    """One episode's setting: the ground user's position and the UAV's start, in m."""

    user_position: tuple[float, float, float]
    start_position: tuple[float, float]
    seed: int | None = None
    """The scenario seed it was drawn from (``None`` for the fixed scenario or an explicit start)."""

    def config(self, base: UAVNearFieldConfig) -> UAVNearFieldConfig:
        """``base`` with this scenario as its fixed scenario (what the oracle plans for)."""
        return base.replace(
            scenario="fixed",
            random_start=False,
            user_position=self.user_position,
            start_position=self.start_position,
        )


def scenario_seeds(split: Literal["train", "heldout"], n: int, base_seed: int = 0) -> list[int]:
    """``n`` distinct scenario seeds of a split: even seeds train, odd seeds are held out.

    ``base_seed`` picks another block of the same split (seeds ``2 (base_seed + i) + parity``), so two
    calls with different base seeds may overlap within a split but never across splits.
    """
    if split not in _SPLIT_PARITY:
        raise ConfigError(f"split={split!r} is not valid; choose one of: {', '.join(SPLITS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"n={n!r} must be a non-negative integer")
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or not 0 <= base_seed < _SEED_LIMIT - n:
        raise ConfigError(f"base_seed={base_seed!r} must be an integer in [0, 2^62 - n)")
    parity = _SPLIT_PARITY[split]
    return [2 * (base_seed + i) + parity for i in range(n)]


def split_of(seed: int) -> str:
    """``"train"`` for an even scenario seed, ``"heldout"`` for an odd one."""
    return "train" if seed % 2 == 0 else "heldout"


def draw_training_seeds(rng: np.random.Generator, count: int) -> list[int]:
    """``count`` training scenario seeds drawn from ``rng`` (what an env does when not told a scenario)."""
    return [2 * int(j) for j in rng.integers(0, _SEED_LIMIT, size=count)]


def check_scenario_seed(seed: object) -> int:
    """``seed`` as a valid scenario seed, or a :class:`ConfigError`."""
    if (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, (int, np.integer))
        or not 0 <= seed < 2 * _SEED_LIMIT
    ):
        raise ConfigError(f"scenario_seed={seed!r} must be an integer in [0, 2^63)")
    return int(seed)


def fixed_scenario(config: UAVNearFieldConfig, start: tuple[float, float] | None = None) -> Scenario:
    """The configuration's own scenario (its user; its start unless ``start`` is given)."""
    position = config.start_position if start is None else start
    return Scenario(config.user_position, (float(position[0]), float(position[1])))


def draw_scenario(config: UAVNearFieldConfig, seed: int) -> Scenario:
    """The random scenario of ``seed``: the same seed gives the same scenario on every machine."""
    seed = check_scenario_seed(seed)
    rng = np.random.default_rng(seed)
    size = config.area_size_m
    min_distance = USER_MIN_DISTANCE_FACTOR * config.near_field_radius
    if min_distance >= math.hypot(size, size):
        raise ConfigError(
            f"scenario='random' needs room for a user beyond {min_distance:.1f} m from the BS inside the "
            f"{size:g} m area (check near_field_radius_m and area_size_m)"
        )
    for _ in range(10_000):  # rejection sampling; the accepted share is 1 - pi (160/300)^2 / 4 by default
        user_x, user_y = rng.uniform(0.0, size, size=2)
        if math.hypot(user_x, user_y) >= min_distance:
            break
    else:  # pragma: no cover - only for areas barely larger than the excluded disc
        raise ConfigError("scenario='random' could not place a user outside the near-field region")
    start = sample_starts(config, rng, 1)[0]
    return Scenario(
        (float(user_x), float(user_y), config.user_position[2]), (float(start[0]), float(start[1])), seed
    )


def sample_starts(config: UAVNearFieldConfig, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` uniform starts in the feasible region (area and near-field radius), shape [count, 2]."""
    horizontal = math.sqrt(max(config.near_field_radius**2 - config.altitude_m**2, 0.0))
    extent = min(config.area_size_m, horizontal)
    if extent <= 0.0:
        raise ConfigError(
            "a random start needs a feasible region, and it is empty (check near_field_radius_m)"
        )
    dynamics = dynamics_for(config)
    accepted: list[np.ndarray] = []
    total = 0
    for _ in range(1000):  # rejection sampling from the square [0, extent]^2
        points = rng.uniform(0.0, extent, size=(max(2 * count, 8), 2))
        if config.integer_positions:
            points = np.trunc(points)
        feasible = dynamics.slot_physics(points[:, 0], points[:, 1])["feasible"]
        accepted.append(points[feasible])
        total += int(feasible.sum())
        if total >= count:
            return np.concatenate(accepted)[:count]
    raise ConfigError("a random start could not be found (the feasible region is too small)")


RESET_OPTIONS = ("uav_position", "scenario_seed")


def episode_scenarios(
    config: UAVNearFieldConfig, rng: np.random.Generator, count: int, options: Mapping[str, Any] | None
) -> list[Scenario]:
    """The scenarios of ``count`` episodes starting together, from ``reset``'s ``options`` and ``rng``.

    Options: ``uav_position`` places the UAVs ((x, y), or [count, 2] for a batch); ``scenario_seed``
    (``scenario="random"`` only) picks the scenario (an int, or ``count`` ints for a batch). Without
    ``scenario_seed`` a random scenario is drawn with a training seed from ``rng``.
    """
    options = options or {}
    unknown = sorted(set(options) - set(RESET_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown reset option(s) {', '.join(unknown)}; valid options: {', '.join(RESET_OPTIONS)}"
        )
    starts = _start_option(config, options.get("uav_position"), count)
    seeds = options.get("scenario_seed")
    if config.scenario == "random":
        if seeds is None:
            seeds = draw_training_seeds(rng, count)
        scenarios = [draw_scenario(config, seed) for seed in _seed_option(seeds, count)]
    elif seeds is not None:
        raise ConfigError("the reset option scenario_seed needs scenario='random'")
    elif starts is None and config.random_start:
        scenarios = [fixed_scenario(config, (x, y)) for x, y in sample_starts(config, rng, count)]
    else:
        scenarios = [fixed_scenario(config)] * count
    if starts is not None:
        scenarios = [
            dataclasses.replace(scenario, start_position=(float(x), float(y)))
            for scenario, (x, y) in zip(scenarios, starts, strict=True)
        ]
    return scenarios


def _start_option(config: UAVNearFieldConfig, value: Any, count: int) -> np.ndarray | None:
    if value is None:
        return None
    shape = "(x, y)" if count == 1 else f"(x, y) or [{count}, 2]"
    try:
        starts = np.broadcast_to(np.asarray(value, dtype=np.float64), (count, 2))
    except (TypeError, ValueError):
        raise ConfigError(f"uav_position={value!r} must be 2 finite numbers {shape}") from None
    if not np.isfinite(starts).all():
        raise ConfigError(f"uav_position={value!r} must be 2 finite numbers {shape}")
    if not ((starts >= 0.0) & (starts <= config.area_size_m)).all():
        raise ConfigError(f"uav_position={value!r} must lie inside the area [0, {config.area_size_m:g}]^2")
    return starts


def _seed_option(value: Any, count: int) -> list[int]:
    seeds = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        seeds = list(seeds)
    except TypeError:
        raise ConfigError(f"scenario_seed={value!r} must be an integer (or {count} integers)") from None
    if len(seeds) != count:
        raise ConfigError(f"scenario_seed needs {count} seed(s), got {len(seeds)}")
    return [check_scenario_seed(seed) for seed in seeds]
