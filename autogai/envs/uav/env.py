"""The Gymnasium environment ``autogai/UAVNearField-v0``: one UAV."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from autogai.core.errors import ConfigError
from autogai.envs.uav.config import RESET_METRIC_NAMES, UAVNearFieldConfig
from autogai.envs.uav.dynamics import STAY, InvalidAction, dynamics_for
from autogai.envs.uav.oracle import scenario_oracle_fitness
from autogai.envs.uav.scenario import Scenario, episode_scenarios
from autogai.envs.uav.spaces import action_codebook, action_space, observation_space, token_groups


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

    With ``scenario="random"`` the observation ends with the user's position (x/300, y/300 normalized;
    x, y in m for ``author``).

    ## Starting State

    The UAV starts at (1, 1, 6) (``start_position``; the authors' (1, 0) is on the area boundary).
    ``reset(options={"uav_position": (x, y)})`` places it anywhere in the area; ``random_start=True``
    draws the start uniformly from the feasible region with the env's seeded RNG.
    ``scenario="random"`` draws the user's position and the start per episode from a scenario seed
    (:mod:`autogai.envs.uav.scenario`): a training seed drawn with the env's RNG, or the one given as
    ``reset(options={"scenario_seed": s})`` (held-out seeds are odd). :attr:`scenario` says which
    scenario runs and :meth:`oracle_fitness` is its best achievable episode fitness, so
    ``episode fitness / env.oracle_fitness()`` is the episode's fraction of the oracle.

    ## Episode End

    No termination. The step completing ``horizon`` (100) slots returns ``truncated=True``; stepping again
    needs ``reset``.

    ## Arguments

    Every field of :class:`UAVNearFieldConfig` is a keyword argument, e.g.
    ``gymnasium.make("autogai/UAVNearField-v0", action_mode="hybrid", beamformer="unit_modulus")``.
    Besides the modes and physical constants (all configurable): ``n_power_levels``, ``scenario``, ``random_start``,
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
        self.action_space = action_space(self.config)
        self.observation_space = observation_space(self.config)
        self._dynamics = dynamics_for(self.config)
        self._decode = self._dynamics.decoder(())
        self._horizon = self.config.horizon
        self._work = self._dynamics.workspace(())
        self._scenario: Scenario | None = None
        self._user_x = self._user_y = 0.0
        self._x = self._y = np.nan
        self._t = -1  # -1: reset() has not been called

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        (scenario,) = episode_scenarios(self.config, self.np_random, 1, options)
        self._scenario = scenario
        self._user_x, self._user_y = scenario.user_position[0], scenario.user_position[1]
        x, y = scenario.start_position
        metrics = self._dynamics.transition(x, y, STAY, 0, self._user_x, self._user_y, self._work)
        self._x, self._y, self._t = metrics["x"], metrics["y"], 0
        return self._work.obs.astype(np.float32), {name: metrics[name] for name in RESET_METRIC_NAMES}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        t = self._t
        if t < 0 or t >= self._horizon:
            raise gym.error.ResetNeeded(
                "call reset() before step()" if t < 0 else f"the episode ended after {t} slots; call reset()"
            )
        try:
            decoded = self._decode(action)
        except InvalidAction as error:
            raise ConfigError(
                f"action {action!r} is not in the action space {self.action_space}: {error}"
            ) from None
        t += 1
        metrics = self._dynamics.transition(
            self._x, self._y, decoded, t, self._user_x, self._user_y, self._work
        )
        self._x, self._y, self._t = metrics["x"], metrics["y"], t
        # One UAV's metrics are plain Python floats, bools and the int slot: ``info`` as it is.
        return self._work.obs.astype(np.float32), metrics["fitness"], False, t >= self._horizon, metrics

    def action_codebook(self) -> np.ndarray | None:
        """Where each hybrid way-point index sits in the agent's [-1, 1]^2 coordinates (None unless hybrid)."""
        return action_codebook(self.config)

    def observation_token_groups(self) -> list[np.ndarray]:
        """Token layout for Transformer backbones (see :func:`autogai.envs.uav.spaces.token_groups`)."""
        return token_groups(self.config)

    @property
    def scenario(self) -> Scenario:
        """The running episode's scenario (user position, start, scenario seed); needs ``reset``."""
        if self._scenario is None:
            raise gym.error.ResetNeeded("call reset() before asking for the scenario")
        return self._scenario

    def oracle_fitness(self) -> float:
        """The best achievable episode fitness of the running scenario (computed once per scenario, cached)."""
        return scenario_oracle_fitness(self.config, self.scenario)

    @property
    def uav_position(self) -> tuple[float, float, float]:
        """Current (x, y, z) of the UAV in m."""
        return float(self._x), float(self._y), self.config.altitude_m

    @property
    def slot(self) -> int:
        """Slots completed in this episode (0 after reset, ``horizon`` at the end; -1 before reset)."""
        return self._t
