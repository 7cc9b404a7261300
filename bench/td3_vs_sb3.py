"""Training speed of our plain TD3 vs Stable-Baselines3's TD3, side by side in one process.

Both learners get identical networks (``--net 256`` -> [256, 256], or 64), batch size, ``train_freq=1``,
``gradient_steps=1``, ``learning_starts``, replay capacity, exploration noise, one torch thread and the same
environment. Speed is env steps per second of training (acting + storing + updates) after the random
warm-up. The machine is shared and noisy, so learners run in short alternating segments
(ours, SB3, ours, SB3, ...) and the figure is the median over pairs of the per-pair ratio.

Three learners are timed:

- ``ours``: autogai's full training loop (a ``PopulationSession`` of one agent): the task's env, the
  baseline reward program evaluated in the sandbox process, per-component statistics; what
  ``autogai train`` runs for one seed;
- ``ours-bare``: the same learner (a ``TD3Population`` of one) driven by a minimal loop on the raw env
  (isolates loop and sandbox cost);
- ``sb3``: ``stable_baselines3.TD3`` (MlpPolicy) on the raw env.

Usage::

    .venv/bin/python bench/td3_vs_sb3.py                  # Pendulum-v1 and UAV continuous, [256, 256]
    .venv/bin/python bench/td3_vs_sb3.py --net 64 --pairs 7 --segment 400

The last line is the headline: the median ratio ours/sb3 on each task.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from autogai.agents import TD3Config, TD3Population
from autogai.tasks import get_task
from autogai.training import AgentSpec, PopulationSession

TASKS = {
    "pendulum": ("pendulum", {}),
    "uav": ("uav-nearfield", {"action_mode": "continuous"}),
}


def make_ours(
    task_id: str, env_kwargs: dict[str, Any], config: TD3Config, seed: int
) -> Callable[[int], None]:
    session = PopulationSession(
        get_task(task_id),
        [AgentSpec(seed=seed, td3_config=config)],
        enhancers="plain",
        env_kwargs=env_kwargs,
    )
    return lambda n: (session.advance(n), None)[1]


def make_ours_bare(
    task_id: str, env_kwargs: dict[str, Any], config: TD3Config, seed: int
) -> Callable[[int], None]:
    card = get_task(task_id)
    env = card.make_env(**env_kwargs)
    agent = TD3Population(env.observation_space, env.action_space, "plain", config, seeds=[seed])
    adapter = agent.adapter
    state = {"obs": env.reset(seed=seed)[0], "steps": 0}

    def advance(n: int) -> None:
        obs = state["obs"]
        for _ in range(n):
            # act() draws uniform coords itself until learning_starts transitions were stored.
            coords = agent.act(np.asarray(obs, dtype=np.float32).reshape(1, 1, -1), explore=True)
            next_obs, reward, terminated, truncated, _ = env.step(adapter.to_env(coords[0, 0]))
            agent.add_transitions(
                np.reshape(obs, (1, 1, -1)),
                coords,
                [[reward]],
                np.reshape(next_obs, (1, 1, -1)),
                [[terminated]],
            )
            state["steps"] += 1
            obs = env.reset()[0] if terminated or truncated else next_obs
            if state["steps"] > config.learning_starts:
                agent.train_step(1)
        state["obs"] = obs

    return advance


def make_sb3(task_id: str, env_kwargs: dict[str, Any], config: TD3Config, seed: int) -> Callable[[int], None]:
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    card = get_task(task_id)
    env = card.make_env(**env_kwargs)
    k = env.action_space.shape[0]
    half_range = (env.action_space.high - env.action_space.low) / 2.0
    model = TD3(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        train_freq=config.train_freq,
        gradient_steps=config.gradient_steps,
        policy_delay=config.policy_delay,
        target_policy_noise=config.target_policy_noise,
        target_noise_clip=config.target_noise_clip,
        action_noise=NormalActionNoise(np.zeros(k), config.exploration_noise * half_range * np.ones(k)),
        policy_kwargs={"net_arch": list(config.net_arch)},
        device="cpu",
        seed=seed,
        verbose=0,
    )
    # SB3's default logger makes a folder under the temp dir on every learn(); an output-less logger
    # keeps the benchmark from leaving files behind and costs nothing in the measured loop.
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    first = {"done": False}

    def advance(n: int) -> None:
        model.learn(total_timesteps=n, reset_num_timesteps=not first["done"], progress_bar=False)
        first["done"] = True

    return advance


def timed(advance: Callable[[int], None], steps: int) -> float:
    start = time.perf_counter()
    advance(steps)
    return steps / (time.perf_counter() - start)


def bench_task(name: str, args: argparse.Namespace) -> dict[str, Any]:
    task_id, env_kwargs = TASKS[name]
    config = TD3Config(
        net_arch=(args.net, args.net),
        batch_size=args.batch,
        learning_starts=args.learning_starts,
        buffer_size=args.buffer,
        train_freq=1,
        gradient_steps=1,
        device="cpu",
        torch_threads=1,
    )
    learners = {
        "ours": make_ours(task_id, env_kwargs, config, args.seed),
        "sb3": make_sb3(task_id, env_kwargs, config, args.seed),
    }
    if not args.no_bare:
        learners["ours-bare"] = make_ours_bare(task_id, env_kwargs, config, args.seed)
    torch.set_num_threads(1)  # TD3Population sets it from the config; SB3 would leave torch's default
    for advance in learners.values():  # random warm-up plus a few updates, untimed
        advance(args.learning_starts + args.warmup)
    speeds: dict[str, list[float]] = {key: [] for key in learners}
    order = list(learners)
    for pair in range(args.pairs):
        # Rotate the order so neither learner always runs first after the other's cache footprint.
        for key in order[pair % len(order) :] + order[: pair % len(order)]:
            torch.set_num_threads(1)
            speeds[key].append(timed(learners[key], args.segment))
    ratios = [o / s for o, s in zip(speeds["ours"], speeds["sb3"], strict=True)]
    row = {
        "task": name,
        "sps": {k: statistics.median(v) for k, v in speeds.items()},
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }
    if "ours-bare" in speeds:
        row["bare_ratio"] = statistics.median(
            [o / s for o, s in zip(speeds["ours-bare"], speeds["sb3"], strict=True)]
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="pendulum,uav", help="comma-separated: pendulum, uav")
    parser.add_argument("--net", type=int, default=256, help="hidden width of both layers (256 or 64)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100, help="timed-out steps after learning_starts")
    parser.add_argument("--buffer", type=int, default=100_000)
    parser.add_argument("--segment", type=int, default=250, help="env steps per timed segment")
    parser.add_argument("--pairs", type=int, default=5, help="alternating segment pairs per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bare", action="store_true", help="skip the minimal-loop learner")
    args = parser.parse_args()

    rows = [bench_task(name.strip(), args) for name in args.tasks.split(",") if name.strip()]
    print(f"net [{args.net}, {args.net}], batch {args.batch}, train_freq 1, gradient_steps 1, 1 torch thread")
    print(f"{args.pairs} alternating pairs of {args.segment} steps per task; env steps/s are medians")
    header = (
        f"{'task':<10} {'ours':>8} {'sb3':>8} {'ours-bare':>10} {'ours/sb3':>9} {'bare/sb3':>9}  per-pair"
    )
    print(header)
    for row in rows:
        sps = row["sps"]
        bare = f"{sps['ours-bare']:10.1f}" if "ours-bare" in sps else f"{'-':>10}"
        bare_ratio = f"{row['bare_ratio']:9.2f}" if "bare_ratio" in row else f"{'-':>9}"
        pairs = " ".join(f"{r:.2f}" for r in row["ratios"])
        print(
            f"{row['task']:<10} {sps['ours']:8.1f} {sps['sb3']:8.1f} {bare} {row['ratio']:9.2f} {bare_ratio}  {pairs}"
        )
    headline = ", ".join(f"{row['task']} {row['ratio']:.2f}x" for row in rows)
    print(f"headline: ours/SB3 TD3 training env-steps/s (median of pairs, net {args.net}): {headline}")


if __name__ == "__main__":
    main()
