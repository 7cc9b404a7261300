"""Task cards (uav-nearfield, pendulum), the user-card recipe of docs/task_cards.md, and `autogai env`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from autogai.envs.uav import METRIC_NAMES, oracle_episode_fitness
from autogai.tasks import get_task, list_tasks

DOC = Path(__file__).resolve().parents[1] / "docs" / "task_cards.md"


def _run_program(source: str, metrics: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Execute a reward program directly (trusted test sources only) with its default PARAMS."""
    namespace: dict = {}
    exec(compile(source, "<reward>", "exec"), namespace)
    params = {name: spec["default"] for name, spec in namespace.get("PARAMS", {}).items()}
    return namespace["compute_reward"](SimpleNamespace(**metrics), params)


def test_builtin_cards_are_registered() -> None:
    ids = {card.id for card in list_tasks()}
    assert {"uav-nearfield", "pendulum"} <= ids
    uav = get_task("uav-nearfield")
    assert uav.env_id == "autogai/UAVNearField-v0" and uav.fitness_aggregate == "mean"
    assert uav.metric_names == METRIC_NAMES
    assert set(uav.violation_metrics) == {"out_of_area", "outside_near_field", "relay_violation"}
    assert {"rate_df", "power_total_mw", "feasible"} <= set(uav.report_metrics)
    assert uav.action_modes == ("continuous", "discrete", "hybrid")
    assert all(spec.unit and spec.meaning for spec in uav.metrics)
    assert "133.33" in uav.description and "| rate_df | bit/s/Hz |" in uav.metrics_table()


def test_uav_card_metrics_fitness_and_baseline_reward() -> None:
    card = get_task("uav-nearfield")
    assert card.oracle_fitness is not None and card.oracle_fitness() == pytest.approx(
        oracle_episode_fitness()
    )
    for action_mode in card.action_modes:
        env = card.make_env(action_mode=action_mode)
        env.action_space.seed(0)
        obs, _ = env.reset(seed=0, options={"uav_position": (60.0, 90.0)})
        fitness = []
        for _ in range(5):
            action = env.action_space.sample()
            next_obs, reward, _, _, info = env.step(action)
            metrics = card.metrics_fn(obs, action, reward, next_obs, info)
            assert tuple(metrics) == card.metric_names
            assert all(isinstance(value, float) for value in metrics.values())
            assert card.fitness_fn(metrics, reward) == reward
            total, components = _run_program(card.baseline_reward, metrics)
            paper = (
                10 * metrics["rate_uav_user"]
                - 0.005 * metrics["power_total_mw"]
                - 50 * metrics["out_of_area"]
                - 50 * metrics["outside_near_field"]
                - 50 * metrics["relay_violation"]
            )
            assert total == pytest.approx(paper)
            assert set(components) == {
                "rate",
                "power",
                "out_of_area",
                "outside_near_field",
                "relay_violation",
            }
            fitness.append(card.fitness_fn(metrics, reward))
            obs = next_obs
        assert card.episode_fitness(fitness) == pytest.approx(np.mean(fitness))


def test_baseline_programs_pass_the_reward_parser() -> None:
    from autogai.rewards.program import RewardProgram

    for card in list_tasks():
        if card.id not in ("uav-nearfield", "pendulum"):
            continue
        program = RewardProgram.from_source(card.baseline_reward)
        assert program.params and program.component_names


def test_pendulum_baseline_reproduces_the_native_reward() -> None:
    card = get_task("pendulum")
    assert card.env_id == "Pendulum-v1" and card.fitness_aggregate == "sum" and card.action_modes == ()
    env = card.make_env()
    env.action_space.seed(1)
    obs, _ = env.reset(seed=1)
    returns = []
    for _ in range(60):
        action = env.action_space.sample() * 1.5  # some actions beyond the torque limit: clipped like the env
        next_obs, reward, _, _, info = env.step(action)
        metrics = card.metrics_fn(obs, action, reward, next_obs, info)
        assert set(metrics) == set(card.metric_names)
        assert -math.pi <= metrics["theta"] <= math.pi and abs(metrics["torque"]) <= 2.0
        assert metrics["upright"] == pytest.approx(math.cos(metrics["theta"]), abs=1e-6)
        total, components = _run_program(card.baseline_reward, metrics)
        assert total == pytest.approx(reward, abs=1e-4)
        assert set(components) == {"angle", "velocity", "torque"}
        returns.append(card.fitness_fn(metrics, reward))
        obs = next_obs
    assert card.episode_fitness(returns) == pytest.approx(sum(returns))


def test_user_card_from_the_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card docs/task_cards.md points to loads from its file and drives its env, and the page's
    "Checking a card" snippet runs as written."""
    text = DOC.read_text()
    assert "(../examples/tasks/mountain_car.py)" in text
    monkeypatch.chdir(DOC.parent.parent)
    card = get_task("examples/tasks/mountain_car.py")
    assert card.id == "mountain-car" and get_task("mountain-car") is card
    env = card.make_env()
    obs, _ = env.reset(seed=0)
    action = env.action_space.sample()
    next_obs, reward, _, _, info = env.step(action)
    metrics = card.metrics_fn(obs, action, reward, next_obs, info)
    assert set(metrics) == set(card.metric_names)
    total, _ = _run_program(card.baseline_reward, metrics)
    assert total == pytest.approx(card.fitness_fn(metrics, reward))
    check = text[text.index("## Checking a card") :]
    snippet = re.search(r"```python\n(.*?)```", check, re.S)
    assert snippet is not None
    exec(compile(snippet.group(1), "docs/task_cards.md", "exec"), {})


def test_env_check_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    from autogai.cli.main import main

    assert main(["env", "check"]) == 0
    out = capsys.readouterr().out
    assert "all 20 values match to two decimals" in out
    assert out.count(" ok ") == 6
    assert out.strip().splitlines()[-1].startswith("env check: all checks passed")
    assert main(["env", "list"]) == 0
    assert "uav-nearfield" in capsys.readouterr().out


def test_env_check_command_fails_with_a_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from autogai.cli.main import main
    from autogai.envs import uav

    wrong = ((uav.SANITY_TABLE[0][0], {**uav.SANITY_TABLE[0][1], "unit_norm": 99.0}, 4.09),)
    monkeypatch.setattr(uav, "SANITY_TABLE", wrong)
    assert main(["env", "check"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: sanity table: 1 of 4 values differ" in out
    assert out.strip().splitlines()[-1].startswith("env check: 1 problem(s)")
