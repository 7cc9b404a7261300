"""Return reached vs budget over seeds.

- Pendulum-v1, plain TD3: mean evaluation return over seeds at each budget checkpoint (rl-zoo's published
  TD3: -152 ± 90 at 20k steps; target: >= -200 mean at 20k over 5 seeds).
- UAV near-field, continuous actions, the baseline reward (or ``--uav-reward aligned``): evaluation fitness of plain TD3 and ``gdm`` as a
  fraction of the scripted oracle's episode fitness (target: >= 90% at the standard budget), with the
  start-hover reference (~31.0 per slot) for scale.

Each (task, enhancers) trains its seeds as one population (one ``autogai.training.train`` call, one agent
per seed); evaluation uses 10 episodes on seeds disjoint from training. Populations are independent, so
``--workers 2`` uses both cores when the machine is free.

Usage::

    .venv/bin/python bench/learning.py                                   # full: 5 seeds, 20k steps
    .venv/bin/python bench/learning.py --tasks pendulum --seeds 2 --steps 10000 --net 64   # quick

The last line is the headline: Pendulum mean return and UAV oracle fractions at the full budget.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from autogai.tasks.uav_nearfield import FITNESS_ALIGNED_REWARD

EVAL_EPISODES = 10

# ``--uav-reward aligned``: a reward aligned with the task fitness (DF rate while feasible, power, a penalty
# for leaving the feasible region). The default is the task's baseline (the paper's reward).
UAV_ALIGNED_REWARD = FITNESS_ALIGNED_REWARD


def run_population(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Train one (task, enhancers) with one agent per seed; one row per seed."""
    import torch

    from autogai.agents import TD3Config
    from autogai.tasks import get_task
    from autogai.training import AgentSpec, train

    torch.set_num_threads(1)
    card = get_task(spec["task"])
    config = TD3Config(**spec["config"])
    results = train(
        card,
        [AgentSpec(seed=seed, td3_config=config) for seed in spec["seeds"]],
        enhancers=spec["enhancers"],
        reward_source=spec.get("reward_source"),
        total_steps=spec["steps"],
        env_kwargs=spec["env_kwargs"],
        eval_every=spec["eval_every"],
        eval_episodes=EVAL_EPISODES,
    )
    return [
        {
            "label": spec["label"],
            "seed": result.seed,
            "status": result.status,
            "reason": result.reason,
            "curve": [(int(r["step"]), r["fitness"]) for r in result.curve],
            "final": result.fitness,
            "oracle": None if result.final_evaluation is None else result.final_evaluation.oracle_fitness,
            "wall_time_s": result.wall_time_s,
        }
        for result in results
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="pendulum,uav", help="comma-separated: pendulum, uav")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20_000, help="Pendulum budget in env steps")
    parser.add_argument("--uav-steps", type=int, default=20_000, help="UAV budget in env steps")
    parser.add_argument("--uav-enhancers", default="plain,gdm")
    parser.add_argument(
        "--uav-reward", choices=("baseline", "aligned"), default="baseline", help="UAV reward program"
    )
    parser.add_argument("--net", type=int, default=256, help="hidden width of both layers")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    specs: list[dict[str, Any]] = []
    if "pendulum" in tasks:
        # rl-zoo's TD3 Pendulum settings (gamma 0.98, lr 1e-3, N(0, 0.1) noise), shorter random warm-up.
        config = {"net_arch": (args.net, args.net), "gamma": 0.98, "learning_starts": 1000, "device": "cpu"}
        specs.append(
            {
                "label": "pendulum plain",
                "task": "pendulum",
                "enhancers": "plain",
                "env_kwargs": {},
                "config": config,
                "steps": args.steps,
                "seeds": list(range(args.seeds)),
                "eval_every": args.eval_every,
            }
        )
    if "uav" in tasks:
        config = {"net_arch": (args.net, args.net), "learning_starts": 1000, "device": "cpu"}
        for enhancers in [e.strip() for e in args.uav_enhancers.split(",") if e.strip()]:
            specs.append(
                {
                    "label": f"uav {enhancers}",
                    "reward_source": UAV_ALIGNED_REWARD if args.uav_reward == "aligned" else None,
                    "task": "uav-nearfield",
                    "enhancers": enhancers,
                    "env_kwargs": {"action_mode": "continuous"},
                    "config": config,
                    "steps": args.uav_steps,
                    "seeds": list(range(args.seeds)),
                    "eval_every": args.eval_every,
                }
            )

    start = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            populations = list(pool.map(run_population, specs))
    else:
        populations = [run_population(spec) for spec in specs]
    results = [row for rows in populations for row in rows]
    elapsed = time.perf_counter() - start

    print(
        f"{len(results)} runs, {args.seeds} seeds each, net [{args.net}, {args.net}], {elapsed:.0f} s total"
    )
    print(f"{'run':<18} {'step':>7} {'mean':>9} {'std':>8} {'min':>9} {'max':>9} {'oracle frac':>11}  status")
    headline: list[str] = []
    for label in dict.fromkeys(r["label"] for r in results):
        runs = [r for r in results if r["label"] == label]
        failed = [r for r in runs if r["status"] != "completed"]
        status = "ok" if not failed else f"{len(failed)} failed: {failed[0]['status']} {failed[0]['reason']}"
        steps = sorted({s for r in runs for s, _ in r["curve"]})
        oracle = next((r["oracle"] for r in runs if r["oracle"]), None)
        for step in steps:
            values = [f for r in runs for s, f in r["curve"] if s == step]
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            frac = f"{mean / oracle:11.1%}" if oracle else f"{'':>11}"
            print(
                f"{label:<18} {step:7d} {mean:9.2f} {std:8.2f} {min(values):9.2f} {max(values):9.2f} {frac}  {status}"
            )
        finals = [r["final"] for r in runs if r["final"] is not None]
        if finals:
            mean = statistics.fmean(finals)
            if oracle:
                headline.append(f"{label} {mean:.2f} = {mean / oracle:.1%} of oracle {oracle:.2f}")
            else:
                headline.append(f"{label} {mean:.1f}")
    budgets = []
    if "pendulum" in tasks:
        budgets.append(f"pendulum {args.steps} steps")
    if "uav" in tasks:
        budgets.append(f"uav {args.uav_steps} steps ({args.uav_reward} reward)")
    budget = ", ".join([*budgets, f"{args.seeds} seeds, net {args.net}"])
    print(f"headline ({budget}): " + "; ".join(headline))


if __name__ == "__main__":
    main()
