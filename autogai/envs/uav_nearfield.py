"""The UAV near-field relay task: a Gymnasium environment, a batched numpy rollout API and the oracle.

Source: the case study of Sun, Xie, Niyato, Mei, Kang, Du, Mao, "Generative AI for Deep Reinforcement
Learning: Framework, Analysis, and Use Cases" (arXiv 2405.20568, IEEE Wireless Communications 2025) and
the authors' environment ``Environment_relay_simple_state.py``. The specification with verified numbers is
docs/uav_env.md; the physics lives in :mod:`autogai.envs.physics`.

Public pieces:

- :class:`UAVNearFieldEnv` — the Gymnasium environment ``autogai/UAVNearField-v0``.
- :class:`UAVNearFieldConfig` — every constant and option of the task, validated on construction.
- :class:`UAVNearFieldBatch` — many UAVs stepped at once with numpy (evaluation rollouts, benchmarks).
- :class:`OraclePolicy`, :func:`oracle_plan`, :func:`oracle_episode_fitness` — the scripted oracle.
- :data:`AUTHOR_SETTINGS` — the kwargs that reproduce the authors' environment and its quirks.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int, check_range
from autogai.envs import physics

__all__ = [
    "ACTION_MODES",
    "AUTHOR_SETTINGS",
    "METRIC_NAMES",
    "OBS_MODES",
    "SANITY_TABLE",
    "WAYPOINTS",
    "OraclePlan",
    "OraclePolicy",
    "UAVNearFieldBatch",
    "UAVNearFieldConfig",
    "UAVNearFieldEnv",
    "best_hover_point",
    "hover_rates",
    "oracle_episode_fitness",
    "oracle_plan",
    "run_episode",
]

ACTION_MODES = ("continuous", "discrete", "hybrid")
OBS_MODES = ("normalized", "author")

WAYPOINTS: tuple[tuple[int, int], ...] = (
    (0, 0),  # 0 hover
    (0, 1),  # 1 north (+y)
    (1, 1),  # 2 north-east
    (1, 0),  # 3 east (+x)
    (1, -1),  # 4 south-east
    (0, -1),  # 5 south
    (-1, -1),  # 6 south-west
    (-1, 0),  # 7 west
    (-1, 1),  # 8 north-west
)
"""Hybrid mode's way-points as (sign of dx, sign of dy); each moving axis moves ``max_move_m``."""

_WAYPOINT_INDEX = {step: index for index, step in enumerate(WAYPOINTS)}

METRIC_NAMES = (
    "x",
    "y",
    "z",
    "t",
    "distance_to_bs",
    "distance_to_user",
    "rate_bs_uav",
    "rate_uav_user",
    "rate_df",
    "power_bs_mw",
    "power_uav_mw",
    "power_total_mw",
    "out_of_area",
    "outside_near_field",
    "relay_violation",
    "move_m",
    "feasible",
    "fitness",
)
"""Keys of ``info`` after every step (docs/uav_env.md "Metrics")."""

RATE_SCALE = 20.0
"""Rates are divided by this in the normalized observation (R1 at 1 m from the BS is about 13 bit/s/Hz)."""

_ACTION_TOLERANCE = 1e-6
"""Continuous actions may exceed [-1, 1] by float rounding this much; they are clipped."""

