"""PopulationEnv: agent-major rows, per-row seeding, and agents leaving (the list back end at once, the
batched UAV simulator at the next episode boundary) without disturbing the others."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from autogai.agents import ActionAdapter
from autogai.tasks import get_task
from autogai.training.population_env import PopulationEnv


def test_list_back_end_rows_are_agent_major_seeded_and_leavers_are_closed() -> None:
    card = get_task("pendulum")
    env = PopulationEnv(card, 2, 3, seed=10)
    env.adapter = ActionAdapter(env.single_action_space)
    obs = env.reset()
    assert obs.shape == (2, 3, 3)
    for row in range(6):  # row r = agent r // 3, env r % 3, reset with seed + r
        single = gym.make("Pendulum-v1")
        np.testing.assert_allclose(obs[row // 3, row % 3], single.reset(seed=10 + row)[0], rtol=1e-6)
        single.close()
    coords = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3, 1)
    step = env.step(coords)
    assert step.next_obs.shape == (2, 3, 3) and step.env_reward.shape == (2, 3) and len(step.metrics) == 6
    assert np.all(step.step_fitness == step.env_reward)  # Pendulum's fitness is its own reward
    agent_one = step.next_obs[1].copy()
    closed: list[int] = []
    for row, single in enumerate(env._envs):
        single.close = lambda row=row: closed.append(row)  # type: ignore[method-assign]
    env.keep([1])
    assert env.agents == 1 and env.rows == 3 and len(env._envs) == 3
    assert sorted(closed) == [0, 1, 2]  # agent 0's envs were closed at once
    np.testing.assert_array_equal(env.observations[0], agent_one)
    assert env.step(np.zeros((1, 3, 1), np.float32)).next_obs.shape == (1, 3, 3)
    env.close()


@pytest.mark.parametrize("action_mode", ["continuous", "hybrid"])
def test_batched_uav_drops_a_leaver_at_the_episode_boundary_and_the_others_see_the_same_episode(
    action_mode: str,
) -> None:
    card = get_task("uav-nearfield")
    kwargs = {"action_mode": action_mode}

    def run(leave_at: int | None) -> tuple[list[np.ndarray], PopulationEnv]:
        env = PopulationEnv(card, 3, 2, env_kwargs=kwargs, seed=4)
        adapter = ActionAdapter(env.single_action_space, codebook=env.action_codebook)
        env.adapter = adapter
        env.reset()
        seen = []
        agents = [0, 1, 2]
        for t in range(100):
            if t == leave_at:
                env.keep([0, 2])
                agents = [0, 2]
            # Agent a's actions depend on a and t only, so runs with and without a leaver are comparable.
            coords = np.stack(
                [np.random.default_rng(100 * t + a).uniform(-1, 1, (2, adapter.dim)) for a in agents]
            ).astype(np.float32)
            step = env.step(adapter.quantize(coords))
            seen.append(step.next_obs[[0, -1]])  # agents 0 and 2
            assert step.done.all() == (t == 99)
        return seen, env

    reference, full = run(None)
    with_leaver, env = run(10)
    for t, (a, b) in enumerate(zip(reference, with_leaver, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"step {t}")
    # Until the boundary the batch kept its three agents' rows; at the boundary it was rebuilt with two.
    assert env._batch.n_envs == 4 and full._batch.n_envs == 6
    assert env.observations.shape == (2, 2, full.observations.shape[-1])
    env.close()
    full.close()
