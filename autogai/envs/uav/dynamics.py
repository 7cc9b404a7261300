"""The UAV task's slot transition, written once: action decoding, position update, channel, rates, metrics.

:class:`UAVDynamics` serves the single environment and the batched simulator alike. Its methods take the
per-UAV quantities either as Python floats (one UAV: the Gymnasium env) or as ``[B]`` arrays (B UAVs:
:class:`~autogai.envs.uav.batch.UAVNearFieldBatch`), and write into a :class:`Workspace` of shape ``()`` or
``(B,)``. The code uses operators, ``...``-indexing, ``out=`` ufuncs into the workspace and the few functions
of a *math kit*, which mean the same for both shapes, so a UAV steps through the very same lines whether it
flies alone or in a batch. The kit is :data:`ONE_UAV` (``math``'s functions) for floats and
:data:`MANY_UAVS` (numpy's) for arrays: on one 50-element UAV numpy's cost per call and per allocation, not
the arithmetic, would dominate the step, so the only numpy calls of a single UAV's step are the four that
compute its 2N channel values, all into preallocated buffers.

The formulas themselves (gains, rates, utility) are :mod:`autogai.envs.uav.physics`; this module decides
which formula applies to which quantity and where each result goes.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from autogai.envs.uav import physics
from autogai.envs.uav.config import RATE_SCALE, WAYPOINTS, UAVNearFieldConfig

ACTION_TOLERANCE = 1e-6
"""Continuous actions may exceed [-1, 1] by float rounding this much; they are clipped."""

_UNIT_LIMIT = 1.0 + ACTION_TOLERANCE

STAY = (0.0, 0.0, 0.0, 0.0)
"""The decoded zero action (dx, dy, P_BS, P_UAV): an episode starts with a transition without a move or power
into slot 0."""

_GRID_CHUNK = 8192
"""Positions per chunk when the authors' beamformer needs every element's phase (bounds memory)."""


class _OneUAV:
    """The math kit for one UAV's Python floats."""

    sqrt = staticmethod(math.sqrt)
    log2 = staticmethod(math.log2)
    hypot = staticmethod(math.hypot)
    minimum = staticmethod(min)
    logical_not = staticmethod(operator.not_)

    @staticmethod
    def trunc(value: float) -> float:
        return float(math.trunc(value))

    @staticmethod
    def clip(value: float, low: float, high: float) -> float:
        return min(max(value, low), high)

    @staticmethod
    def unit_columns(values: Any, shape: tuple[int, ...]) -> list[float] | None:
        """The entries of one action of ``shape`` clipped to [-1, 1], or None if the action is not numbers of
        that shape or a value lies beyond the tolerance (or is NaN): the caller then says what is wrong."""
        if type(values) is not np.ndarray:  # asarray's call is a good part of decoding an ndarray
            try:
                values = np.asarray(values)
            except (TypeError, ValueError):
                return None
        if values.shape != shape or values.dtype.kind not in "fiu":
            return None
        entries = values.tolist()
        for value in entries:
            if not -1.0 <= value <= 1.0:
                break
        else:
            return entries  # the common case, checked with the fewest operations
        if not all(-_UNIT_LIMIT <= value <= _UNIT_LIMIT for value in entries):  # also refuses NaN
            return None
        return [-1.0 if value < -1.0 else (1.0 if value > 1.0 else value) for value in entries]

    @staticmethod
    def index_columns(values: np.ndarray, high: tuple[int, ...], floats: bool) -> list[int] | None:
        """The entries of one action as ints, or None unless each is a whole number in [0, its high]
        (``floats``: the array holds floats, which must be whole)."""
        entries = values.tolist()
        position = 0
        for value in entries:
            if not 0 <= value <= high[position]:  # also refuses NaN and infinities
                return None
            position += 1  # noqa: SIM113 - enumerate's (or zip's) tuples cost a third of this loop
        if not floats:
            return entries
        if any(value % 1 for value in entries):
            return None
        return [int(value) for value in entries]

    @staticmethod
    def index(value: np.ndarray, high: int) -> int | None:
        """One UAV's integer entry (a 0-d array), or None unless it lies in [0, high]."""
        index = value.item()
        return index if 0 <= index <= high else None

    @staticmethod
    def geometry_product(
        basis: np.ndarray, by_term: np.ndarray, by_element: np.ndarray | None, out: np.ndarray
    ) -> Any:
        """(k r_i)^2 of one UAV from its basis ``[4]``: the matrix-vector product ``[C, 4] . [4]`` (the
        vector-matrix product ``[4] . [4, C]`` takes a slower path, 0.5 us more per step), unless
        ``by_element`` is None (see ``UAVDynamics._geometry_by_element``)."""
        if by_element is None:
            return np.dot(basis, by_term, out=out)
        return np.dot(by_element, basis, out=out)

    @staticmethod
    def per_row(value: float) -> float:
        """A per-UAV value that broadcasts over the per-element axis (a float already does)."""
        return value

    @staticmethod
    def pick(table: tuple[float, ...], index: int) -> float:
        return table[index]


