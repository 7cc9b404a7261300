"""SandboxedReward.compute_rows: N transitions with per-row PARAMS in one round trip."""

from __future__ import annotations

import contextlib
import json
import struct

import numpy as np
import pytest
from reward_helpers import TINY_BASELINE, TINY_TASK

from autogai.core.errors import ConfigError, RewardRuntimeError
from autogai.rewards import RowRewards, SandboxedReward, protocol

SIGNED = """\
PARAMS = {"w": {"default": 1.0, "low": -10.0, "high": 10.0}}


def compute_reward(m, p):
    if p["w"] < 0:
        return 1.0 / 0.0, {}
    components = {"scaled": p["w"] * m.speed, "pose": m.obs[0] * m.action[0] - m.next_obs[2]}
    if p["w"] > 5:
        components["bonus"] = 1.0
    return sum(components.values()), components
"""

SLOW_FOR_BIG_W = """\
PARAMS = {"w": {"default": 1.0, "low": 0.0, "high": 10.0}}


def compute_reward(m, p):
    s = 0.0
    if p["w"] > 5:
        for i in range(100000):
            for j in range(100000):
                s += j
    return m.speed, {"speed": m.speed}
"""


def _batch(rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    metrics = {name: rng.normal(size=rows) for name in ("angle", "speed", "torque", "upright", "native")}
    metrics["done"] = (rng.random(rows) > 0.5).astype(np.float64)
    return metrics, rng.normal(size=(rows, 3)), rng.normal(size=(rows, 1)), rng.normal(size=(rows, 3))


def _step(metrics: dict[str, np.ndarray], row: int) -> dict[str, float]:
    return {name: float(values[row]) for name, values in metrics.items()}


def test_rows_equal_compute_row_by_row_with_each_rows_params():
    metrics, obs, action, next_obs = _batch(12)
    params = [{"angle_weight": 0.5, "speed_weight": 0.02}, {"angle_weight": 3.0}, {}]
    index = np.array([0, 1, 2] * 4)
    with contextlib.ExitStack() as stack:
        sandbox = stack.enter_context(SandboxedReward(TINY_BASELINE, TINY_TASK))
        singles = [stack.enter_context(SandboxedReward(TINY_BASELINE, TINY_TASK, p)) for p in params]
        result = sandbox.compute_rows(metrics, obs, action, next_obs, params, index)
        assert isinstance(result, RowRewards)
        assert result.errors == {}
        assert result.totals.dtype == np.float64 and result.totals.shape == (12,)
        for row in range(12):
            total, components = singles[index[row]].compute(
                _step(metrics, row), obs[row], action[row], next_obs[row]
            )
            assert result.totals[row] == total
            assert {name: values[row] for name, values in result.components.items()} == components
    # the params really differ per row: the angle component scales with each row's weight
    np.testing.assert_allclose(
        result.components["angle"], -np.array([0.5, 3.0, 1.0])[index] * metrics["angle"] ** 2
    )


def test_a_row_failing_for_some_params_is_reported_and_the_others_are_computed():
    metrics, obs, action, next_obs = _batch(6, seed=1)
    index = np.array([0, 1, 2, 0, 1, 2])
    with SandboxedReward(SIGNED) as sandbox:
        result = sandbox.compute_rows(
            metrics, obs, action, next_obs, [{"w": 2.0}, {"w": -1.0}, {"w": 7.0}], index
        )
        assert result.errors == {
            1: "ZeroDivisionError: float division by zero (line 6)",
            4: "ZeroDivisionError: float division by zero (line 6)",
        }
        assert np.isnan(result.totals[[1, 4]]).all()
        ok = [0, 2, 3, 5]
        pose = obs[:, 0] * action[:, 0] - next_obs[:, 2]
        weights = np.array([2.0, np.nan, 7.0])[index]
        np.testing.assert_allclose(result.components["scaled"][ok], (weights * metrics["speed"])[ok])
        np.testing.assert_allclose(result.components["pose"][ok], pose[ok])
        # a component only some rows return is NaN in the others
        np.testing.assert_array_equal(result.components["bonus"], [np.nan, np.nan, 1.0, np.nan, np.nan, 1.0])
        np.testing.assert_allclose(
            result.totals[ok], (weights * metrics["speed"] + pose + np.where(weights > 5, 1.0, 0.0))[ok]
        )
        # the sandbox keeps serving after row errors
        total, components = sandbox.compute(
            _step(metrics, 0), obs[0], action[0], next_obs[0]
        )  # default w = 1
        assert components["pose"] == result.components["pose"][0]
        assert total == pytest.approx(result.totals[0] - metrics["speed"][0])


def test_bad_arguments_are_refused_before_anything_is_sent():
    metrics, obs, action, next_obs = _batch(4)
    with SandboxedReward(SIGNED) as sandbox:
        with pytest.raises(ValueError, match=r"param_index must lie in \[0, 1\)"):
            sandbox.compute_rows(metrics, obs, action, next_obs, [{"w": 1.0}], np.array([0, 1, 0, 0]))
        with pytest.raises(ValueError, match="metric 'speed' has shape"):
            sandbox.compute_rows(
                {**metrics, "speed": np.zeros(3)}, obs, action, next_obs, [{}], np.zeros(4, int)
            )
        with pytest.raises(ValueError, match="obs must have 4 rows"):
            sandbox.compute_rows(metrics, obs[:2], action, next_obs, [{}], np.zeros(4, int))
        with pytest.raises(ConfigError, match="'nope' is not in PARAMS"):
            sandbox.compute_rows(metrics, obs, action, next_obs, [{"nope": 1.0}], np.zeros(4, int))
        empty = {name: values[:0] for name, values in metrics.items()}
        nothing = sandbox.compute_rows(empty, obs[:0], action[:0], next_obs[:0], [{}], np.zeros(0, int))
        assert nothing.totals.size == 0 and nothing.errors == {}
        assert sandbox.alive


def test_a_stall_in_one_row_fails_the_whole_call_within_a_budget_that_scales_with_rows():
    metrics, obs, action, next_obs = _batch(8)
    with SandboxedReward(
        SLOW_FOR_BIG_W, call_timeout_s=0.5, row_timeout_s=0.05, call_cpu_limit_s=None
    ) as sandbox:
        fine = sandbox.compute_rows(metrics, obs, action, next_obs, [{"w": 1.0}], np.zeros(8, int))
        np.testing.assert_array_equal(fine.totals, metrics["speed"])
        with pytest.raises(RewardRuntimeError, match=r"timed out: no answer after 0\.9 s"):
            sandbox.compute_rows(metrics, obs, action, next_obs, [{"w": 1.0}, {"w": 9.0}], np.arange(8) % 2)
        assert not sandbox.alive


HEAVY_FOR_BIG_W = """\
PARAMS = {"w": {"default": 1.0, "low": 0.0, "high": 10.0}}


def compute_reward(m, p):
    s = 0.0
    if p["w"] > 5:
        for i in range(2000):
            for j in range(1000):
                s += j
    return m.speed, {"speed": m.speed}
"""


def test_the_cpu_budget_per_call_fails_the_whole_row_call():
    metrics, obs, action, next_obs = _batch(4)
    with SandboxedReward(HEAVY_FOR_BIG_W, call_timeout_s=30.0, call_cpu_limit_s=0.01) as sandbox:
        fine = sandbox.compute_rows(metrics, obs, action, next_obs, [{"w": 1.0}], np.zeros(4, int))
        assert fine.errors == {}
        with pytest.raises(
            RewardRuntimeError,
            match=r"more than 0\.010 s of CPU \(budget 0\.010 s per call\) \(line \d+\) \[row 2\]",
        ):
            sandbox.compute_rows(
                metrics, obs, action, next_obs, [{"w": 1.0}, {"w": 9.0}], np.array([0, 0, 1, 0])
            )


def _row_result(header: object, totals: np.ndarray, matrix: np.ndarray, extra: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return (
        b"Q"
        + struct.pack("<I", len(encoded))
        + encoded
        + protocol._pack_array(totals)
        + protocol._pack_array(matrix)
        + extra
    )


GOOD_HEADER = {"components": ["a"], "errors": {"1": "boom"}, "max_cpu_s": 0.001}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_row_result(GOOD_HEADER, np.array([1.0, np.nan]), np.ones((1, 2)), b"x"), "trailing bytes"),
        (_row_result(GOOD_HEADER, np.array([np.nan, np.nan]), np.ones((1, 2))), "non-finite total"),
        (_row_result(GOOD_HEADER, np.array([1.0, np.nan]), np.ones((2, 2))), "wrong shape"),
        (
            _row_result({**GOOD_HEADER, "errors": {"7": "x"}}, np.ones(2), np.ones((1, 2))),
            "malformed row error",
        ),
        (
            _row_result({**GOOD_HEADER, "components": [1]}, np.ones(2), np.ones((1, 2))),
            "not a list of identifiers",
        ),
        (
            _row_result({**GOOD_HEADER, "components": ["ok\x1b[2K"]}, np.ones(2), np.ones((1, 2))),
            "not a list of identifiers",
        ),
        (_row_result({**GOOD_HEADER, "components": ["a", "a"]}, np.ones(2), np.ones((2, 2))), "repeated"),
        (_row_result(GOOD_HEADER, np.array([1.0, np.nan]), np.full((1, 2), np.inf)), "infinite"),
        (b"Q\xff\xff\xff\xff", "malformed row result"),
    ],
)
def test_malformed_row_results_from_the_sandbox_are_refused(payload: bytes, reason: str):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode_row_results(payload, 2, protocol.MAX_ROW_COMPONENTS)


def test_row_results_round_trip():
    payload = protocol.encode_row_results(
        np.array([1.5, np.nan]), ["a", "b"], np.array([[1.0, np.nan], [0.5, np.nan]]), {1: "boom"}, 0.25
    )
    totals, components, errors, cpu = protocol.decode_row_results(payload, 2, protocol.MAX_ROW_COMPONENTS)
    np.testing.assert_array_equal(totals, [1.5, np.nan])
    assert list(components) == ["a", "b"] and components["b"][0] == 0.5
    assert errors == {1: "boom"} and cpu == 0.25