AUTHOR_SETTINGS: dict[str, Any] = {
    "obs_mode": "author",
    "beamformer": "author_code",
    "integer_positions": True,
    "start_position": (1.0, 0.0),
    "strict_area_boundary": True,
}
"""Kwargs reproducing the authors' environment (their bugs 1-4 of docs/uav_env.md) for comparison only."""


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UAVNearFieldConfig:
    """Every constant and option of the UAV near-field relay task (defaults = the authors' values).

    Pass any field as a keyword of :class:`UAVNearFieldEnv` / ``gymnasium.make``.
    """

    action_mode: str = "continuous"
    """``continuous`` (Box(-1, 1, (4,))), ``discrete`` (MultiDiscrete([3, 3, L, L])) or ``hybrid``
    (Tuple(Discrete(9), Box(-1, 1, (2,))))."""
    obs_mode: str = "normalized"
    """``normalized`` (2N + 6 values in about [-1, 1]) or ``author`` (the authors' 55-D raw vector)."""
    beamformer: str = "unit_norm"
    """``unit_norm`` (MRT, total power P_BS), ``unit_modulus`` (P_BS per element) or ``author_code``
    (the authors' unconjugated ``w @ h``, reproduction only)."""
    n_power_levels: int = 5
    """L, power levels per node in discrete mode, evenly spaced over [0, max power]."""
    n_elements: int = 50
    """N, elements of the BS uniform linear array (along the y-axis, centred at the origin)."""
    carrier_frequency_hz: float = 80e9
    """Carrier frequency; the wavelength is 3e8 / f (3.75 mm at 80 GHz)."""
    element_spacing_wavelengths: float = 0.5
    """Element spacing d in wavelengths."""
    bs_reference_gain_db: float = -72.0
    """rho, the BS->UAV reference channel gain."""
    user_reference_gain_db: float = -50.0
    """alpha, the UAV->user channel gain at 1 m."""
    path_loss_exponent: float = 2.0
    """UAV->user path-loss exponent (free space: 2)."""
    noise_power_dbm: float = -80.0
    """sigma^2, receiver noise power."""
    max_power_bs_mw: float = 1000.0
    """BS transmit-power budget (30 dBm)."""
    max_power_uav_mw: float = 1000.0
    """UAV transmit-power budget (30 dBm)."""
    altitude_m: float = 6.0
    """Fixed UAV altitude."""
    area_size_m: float = 300.0
    """Side of the square service area [0, area] x [0, area]."""
    user_position: tuple[float, float, float] = (150.0, 200.0, 0.0)
    """Ground user position (x, y, z) in m."""
    near_field_radius_m: float | None = None
    """Service radius around the BS; ``None`` = the authors' 2 D^2 / lambda with D = 0.5 m (133.33 m at
    80 GHz). This is their modelling constant: the true Rayleigh distance of the array is about 4.5 m."""
    max_move_m: float = 5.0
    """Largest move per slot along each axis (|dx|, |dy| <= 5 m)."""
    horizon: int = 100
    """Slots per episode; the step that completes the horizon returns ``truncated=True``."""
    start_position: tuple[float, float] = (1.0, 1.0)
    """Start (x, y); the authors' (1, 0) lies on the area boundary."""
    random_start: bool = False
    """Draw the start uniformly from the feasible region (inside the area and the near-field radius)
    with the env's seeded RNG instead of using ``start_position``."""
    clip_to_area: bool = False
    """Clip positions to the area instead of letting the UAV leave it (and be flagged ``out_of_area``)."""
    integer_positions: bool = False
    """The authors' integer position array: every position is truncated toward zero (bug 2)."""
    strict_area_boundary: bool = False
    """The authors' strict check 0 < x < area: points on the boundary count as out of the area."""
    rate_weight: float = 10.0
    """Fitness weight of the relay rate (the paper's 10)."""
    power_weight: float = 0.005
    """Fitness weight of the total power in mW (the paper's 0.005)."""

    def __post_init__(self) -> None:
        check_choice("action_mode", self.action_mode, ACTION_MODES)
        check_choice("obs_mode", self.obs_mode, OBS_MODES)
        check_choice("beamformer", self.beamformer, physics.BEAMFORMERS)
        check_positive_int("n_elements", self.n_elements)
        check_positive_int("horizon", self.horizon)
        check_positive_int("n_power_levels", self.n_power_levels)
        if self.n_power_levels < 2:
            raise ConfigError(f"n_power_levels={self.n_power_levels!r} must be >= 2 (zero and full power)")
        for name in ("carrier_frequency_hz", "element_spacing_wavelengths", "altitude_m", "area_size_m"):
            check_range(name, getattr(self, name), 0.0, low_inclusive=False)
        check_range("max_move_m", self.max_move_m, 0.0, low_inclusive=False)
        for name in ("max_power_bs_mw", "max_power_uav_mw", "rate_weight", "power_weight"):
            check_range(name, getattr(self, name), 0.0)
        for name in ("bs_reference_gain_db", "user_reference_gain_db", "noise_power_dbm"):
            check_range(name, getattr(self, name))
        check_range("path_loss_exponent", self.path_loss_exponent, 0.0, low_inclusive=False)
        if self.near_field_radius_m is not None:
            check_range("near_field_radius_m", self.near_field_radius_m, 0.0, low_inclusive=False)
        for name in ("random_start", "clip_to_area", "integer_positions", "strict_area_boundary"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        object.__setattr__(self, "user_position", _point("user_position", self.user_position, 3))
        object.__setattr__(self, "start_position", _point("start_position", self.start_position, 2))
        if not self.contains_position(*self.start_position):
            raise ConfigError(
                f"start_position={self.start_position!r} must lie inside the area [0, {self.area_size_m:g}]^2"
            )

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> UAVNearFieldConfig:
        """Build a config from env kwargs; an unknown name raises :class:`ConfigError` listing the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown UAVNearFieldEnv argument(s) {', '.join(unknown)}; valid arguments: {', '.join(valid)}"
            )
        return cls(**kwargs)

    def replace(self, **changes: Any) -> UAVNearFieldConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    # Derived constants -------------------------------------------------------------------------------

    @functools.cached_property
    def wavelength_m(self) -> float:
        return physics.wavelength_m(self.carrier_frequency_hz)

    @functools.cached_property
    def wavenumber(self) -> float:
        """k = 2 pi / lambda."""
        return 2.0 * math.pi / self.wavelength_m

    @functools.cached_property
    def element_spacing_m(self) -> float:
        return self.element_spacing_wavelengths * self.wavelength_m

    @functools.cached_property
    def elements_y(self) -> np.ndarray:
        values = physics.element_y(self.n_elements, self.element_spacing_m)
        values.setflags(write=False)
        return values

    @functools.cached_property
    def bs_reference_gain(self) -> float:
        """rho (linear)."""
        return physics.db_to_linear(self.bs_reference_gain_db)

    @functools.cached_property
    def user_reference_gain(self) -> float:
        """alpha (linear)."""
        return physics.db_to_linear(self.user_reference_gain_db)

    @functools.cached_property
    def noise_mw(self) -> float:
        return physics.dbm_to_mw(self.noise_power_dbm)

    @functools.cached_property
    def near_field_radius(self) -> float:
        if self.near_field_radius_m is not None:
            return float(self.near_field_radius_m)
        return physics.authors_near_field_radius_m(self.wavelength_m)

    @functools.cached_property
    def power_levels_bs(self) -> tuple[float, ...]:
        return tuple(np.linspace(0.0, self.max_power_bs_mw, self.n_power_levels).tolist())

    @functools.cached_property
    def power_levels_uav(self) -> tuple[float, ...]:
        return tuple(np.linspace(0.0, self.max_power_uav_mw, self.n_power_levels).tolist())

    @functools.cached_property
    def max_rate_bs_uav(self) -> float:
        """Upper bound of R1 over all positions (r >= altitude, gain <= N^2 rho / r^2 for every beamformer)."""
        n = self.n_elements if self.beamformer == "unit_norm" else self.n_elements**2
        gain = n * self.bs_reference_gain / self.altitude_m**2
        return float(physics.rate_bs_uav(self.max_power_bs_mw, gain, self.noise_mw))

    @functools.cached_property
    def max_rate_uav_user(self) -> float:
        """Upper bound of R2 over all positions (the UAV is at least |altitude - user z| from the user)."""
        closest = abs(self.altitude_m - self.user_position[2])
        gain = physics.user_channel_gain(closest, self.user_reference_gain, self.path_loss_exponent)
        return float(physics.rate_uav_user(self.max_power_uav_mw, gain, self.noise_mw))

    @property
    def observation_size(self) -> int:
        return 2 * self.n_elements + 6 if self.obs_mode == "normalized" else self.n_elements + 5

    # Geometry ------------------------------------------------------------------------------------------

    def contains_position(self, x: float, y: float) -> bool:
        """Whether (x, y) lies in the closed area [0, area]^2 (where a UAV may be placed)."""
        return 0.0 <= x <= self.area_size_m and 0.0 <= y <= self.area_size_m

    def next_position(self, x: float, y: float, dx: float, dy: float) -> tuple[float, float]:
        """Where a move (dx, dy) from (x, y) lands, with the ``clip_to_area`` and ``integer_positions`` options."""
        x, y = x + dx, y + dy
        if self.clip_to_area:
            x = min(max(x, 0.0), self.area_size_m)
            y = min(max(y, 0.0), self.area_size_m)
        if self.integer_positions:
            x, y = float(math.trunc(x)), float(math.trunc(y))
        return x, y

    def slot_physics(self, x: np.ndarray | float, y: np.ndarray | float) -> dict[str, np.ndarray]:
        """Position-dependent quantities for UAVs at (x, y) (any broadcastable shapes), vectorised.

        Returns ``distance_to_bs``, ``distance_to_user``, ``bs_gain`` (beamforming gain, per mW),
        ``user_gain`` (per mW), ``out_of_area``, ``outside_near_field``, ``feasible``.
        """
        x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        z = self.altitude_m
        distance = np.sqrt(x * x + y * y + z * z)
        if self.beamformer == "author_code":
            gain = np.empty_like(distance)
            flat_x, flat_y, flat_r, flat_gain = x.ravel(), y.ravel(), distance.ravel(), gain.reshape(-1)
            for start in range(0, flat_x.size, 8192):  # bounded memory: chunk x N phases at a time
                part = slice(start, start + 8192)
                positions = np.stack([flat_x[part], flat_y[part], np.full(flat_x[part].shape, z)], axis=-1)
                phases = self.wavenumber * physics.element_distances(positions, self.elements_y)
                flat_gain[part] = physics.author_code_gain(flat_r[part], phases, self.bs_reference_gain)
        else:
            gain = physics.coherent_gain(distance, self.n_elements, self.bs_reference_gain, self.beamformer)
        ux, uy, uz = self.user_position
        distance_to_user = np.sqrt((x - ux) ** 2 + (y - uy) ** 2 + (z - uz) ** 2)
        user_gain = physics.user_channel_gain(
            distance_to_user, self.user_reference_gain, self.path_loss_exponent
        )
        out_of_area = self._out_of_area(x, y)
        outside = distance > self.near_field_radius
        return {
            "distance_to_bs": distance,
            "distance_to_user": distance_to_user,
            "bs_gain": np.asarray(gain),
            "user_gain": np.asarray(user_gain),
            "out_of_area": out_of_area,
            "outside_near_field": outside,
            "feasible": ~(out_of_area | outside),
        }

    def _out_of_area(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        size = self.area_size_m
        if self.strict_area_boundary:
            return ~((x > 0.0) & (x < size) & (y > 0.0) & (y < size))
        return ~((x >= 0.0) & (x <= size) & (y >= 0.0) & (y <= size))


def _point(name: str, value: Any, size: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be {size} numbers") from None
    if len(values) != size or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{name}={value!r} must be {size} finite numbers")
    return values


def _space_bounds(config: UAVNearFieldConfig) -> tuple[np.ndarray, np.ndarray]:
    """Honest float32 observation bounds: every reachable observation lies inside them."""
    size = config.area_size_m
    reach = 0.0 if config.clip_to_area else config.max_move_m * config.horizon
    low_xy, high_xy = -reach, size + reach
    z = config.altitude_m
    r1, r2 = config.max_rate_bs_uav, config.max_rate_uav_user
    n = config.n_elements
    if config.obs_mode == "normalized":
        low = np.concatenate([[low_xy / size] * 2, [z / size], -np.ones(2 * n), [0.0, 0.0, 0.0]])
        high = np.concatenate(
            [[high_xy / size] * 2, [z / size], np.ones(2 * n), [r1 / RATE_SCALE, r2 / RATE_SCALE, 1.0]]
        )
    else:
        amplitude = math.sqrt(config.bs_reference_gain) / z
        low = np.concatenate([[low_xy] * 2, [z], -amplitude * np.ones(n), [0.0, 0.0]])
        high = np.concatenate([[high_xy] * 2, [z], amplitude * np.ones(n), [r1, r2]])
    # Round outwards so that float32 rounding of an observation never leaves the box.
    low32 = np.nextafter(low.astype(np.float32), np.float32(-np.inf))
    high32 = np.nextafter(high.astype(np.float32), np.float32(np.inf))
    return low32, high32


def _action_space(config: UAVNearFieldConfig) -> spaces.Space:
    if config.action_mode == "continuous":
        return spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    if config.action_mode == "discrete":
        levels = config.n_power_levels
        return spaces.MultiDiscrete(np.array([3, 3, levels, levels], dtype=np.int64))
    return spaces.Tuple(
        (spaces.Discrete(len(WAYPOINTS)), spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
    )


def _token_groups(config: UAVNearFieldConfig) -> list[np.ndarray]:
    n = config.n_elements
    index = np.arange(n, dtype=np.int64)
    if config.obs_mode == "normalized":
        elements = np.stack([3 + index, 3 + n + index], axis=1)  # (Re h_i, Im h_i) per element
        state = np.array([[0, 1, 2, 3 + 2 * n, 4 + 2 * n, 5 + 2 * n]], dtype=np.int64)  # x, y, z, R1, R2, t
    else:
        elements = (3 + index)[:, None]  # Re h_i per element (the authors' obs has no imaginary part)
        state = np.array([[0, 1, 2, 3 + n, 4 + n]], dtype=np.int64)  # x, y, z, R1, R2
    return [elements, state]


def _geometry_matrix(config: UAVNearFieldConfig, copies: int) -> np.ndarray:
    """Rows (k^2 e_i^2, -2 k^2 e_i, k^2, k^2): times (1, y, y^2, x^2 + z^2) gives (k r_i)^2. Shape [copies N, 4]."""
    k2 = config.wavenumber**2
    e = np.tile(config.elements_y, copies)
    return np.ascontiguousarray(
        np.stack([k2 * e * e, -2.0 * k2 * e, np.full_like(e, k2), np.full_like(e, k2)], axis=1)
    )


def _bad_action(action: Any, space: spaces.Space, detail: str) -> ConfigError:
    return ConfigError(f"action {action!r} is not in the action space {space}: {detail}")


# --------------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------------


def _check_reset_options(options: Mapping[str, Any]) -> None:
    """``reset`` accepts only ``uav_position``; anything else is a typo the user should hear about."""
    unknown = sorted(set(options) - {"uav_position"})
    if unknown:
        raise ConfigError(f"unknown reset option(s) {', '.join(unknown)}; valid options: uav_position")


class UAVNearFieldEnv(gym.Env):
    """A UAV relays data from a large-array base station to a distant ground user (near-field / far-field).

    ## Description

    The case study of Sun et al., "Generative AI for Deep Reinforcement Learning: Framework, Analysis,
    and Use Cases" (arXiv 2405.20568). A base station (BS) with a 50-element uniform linear array at the
    origin (80 GHz, half-wavelength spacing) serves a ground user at (150, 200, 0) m through a
    decode-and-forward UAV relay flying at 6 m. The UAV is in the BS's near field (spherical-wave channel
    ``h_i = sqrt(rho)/r * exp(-j k r_i)``, maximum-ratio beamforming) and the user is in the UAV's far field
    (free-space line of sight). Each of the 100 slots the agent moves the UAV (at most 5 m per axis) and
    sets the BS and UAV transmit powers. Rates: ``R1 = log2(1 + P_BS * gain / sigma^2)`` (BS->UAV),
    ``R2 = log2(1 + P_UAV * alpha / (d_u^2 + 1e-6) / sigma^2)`` (UAV->user), relay rate
    ``R_DF = min(R1, R2)``. The UAV must stay inside the 300 m x 300 m service area and within 133.33 m of
    the BS. That radius, ``2 D^2 / lambda`` with ``D = 0.5 m``, is the authors' modelling constant: the
    true Rayleigh distance of a 50-element half-wavelength array (9.4 cm wide) is only about 4.5 m.

    ## Action Space

    ``action_mode="continuous"`` (default): ``Box(-1, 1, (4,), float32)`` with ``dx = 5 * a0``,
    ``dy = 5 * a1``, ``P_BS = 500 * (a2 + 1)`` mW, ``P_UAV = 500 * (a3 + 1)`` mW.
    ``"discrete"``: ``MultiDiscrete([3, 3, L, L])``: ``dx, dy`` in {-5, 0, +5} m (index 0, 1, 2) and L
    power levels each, evenly spaced over [0, 1000] mW (``n_power_levels``, default 5).
    ``"hybrid"``: ``Tuple(Discrete(9), Box(-1, 1, (2,), float32))``: a way-point (0 hover, 1 N, 2 NE, 3 E,
    4 SE, 5 S, 6 SW, 7 W, 8 NW; N is +y, each moving axis moves 5 m) and the two powers as in continuous.
    An action outside the space raises :class:`~autogai.core.errors.ConfigError` (continuous values may
    exceed [-1, 1] by 1e-6 of rounding). Positions are floats; leaving the area is allowed and flagged.

    ## Observation Space

    ``obs_mode="normalized"`` (default), float32, 2N + 6 = 106 values:
    ``[x/300, y/300, z/300, Re(h_i) r/sqrt(rho) (N values), Im(h_i) r/sqrt(rho) (N values), R1/20, R2/20,
    t/100]`` where the channel values are ``cos(k r_i)`` and ``-sin(k r_i)``. ``obs_mode="author"``: the
    authors' 55 values ``[x, y, z, Re(h_i) (raw, ~1e-5), R1, R2]``. Rates are 0 in the observation
    returned by ``reset`` (no powers chosen yet). Bounds are declared honestly (reachable positions
    after ``horizon`` moves, the largest possible rates). :meth:`observation_token_groups` gives the token
    layout for Transformer backbones.

    ## Rewards

    The step reward is the task fitness of the slot (the utility):
    ``10 * R_DF * feasible - 0.005 * (P_BS + P_UAV)`` with powers in mW, ``feasible`` = inside the area and
    inside the near-field radius. Reward programs replace it through
    :class:`autogai.rewards.RewardWrapper`; the paper's reward is the task card's baseline program. Every
    step's ``info`` holds the metrics: ``x, y, z`` (m), ``t`` (slot), ``distance_to_bs``,
    ``distance_to_user`` (m), ``rate_bs_uav`` (R1), ``rate_uav_user`` (R2), ``rate_df``, ``power_bs_mw``,
    ``power_uav_mw``, ``power_total_mw``, ``out_of_area``, ``outside_near_field``, ``relay_violation``
    (R1 <= R2, the paper's constraint), ``move_m`` (distance flown), ``feasible``, ``fitness``.

    ## Starting State

    The UAV starts at (1, 1, 6) (``start_position``; the authors' (1, 0) is on the area boundary).
    ``reset(options={"uav_position": (x, y)})`` places it anywhere in the area; ``random_start=True``
    draws the start uniformly from the feasible region with the env's seeded RNG.

    ## Episode End

    No termination. The step completing ``horizon`` (100) slots returns ``truncated=True``; stepping again
    needs ``reset``.

    ## Arguments

    Every field of :class:`UAVNearFieldConfig` is a keyword argument, e.g.
    ``gymnasium.make("autogai/UAVNearField-v0", action_mode="hybrid", beamformer="unit_modulus")``.
    Besides the modes and physical constants (all configurable): ``n_power_levels``, ``random_start``,
    ``clip_to_area``, and the authors' quirks ``integer_positions``, ``strict_area_boundary``,
    ``start_position=(1, 0)``, ``beamformer="author_code"``, ``obs_mode="author"`` (all at once:
    ``**AUTHOR_SETTINGS``). An unknown argument or an invalid value raises
    :class:`~autogai.core.errors.ConfigError` naming the valid values.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self, config: UAVNearFieldConfig | None = None, *, render_mode: str | None = None, **kwargs: Any
    ) -> None:
        if render_mode is not None:
            raise ConfigError(f"render_mode={render_mode!r} is not valid; UAVNearFieldEnv does not render")
        if config is not None and kwargs:
            config = config.replace(**kwargs)
        self.config = config if config is not None else UAVNearFieldConfig.from_kwargs(**kwargs)
        self.render_mode = None
        cfg = self.config
        self.action_space = _action_space(cfg)
        low, high = _space_bounds(cfg)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

        # Constants of the hot path, read once (attribute lookups on the config cost more than the maths).
        self._normalized = cfg.obs_mode == "normalized"
        self._n = cfg.n_elements
        self._horizon = cfg.horizon
        self._z = cfg.altitude_m
        self._z2 = cfg.altitude_m**2
        self._area = cfg.area_size_m
        self._k = cfg.wavenumber
        self._elements_y = np.array(cfg.elements_y)
        self._sqrt_rho = math.sqrt(cfg.bs_reference_gain)
        self._coherent_gain = (
            cfg.n_elements * cfg.bs_reference_gain
            if cfg.beamformer == "unit_norm"
            else cfg.n_elements**2 * cfg.bs_reference_gain
        )
        self._author_gain = cfg.beamformer == "author_code"
        self._alpha = cfg.user_reference_gain
        self._rho = cfg.bs_reference_gain
        self._user_x, self._user_y = cfg.user_position[0], cfg.user_position[1]
        self._user_dz2 = (cfg.altitude_m - cfg.user_position[2]) ** 2
        self._obs_rate_scale = 1.0 / RATE_SCALE if self._normalized else 1.0
        self._exponent = cfg.path_loss_exponent
        self._noise = cfg.noise_mw
        self._user = cfg.user_position
        self._radius = cfg.near_field_radius
        self._strict = cfg.strict_area_boundary
        self._clip = cfg.clip_to_area
        self._integer = cfg.integer_positions
        self._move = cfg.max_move_m
        self._half_bs = cfg.max_power_bs_mw / 2.0
        self._half_uav = cfg.max_power_uav_mw / 2.0
        self._levels_bs = cfg.power_levels_bs
        self._levels_uav = cfg.power_levels_uav
        self._n_levels = cfg.n_power_levels
        self._rate_weight = cfg.rate_weight
        self._power_weight = cfg.power_weight
        self._decode = {
            "continuous": self._decode_continuous,
            "discrete": self._decode_discrete,
            "hybrid": self._decode_hybrid,
        }[cfg.action_mode]

        # Scratch buffers. numpy's per-call overhead dominates for 50 elements, so the channel takes few
        # calls: (k r_i)^2 = k^2 e_i^2 - 2 k^2 e_i y + k^2 y^2 + k^2 (x^2 + z^2) is one matrix-vector product
        # with the basis (1, y, y^2, x^2 + z^2), and the normalized observation gets cos(k r_i) and
        # -sin(k r_i) = cos(k r_i + pi/2) from one cos over a doubled element list. The observation is
        # assembled in float64 and cast (which is also the copy handed out) at the end of each step.
        n = self._n
        copies = 2 if self._normalized else 1
        self._geometry = _geometry_matrix(cfg, copies)  # [copies * N, 4]
        self._basis = np.ones(4)
        self._offsets = np.concatenate([np.zeros(n), np.full(n, math.pi / 2)])[: copies * n]
        self._phases = np.empty(copies * n)  # k r_i (repeated)
        self._scratch = np.empty(copies * n)
        self._obs = np.zeros(cfg.observation_size)
        self._obs_channel = self._obs[3 : 3 + copies * n]
        self._index_r1 = 3 + 2 * n if self._normalized else 3 + n

        self._x = math.nan
        self._y = math.nan
        self._t = -1  # -1: reset() has not been called

    # Gymnasium API -------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        position = None
        if options:
            _check_reset_options(options)
            if options.get("uav_position") is not None:
                position = _point("uav_position", options["uav_position"], 2)
                if not self.config.contains_position(*position):
                    raise ConfigError(
                        f"uav_position={options['uav_position']!r} must lie inside the area "
                        f"[0, {self._area:g}]^2"
                    )
        if position is None and self.config.random_start:
            drawn = _sample_starts(self.config, self.np_random, 1)[0]
            position = (float(drawn[0]), float(drawn[1]))
        if position is None:
            position = self.config.start_position
        x, y = position
        if self._integer:
            x, y = float(math.trunc(x)), float(math.trunc(y))
        self._x, self._y, self._t = x, y, 0
        r = self._write_channel(x, y)
        obs = self._obs
        obs[self._index_r1] = 0.0
        obs[self._index_r1 + 1] = 0.0
        if self._normalized:
            obs[self._index_r1 + 2] = 0.0
        ux, uy, uz = self._user
        out_of_area, outside = self._violations(x, y, r)
        info = {
            "x": x,
            "y": y,
            "z": self._z,
            "t": 0,
            "distance_to_bs": r,
            "distance_to_user": math.sqrt((x - ux) ** 2 + (y - uy) ** 2 + (self._z - uz) ** 2),
            "out_of_area": out_of_area,
            "outside_near_field": outside,
            "feasible": not (out_of_area or outside),
        }
        return obs.astype(np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        t = self._t
        if t < 0 or t >= self._horizon:
            raise gym.error.ResetNeeded(
                "call reset() before step()" if t < 0 else f"the episode ended after {t} slots; call reset()"
            )
        dx, dy, p_bs, p_uav = self._decode(action)
        x0, y0 = self._x, self._y
        x, y = x0 + dx, y0 + dy
        if self._clip:
            area = self._area
            x = 0.0 if x < 0.0 else (area if x > area else x)
            y = 0.0 if y < 0.0 else (area if y > area else y)
        if self._integer:
            x, y = float(math.trunc(x)), float(math.trunc(y))
        t += 1
        self._x = x
        self._y = y
        self._t = t

        r = self._write_channel(x, y)
        if self._author_gain:
            twice = 2.0 * self._phases[: self._n]
            real = float(np.cos(twice).sum())
            imag = float(np.sin(twice).sum())
            gain = self._rho * (real * real + imag * imag) / (r * r)
        else:
            gain = self._coherent_gain / (r * r)
        rate_1 = math.log2(1.0 + p_bs * gain / self._noise)
        du_x, du_y = x - self._user_x, y - self._user_y
        distance_to_user = math.sqrt(du_x * du_x + du_y * du_y + self._user_dz2)
        if self._exponent == 2.0:
            user_gain = self._alpha / (distance_to_user * distance_to_user + physics.DISTANCE_EPSILON_M2)
        else:
            user_gain = self._alpha / (distance_to_user**self._exponent + physics.DISTANCE_EPSILON_M2)
        rate_2 = math.log2(1.0 + p_uav * user_gain / self._noise)
        rate_df = rate_1 if rate_1 < rate_2 else rate_2
        area = self._area
        if self._strict:
            out_of_area = not (0.0 < x < area and 0.0 < y < area)
        else:
            out_of_area = not (0.0 <= x <= area and 0.0 <= y <= area)
        outside = r > self._radius
        feasible = not (out_of_area or outside)
        power_total = p_bs + p_uav
        fitness = (self._rate_weight * rate_df if feasible else 0.0) - self._power_weight * power_total

        obs = self._obs
        index = self._index_r1
        scale = self._obs_rate_scale
        obs[index] = rate_1 * scale
        obs[index + 1] = rate_2 * scale
        if self._normalized:
            obs[index + 2] = t / self._horizon
        info = {
            "x": x,
            "y": y,
            "z": self._z,
            "t": t,
            "distance_to_bs": r,
            "distance_to_user": distance_to_user,
            "rate_bs_uav": rate_1,
            "rate_uav_user": rate_2,
            "rate_df": rate_df,
            "power_bs_mw": p_bs,
            "power_uav_mw": p_uav,
            "power_total_mw": power_total,
            "out_of_area": out_of_area,
            "outside_near_field": outside,
            "relay_violation": rate_1 <= rate_2,
            "move_m": math.hypot(x - x0, y - y0),
            "feasible": feasible,
            "fitness": fitness,
        }
        return obs.astype(np.float32), fitness, False, t >= self._horizon, info

    def action_codebook(self) -> np.ndarray | None:
        """Where each hybrid way-point index sits in the agent's [-1, 1]^2 coordinates, or None.

        Row i is (sign of dx, sign of dy) of way-point i, so an action adapter that quantises continuous
        coordinates to the nearest row picks the move those coordinates point at (index 0 is hover).
        Only the hybrid mode has a Discrete part; discrete mode's MultiDiscrete levels are already ordered.
        """
        if self.config.action_mode != "hybrid":
            return None
        return np.asarray(WAYPOINTS, dtype=np.float32)

    def observation_token_groups(self) -> list[np.ndarray]:
        """Token layout for Transformer backbones: int arrays [n_tokens, token_dim] indexing the observation.

        Normalized: one token (Re h_i, Im h_i) per antenna element and one token (x, y, z, R1, R2, t).
        Author: one token (Re h_i) per element and one token (x, y, z, R1, R2).
        """
        return _token_groups(self.config)

    @property
    def uav_position(self) -> tuple[float, float, float]:
        """Current (x, y, z) of the UAV in m."""
        return self._x, self._y, self._z

    @property
    def slot(self) -> int:
        """Slots completed in this episode (0 after reset, ``horizon`` at the end; -1 before reset)."""
        return self._t

    # Internals -----------------------------------------------------------------------------------------

    def _write_channel(self, x: float, y: float) -> float:
        """Fill the position and channel part of the observation for a UAV at (x, y); return r.

        Leaves k r_i in ``_phases[:N]``.
        """
        basis = self._basis
        basis[1] = y
        basis[2] = y * y
        basis[3] = x * x + self._z2
        phases = self._phases
        np.dot(self._geometry, basis, out=phases)  # (k r_i)^2
        np.sqrt(phases, out=phases)  # k r_i
        r = math.sqrt(x * x + y * y + self._z2)
        obs = self._obs
        if self._normalized:
            # Re(h_i) r / sqrt(rho) = cos(k r_i) and Im(h_i) r / sqrt(rho) = -sin(k r_i) = cos(k r_i + pi/2).
            np.add(phases, self._offsets, out=self._scratch)
            np.cos(self._scratch, out=self._obs_channel)
            area = self._area
            obs[0] = x / area
            obs[1] = y / area
            obs[2] = self._z / area
        else:
            np.cos(phases, out=self._scratch)
            np.multiply(self._scratch, self._sqrt_rho / r, out=self._obs_channel)  # Re(h_i), raw
            obs[0] = x
            obs[1] = y
            obs[2] = self._z
        return r

    def _violations(self, x: float, y: float, r: float) -> tuple[bool, bool]:
        area = self._area
        if self._strict:
            inside = 0.0 < x < area and 0.0 < y < area
        else:
            inside = 0.0 <= x <= area and 0.0 <= y <= area
        return not inside, r > self._radius

    def _decode_continuous(self, action: Any) -> tuple[float, float, float, float]:
        if type(action) is not np.ndarray:
            try:
                action = np.asarray(action, dtype=np.float64)
            except (TypeError, ValueError):
                raise _bad_action(action, self.action_space, "expected 4 numbers") from None
        if action.shape != (4,) or action.dtype.kind not in "fiu":
            raise _bad_action(action, self.action_space, f"expected shape (4,), got {action.shape}")
        a0, a1, a2, a3 = action.tolist()
        low, high = -1.0 - _ACTION_TOLERANCE, 1.0 + _ACTION_TOLERANCE
        if not (low <= a0 <= high and low <= a1 <= high and low <= a2 <= high and low <= a3 <= high):
            raise _bad_action(action, self.action_space, "every value must lie in [-1, 1]")
        move = self._move
        return (
            move * (-1.0 if a0 < -1.0 else (1.0 if a0 > 1.0 else a0)),
            move * (-1.0 if a1 < -1.0 else (1.0 if a1 > 1.0 else a1)),
            self._half_bs * ((-1.0 if a2 < -1.0 else (1.0 if a2 > 1.0 else a2)) + 1.0),
            self._half_uav * ((-1.0 if a3 < -1.0 else (1.0 if a3 > 1.0 else a3)) + 1.0),
        )

    def _decode_discrete(self, action: Any) -> tuple[float, float, float, float]:
        if type(action) is not np.ndarray:
            try:
                action = np.asarray(action)
            except (TypeError, ValueError):
                raise _bad_action(action, self.action_space, "expected 4 integers") from None
        if action.shape != (4,) or action.dtype.kind not in "iuf":
            raise _bad_action(action, self.action_space, f"expected 4 integers, got shape {action.shape}")
        a0, a1, a2, a3 = action.tolist()
        levels = self._n_levels
        if not (
            a0 in (0, 1, 2)
            and a1 in (0, 1, 2)
            and a2 == int(a2)
            and a3 == int(a3)
            and 0 <= a2 < levels
            and 0 <= a3 < levels
        ):
            raise _bad_action(
                action,
                self.action_space,
                f"moves must be 0, 1 or 2 and power levels integers in [0, {levels - 1}]",
            )
        move = self._move
        return (
            move * (a0 - 1),
            move * (a1 - 1),
            self._levels_bs[int(a2)],
            self._levels_uav[int(a3)],
        )

    def _decode_hybrid(self, action: Any) -> tuple[float, float, float, float]:
        try:
            waypoint, powers = action
            waypoint = operator.index(waypoint)
        except (TypeError, ValueError):
            raise _bad_action(
                action, self.action_space, "expected (way-point index 0-8, two powers in [-1, 1])"
            ) from None
        if not 0 <= waypoint < len(WAYPOINTS):
            raise _bad_action(action, self.action_space, f"way-point must be 0-{len(WAYPOINTS) - 1}")
        if type(powers) is not np.ndarray:
            try:
                powers = np.asarray(powers, dtype=np.float64)
            except (TypeError, ValueError):
                raise _bad_action(action, self.action_space, "powers must be 2 numbers") from None
        if powers.shape != (2,) or powers.dtype.kind not in "fiu":
            raise _bad_action(action, self.action_space, f"powers must have shape (2,), got {powers.shape}")
        a2, a3 = powers.tolist()
        low, high = -1.0 - _ACTION_TOLERANCE, 1.0 + _ACTION_TOLERANCE
        if not (low <= a2 <= high and low <= a3 <= high):
            raise _bad_action(action, self.action_space, "powers must lie in [-1, 1]")
        sign_x, sign_y = WAYPOINTS[waypoint]
        return (
            self._move * sign_x,
            self._move * sign_y,
            self._half_bs * ((-1.0 if a2 < -1.0 else (1.0 if a2 > 1.0 else a2)) + 1.0),
            self._half_uav * ((-1.0 if a3 < -1.0 else (1.0 if a3 > 1.0 else a3)) + 1.0),
        )


def _sample_starts(config: UAVNearFieldConfig, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` uniform starts in the feasible region (area and near-field radius), shape [count, 2]."""
    horizontal = math.sqrt(max(config.near_field_radius**2 - config.altitude_m**2, 0.0))
    extent = min(config.area_size_m, horizontal)
    if extent <= 0.0:
        raise ConfigError("random_start=True but the feasible region is empty (check near_field_radius_m)")
    accepted: list[np.ndarray] = []
    total = 0
    for _ in range(1000):  # rejection sampling from the square [0, extent]^2
        points = rng.uniform(0.0, extent, size=(max(2 * count, 8), 2))
        if config.integer_positions:
            points = np.trunc(points)
        feasible = config.slot_physics(points[:, 0], points[:, 1])["feasible"]
        accepted.append(points[feasible])
        total += int(feasible.sum())
        if total >= count:
            return np.concatenate(accepted)[:count]
    raise ConfigError("random_start=True could not find a feasible start (the feasible region is too small)")


# --------------------------------------------------------------------------------------------------
# Batched rollouts
# --------------------------------------------------------------------------------------------------


class UAVNearFieldBatch:
    """Many independent UAVs of the same configuration stepped at once with numpy.

    The same physics, action decoding, metrics and observations as :class:`UAVNearFieldEnv`, for
    evaluation rollouts and benchmarks. All UAVs share the clock: the step completing the horizon returns
    ``truncated`` all True and the batch must be ``reset`` before stepping again.

    Actions: continuous and discrete ``[B, 4]``; hybrid a pair ``(waypoints [B], powers [B, 2])``.
    ``step`` returns ``(obs [B, D] float32, reward [B], terminated [B], truncated [B], info)`` with
    ``info`` a dict of ``[B]`` arrays under the names of :data:`METRIC_NAMES`.
    """

    def __init__(self, n_envs: int, config: UAVNearFieldConfig | None = None, **kwargs: Any) -> None:
        check_positive_int("n_envs", n_envs)
        if config is not None and kwargs:
            config = config.replace(**kwargs)
        self.config = config if config is not None else UAVNearFieldConfig.from_kwargs(**kwargs)
        self.n_envs = n_envs
        self.single_action_space = _action_space(self.config)
        low, high = _space_bounds(self.config)
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        copies = 2 if self.config.obs_mode == "normalized" else 1
        self._k_elements = np.tile(self.config.wavenumber * self.config.elements_y, copies)
        n = self.config.n_elements
        self._offsets = np.concatenate([np.zeros(n), np.full(n, math.pi / 2)])[: copies * n]
        self._rng = np.random.default_rng()
        self._x = np.full(n_envs, np.nan)
        self._y = np.full(n_envs, np.nan)
        self._t = -1

    def observation_token_groups(self) -> list[np.ndarray]:
        return _token_groups(self.config)

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start all UAVs; ``options={"uav_position": [B, 2] or (x, y)}`` places them."""
        cfg = self.config
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        positions = None
        if options:
            _check_reset_options(options)
            if options.get("uav_position") is not None:
                positions = np.broadcast_to(
                    np.asarray(options["uav_position"], dtype=np.float64), (self.n_envs, 2)
                ).copy()
                if not (
                    np.isfinite(positions).all()
                    and (positions >= 0).all()
                    and (positions <= cfg.area_size_m).all()
                ):
                    raise ConfigError(f"uav_position must lie inside the area [0, {cfg.area_size_m:g}]^2")
        if positions is None and cfg.random_start:
            positions = _sample_starts(cfg, self._rng, self.n_envs)
        if positions is None:
            positions = np.broadcast_to(np.asarray(cfg.start_position), (self.n_envs, 2)).copy()
        if cfg.integer_positions:
            positions = np.trunc(positions)
        self._x, self._y, self._t = positions[:, 0].copy(), positions[:, 1].copy(), 0
        zeros = np.zeros(self.n_envs)
        obs, metrics = self._transition(self._x, self._y, zeros, zeros, zeros, at_reset=True)
        info = {
            name: metrics[name]
            for name in (
                "x",
                "y",
                "z",
                "t",
                "distance_to_bs",
                "distance_to_user",
                "out_of_area",
                "outside_near_field",
                "feasible",
            )
        }
        return obs, info

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        cfg = self.config
        if self._t < 0 or self._t >= cfg.horizon:
            raise gym.error.ResetNeeded(
                "call reset() before step()" if self._t < 0 else "the episode ended; call reset()"
            )
        dx, dy, p_bs, p_uav = self._decode(actions)
        x0, y0 = self._x, self._y
        x, y = x0 + dx, y0 + dy
        if cfg.clip_to_area:
            np.clip(x, 0.0, cfg.area_size_m, out=x)
            np.clip(y, 0.0, cfg.area_size_m, out=y)
        if cfg.integer_positions:
            x, y = np.trunc(x), np.trunc(y)
        self._t += 1
        self._x, self._y = x, y
        move = np.sqrt((x - x0) ** 2 + (y - y0) ** 2)
        obs, metrics = self._transition(x, y, p_bs, p_uav, move, at_reset=False)
        reward = metrics["fitness"]
        terminated = np.zeros(self.n_envs, dtype=bool)
        truncated = np.full(self.n_envs, self._t >= cfg.horizon)
        return obs, reward, terminated, truncated, metrics

    def _transition(
        self,
        x: np.ndarray,
        y: np.ndarray,
        p_bs: np.ndarray,
        p_uav: np.ndarray,
        move: np.ndarray,
        *,
        at_reset: bool,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        cfg = self.config
        n, z = cfg.n_elements, cfg.altitude_m
        count = x.shape[0]
        obs = np.empty((count, cfg.observation_size), dtype=np.float32)
        # Channel of every UAV to every element, as in UAVNearFieldEnv._write_channel: [B, copies N] k r_i.
        # Elementwise rather than a matrix product: BLAS threads stall when the cores are busy.
        k = cfg.wavenumber
        phases = np.subtract((k * y)[:, None], self._k_elements)  # k (y - e_i)
        np.square(phases, out=phases)
        phases += (k * k * (x * x + z * z))[:, None]  # (k r_i)^2
        np.sqrt(phases, out=phases)
        r = np.sqrt(x * x + y * y + z * z)
        if cfg.beamformer == "author_code":
            gain = physics.author_code_gain(r, phases[:, :n], cfg.bs_reference_gain)
        else:
            gain = physics.coherent_gain(r, n, cfg.bs_reference_gain, cfg.beamformer)
        # float64 cos is scalar libm (~35 ns per value); reducing the phases to [-pi, pi] in float64 and
        # taking the SIMD float32 cos is ~20x faster and accurate to ~3e-7, below the float32 observation's
        # own resolution near 1. (The single env uses float64 cos; both agree to 1e-6.)
        phases += self._offsets
        turns = np.multiply(phases, 1.0 / (2.0 * math.pi))
        np.rint(turns, out=turns)
        turns *= 2.0 * math.pi
        phases -= turns
        reduced = phases.astype(np.float32)
        if cfg.obs_mode == "normalized":
            np.cos(reduced, out=obs[:, 3 : 3 + 2 * n])  # cos(k r_i), then -sin(k r_i) = cos(k r_i + pi/2)
            obs[:, 0] = x / cfg.area_size_m
            obs[:, 1] = y / cfg.area_size_m
            obs[:, 2] = z / cfg.area_size_m
        else:
            obs[:, 3 : 3 + n] = np.cos(reduced) * (math.sqrt(cfg.bs_reference_gain) / r)[:, None]
            obs[:, 0] = x
            obs[:, 1] = y
            obs[:, 2] = z
        rate_1 = physics.rate_bs_uav(p_bs, gain, cfg.noise_mw)
        ux, uy, uz = cfg.user_position
        distance_to_user = np.sqrt((x - ux) ** 2 + (y - uy) ** 2 + (z - uz) ** 2)
        user_gain = physics.user_channel_gain(
            distance_to_user, cfg.user_reference_gain, cfg.path_loss_exponent
        )
        rate_2 = physics.rate_uav_user(p_uav, user_gain, cfg.noise_mw)
        rate_df = physics.rate_decode_and_forward(rate_1, rate_2)
        out_of_area = cfg._out_of_area(x, y)
        outside = r > cfg.near_field_radius
        feasible = ~(out_of_area | outside)
        fitness = physics.utility(rate_df, feasible, p_bs, p_uav, cfg.rate_weight, cfg.power_weight)
        index = 3 + 2 * n if cfg.obs_mode == "normalized" else 3 + n
        scale = RATE_SCALE if cfg.obs_mode == "normalized" else 1.0
        obs[:, index] = 0.0 if at_reset else rate_1 / scale
        obs[:, index + 1] = 0.0 if at_reset else rate_2 / scale
        if cfg.obs_mode == "normalized":
            obs[:, index + 2] = self._t / cfg.horizon
        metrics = {
            "x": x.copy(),
            "y": y.copy(),
            "z": np.full(count, z),
            "t": np.full(count, self._t, dtype=np.int64),
            "distance_to_bs": r,
            "distance_to_user": distance_to_user,
            "rate_bs_uav": rate_1,
            "rate_uav_user": rate_2,
            "rate_df": rate_df,
            "power_bs_mw": p_bs,
            "power_uav_mw": p_uav,
            "power_total_mw": p_bs + p_uav,
            "out_of_area": out_of_area,
            "outside_near_field": outside,
            "relay_violation": rate_1 <= rate_2,
            "move_m": move,
            "feasible": feasible,
            "fitness": fitness,
        }
        return obs, metrics

    def _decode(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.config
        count = self.n_envs
        space = self.single_action_space
        move = cfg.max_move_m
        if cfg.action_mode == "hybrid":
            try:
                waypoints, powers = actions
                waypoints = np.asarray(waypoints)
                powers = np.asarray(powers, dtype=np.float64)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"hybrid batch actions must be (waypoints [{count}], powers [{count}, 2]) for {space}"
                ) from None
            if waypoints.shape != (count,) or waypoints.dtype.kind not in "iu" or powers.shape != (count, 2):
                raise ConfigError(
                    f"hybrid batch actions must be (waypoints [{count}] ints, powers [{count}, 2]); "
                    f"got shapes {waypoints.shape} and {powers.shape}"
                )
            if not ((waypoints >= 0).all() and (waypoints < len(WAYPOINTS)).all()):
                raise ConfigError(f"hybrid way-points must be integers 0-{len(WAYPOINTS) - 1}")
            steps = np.asarray(WAYPOINTS, dtype=np.float64)[waypoints]
            return (
                move * steps[:, 0],
                move * steps[:, 1],
                *self._continuous_powers(powers[:, 0], powers[:, 1]),
            )
        try:
            actions = np.asarray(actions)
        except (TypeError, ValueError):
            raise ConfigError(f"batch actions must be an array of shape [{count}, 4] for {space}") from None
        if actions.shape != (count, 4) or actions.dtype.kind not in "iuf":
            raise ConfigError(f"batch actions must have shape [{count}, 4] for {space}, got {actions.shape}")
        if cfg.action_mode == "continuous":
            actions = actions.astype(np.float64, copy=False)
            if not (np.abs(actions).max() <= 1.0 + _ACTION_TOLERANCE):
                raise ConfigError(f"continuous batch actions must lie in [-1, 1] ({space})")
            clipped = np.clip(actions, -1.0, 1.0)
            return (
                move * clipped[:, 0],
                move * clipped[:, 1],
                *self._continuous_powers(clipped[:, 2], clipped[:, 3]),
            )
        levels = cfg.n_power_levels
        if not (
            (actions == np.round(actions)).all()
            and (actions >= 0).all()
            and (actions[:, :2] <= 2).all()
            and (actions[:, 2:] < levels).all()
        ):
            raise ConfigError(
                f"discrete batch actions: moves must be 0, 1 or 2 and power levels integers in [0, {levels - 1}]"
            )
        index = actions.astype(np.int64)
        return (
            move * (index[:, 0] - 1.0),
            move * (index[:, 1] - 1.0),
            np.asarray(cfg.power_levels_bs)[index[:, 2]],
            np.asarray(cfg.power_levels_uav)[index[:, 3]],
        )

    def _continuous_powers(self, a_bs: np.ndarray, a_uav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not (
            np.abs(a_bs).max() <= 1.0 + _ACTION_TOLERANCE and np.abs(a_uav).max() <= 1.0 + _ACTION_TOLERANCE
        ):
            raise ConfigError("powers must lie in [-1, 1]")
        cfg = self.config
        return (
            cfg.max_power_bs_mw / 2.0 * (np.clip(a_bs, -1.0, 1.0) + 1.0),
            cfg.max_power_uav_mw / 2.0 * (np.clip(a_uav, -1.0, 1.0) + 1.0),
        )


# --------------------------------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------------------------------


def _hover_values(config: UAVNearFieldConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Best slot utility at (x, y) with utility-maximising continuous powers."""
    slot = config.slot_physics(x, y)
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


@functools.lru_cache(maxsize=32)
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
        # 10 cells per move: every lattice path of the discrete/hybrid modes is on this grid too.
        radius, margin = 10, 10.0
        low = [max(min(start[a], hover[a]) - margin, 0.0) for a in (0, 1)]
        high = [min(max(start[a], hover[a]) + margin, size) for a in (0, 1)]
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
    slot = config.slot_physics(x, y)
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


@functools.lru_cache(maxsize=256)
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
    (:func:`autogai.envs.physics.optimal_relay_powers`) in continuous/hybrid mode, the best of the L x L
    power levels in discrete mode.

    Use: ``action = policy(obs, info)`` with the ``info`` of ``reset``/``step`` (it reads the exact
    position ``info["x"], info["y"]`` and the slot ``info["t"]``; at ``t == 0`` it plans for that start).
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
        new_x, new_y = cfg.next_position(x, y, dx, dy)
        slot = cfg.slot_physics(new_x, new_y)
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


def run_episode(
    env: gym.Env,
    policy: Callable[[Any, Mapping[str, Any]], Any],
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Roll out one episode with ``policy(obs, info) -> action``; return the ``info`` of every step."""
    obs, info = env.reset(seed=seed, options=options)
    infos: list[dict[str, Any]] = []
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs, info))
        infos.append(info)
        if terminated or truncated:
            return infos


def oracle_plan(*, seed: int | None = None, **env_kwargs: Any) -> OraclePlan:
    """The oracle's plan for the configuration given by ``env_kwargs`` and its rolled-out episode fitness.

    ``seed`` matters only with ``random_start=True`` (the start is drawn as ``reset(seed=seed)`` draws it).
    """
    return _oracle_plan(UAVNearFieldConfig.from_kwargs(**env_kwargs), seed)


@functools.lru_cache(maxsize=64)
def _oracle_plan(config: UAVNearFieldConfig, seed: int | None) -> OraclePlan:
    env = UAVNearFieldEnv(config)
    policy = OraclePolicy(config)
    infos = run_episode(env, policy, seed=seed)
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

    The physical reference the learned policies are measured against (docs/uav_env.md "Oracle"): the best
    trajectory (dynamic programming on a 0.5 m grid, then the exact best hover point) with the
    utility-maximising powers every slot; about 42.9 for the default configuration.
    """
    return oracle_plan(seed=seed, **env_kwargs).episode_fitness


# --------------------------------------------------------------------------------------------------
# Reference values (docs/uav_env.md "Sanity values")
# --------------------------------------------------------------------------------------------------

SANITY_TABLE: tuple[tuple[tuple[float, float], dict[str, float], float], ...] = (
    ((1.0, 0.0), {"unit_norm": 13.06, "unit_modulus": 18.70, "author_code": 18.65}, 4.09),
    ((1.0, 1.0), {"unit_norm": 13.02, "unit_modulus": 18.66, "author_code": 6.39}, 4.10),
    ((10.0, 10.0), {"unit_norm": 10.39, "unit_modulus": 16.03, "author_code": 5.09}, 4.24),
    ((50.0, 60.0), {"unit_norm": 5.71, "unit_modulus": 11.33, "author_code": 1.31}, 5.12),
    ((79.8, 106.4), {"unit_norm": 4.23, "unit_modulus": 9.80, "author_code": 0.02}, 6.21),
)
"""Expected (x, y) -> R1 per beamformer and R2 at altitude 6 m with both powers at 1000 mW (docs/uav_env.md)."""


def hover_rates(
    x: float, y: float, *, beamformer: str = "unit_norm", **env_kwargs: Any
) -> tuple[float, float]:
    """(R1, R2) of one full-power hovering step of the environment with the UAV placed at (x, y)."""
    env = UAVNearFieldEnv(beamformer=beamformer, **env_kwargs)
    env.reset(options={"uav_position": (x, y)})
    hover = {
        "continuous": np.array([0.0, 0.0, 1.0, 1.0]),
        "discrete": np.array([1, 1, env.config.n_power_levels - 1, env.config.n_power_levels - 1]),
        "hybrid": (0, np.array([1.0, 1.0])),
    }[env.config.action_mode]
    info = env.step(hover)[4]
    return info["rate_bs_uav"], info["rate_uav_user"]