class _ManyUAVs:
    """The math kit for ``[B]`` arrays of B UAVs: numpy's functions."""

    sqrt = np.sqrt
    log2 = np.log2
    hypot = np.hypot
    minimum = np.minimum
    logical_not = np.logical_not
    trunc = np.trunc
    clip = staticmethod(np.clip)

    @staticmethod
    def unit_columns(values: Any, shape: tuple[int, ...]) -> np.ndarray | None:
        """The ``[B]`` columns of B actions of ``shape`` clipped to [-1, 1], or None if they are not numbers of
        that shape or a value lies beyond the tolerance (the caller then says what is wrong)."""
        try:
            values = np.asarray(values)
        except (TypeError, ValueError):
            return None
        if values.shape != shape or values.dtype.kind not in "fiu":
            return None
        array = values.astype(np.float64, copy=False)
        largest = np.maximum.reduce(np.abs(array), None)  # NaN propagates; cheaper than .max()
        if not largest <= _UNIT_LIMIT:  # also refuses NaN
            return None
        return (np.clip(array, -1.0, 1.0) if largest > 1.0 else array).T

    @staticmethod
    def index_columns(values: np.ndarray, high: tuple[int, ...], floats: bool) -> np.ndarray | None:
        """The ``[B]`` int columns of B actions, or None unless each entry is a whole number in [0, its high]."""
        if floats and not (_all(np.isfinite(values)) and _all(np.floor(values) == values)):
            return None
        index = values.astype(np.int64, copy=False)
        if not _all((index >= 0) & (index <= high)):
            return None
        return index.T

    @staticmethod
    def index(values: np.ndarray, high: int) -> np.ndarray | None:
        """B UAVs' integer entries ``[B]``, or None unless each lies in [0, high]."""
        return values if _all((values >= 0) & (values <= high)) else None

    @staticmethod
    def geometry_product(
        basis: np.ndarray, by_term: np.ndarray, by_element: np.ndarray | None, out: np.ndarray
    ) -> Any:
        """(k r_i)^2 of B UAVs from their bases ``[B, 4]``: ``[B, 4] . [4, C]``."""
        return np.dot(basis, by_term, out=out)

    @staticmethod
    def per_row(values: np.ndarray) -> np.ndarray:
        """``[B]`` per-UAV values as ``[B, 1]``, to broadcast over the per-element axis."""
        return values[:, None]

    @staticmethod
    def pick(table: tuple[float, ...], index: np.ndarray) -> np.ndarray:
        return np.take(table, index)


ONE_UAV = _OneUAV()
MANY_UAVS = _ManyUAVs()


def kit_for(value: Any) -> Any:
    """:data:`MANY_UAVS` for an array of UAVs, :data:`ONE_UAV` for one UAV's float."""
    return MANY_UAVS if isinstance(value, np.ndarray) else ONE_UAV


class InvalidAction(ValueError):
    """An action outside the action space; the message says what is wrong (the caller adds the action)."""


