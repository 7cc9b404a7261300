"""Every constant and option of the UAV near-field relay task, validated once, with its derived constants.

The task is the case study of Sun et al., "Generative AI for Deep Reinforcement Learning: Framework,
Analysis, and Use Cases" (arXiv 2405.20568); ``docs/uav_env.md`` describes it. This module holds no
physics: the formulas are in :mod:`autogai.envs.uav.physics`, the per-slot transition in
:mod:`autogai.envs.uav.dynamics`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from autogai.core.errors import ConfigError
from autogai.core.validation import check_choice, check_positive_int, check_range
from autogai.envs.uav import physics

ACTION_MODES = ("continuous", "discrete", "hybrid")
OBS_MODES = ("normalized", "author")
SCENARIOS = ("fixed", "random")

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
"""Keys of ``info`` after every step, in this order (the task card describes each)."""

FLAG_METRICS = frozenset({"out_of_area", "outside_near_field", "relay_violation", "feasible"})
"""The metrics that are booleans (the others are floats, except the integer slot ``t``)."""

RESET_METRIC_NAMES = (
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
"""Keys of ``info`` after ``reset``: the metrics that exist before any power is chosen."""

RATE_SCALE = 20.0
"""Rates are divided by this in the normalized observation (R1 at 1 m from the BS is about 13 bit/s/Hz)."""

AUTHOR_SETTINGS: dict[str, Any] = {
    "obs_mode": "author",
    "beamformer": "author_code",
    "integer_positions": True,
    "start_position": (1.0, 0.0),
    "strict_area_boundary": True,
}
"""Kwargs reproducing the authors' environment and its quirks (``docs/uav_env.md``), for comparison only."""


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
    scenario: str = "fixed"
    """``fixed``: the paper's single scenario (``user_position``, ``start_position``). ``random``: every
    episode draws the user's position and the UAV's start from its scenario seed
    (:mod:`autogai.envs.uav.scenario`), and the observation gains the user's (x, y)."""
    rate_weight: float = 10.0
    """Fitness weight of the relay rate (the paper's 10)."""
    power_weight: float = 0.005
    """Fitness weight of the total power in mW (the paper's 0.005)."""

    def __post_init__(self) -> None:
        check_choice("action_mode", self.action_mode, ACTION_MODES)
        check_choice("obs_mode", self.obs_mode, OBS_MODES)
        check_choice("scenario", self.scenario, SCENARIOS)
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
        object.__setattr__(self, "user_position", as_point("user_position", self.user_position, 3))
        object.__setattr__(self, "start_position", as_point("start_position", self.start_position, 2))
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
        """2N + 6 (normalized) or N + 5 (author) values, plus the user's (x, y) with ``scenario="random"``."""
        size = 2 * self.n_elements + 6 if self.obs_mode == "normalized" else self.n_elements + 5
        return size + 2 if self.scenario == "random" else size

    # Geometry ------------------------------------------------------------------------------------------

    def contains_position(self, x: float, y: float) -> bool:
        """Whether (x, y) lies in the closed area [0, area]^2 (where a UAV may be placed)."""
        return 0.0 <= x <= self.area_size_m and 0.0 <= y <= self.area_size_m


def as_point(name: str, value: Any, size: int) -> tuple[float, ...]:
    """``value`` as a tuple of ``size`` finite floats, or a :class:`ConfigError` naming ``name``."""
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be {size} numbers") from None
    if len(values) != size or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{name}={value!r} must be {size} finite numbers")
    return values
