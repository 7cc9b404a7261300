"""Physics of the UAV near-field relay task as pure numpy functions.

Source: the case study of Sun et al., "Generative AI for Deep Reinforcement Learning: Framework,
Analysis, and Use Cases" (arXiv 2405.20568) and the authors' code (``Environment_relay_simple_state.py``);
the numbers are those of ``docs/uav_env.md``. Every function is stateless; array arguments broadcast, so the
same code serves one UAV (shape ``[3]``), a batch of UAVs (``[B, 3]``) or a grid of candidate positions.
Powers are in mW, distances in m, rates in bit/s/Hz.

Channel model. The base station (BS) has a uniform linear array of ``N`` elements on the y-axis, centred
at the origin. For a UAV at ``u`` with ``r = |u|`` and ``r_i = |u - p_i|`` the uniform spherical-wave
(near-field) channel is ``h_i = sqrt(rho) / r * exp(-j k r_i)``: amplitude from the centre distance,
phase from each element's own distance. The UAV reaches a ground user in its far field by free-space
line of sight with path-loss exponent 2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SPEED_OF_LIGHT_M_S = 3.0e8
"""The authors' rounded speed of light (80 GHz -> 3.75 mm exactly); kept so the numbers match theirs."""

BEAMFORMERS = ("unit_norm", "unit_modulus", "author_code")

DISTANCE_EPSILON_M2 = 1e-6
"""Added to the squared UAV-user distance, as in the authors' code, so the rate stays finite."""


def db_to_linear(value_db: float) -> float:
    """10^(dB/10)."""
    return 10.0 ** (value_db / 10.0)


def dbm_to_mw(value_dbm: float) -> float:
    """Power in dBm to mW (0 dBm = 1 mW)."""
    return 10.0 ** (value_dbm / 10.0)


def wavelength_m(carrier_frequency_hz: float, speed_of_light_m_s: float = SPEED_OF_LIGHT_M_S) -> float:
    """Carrier wavelength lambda = c / f."""
    return speed_of_light_m_s / carrier_frequency_hz


def authors_near_field_radius_m(wavelength: float, aperture_m: float = 0.5) -> float:
    """The authors' near-field service radius 2 D^2 / lambda with D = 0.5 m (133.33 m at 80 GHz).

    This is a modelling constant of the authors, not the array's Rayleigh distance: a 50-element
    half-wavelength array is only 50 * 1.875 mm = 9.4 cm wide, so its true Rayleigh distance
    2 D^2 / lambda is about 4.5 m.
    """
    return 2.0 * aperture_m**2 / wavelength


def element_y(n_elements: int, spacing_m: float) -> np.ndarray:
    """y-coordinates of the array elements, ((2i - N - 1) / 2) * d for i = 1..N. Shape [N]."""
    index = np.arange(1, n_elements + 1, dtype=np.float64)
    return (2.0 * index - n_elements - 1.0) / 2.0 * spacing_m


def element_positions(n_elements: int, spacing_m: float) -> np.ndarray:
    """Element positions p_i = (0, y_i, 0) of the ULA along the y-axis. Shape [N, 3]."""
    positions = np.zeros((n_elements, 3))
    positions[:, 1] = element_y(n_elements, spacing_m)
    return positions


def element_distances(positions: np.ndarray, elements_y: np.ndarray) -> np.ndarray:
    """Distances r_i from UAV positions ``[..., 3]`` to every element (elements on the y-axis). Shape [..., N]."""
    positions = np.asarray(positions, dtype=np.float64)
    x = positions[..., 0:1]
    y = positions[..., 1:2]
    z = positions[..., 2:3]
    return np.sqrt(x * x + z * z + (y - elements_y) ** 2)


def centre_distance(positions: np.ndarray) -> np.ndarray:
    """Distance r from UAV positions ``[..., 3]`` to the array centre (the origin). Shape [...]."""
    positions = np.asarray(positions, dtype=np.float64)
    return np.sqrt(np.sum(positions * positions, axis=-1))


def near_field_channel(
    positions: np.ndarray, elements_y: np.ndarray, wavenumber: float, reference_gain: float
) -> np.ndarray:
    """Uniform spherical-wave channel h_i = sqrt(rho) / r * exp(-j k r_i). Complex, shape [..., N]."""
    r = centre_distance(positions)[..., None]
    r_i = element_distances(positions, elements_y)
    return math.sqrt(reference_gain) / r * np.exp(-1j * wavenumber * r_i)


def beamforming_gain(channel: np.ndarray, beamformer: str = "unit_norm") -> np.ndarray:
    """Effective BS->UAV power gain |w^T h|^2 per unit transmit power, from the channel ``[..., N]``.

    - ``unit_norm``: maximum-ratio transmission w = h* / |h| (total power P_BS); gain |h|^2.
    - ``unit_modulus``: w_i = h_i* / |h_i| (each element radiates P_BS); gain (sum_i |h_i|)^2.
    - ``author_code``: the authors' ``w @ h`` with w = h / |h| and no conjugation, which adds the
      phases twice instead of cancelling them; kept only to reproduce their numbers.
    """
    channel = np.asarray(channel)
    magnitude = np.abs(channel)
    if beamformer == "unit_norm":
        return np.sum(magnitude * magnitude, axis=-1)
    if beamformer == "unit_modulus":
        return np.sum(magnitude, axis=-1) ** 2
    if beamformer == "author_code":
        weights = channel / magnitude
        return np.abs(np.sum(weights * channel, axis=-1)) ** 2
    raise ValueError(f"beamformer={beamformer!r} is not valid; choose one of: {', '.join(BEAMFORMERS)}")