class UAVDynamics:
    """The transition of one configuration, for one UAV (Python floats) or a batch (``[B]`` arrays)."""

    def __init__(self, config: UAVNearFieldConfig) -> None:
        self.config = config
        cfg = config
        n = cfg.n_elements
        self.normalized = cfg.obs_mode == "normalized"
        self.random_scenario = cfg.scenario == "random"
        self.observation_size = cfg.observation_size
        # The channel phase k r_i of every element is sqrt of a linear function of (1, y, y^2, x^2):
        # (k r_i)^2 = k^2 (x^2 + z^2 + (y - e_i)^2). The normalized observation needs cos(k r_i) and
        # -sin(k r_i) = cos(k r_i + pi/2), so its element list is doubled and the copy offset by pi/2.
        copies = 2 if self.normalized else 1
        k2 = cfg.wavenumber**2
        elements = np.tile(np.asarray(cfg.elements_y), copies)
        self._geometry = np.ascontiguousarray(
            np.stack(
                [
                    k2 * (elements * elements + cfg.altitude_m**2),
                    -2.0 * k2 * elements,
                    np.full_like(elements, k2),
                    np.full_like(elements, k2),
                ]
            )
        )  # [4, copies N]: rows for 1, y, y^2, x^2 (see Workspace.basis)
        # One UAV takes the faster matrix-vector product with the geometry by element. Not for the authors'
        # beamformer: its gain sums 50 phasors of angles near 1e5 rad, which turns the last-bit difference
        # between BLAS's matrix-vector and matrix-matrix kernels into 1e-12 of the rate, so there one UAV
        # takes the batch's product and stays equal to a batch row.
        self._geometry_by_element = (
            None if cfg.beamformer == "author_code" else np.ascontiguousarray(self._geometry.T)
        )  # [copies N, 4]
        self._phase_offsets = np.concatenate([np.zeros(n), np.full(n, math.pi / 2)])[: copies * n]
        self._copies = copies
        self._n = n
        self._z = cfg.altitude_m
        self._z2 = cfg.altitude_m**2
        self._user_dz2 = (cfg.altitude_m - cfg.user_position[2]) ** 2
        self._sqrt_rho = math.sqrt(cfg.bs_reference_gain)
        # Strict boundary (the authors' 0 < x < area): x <= 0 is x < the next float above 0.
        strict = cfg.strict_area_boundary
        self._area_low = float(np.nextafter(0.0, 1.0)) if strict else 0.0
        self._area_high = float(np.nextafter(cfg.area_size_m, 0.0)) if strict else cfg.area_size_m
        # Constants of the slot, read once per step (attributes of the config are properties).
        self._noise_mw = cfg.noise_mw
        self._rate_weight, self._power_weight = cfg.rate_weight, cfg.power_weight
        self._beamformer = cfg.beamformer
        self._bs_reference_gain, self._user_reference_gain = cfg.bs_reference_gain, cfg.user_reference_gain
        self._path_loss_exponent = cfg.path_loss_exponent
        self._near_field_radius = cfg.near_field_radius
        self._clip_to_area, self._integer_positions = cfg.clip_to_area, cfg.integer_positions
        # Action decoding.
        self._move = cfg.max_move_m
        self._half_bs = cfg.max_power_bs_mw / 2.0
        self._half_uav = cfg.max_power_uav_mw / 2.0
        self._levels_bs = tuple(cfg.power_levels_bs)
        self._levels_uav = tuple(cfg.power_levels_uav)
        self._discrete_high = (2, 2, cfg.n_power_levels - 1, cfg.n_power_levels - 1)
        self._waypoint_x = tuple(float(step_x) for step_x, _ in WAYPOINTS)
        self._waypoint_y = tuple(float(step_y) for _, step_y in WAYPOINTS)
        self._decode_mode = {
            "continuous": self._decode_continuous,
            "discrete": self._decode_discrete,
            "hybrid": self._decode_hybrid,
        }[cfg.action_mode]
        # Observation layout.
        self._position_scale = 1.0 / cfg.area_size_m if self.normalized else 1.0
        self._rate_scale = 1.0 / RATE_SCALE if self.normalized else 1.0
        self._channel = slice(3, 3 + copies * n)
        self._index_r1 = 3 + copies * n
        self._horizon = cfg.horizon

    # Actions -------------------------------------------------------------------------------------------

    def decode(self, action: Any, batch_shape: tuple[int, ...]) -> tuple[Any, Any, Any, Any]:
        """(dx, dy, P_BS, P_UAV) of an action (``batch_shape`` ``()``) or of B actions (``(B,)``).

        Raises :class:`InvalidAction` saying what is wrong.
        """
        return self.decoder(batch_shape)(action)

    def decoder(self, batch_shape: tuple[int, ...]) -> Callable[[Any], tuple[Any, Any, Any, Any]]:
        """:meth:`decode` for one ``batch_shape``, bound once: an env decodes every step without the dispatch."""
        return functools.partial(self._decode_mode, batch_shape, MANY_UAVS if batch_shape else ONE_UAV)

    def _decode_continuous(
        self, batch_shape: tuple[int, ...], kit: Any, action: Any
    ) -> tuple[Any, Any, Any, Any]:
        columns = kit.unit_columns(action, (*batch_shape, 4))
        if columns is None:
            raise _unit_problem(action, (*batch_shape, 4))
        a0, a1, a2, a3 = columns
        return self._move * a0, self._move * a1, self._half_bs * (a2 + 1.0), self._half_uav * (a3 + 1.0)

    def _decode_discrete(
        self, batch_shape: tuple[int, ...], kit: Any, action: Any
    ) -> tuple[Any, Any, Any, Any]:
        try:
            raw = action if type(action) is np.ndarray else np.asarray(action)
        except (TypeError, ValueError):
            raise InvalidAction("expected 4 integers") from None
        kind = raw.dtype.kind
        if raw.shape != (*batch_shape, 4) or kind not in "iuf":
            raise InvalidAction(f"expected 4 integers, got shape {_shape_text(raw.shape)}")
        columns = kit.index_columns(raw, self._discrete_high, kind == "f")
        if columns is None:
            levels = self.config.n_power_levels
            raise InvalidAction(f"moves must be 0, 1 or 2 and power levels integers in [0, {levels - 1}]")
        move_x, move_y, level_bs, level_uav = columns
        return (
            self._move * (move_x - 1.0),
            self._move * (move_y - 1.0),
            kit.pick(self._levels_bs, level_bs),
            kit.pick(self._levels_uav, level_uav),
        )

    def _decode_hybrid(
        self, batch_shape: tuple[int, ...], kit: Any, action: Any
    ) -> tuple[Any, Any, Any, Any]:
        count = len(WAYPOINTS)
        try:
            waypoint, powers = action
            waypoint = np.asarray(waypoint)
        except (TypeError, ValueError):
            raise InvalidAction(f"expected (way-point index 0-{count - 1}, two powers in [-1, 1])") from None
        if waypoint.shape != batch_shape or waypoint.dtype.kind not in "iu":
            raise InvalidAction(
                f"expected (way-point index 0-{count - 1}, two powers in [-1, 1]); the way-point must be "
                f"an integer of shape {_shape_text(batch_shape)}"
            )
        index = kit.index(waypoint, count - 1)
        if index is None:
            raise InvalidAction(f"way-point must be 0-{count - 1}")
        columns = kit.unit_columns(powers, (*batch_shape, 2))
        if columns is None:
            raise _unit_problem(powers, (*batch_shape, 2), "powers")
        a_bs, a_uav = columns
        step_x, step_y = kit.pick(self._waypoint_x, index), kit.pick(self._waypoint_y, index)
        return (
            self._move * step_x,
            self._move * step_y,
            self._half_bs * (a_bs + 1.0),
            self._half_uav * (a_uav + 1.0),
        )

    # The slot --------------------------------------------------------------------------------------------

    def move(self, x: Any, y: Any, dx: Any, dy: Any) -> tuple[Any, Any]:
        """Where a move (dx, dy) from (x, y) lands, with the ``clip_to_area`` and ``integer_positions`` options."""
        return self._position_after(kit_for(x), x, y, dx, dy)

    def _position_after(self, kit: Any, x: Any, y: Any, dx: Any, dy: Any) -> tuple[Any, Any]:
        x, y = x + dx, y + dy
        if self._clip_to_area:
            x = kit.clip(x, 0.0, self.config.area_size_m)
            y = kit.clip(y, 0.0, self.config.area_size_m)
        if self._integer_positions:
            x, y = kit.trunc(x), kit.trunc(y)
        return x, y

    def transition(
        self,
        x0: Any,
        y0: Any,
        decoded: tuple[Any, Any, Any, Any],
        t: Any,
        user_x: Any,
        user_y: Any,
        work: Workspace,
    ) -> dict[str, Any]:
        """Fly from (x0, y0) with the ``decoded`` action into slot ``t``; fill ``work.obs``; return the metrics.

        One UAV: Python floats in, Python floats/bools out; B UAVs: ``[B]`` arrays in and out. ``work``
        comes from :meth:`workspace`. An episode starts with :data:`STAY` (no move, no power) into slot 0:
        its rates are 0, as the observation after ``reset`` has them. ``user_x``/``user_y`` are the
        scenario's user position.
        """
        kit = MANY_UAVS if isinstance(x0, np.ndarray) else ONE_UAV  # kit_for, inlined: once per step
        dx, dy, p_bs, p_uav = decoded
        x, y = self._position_after(kit, x0, y0, dx, dy)
        phases = self._phases(kit, x, y, work)
        distance_to_bs = kit.sqrt(x * x + y * y + self._z2)
        du_x, du_y = x - user_x, y - user_y
        distance_to_user = kit.sqrt(du_x * du_x + du_y * du_y + self._user_dz2)
        out_of_area, outside = self._violations(x, y, distance_to_bs)
        noise = self._noise_mw
        rate_1 = physics.rate_bs_uav(p_bs, self._bs_gain(distance_to_bs, phases), noise, kit)
        rate_2 = physics.rate_uav_user(p_uav, self._user_gain(distance_to_user), noise, kit)
        rate_df = physics.rate_decode_and_forward(rate_1, rate_2, kit)
        feasible = kit.logical_not(out_of_area | outside)
        self._observe(work, kit, x, y, distance_to_bs, rate_1, rate_2, t, user_x, user_y)
        return {
            "x": x,
            "y": y,
            "z": x * 0.0 + self._z,  # shaped like x
            "t": t,
            "distance_to_bs": distance_to_bs,
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
            "move_m": kit.hypot(x - x0, y - y0),
            "feasible": feasible,
            "fitness": physics.utility(rate_df, feasible, p_bs, p_uav, self._rate_weight, self._power_weight),
        }

    def _bs_gain(self, distance_to_bs: Any, phases: np.ndarray | None) -> Any:
        """BS->UAV beamforming gain per mW; ``phases`` (k r_i, first N columns) only for the authors' beamformer."""
        if self._beamformer == "author_code":
            assert phases is not None
            return physics.author_code_gain(distance_to_bs, phases[..., : self._n], self._bs_reference_gain)
        return physics.coherent_gain(distance_to_bs, self._n, self._bs_reference_gain, self._beamformer)

    def _user_gain(self, distance_to_user: Any) -> Any:
        return physics.user_channel_gain(
            distance_to_user, self._user_reference_gain, self._path_loss_exponent
        )

    def _violations(self, x: Any, y: Any, distance_to_bs: Any) -> tuple[Any, Any]:
        """(outside the service area, outside the near-field radius)."""
        low, high = self._area_low, self._area_high
        out_of_area = (x < low) | (x > high) | (y < low) | (y > high)
        return out_of_area, distance_to_bs > self._near_field_radius

    def workspace(self, batch_shape: tuple[int, ...]) -> Workspace:
        """The buffers :meth:`transition` writes into, for one UAV (``()``) or B UAVs (``(B,)``)."""
        work = Workspace(batch_shape, self.observation_size, self._copies * self._n, self._channel)
        work.obs[..., 2] = self._z * self._position_scale  # the altitude is constant
        return work

    def _phases(self, kit: Any, x: Any, y: Any, work: Workspace) -> np.ndarray:
        """k r_i of every element (doubled for the normalized observation), in ``work.phases``."""
        basis = work.basis_columns
        basis[1] = y
        basis[2] = y * y
        basis[3] = x * x
        phases = work.phases
        kit.geometry_product(work.basis, self._geometry, self._geometry_by_element, phases)  # (k r_i)^2
        return np.sqrt(phases, out=phases)

    def _observe(
        self,
        work: Workspace,
        kit: Any,
        x: Any,
        y: Any,
        distance_to_bs: Any,
        rate_1: Any,
        rate_2: Any,
        t: Any,
        user_x: Any,
        user_y: Any,
    ) -> None:
        obs, scale = work.obs_columns, self._position_scale
        obs[0] = x * scale
        obs[1] = y * scale
        if self.normalized:
            # Re(h_i) r / sqrt(rho) = cos(k r_i) and Im(h_i) r / sqrt(rho) = -sin(k r_i) = cos(k r_i + pi/2).
            np.add(work.phases, self._phase_offsets, out=work.scratch)
            np.cos(work.scratch, out=work.channel)
        else:
            np.cos(work.phases, out=work.scratch)
            np.multiply(work.scratch, kit.per_row(self._sqrt_rho / distance_to_bs), out=work.channel)
        index = self._index_r1
        obs[index] = rate_1 * self._rate_scale
        obs[index + 1] = rate_2 * self._rate_scale
        if self.normalized:
            obs[index + 2] = t / self._horizon
        if self.random_scenario:
            obs[-2] = user_x * scale
            obs[-1] = user_y * scale

    # Positions without a flight (the oracle's grids, start sampling) ---------------------------------------

    def slot_physics(self, x: Any, y: Any, user_x: float | None = None, user_y: float | None = None) -> dict:
        """Position-dependent quantities for UAVs at (x, y) (any broadcastable shapes).

        Returns ``distance_to_bs``, ``distance_to_user``, ``bs_gain`` (per mW), ``user_gain`` (per mW),
        ``out_of_area``, ``outside_near_field`` and ``feasible``; the user defaults to the configuration's.
        """
        x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        user_x = self.config.user_position[0] if user_x is None else user_x
        user_y = self.config.user_position[1] if user_y is None else user_y
        distance_to_bs = np.sqrt(x * x + y * y + self._z2)
        distance_to_user = np.sqrt((x - user_x) ** 2 + (y - user_y) ** 2 + self._user_dz2)
        if self.config.beamformer == "author_code":
            bs_gain = np.empty_like(distance_to_bs)
            flat_x, flat_y = x.ravel(), y.ravel()
            flat_r, flat_gain = distance_to_bs.ravel(), bs_gain.reshape(-1)
            for start in range(0, flat_x.size, _GRID_CHUNK):
                part = slice(start, start + _GRID_CHUNK)
                column_y = flat_y[part]
                ones = np.ones_like(column_y)
                basis = np.stack([ones, column_y, column_y * column_y, flat_x[part] ** 2], axis=-1)
                phases = np.sqrt(basis @ self._geometry)
                flat_gain[part] = self._bs_gain(flat_r[part], phases)
        else:
            bs_gain = self._bs_gain(distance_to_bs, None)
        out_of_area, outside = self._violations(x, y, distance_to_bs)
        return {
            "distance_to_bs": distance_to_bs,
            "distance_to_user": distance_to_user,
            "bs_gain": np.asarray(bs_gain),
            "user_gain": np.asarray(self._user_gain(distance_to_user)),
            "out_of_area": out_of_area,
            "outside_near_field": outside,
            "feasible": ~(out_of_area | outside),
        }


