"""The contract types: PARAMS parsing, signature, static facts, and the restricted runtime in-process."""

from __future__ import annotations

import numpy as np
import pytest
from reward_helpers import TINY_BASELINE, TINY_TASK

from autogai.core.errors import ConfigError, RewardRejectedError
from autogai.rewards import ParamSpec, RewardProgram, load_program, validate_reward_program
from autogai.rewards.restricted import MetricsView, SandboxViolation

OBS = np.array([1.0, 0.0, 0.5], dtype=np.float32)


def test_params_are_parsed_into_specs():
    program = RewardProgram.from_source(TINY_BASELINE)
    assert program.params == {
        "angle_weight": ParamSpec(1.0, 0.1, 10.0, True),
        "speed_weight": ParamSpec(0.1, 0.01, 1.0, True),
    }
    assert program.default_params() == {"angle_weight": 1.0, "speed_weight": 0.1}
    assert program.component_names == ("angle", "speed")
    assert program.metric_reads == {"angle": 9, "speed": 10}
    assert program.resolve_params({"angle_weight": 3}) == {"angle_weight": 3.0, "speed_weight": 0.1}
    with pytest.raises(ConfigError, match="not in PARAMS"):
        program.resolve_params({"nope": 1.0})
    with pytest.raises(ConfigError, match="finite"):
        program.resolve_params({"angle_weight": float("nan")})
    assert program == RewardProgram.from_source(TINY_BASELINE)
    assert ParamSpec(1.0, 0.0, 2.0).to_dict() == {"default": 1.0, "low": 0.0, "high": 2.0, "log": False}


def test_program_without_params_is_valid():
    program = RewardProgram.from_source("def compute_reward(m, p):\n    return m.x, {'x': m.x}\n")
    assert program.params == {}
    assert program.default_params() == {}
    assert program.component_names == ("x",)


def test_component_names_are_empty_when_not_literal():
    program = RewardProgram.from_source(
        "def compute_reward(m, p):\n    c = {f'k{i}': 0.0 for i in range(2)}\n    return 0.0, c\n"
    )
    assert program.component_names == ()


def test_metrics_view_is_read_only():
    view = MetricsView.build({"x": 1, "flag": True}, OBS, 0.5, OBS)
    assert view.x == 1.0 and view.flag == 1.0
    assert view.obs.dtype == np.float64 and not view.obs.flags.writeable
    assert view.action.shape == (1,)
    with pytest.raises(SandboxViolation):
        view.x = 2.0
    with pytest.raises(ValueError, match="read-only"):
        view.obs[0] = 3.0
    with pytest.raises(AttributeError, match="not available"):
        _ = view.missing


def test_hybrid_actions_are_flattened():
    view = MetricsView.build({}, OBS, (3, np.array([0.5, -0.5])), OBS)
    assert view.action.tolist() == [3.0, 0.5, -0.5]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("x = m.obs.fill", "attribute 'fill' of ndarray"),
        ("x = (m.x).hex", "attribute 'hex' of float"),
        ("x = compute_reward.dummy", "attribute 'dummy' of function"),
        ("x = [np][0].random", "np.random is not available"),
        ("x = [np.linalg][0].inv", "np.linalg.inv is not available"),
        ("x = range(10**7)", "range of 10000000 items"),
        ("x = pow(7, 10**6)", "integer power"),
        ("x = np.zeros((10**4, 10**4))", "np.zeros of 100000000 elements"),
        ("x = np.linspace(0, 1, 10**8)", "np.linspace of 100000000 elements"),
        ("x = np.arange(0.0, 1e9, 0.5)", "np.arange of 2000000000 elements"),
    ],
)
def test_runtime_guards_in_process(body, error):
    compiled = load_program(f"def compute_reward(m, p):\n    {body}\n    return 0.0, {{}}\n")
    with pytest.raises(SandboxViolation, match=error):
        compiled({"x": 1.0}, OBS, np.zeros(1), OBS)


def test_source_limits():
    with pytest.raises(RewardRejectedError, match="characters long"):
        RewardProgram.from_source("x = 1\n" * 20_000)
    deep = "def compute_reward(m, p):\n    return " + "(" * 500 + "1" + ")" * 500 + ", {}\n"
    with pytest.raises(RewardRejectedError) as raised:
        RewardProgram.from_source(deep)
    assert raised.value.stage in ("parse", "syntax")


def test_report_to_dict_is_json(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    report = validate_reward_program(TINY_BASELINE, TINY_TASK, n_transitions=16)
    assert report.ok, report.verdict
    data = json.loads(report.to_json())
    assert data["ok"] is True
    assert data["params"]["angle_weight"] == {"default": 1.0, "low": 0.1, "high": 10.0, "log": True}
    assert set(data["component_stats"]) == {"angle", "speed"}
    assert "angle" in report.feedback_text()
    rejected = validate_reward_program("import os\n", TINY_TASK, n_transitions=16)
    assert rejected.to_dict()["stage"] == "syntax"
    assert rejected.verdict.startswith("rejected at syntax (line 1)")


def test_diagnostics_warn_about_constant_and_dominating_components(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = """\
def compute_reward(m, p):
    parts = {"huge": 1e6 * (m.speed + 10.0), "tiny": 1e-3 * m.angle, "const": 1.0}
    return 0.0, parts
"""
    report = validate_reward_program(source, TINY_TASK, n_transitions=16)
    assert report.ok
    text = " | ".join(report.warnings)
    assert "'const' is constant" in text
    assert "'huge'" in text and "orders of magnitude" in text
    assert "differs from the sum" in text


@pytest.mark.parametrize("task_id", ["uav-nearfield", "pendulum"])
def test_real_task_baselines_are_accepted(task_id, tmp_path, monkeypatch):
    from autogai.tasks import get_task

    monkeypatch.chdir(tmp_path)
    task = get_task(task_id)
    report = validate_reward_program(task.baseline_reward, task, n_transitions=64)
    assert report.ok, report.verdict
    assert report.component_stats
    assert list(tmp_path.iterdir()) == []
