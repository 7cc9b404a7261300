"""``autogai env check``'s checks of the UAV environment: Gymnasium's API checker in every mode, the physics
sanity table of docs/uav_env.md, the oracle bound, and random scenarios."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Reference points of docs/uav_env.md for the default configuration (coarse grid there; refined here).
_EXPECTED_BEST_HOVER = (55.0, 71.0)
_EXPECTED_BEST_HOVER_UTILITY = 43.2
_EXPECTED_START_HOVER_UTILITY = 31.0


def check_uav_environment(echo: Callable[[str], Any]) -> list[str]:
    """Check the UAV environment: Gymnasium's checker on all 6 modes, the physics sanity table against
    docs/uav_env.md, the oracle bound, random scenarios. Writes the report through ``echo`` line by line and
    returns the failures (empty when every check holds)."""
    import warnings

    import gymnasium as gym
    import numpy as np
    from gymnasium.utils.env_checker import check_env

    from autogai.envs import register_envs, uav
    from autogai.envs.episode import run_episode

    register_envs()
    failures: list[str] = []

    echo("autogai env check: autogai/UAVNearField-v0")
    echo("")
    echo("Gymnasium check_env (action_mode x obs_mode):")
    for action_mode in uav.ACTION_MODES:
        for obs_mode in uav.OBS_MODES:
            label = f"  {action_mode:<11} {obs_mode:<11}"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    env = gym.make("autogai/UAVNearField-v0", action_mode=action_mode, obs_mode=obs_mode)
                    check_env(env.unwrapped)
                    env.close()
                except Exception as exc:  # report every failing mode, not only the first
                    failures.append(f"check_env {action_mode}/{obs_mode}: {type(exc).__name__}: {exc}")
                    echo(f"{label} FAILED: {type(exc).__name__}: {exc}")
                    continue
            if caught:
                message = "; ".join(sorted({str(w.message) for w in caught}))
                failures.append(f"check_env {action_mode}/{obs_mode} warned: {message}")
                echo(f"{label} WARNED: {message}")
            else:
                size = env.observation_space.shape[0] if env.observation_space.shape else 0
                echo(f"{label} ok   obs {size:>3} values, action space {env.action_space}")

    echo("")
    echo("Sanity values: UAV at altitude 6 m, P_BS = P_UAV = 1000 mW, rates in bit/s/Hz")
    echo("computed by the environment (expected from docs/uav_env.md in brackets)")
    beamformers = ("unit_norm", "unit_modulus", "author_code")
    header = f"  {'UAV (x, y)':<14}" + "".join(f"{'R1 ' + b:>20}" for b in beamformers) + f"{'R2':>16}"
    echo(header)
    mismatches = 0
    for (x, y), expected_r1, expected_r2 in uav.SANITY_TABLE:
        cells = []
        rate_2 = float("nan")
        for beamformer in beamformers:
            rate_1, rate_2 = uav.hover_rates(x, y, beamformer=beamformer)
            ok = round(rate_1, 2) == round(expected_r1[beamformer], 2)
            mismatches += not ok
            cells.append(f"{rate_1:7.2f} ({expected_r1[beamformer]:5.2f}){'' if ok else ' !'}".rjust(20))
        ok_2 = round(rate_2, 2) == round(expected_r2, 2)
        mismatches += not ok_2
        cells.append(f"{rate_2:5.2f} ({expected_r2:4.2f}){'' if ok_2 else ' !'}".rjust(16))
        echo(f"  {f'({x:g}, {y:g})':<14}" + "".join(cells))
    total = len(uav.SANITY_TABLE) * (len(beamformers) + 1)
    if mismatches:
        failures.append(
            f"sanity table: {mismatches} of {total} values differ from docs/uav_env.md at two decimals"
        )
        echo(f"  {mismatches} of {total} values differ at two decimals (marked !)")
    else:
        echo(f"  all {total} values match to two decimals")

    echo("")
    echo("Oracle (default configuration: unit_norm, start (1, 1), continuous actions)")
    plan = uav.oracle_plan()
    (hover_x, hover_y), hover_utility = plan.best_hover_point, plan.best_hover_utility
    start_hover = uav.UAVNearFieldEnv()
    start_hover.reset()
    start_utility = start_hover.step(np.array([0.0, 0.0, 1.0, 1.0]))[1]
    policy = uav.OraclePolicy()
    env = gym.make("autogai/UAVNearField-v0")
    infos = run_episode(env, policy)
    rolled_out = float(np.mean([info["fitness"] for info in infos]))
    echo(
        f"  best hover point          ({hover_x:.2f}, {hover_y:.2f}) m, utility {hover_utility:.3f} per slot"
    )
    echo(
        f"  oracle trajectory         reaches ({plan.target[0]:.2f}, {plan.target[1]:.2f}) m in slot "
        f"{plan.extra.get('arrival_slot', float('nan')):.0f}, then hovers"
    )
    echo(
        "                            (dynamic programming over a 0.5 m grid, exact best hover point at the end)"
    )
    echo(
        f"  oracle episode fitness    {plan.episode_fitness:.4f} (mean utility per slot; mean R_DF "
        f"{plan.extra['mean_rate_df']:.3f} bit/s/Hz, mean total power {plan.extra['mean_power_total_mw']:.0f} mW)"
    )
    echo(f"  same policy via gym.make  {rolled_out:.4f}")
    per_mode = {mode: uav.oracle_episode_fitness(action_mode=mode) for mode in ("hybrid", "discrete")}
    echo(
        "  oracle in other modes     "
        + ", ".join(f"{mode} {value:.4f}" for mode, value in per_mode.items())
        + " (5 m way-point lattice; discrete: 5 power levels)"
    )
    echo(
        f"  hovering at the start     {start_utility:.3f} per slot at full power (docs/uav_env.md: about 31.0)"
    )

    distance = float(np.hypot(hover_x - _EXPECTED_BEST_HOVER[0], hover_y - _EXPECTED_BEST_HOVER[1]))
    if distance > 3.0 or abs(hover_utility - _EXPECTED_BEST_HOVER_UTILITY) > 0.05:
        failures.append(
            f"best hover ({hover_x:.2f}, {hover_y:.2f}) utility {hover_utility:.3f} is not near "
            f"{_EXPECTED_BEST_HOVER} / {_EXPECTED_BEST_HOVER_UTILITY}"
        )
    if abs(start_utility - _EXPECTED_START_HOVER_UTILITY) > 0.05:
        failures.append(
            f"start hover utility {start_utility:.3f} differs from {_EXPECTED_START_HOVER_UTILITY}"
        )
    if abs(rolled_out - plan.episode_fitness) > 1e-9:
        failures.append(
            f"oracle rollout {rolled_out:.6f} differs from the oracle value {plan.episode_fitness:.6f}"
        )
    if any(value > plan.episode_fitness + 1e-9 for value in per_mode.values()):
        failures.append(f"an action mode's oracle beats the continuous oracle: {per_mode}")
    if not (start_utility < plan.episode_fitness <= hover_utility + 1e-9):
        failures.append(
            f"oracle fitness {plan.episode_fitness:.4f} is not between the start hover {start_utility:.3f} "
            f"and the best hover {hover_utility:.3f}"
        )

    failures += _check_random_scenarios(echo)
    return failures


def _check_random_scenarios(echo: Callable[[str], Any]) -> list[str]:
    """scenario='random': Gymnasium's checker in every mode, reproducible draws, the oracle above hovering."""
    import warnings

    import gymnasium as gym
    import numpy as np
    from gymnasium.utils.env_checker import check_env

    from autogai.envs import uav
    from autogai.envs.episode import run_episode

    failures: list[str] = []
    echo("")
    echo("Random scenarios (scenario='random'; held-out scenario seeds)")
    modes = [(a, o) for a in uav.ACTION_MODES for o in uav.OBS_MODES]
    for action_mode, obs_mode in modes:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                env = gym.make(
                    "autogai/UAVNearField-v0", action_mode=action_mode, obs_mode=obs_mode, scenario="random"
                )
                check_env(env.unwrapped)
            except Exception as exc:  # report every failing mode
                failures.append(f"check_env random {action_mode}/{obs_mode}: {type(exc).__name__}: {exc}")
        if caught:
            failures.append(f"check_env random {action_mode}/{obs_mode} warned: {caught[0].message}")
    echo(f"  {f'check_env in {len(modes)} modes':<26}{'ok' if not failures else 'FAILED'}")
    config = uav.UAVNearFieldConfig(scenario="random")
    env = uav.UAVNearFieldEnv(config)
    oracles, hovers = [], []
    for seed in uav.scenario_seeds("heldout", 10):
        if uav.draw_scenario(config, seed) != uav.draw_scenario(config, seed):
            failures.append(f"scenario seed {seed} draws two different scenarios")
        infos = run_episode(
            env, lambda obs, info: np.array([0.0, 0.0, 1.0, 1.0]), options={"scenario_seed": seed}
        )
        hovers.append(float(np.mean([info["fitness"] for info in infos])))
        oracles.append(env.oracle_fitness())
    echo(
        f"  oracle, 10 scenarios      {min(oracles):.2f} to {max(oracles):.2f} (median {np.median(oracles):.2f}) "
        "per slot"
    )
    fractions = [hover / oracle for hover, oracle in zip(hovers, oracles, strict=True)]
    echo(f"  hovering at the start     {np.median(fractions):.1%} of the oracle (median, full power)")
    beaten = [
        seed for seed, hover, oracle in zip(range(10), hovers, oracles, strict=True) if hover > oracle + 1e-9
    ]
    if beaten:
        failures.append(f"hovering at the start beats the oracle in {len(beaten)} random scenario(s)")
    return failures
