"""Training loop: curves, checkpoints, evaluation on the task fitness, and every way a run (or one agent of a
population) can end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from training_helpers import (
    PENDULUM_HUGE,
    PENDULUM_RAISES,
    PENDULUM_UPRIGHT,
    PENDULUM_UPSIDE_DOWN,
    tiny_config,
)

import autogai.agents
from autogai.core.errors import ConfigError
from autogai.tasks import get_task
from autogai.training import (
    AgentSpec,
    EvaluationResult,
    evaluate_population,
    load_checkpoint,
    read_curves,
    train,
    train_one,
)

# Fails for one agent's PARAMS only: w above 5 divides by zero, so an agent given w = 8 leaves and the others
# go on.
PENDULUM_PARAM_FAILS = """
PARAMS = {"w": {"default": 1.0, "low": 0.0, "high": 10.0}}

def compute_reward(m, p):
    if p["w"] > 5.0:
        return 1.0 / (p["w"] - p["w"]), {"upright": 0.0}
    value = p["w"] * float(m.next_obs[0])
    return value, {"upright": value}
"""


@pytest.fixture(scope="module")
def pendulum():
    return get_task("pendulum")


@pytest.fixture(scope="module")
def uav():
    return get_task("uav-nearfield")


@pytest.fixture
def built_populations(monkeypatch) -> list:
    """Every TD3Population the training loop builds during the test, in order (not the shape-only ones
    laid out on the meta device to size a population before it is built)."""
    built = []

    class Capturing(autogai.agents.TD3Population):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if self.device.type != "meta":
                built.append(self)

    monkeypatch.setattr(autogai.agents, "TD3Population", Capturing)
    return built


def test_pendulum_run_writes_curves_checkpoint_and_reloads_to_same_fitness(pendulum, tmp_path) -> None:
    result = train_one(
        pendulum,
        reward_source=PENDULUM_UPRIGHT,
        td3_config=tiny_config(),
        total_steps=300,
        seed=3,
        eval_every=150,
        eval_episodes=2,
        run_dir=tmp_path,
    )
    assert result.status == "completed", result.reason
    assert result.steps_done == 300 and result.num_updates > 0
    assert result.episodes_done == 1  # Pendulum-v1 episodes are 200 steps

    rows = read_curves(tmp_path / "curves.csv")
    assert [int(r["step"]) for r in rows] == [150, 300] and {r["agent"] for r in rows} == {0}
    assert {"fitness", "episode_return", "component/upright", "component/effort"} <= set(rows[0])
    assert any(key.startswith("loss/") for key in rows[-1])
    assert all(math.isfinite(r["fitness"]) for r in rows)
    best = max(rows, key=lambda r: r["fitness"])
    assert (result.best_fitness, result.best_step) == (pytest.approx(best["fitness"]), int(best["step"]))

    assert set(result.component_summaries) == {"upright", "effort"}
    upright = result.component_summaries["upright"]
    assert -1.0 <= upright.min <= upright.mean <= upright.max <= 1.0
    assert 1 <= len(upright.samples) <= 10

    final = result.final_evaluation
    assert isinstance(final, EvaluationResult) and final.episodes == 2
    assert rows[-1]["fitness"] == pytest.approx(final.fitness_mean)
    for name in ("config.json", "reward.py", "result.json", "checkpoint/checkpoint.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "reward.py").read_text() == PENDULUM_UPRIGHT
    (saved,) = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "completed" and saved["steps_done"] == 300 and saved["seed"] == 3

    population, meta = load_checkpoint(tmp_path)
    assert meta["task"] == "pendulum" and meta["steps"] == 300 and population.size == 1
    (again,) = evaluate_population(
        population, pendulum, episodes=2, seed=meta["eval_seed"], env_kwargs=meta["env_kwargs"]
    )
    assert again.episode_fitness == pytest.approx(final.episode_fitness, rel=1e-5)


def test_population_run_stores_every_agent_and_each_reloads_to_its_fitness(pendulum, tmp_path) -> None:
    specs = [
        AgentSpec(seed=4, td3_config=tiny_config()),
        AgentSpec(seed=9, td3_config=tiny_config(learning_rate=3e-3, tau=0.02), reward_params={"w": 2.0}),
        AgentSpec(seed=1, td3_config=tiny_config(exploration_noise=0.3), reward_params={"w": 0.5}),
    ]
    results = train(
        pendulum,
        specs,
        reward_source=PENDULUM_UPRIGHT,
        total_steps=300,
        eval_every=150,
        eval_episodes=2,
        run_dir=tmp_path,
    )
    assert [r.status for r in results] == ["completed"] * 3
    assert [r.seed for r in results] == [4, 9, 1]
    rows = read_curves(tmp_path / "curves.csv")
    assert sorted((int(r["agent"]), int(r["step"])) for r in rows) == [
        (a, s) for a in range(3) for s in (150, 300)
    ]
    # Agents differ in weights and reward weight: their component logs and fitness differ.
    uprights = [r.component_summaries["upright"].mean for r in results]
    assert len(set(np.round(uprights, 6))) == 3
    saved = json.loads((tmp_path / "result.json").read_text())
    assert [s["seed"] for s in saved] == [4, 9, 1]

    meta = json.loads((tmp_path / "checkpoint" / "checkpoint.json").read_text())
    assert [a["index"] for a in meta["agents"]] == [0, 1, 2]
    assert [a["seed"] for a in meta["agents"]] == [4, 9, 1]
    assert meta["agents"][1]["td3_config"]["learning_rate"] == 3e-3
    assert meta["agents"][1]["reward_params"] == {"w": 2.0}
    for index, result in enumerate(results):
        population, agent_meta = load_checkpoint(tmp_path, agent=index)
        assert population.size == 1 and population.seeds == [specs[index].seed]
        assert [a["index"] for a in agent_meta["agents"]] == [index]
        (again,) = evaluate_population(population, pendulum, episodes=2, seed=agent_meta["eval_seed"])
        assert result.final_evaluation is not None
        assert again.episode_fitness == pytest.approx(result.final_evaluation.episode_fitness, rel=1e-5)
    from autogai.core.errors import RunDirectoryError

    with pytest.raises(RunDirectoryError, match=r"no agent 3 in the checkpoint.*holds agents 0, 1, 2"):
        load_checkpoint(tmp_path, agent=3)


@pytest.mark.parametrize("action_mode", ["continuous", "hybrid"])
def test_uav_run_reports_task_metrics_and_violations(uav, tmp_path, action_mode: str) -> None:
    result = train_one(
        uav,
        td3_config=tiny_config(),
        total_steps=250,
        seed=0,
        env_kwargs={"action_mode": action_mode},
        eval_every=0,
        eval_episodes=2,
        run_dir=tmp_path,
    )
    assert result.status == "completed", result.reason
    final = result.final_evaluation
    assert final is not None and final.episodes == 2 and final.episode_length_mean == 100
    assert {"rate_df", "power_total_mw"} <= set(final.report_metrics)
    assert final.infeasible_fraction is not None and 0.0 <= final.infeasible_fraction <= 1.0
    assert final.oracle_fitness is not None and final.oracle_fitness > 31.0
    assert set(result.violation_rates) == set(uav.violation_metrics)
    assert all(0.0 <= v <= 1.0 for v in result.violation_rates.values())
    assert result.component_summaries  # the baseline program's components were logged

    population, meta = load_checkpoint(tmp_path)
    assert meta["env_kwargs"] == {"action_mode": action_mode}
    # Three episodes instead of two: the same per-episode fitness (the UAV's near-field phases would amplify
    # any rounding difference of the policy into different trajectories, so this checks exact reloading).
    (again,) = evaluate_population(
        population, uav, episodes=3, seed=meta["eval_seed"], env_kwargs=meta["env_kwargs"]
    )
    assert again.episode_fitness[:2] == pytest.approx(final.episode_fitness, rel=1e-9)


def test_report_callback_prunes(pendulum) -> None:
    calls: list[tuple[int, int, float]] = []

    def report(agent: int, step: int, fitness: float) -> bool:
        calls.append((agent, step, fitness))
        return False

    result = train_one(
        pendulum,
        td3_config=tiny_config(),
        total_steps=1_000,
        seed=0,
        eval_every=100,
        eval_episodes=1,
        report=report,
    )
    assert result.status == "pruned"
    assert "step 100" in result.reason
    assert result.steps_done == 100 and len(calls) == 1 and calls[0][:2] == (0, 100)
    assert result.final_evaluation is not None and result.final_evaluation.fitness_mean == calls[0][2]


def test_a_pruned_agent_leaves_and_the_others_go_on(pendulum) -> None:
    calls: list[tuple[int, int]] = []

    def report(agent: int, step: int, fitness: float) -> bool:
        calls.append((agent, step))
        return agent != 1

    results = train(
        pendulum,
        [AgentSpec(seed=s, td3_config=tiny_config()) for s in range(3)],
        total_steps=300,
        eval_every=100,
        eval_episodes=1,
        report=report,
    )
    assert [r.status for r in results] == ["completed", "pruned", "completed"]
    assert "step 100" in results[1].reason and results[1].steps_done == 100
    assert results[1].final_evaluation is not None  # its last evaluation is kept
    assert [r.steps_done for r in results] == [300, 100, 300]
    # Agent 1 is asked once; the others at every evaluation but the final one.
    assert sorted(calls) == [(0, 100), (0, 200), (1, 100), (2, 100), (2, 200)]
    assert [len(r.curve) for r in results] == [3, 1, 3]
    population = results[0].agent
    assert population.size == 2 and population.seeds == [0, 2] and results[1].agent is None
    assert [results[0].population_position, results[2].population_position] == [0, 1]


def test_reward_program_raising_mid_run_ends_with_reward_error(pendulum, tmp_path) -> None:
    result = train_one(
        pendulum,
        reward_source=PENDULUM_RAISES,
        td3_config=tiny_config(),
        total_steps=500,
        seed=0,
        eval_every=0,
        eval_episodes=1,
        run_dir=tmp_path,
    )
    assert result.status == "reward_error"
    assert "ZeroDivisionError" in result.reason or "division" in result.reason
    assert 0 < result.steps_done < 500
    assert json.loads((tmp_path / "result.json").read_text())[0]["status"] == "reward_error"


def test_reward_failing_for_one_agents_params_only_removes_that_agent(pendulum) -> None:
    results = train(
        pendulum,
        [
            AgentSpec(seed=0, td3_config=tiny_config(), reward_params={"w": 1.0}),
            AgentSpec(seed=1, td3_config=tiny_config(), reward_params={"w": 8.0}),
            AgentSpec(seed=2, td3_config=tiny_config(), reward_params={"w": 3.0}),
        ],
        reward_source=PENDULUM_PARAM_FAILS,
        total_steps=150,
        eval_every=0,
        eval_episodes=1,
    )
    assert [r.status for r in results] == ["completed", "reward_error", "completed"]
    assert "ZeroDivisionError" in results[1].reason or "division" in results[1].reason
    assert results[1].steps_done == 1  # it leaves after its first step
    assert results[1].final_evaluation is None
    assert all(r.steps_done == 150 and r.final_evaluation is not None for r in (results[0], results[2]))


def test_rejected_reward_program_is_a_reward_error_not_an_exception(pendulum) -> None:
    results = train(
        pendulum,
        [AgentSpec(seed=s, td3_config=tiny_config()) for s in range(2)],
        reward_source="import os\ndef compute_reward(m, p):\n    return 0.0, {}\n",
        total_steps=100,
        eval_every=0,
        eval_episodes=1,
    )
    assert [r.status for r in results] == ["reward_error"] * 2
    assert all("rejected" in r.reason and r.steps_done == 0 for r in results)


def test_overflowing_critic_ends_as_diverged(pendulum) -> None:
    result = train_one(
        pendulum,
        reward_source=PENDULUM_HUGE,
        td3_config=tiny_config(),
        total_steps=300,
        seed=0,
        eval_every=0,
        eval_episodes=1,
    )
    assert result.status == "diverged"
    assert "non-finite" in result.reason
    assert result.final_evaluation is None


def test_an_agent_with_nan_parameters_leaves_as_diverged_and_the_others_complete(
    pendulum, built_populations
) -> None:
    def poison(agent: int, step: int, fitness: float) -> bool:
        # Corrupt every weight of agent 1 after the first evaluation (no agent has left yet, so spec index
        # 1 is population position 1).
        if agent == 1 and step == 100:
            with torch.no_grad():
                for module in built_populations[0]._modules().values():
                    for param in module.parameters():
                        param[1] = float("nan")
        return True

    results = train(
        pendulum,
        [AgentSpec(seed=s, td3_config=tiny_config()) for s in range(3)],
        total_steps=400,
        eval_every=100,
        eval_episodes=1,
        report=poison,
    )
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    assert "non-finite" in results[1].reason and "step" in results[1].reason
    assert results[1].final_evaluation is None and results[1].steps_done < 400
    assert all(r.steps_done == 400 and math.isfinite(r.fitness) for r in (results[0], results[2]))
    assert built_populations[0].size == 2 and built_populations[0].seeds == [0, 2]


def test_time_limit_ends_as_timeout_with_an_evaluation(pendulum) -> None:
    result = train_one(
        pendulum,
        td3_config=tiny_config(),
        total_steps=10**7,
        seed=0,
        eval_every=0,
        eval_episodes=1,
        time_limit_s=1.0,
    )
    assert result.status == "timeout" and "time limit" in result.reason
    assert 0 < result.steps_done < 10**7
    assert result.final_evaluation is not None


def test_one_agents_time_limit_does_not_stop_the_others(pendulum) -> None:
    results = train(
        pendulum,
        [
            AgentSpec(seed=0, td3_config=tiny_config(), time_limit_s=0.5),
            AgentSpec(seed=1, td3_config=tiny_config()),
        ],
        total_steps=1_500,
        eval_every=0,
        eval_episodes=1,
    )
    assert [r.status for r in results] == ["timeout", "completed"]
    assert 0 < results[0].steps_done < 1_500 and results[1].steps_done == 1_500
    assert all(r.final_evaluation is not None for r in results)


def test_evaluation_fitness_does_not_depend_on_the_reward(pendulum) -> None:
    # No updates happen before learning_starts, so both runs end with the same (initial) policy; only
    # the reward differs, and the training returns show it did.
    runs = [
        train_one(
            pendulum,
            reward_source=source,
            td3_config=tiny_config(learning_starts=10_000),
            total_steps=200,
            seed=5,
            eval_every=0,
            eval_episodes=2,
        )
        for source in (PENDULUM_UPRIGHT, PENDULUM_UPSIDE_DOWN)
    ]
    assert all(r.status == "completed" for r in runs)
    assert runs[0].curve[-1]["episode_return"] != pytest.approx(runs[1].curve[-1]["episode_return"])
    assert runs[0].final_evaluation.episode_fitness == runs[1].final_evaluation.episode_fitness


def test_evaluate_population_is_deterministic_and_gives_every_agent_the_same_episodes(pendulum) -> None:
    results = train(
        pendulum,
        [AgentSpec(seed=s, td3_config=tiny_config()) for s in (1, 2)],
        total_steps=100,
        eval_every=0,
        eval_episodes=1,
    )
    population = results[0].agent
    first = evaluate_population(population, pendulum, episodes=3, seed=11)
    second = evaluate_population(population, pendulum, episodes=3, seed=11)
    assert [r.episode_fitness for r in first] == [r.episode_fitness for r in second]
    assert len(first) == 2 and all(r.seed == 11 for r in first)
    assert len(set(np.round(first[0].episode_fitness, 6))) > 1  # different seeds, different episodes
    assert first[0].episode_fitness != first[1].episode_fitness  # different policies
    # A population of one holding agent 1 scores exactly what agent 1 scored inside the population.
    population.keep([1])
    (alone,) = evaluate_population(population, pendulum, episodes=3, seed=11)
    assert alone.episode_fitness == pytest.approx(first[1].episode_fitness, rel=1e-6)
    data = first[0].to_dict()
    json.dumps(data)
    assert data["episodes"] == 3 and data["fitness_mean"] == pytest.approx(first[0].fitness_mean)


def test_bad_arguments_raise_config_errors_and_leave_no_run_directory(pendulum, tmp_path: Path) -> None:
    spec = AgentSpec(td3_config=tiny_config())
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="total_steps"):
        train(pendulum, [spec], total_steps=0, eval_every=0, eval_episodes=1, run_dir=run_dir)
    with pytest.raises(ConfigError, match="at least one agent"):
        train(pendulum, [], total_steps=10, eval_every=0, eval_episodes=1, run_dir=run_dir)
    with pytest.raises(ConfigError, match="agent 1 differs from agent 0 in net_arch"):
        train(
            pendulum,
            [spec, AgentSpec(td3_config=tiny_config(net_arch=(32, 32)))],
            total_steps=10,
            eval_every=0,
            eval_episodes=1,
            run_dir=run_dir,
        )
    with pytest.raises(ConfigError, match="unknown reward parameter"):
        train(
            pendulum,
            [AgentSpec(td3_config=tiny_config(), reward_params={"nope": 1.0})],
            reward_source=PENDULUM_UPRIGHT,
            total_steps=10,
            eval_every=0,
            eval_episodes=1,
            run_dir=run_dir,
        )
    assert not run_dir.exists()  # nothing half-written


def test_memory_check_fires_before_anything_big_is_allocated(pendulum, built_populations) -> None:
    huge = tiny_config(buffer_size=10**12)
    with pytest.raises(ConfigError, match=r"needs about .* GiB .* free; train fewer agents"):
        train(pendulum, [AgentSpec(seed=s, td3_config=huge) for s in range(64)], total_steps=10**12)
    # Sized on the meta device: no population (and so no replay or network) was built at all.
    assert built_populations == []
