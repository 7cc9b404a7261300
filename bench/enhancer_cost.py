"""Cost per training step (act + one update) of every enhancer combination relative to plain TD3.

Measured side by side in one process (plain, combo, plain, combo, ...; the median of per-pair ratios), at
equal network widths and batch size, on synthetic transitions shaped like the UAV task (106-D normalised
observation with its Transformer token layout: 50 antenna tokens (Re, Im) plus one (x, y, z, R1, R2, t)
token; 4-D continuous action). Targets (BENCHMARKS.md): diffusion <= 2.5x, any single enhancer <= 3x.

    .venv/bin/python bench/enhancer_cost.py              # defaults of TD3Config (256x256, batch 256)
    .venv/bin/python bench/enhancer_cost.py --rounds 3 --steps 10 --combos plain,gdm,gan

The last line is the headline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from gymnasium import spaces

from autogai.agents import TD3Config, TD3Population
from autogai.core.types import EnhancerCombo

N_ANTENNAS = 50
OBS_DIM = 2 * N_ANTENNAS + 6


def uav_token_groups() -> list[np.ndarray]:
    """The UAV observation layout [x, y, z, Re(h) x N, Im(h) x N, R1, R2, t] as (Re_i, Im_i) tokens + 1."""
    antenna = np.stack([3 + np.arange(N_ANTENNAS), 3 + N_ANTENNAS + np.arange(N_ANTENNAS)], axis=1)
    scalars = np.array([[0, 1, 2, OBS_DIM - 3, OBS_DIM - 2, OBS_DIM - 1]])
    return [antenna, scalars]


def build(combo: EnhancerCombo, config: TD3Config, fill: int, seed: int) -> TD3Population:
    """A population of one agent holding ``fill`` synthetic UAV-shaped transitions."""
    obs_space = spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    agent = TD3Population(
        obs_space, action_space, combo, config, seeds=[seed], token_groups=uav_token_groups()
    )
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (1, fill, OBS_DIM)).astype(np.float32)
    agent.add_transitions(
        obs,
        rng.uniform(-1, 1, (1, fill, 4)).astype(np.float32),
        rng.normal(size=(1, fill)).astype(np.float32),
        np.roll(obs, 1, axis=1),
        np.zeros((1, fill), dtype=bool),
    )
    return agent


def time_steps(agent: TD3Population, obs: np.ndarray, steps: int) -> float:
    """Seconds for ``steps`` training steps: act (exploring) on one observation + one gradient update."""
    start = time.perf_counter()
    for i in range(steps):
        agent.act(obs[i % len(obs)].reshape(1, 1, -1), explore=True)
        agent.train_step(1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating plain/combo pairs per combination")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    parser.add_argument("--width", type=int, default=None, help="hidden width (default: TD3Config.net_arch)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: TD3Config.batch_size)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--combos", default="all", help="comma-separated short names, or 'all'")
    args = parser.parse_args()

    base = TD3Config(device="cpu", torch_threads=args.threads, learning_starts=0)
    changes: dict[str, object] = {}
    if args.width:
        changes["net_arch"] = (args.width, args.width)
    if args.batch:
        changes["batch_size"] = args.batch
    config = base.replace(**changes) if changes else base
    fill = max(2048, config.batch_size)
    combos = (
        EnhancerCombo.all_combinations()[1:]
        if args.combos == "all"
        else [
            EnhancerCombo.parse(c)
            for c in args.combos.split(",")
            if EnhancerCombo.parse(c) != EnhancerCombo()
        ]
    )
    print(
        f"enhancer cost per training step (act + 1 update) vs plain TD3; net_arch={config.net_arch}, "
        f"batch={config.batch_size}, diffusion_steps={config.diffusion_steps}, diffusion_hidden="
        f"{config.diffusion_hidden}, transformer dim/heads/layers={config.transformer_dim}/"
        f"{config.transformer_heads}/{config.transformer_layers}, threads={args.threads}, obs_dim={OBS_DIM}"
    )
    obs = np.random.default_rng(0).uniform(-1, 1, (64, OBS_DIM)).astype(np.float32)
    plain = build(EnhancerCombo(), config, fill, seed=0)
    time_steps(plain, obs, args.steps)  # warm-up
    rows = []
    print(f"{'combination':<26} {'slots':<34} {'ratio':>6}  {'plain ms':>8}  {'combo ms':>8}")
    for combo in combos:
        agent = build(combo, config, fill, seed=0)
        time_steps(agent, obs, max(2, args.steps // 4))  # warm-up
        ratios, plain_ms, combo_ms = [], [], []
        for _ in range(args.rounds):
            a = time_steps(plain, obs, args.steps)
            b = time_steps(agent, obs, args.steps)
            ratios.append(b / a)
            plain_ms.append(1e3 * a / args.steps)
            combo_ms.append(1e3 * b / args.steps)
        ratio = statistics.median(ratios)
        rows.append((combo, ratio))
        print(
            f"{combo.short_name:<26} {combo.slot_name:<34} {ratio:6.2f}  "
            f"{statistics.median(plain_ms):8.2f}  {statistics.median(combo_ms):8.2f}",
            flush=True,
        )
    singles = [(c, r) for c, r in rows if c.short_name in ("gdm", "gan", "vae", "transformer")]
    gdm = next((r for c, r in rows if c.short_name == "gdm"), None)
    worst_single = max(singles, key=lambda cr: cr[1]) if singles else None
    worst_all = max(rows, key=lambda cr: cr[1]) if rows else None
    ok = (gdm is None or gdm <= 2.5) and (worst_single is None or worst_single[1] <= 3.0)
    gdm_text = "not measured" if gdm is None else f"{gdm:.2f}x"
    single_text = f"{worst_single[1]:.2f}x ({worst_single[0].short_name})" if worst_single else "n/a"
    all_text = f"; all combinations <= {worst_all[1]:.2f}x ({worst_all[0].short_name})" if worst_all else ""
    print(
        f"headline: diffusion (gdm) {gdm_text} plain TD3 per training step (target <= 2.5x); worst single "
        f"enhancer {single_text} (target <= 3x){all_text}; {'OK' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
