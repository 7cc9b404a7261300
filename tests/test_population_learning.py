"""Population equivalence on Pendulum-v1 (slow: 31 min on a shared 2-core machine; ``pytest -m slow -s``
prints the figures).

- A population of one reproduces the learning curves the single-agent TD3 recorded before populations existed
  (``tests/data/td3_single_agent_pendulum.json``: plain TD3, 64x64, batch 128, learning_starts 1000, 6000
  steps, evaluations every 1000 steps of 5 episodes, seeds 0-9). Bit-for-bit equality is not expected: the
  random streams (replay indices, noise) and the order of float reductions changed, so the check is
  distributional. Tolerance: the bootstrap interval of the difference of final-fitness IQMs contains 0, and at
  every evaluation step the mean over seeds lies within 3 standard errors of the difference of the two means
  (a two-sample band: identical distributions fall outside it with probability ~0.3% per step).
- An agent trained inside a population of 8 whose other agents have different hyperparameters reaches the
  same final-fitness distribution as when trained alone (10 seeds each; the interval of the IQM difference
  contains 0).
- Plain TD3 populations of 10 seeds reach an IQM >= -200 at 20k steps (rl-zoo's TD3: -152 +- 90).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autogai.agents import TD3Config
from autogai.core.statistics import compare, estimate
from autogai.tasks import get_task
from autogai.training import AgentSpec, evaluate_population, train

pytestmark = pytest.mark.slow

REFERENCE = Path(__file__).parent / "data" / "td3_single_agent_pendulum.json"
SEEDS = range(10)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def pendulum():
    return get_task("pendulum")


@pytest.fixture(scope="module")
def reference_config(reference: dict) -> TD3Config:
    return TD3Config.from_dict(reference["td3_config"])


@pytest.fixture(scope="module")
def alone(reference: dict, reference_config: TD3Config, pendulum) -> dict[int, list[tuple[int, float]]]:
    """Curves of populations of one, in the reference's configuration: ``{seed: [(step, fitness), ...]}``."""
    curves = {}
    for seed in SEEDS:
        (result,) = train(
            pendulum,
            [AgentSpec(seed=seed, td3_config=reference_config)],
            total_steps=reference["total_steps"],
            eval_every=reference["eval_every"],
            eval_episodes=reference["eval_episodes"],
        )
        assert result.status == "completed", result.reason
        curves[seed] = [(int(row["step"]), float(row["fitness"])) for row in result.curve]
    return curves


def test_population_of_one_reproduces_the_single_agent_curves(reference: dict, alone: dict) -> None:
    recorded = {int(seed): curve for seed, curve in reference["curves"].items()}
    steps = [int(step) for step, _ in recorded[0]]
    assert all([step for step, _ in alone[seed]] == steps for seed in SEEDS)
    new = np.array([[fitness for _, fitness in alone[seed]] for seed in SEEDS])
    old = np.array([[fitness for _, fitness in recorded[seed]] for seed in SEEDS])
    n = len(SEEDS)
    print("\nstep   mean(P=1)  mean(recorded)  difference  band (3 SE)")
    for j, step in enumerate(steps):
        difference = new[:, j].mean() - old[:, j].mean()
        band = 3.0 * math.sqrt(new[:, j].var(ddof=1) / n + old[:, j].var(ddof=1) / n)
        print(
            f"{step:5d}  {new[:, j].mean():9.1f}  {old[:, j].mean():14.1f}  {difference:10.1f}  {band:10.1f}"
        )
        assert abs(difference) <= band, f"step {step}: mean differs by {difference:.1f} (band {band:.1f})"
    comparison = compare(new[:, -1], old[:, -1])
    print(
        f"final IQM P=1 {estimate(new[:, -1]).iqm:.1f}, recorded {estimate(old[:, -1]).iqm:.1f}; difference "
        f"{comparison.difference:.1f} [{comparison.difference_low:.1f}, {comparison.difference_high:.1f}]"
    )
    assert comparison.difference_low <= 0.0 <= comparison.difference_high


def _neighbour(config: TD3Config, j: int) -> TD3Config:
    """A different configuration of the same shape for neighbour ``j`` (learning rate, tau, gamma, noises)."""
    return config.replace(
        learning_rate=(3e-4, 3e-3, 5e-4, 2e-3)[j % 4],
        tau=(0.01, 0.02, 0.002)[j % 3],
        gamma=(0.98, 0.95)[j % 2],
        exploration_noise=(0.2, 0.05, 0.3)[j % 3],
        target_policy_noise=(0.1, 0.3)[j % 2],
    )


def test_agent_inside_a_population_of_8_matches_training_alone(
    reference: dict, reference_config: TD3Config, alone: dict, pendulum
) -> None:
    inside = []
    for seed in SEEDS:
        position = seed % 8  # the agent sits at every position of the population across the seeds
        specs = [
            AgentSpec(seed=1000 + 8 * seed + j, td3_config=_neighbour(reference_config, j)) for j in range(8)
        ]
        specs[position] = AgentSpec(seed=seed, td3_config=reference_config)
        results = train(
            pendulum,
            specs,
            total_steps=reference["total_steps"],
            eval_every=0,
            eval_episodes=reference["eval_episodes"],
        )
        assert all(r.status == "completed" for r in results), [r.reason for r in results]
        inside.append(results[position].fitness)
    solo = [alone[seed][-1][1] for seed in SEEDS]
    comparison = compare(inside, solo)
    print(
        f"\nfinal IQM inside a population of 8 {estimate(inside).iqm:.1f}, alone {estimate(solo).iqm:.1f}; "
        f"difference {comparison.difference:.1f} "
        f"[{comparison.difference_low:.1f}, {comparison.difference_high:.1f}]"
    )
    assert comparison.difference_low <= 0.0 <= comparison.difference_high


def test_plain_td3_population_of_10_seeds_solves_pendulum_within_20k_steps(pendulum) -> None:
    # rl-zoo's TD3 Pendulum settings (gamma 0.98, lr 1e-3, N(0, 0.1) noise) with 64x64 networks.
    config = TD3Config(net_arch=(64, 64), gamma=0.98, learning_starts=1_000, device="cpu")
    results = train(
        pendulum,
        [AgentSpec(seed=seed, td3_config=config) for seed in SEEDS],
        total_steps=20_000,
        eval_every=5_000,
        eval_episodes=5,
    )
    assert all(r.status == "completed" for r in results), [r.reason for r in results]
    population = results[0].agent
    assert population.size == 10 and all(r.agent is population for r in results)
    # Held-out episodes (a seed no training evaluation used), 20 per agent.
    evaluations = evaluate_population(population, pendulum, episodes=20, seed=12_345)
    scores = [e.fitness_mean for e in evaluations]
    score = estimate(scores)
    print(f"\nPendulum-v1, 10 seeds, 20k steps: IQM {score.iqm:.1f} [{score.low:.1f}, {score.high:.1f}]")
    print(f"per agent: {[round(s, 1) for s in scores]}")
    assert score.iqm >= -200.0