def coherent_gain(
    distance: np.ndarray | float, n_elements: int, reference_gain: float, beamformer: str
) -> np.ndarray | float:
    """Closed form of :func:`beamforming_gain` for the coherent beamformers (all |h_i| = sqrt(rho) / r).

    ``unit_norm``: N rho / r^2; ``unit_modulus``: N^2 rho / r^2. ``author_code`` has no closed form (use
    :func:`author_code_gain`).
    """
    if beamformer == "unit_norm":
        return n_elements * reference_gain / (distance * distance)
    if beamformer == "unit_modulus":
        return n_elements * n_elements * reference_gain / (distance * distance)
    raise ValueError(f"no closed form for beamformer={beamformer!r}")


def author_code_gain(
    distance: np.ndarray | float, phases: np.ndarray, reference_gain: float
) -> np.ndarray | float:
    """The authors' gain |sum_i h_i^2 / |h_i||^2 = rho / r^2 * |sum_i exp(-2j k r_i)|^2.

    ``phases`` are k r_i, shape [..., N]; ``distance`` is r, shape [...].
    """
    twice = 2.0 * phases
    real = np.cos(twice).sum(axis=-1)
    imag = np.sin(twice).sum(axis=-1)
    return reference_gain / (distance * distance) * (real * real + imag * imag)


def rate_bs_uav(
    power_bs_mw: np.ndarray | float, gain: np.ndarray | float, noise_mw: float, xp: Any = np
) -> np.ndarray | float:
    """R1 = log2(1 + P_BS * gain / sigma^2), the BS->UAV rate in bit/s/Hz.

    ``xp`` supplies ``log2`` (numpy by default; a namespace of ``math`` functions for Python floats).
    """
    return xp.log2(1.0 + power_bs_mw * gain / noise_mw)


def user_channel_gain(
    distance_to_user: np.ndarray | float, reference_gain: float, path_loss_exponent: float = 2.0
) -> np.ndarray | float:
    """Free-space UAV->user power gain alpha / (d^n + 1e-6) (the authors' epsilon keeps d = 0 finite)."""
    if path_loss_exponent == 2.0:
        return reference_gain / (distance_to_user * distance_to_user + DISTANCE_EPSILON_M2)
    return reference_gain / (distance_to_user**path_loss_exponent + DISTANCE_EPSILON_M2)


def rate_uav_user(
    power_uav_mw: np.ndarray | float, user_gain: np.ndarray | float, noise_mw: float, xp: Any = np
) -> np.ndarray | float:
    """R2 = log2(1 + P_UAV * alpha / (d_u^2 + 1e-6) / sigma^2), the UAV->user rate in bit/s/Hz."""
    return xp.log2(1.0 + power_uav_mw * user_gain / noise_mw)


def rate_decode_and_forward(
    rate_1: np.ndarray | float, rate_2: np.ndarray | float, xp: Any = np
) -> np.ndarray | float:
    """Decode-and-forward relay rate R_DF = min(R1, R2) (``xp`` supplies ``minimum``)."""
    return xp.minimum(rate_1, rate_2)


def utility(
    rate_df: np.ndarray | float,
    feasible: np.ndarray | bool,
    power_bs_mw: np.ndarray | float,
    power_uav_mw: np.ndarray | float,
    rate_weight: float = 10.0,
    power_weight: float = 0.005,
) -> np.ndarray | float:
    """The task fitness per slot: 10 * R_DF * feasible - 0.005 * (P_BS + P_UAV) [mW] (the paper's weights)."""
    return rate_weight * rate_df * feasible - power_weight * (power_bs_mw + power_uav_mw)


def optimal_relay_powers(
    bs_gain: np.ndarray | float,
    user_gain: np.ndarray | float,
    feasible: np.ndarray | bool,
    noise_mw: float,
    max_power_bs_mw: float,
    max_power_uav_mw: float,
    rate_weight: float = 10.0,
    power_weight: float = 0.005,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Utility-maximising (P_BS, P_UAV) for one slot at a given position; returns (p_bs, p_uav, utility).

    The per-slot problem is one-dimensional: for a target relay rate R the cheapest powers are
    P_BS = (2^R - 1) sigma^2 / g1 and P_UAV = (2^R - 1) sigma^2 / g2, so the utility is
    w_r R - w_p (2^R - 1) sigma^2 (1/g1 + 1/g2), concave in R, maximised at
    2^R = w_r / (w_p ln2 sigma^2 (1/g1 + 1/g2)) and clipped to [0, min(R1_max, R2_max)]. Where the slot
    is infeasible the rate earns nothing and both powers are zero.
    """
    bs_gain = np.asarray(bs_gain, dtype=np.float64)
    user_gain = np.asarray(user_gain, dtype=np.float64)
    feasible = np.asarray(feasible, dtype=bool)
    with np.errstate(divide="ignore"):
        inverse_gains = noise_mw * (1.0 / bs_gain + 1.0 / user_gain)  # sigma^2 (1/g1 + 1/g2)
        stationary = np.log2(np.maximum(rate_weight / (power_weight * math.log(2.0) * inverse_gains), 1.0))
    rate_cap = np.minimum(
        np.log2(1.0 + max_power_bs_mw * bs_gain / noise_mw),
        np.log2(1.0 + max_power_uav_mw * user_gain / noise_mw),
    )
    rate = np.where(feasible, np.clip(stationary, 0.0, rate_cap), 0.0)
    excess = np.expm1(rate * math.log(2.0)) * noise_mw  # (2^R - 1) sigma^2
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bs = np.where(rate > 0.0, np.minimum(excess / bs_gain, max_power_bs_mw), 0.0)
        p_uav = np.where(rate > 0.0, np.minimum(excess / user_gain, max_power_uav_mw), 0.0)
    value = rate_weight * rate - power_weight * (p_bs + p_uav)
    return p_bs, p_uav, value