class Workspace:
    """The buffers one env (``batch_shape`` ``()``) or one batch (``(B,)``) steps in: no allocation per step.

    ``obs`` is the float64 observation (handed out as a float32 copy), ``basis`` the (1, y, y^2, x^2) of each
    UAV whose product with the dynamics' geometry is (k r_i)^2, ``phases`` k r_i, ``channel`` the view of
    ``obs`` that holds the channel values. ``obs_columns`` and ``basis_columns`` are the transposed views:
    ``obs_columns[i]`` is entry i of one UAV's observation or column i of B UAVs', so one plain integer index
    writes it for either shape (``obs[..., i]`` costs twice as much on one UAV).
    """

    def __init__(
        self, batch_shape: tuple[int, ...], observation_size: int, n_phases: int, channel: slice
    ) -> None:
        self.obs = np.zeros((*batch_shape, observation_size))
        self.basis = np.ones((*batch_shape, 4))
        self.phases = np.empty((*batch_shape, n_phases))
        self.scratch = np.empty((*batch_shape, n_phases))
        self.channel = self.obs[..., channel]
        self.obs_columns = self.obs.T
        self.basis_columns = self.basis.T


def _unit_problem(values: Any, shape: tuple[int, ...], part: str | None = None) -> InvalidAction:
    """What is wrong with ``values`` that a kit's ``unit_columns`` refused (``part`` names hybrid's powers)."""
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError):
        raw = np.asarray(None)
    width = shape[-1]
    if raw.dtype.kind not in "fiu":
        return InvalidAction(f"{part} must be {width} numbers" if part else f"expected {width} numbers")
    if raw.shape != shape:
        got = f"{_shape_text(shape)}, got {_shape_text(raw.shape)}"
        return InvalidAction(f"{part} must have shape {got}" if part else f"expected shape {got}")
    return InvalidAction(f"{part} must lie in [-1, 1]" if part else "every value must lie in [-1, 1]")


def _all(flags: np.ndarray) -> bool:
    """Whether every flag is set (the ufunc reduction: a fraction of ``ndarray.all``'s cost on small arrays)."""
    return bool(np.logical_and.reduce(flags, None))


def _shape_text(shape: tuple[int, ...]) -> str:
    """(4,) for one action, [64, 4] for a batch (how the two front doors have always named shapes)."""
    return str(tuple(shape)) if len(shape) <= 1 else "[" + ", ".join(str(s) for s in shape) + "]"


@functools.lru_cache(maxsize=256)
def dynamics_for(config: UAVNearFieldConfig) -> UAVDynamics:
    """The (immutable, shareable) dynamics of a configuration."""
    return UAVDynamics(config)
