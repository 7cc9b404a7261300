"""How many training steps the UAV task needs: the paper's baseline reward vs a fitness-aligned reward.

Each reward trains 10 seeds of plain TD3 (64x64, batch 128, learning_starts 1000, continuous actions) as one
population; every agent is evaluated on the task fitness at five points. The table gives the IQM over seeds at
each point and the final IQM with its 95% bootstrap interval. Hovering at the start earns 31.0 per slot and the
oracle 42.85. This is what the ``quick`` preset's training budget is derived from.

    .venv/bin/python bench/uav_budget.py            # 10k steps
    .venv/bin/python bench/uav_budget.py 6000
"""

from __future__ import annotations

import sys
import time

import numpy as np

from autogai.agents import TD3Config
from autogai.core.statistics import estimate
from autogai.tasks import get_task
from autogai.tasks.uav_nearfield import FITNESS_ALIGNED_REWARD
from autogai.training import AgentSpec, train


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    task = get_task("uav-nearfield")
    config = TD3Config(net_arch=(64, 64), batch_size=128, learning_starts=1000, device="cpu")
    for name, source in (("baseline", None), ("aligned", FITNESS_ALIGNED_REWARD)):
        start = time.time()
        results = train(
            task,
            [AgentSpec(seed=1000 + s, td3_config=config) for s in range(10)],
            reward_source=source,
            total_steps=steps,
            eval_every=steps // 5,
            eval_episodes=1,
            env_kwargs={"action_mode": "continuous"},
        )
        curves = np.array([[row["fitness"] for row in r.curve] for r in results])  # [seeds, evaluations]
        steps_at = [row["step"] for row in results[0].curve]
        iqms = [round(estimate(curves[:, j]).iqm, 1) for j in range(curves.shape[1])]
        final = estimate(curves[:, -1])
        print(
            f"{name}: {time.time() - start:.0f} s; IQM at steps {steps_at}: {iqms}; final IQM {final.iqm:.2f} "
            f"[{final.low:.2f}, {final.high:.2f}] over {final.n} seeds",
            flush=True,
        )


if __name__ == "__main__":
    main()
