"""SandboxedReward containment (limits, stalls, crashes, parent death) and the RewardWrapper."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from reward_helpers import TINY_BASELINE, TINY_TASK, child_pids, pid_alive, wait_gone

from autogai.core.errors import RewardRuntimeError
from autogai.rewards import RewardWrapper, SandboxedReward, load_program

OBS = np.array([1.0, 0.0, 0.5])
ACTION = np.array([0.3])
METRICS = {"angle": 0.1, "speed": 0.5, "torque": 0.3, "upright": 0.99, "native": -0.1}

STALL_WHEN_TORQUE_HIGH = """\
def compute_reward(m, p):
    s = 0
    if m.torque > 1.0:
        for i in range(100000):
            for j in range(100000):
                s += j
    return m.upright, {"upright": m.upright}
"""

FAIL_WHEN_TORQUE_HIGH = """\
def compute_reward(m, p):
    if m.torque > 1.0:
        return 1.0 / 0.0, {}
    return m.upright, {"upright": m.upright}
"""

BOMB_WHEN_TORQUE_HIGH = """\
def compute_reward(m, p):
    if m.torque > 1.0:
        x = [0.0] * 10**9
    return m.upright, {"upright": m.upright}
"""


def _limits(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/limits") as handle:
        rows = handle.read().splitlines()[1:]
    return {row[:26].strip(): row[26:47].strip() for row in rows}


def test_worker_is_locked_down():
    with SandboxedReward(TINY_BASELINE, TINY_TASK, memory_limit_mb=128) as sandbox:
        limits = _limits(sandbox.pid)
        assert limits["Max file size"] == "0"
        assert limits["Max open files"] == "5"
        assert limits["Max core file size"] == "0"
        assert limits["Max address space"] != "unlimited"
        assert {"fsize", "nofile", "as", "core"} <= set(sandbox.isolation)
        descriptors = sorted(int(fd) for fd in os.listdir(f"/proc/{sandbox.pid}/fd"))
        assert descriptors == [0, 1, 2, 3, 4]
        with open(f"/proc/{sandbox.pid}/maps") as maps:
            assert "torch" not in maps.read()
        total, components = sandbox.compute(METRICS, OBS, ACTION, OBS)
        assert set(components) == {"angle", "speed"}
        assert total == pytest.approx(-(0.1**2) - 0.1 * 0.5**2)
    assert not pid_alive(sandbox.pid)


def test_exception_is_reported_and_the_sandbox_keeps_serving():
    with SandboxedReward(FAIL_WHEN_TORQUE_HIGH, TINY_TASK) as sandbox:
        with pytest.raises(RewardRuntimeError, match=r"ZeroDivisionError.*\(line 3\)"):
            sandbox.compute({**METRICS, "torque": 2.0}, OBS, ACTION, OBS)
        assert sandbox.compute(METRICS, OBS, ACTION, OBS) == (0.99, {"upright": 0.99})


def test_memory_blowup_is_contained():
    # 96 MB: the worker itself needs 64-80 MB of address space once its modules load from bytecode caches.
    with SandboxedReward(BOMB_WHEN_TORQUE_HIGH, TINY_TASK, memory_limit_mb=96) as sandbox:
        with pytest.raises(RewardRuntimeError, match="memory limit exceeded"):
            sandbox.compute({**METRICS, "torque": 2.0}, OBS, ACTION, OBS)
        assert sandbox.compute(METRICS, OBS, ACTION, OBS)[0] == 0.99


def test_stall_is_killed_after_the_call_timeout():
    before = child_pids()
    # no CPU budget: the wall-clock limit alone must end it
    sandbox = SandboxedReward(STALL_WHEN_TORQUE_HIGH, TINY_TASK, call_timeout_s=1.0, call_cpu_limit_s=None)
    assert sandbox.compute(METRICS, OBS, ACTION, OBS)[0] == 0.99
    started = time.monotonic()
    with pytest.raises(RewardRuntimeError, match="timed out"):
        sandbox.compute({**METRICS, "torque": 2.0}, OBS, ACTION, OBS)
    # one 1 s timeout, not a hang: the stalled program never returns, so only a hang could exceed this bound
    assert time.monotonic() - started < 10.0
    assert not pid_alive(sandbox.pid)
    with pytest.raises(RewardRuntimeError, match="not running"):
        sandbox.compute(METRICS, OBS, ACTION, OBS)
    sandbox.close()
    assert child_pids() == before


def test_cpu_limit_kills_a_runaway_worker():
    # the reason, not the wall clock, says which limit ended it: the 30 s call timeout would say "timed out"
    with (
        SandboxedReward(
            STALL_WHEN_TORQUE_HIGH, TINY_TASK, call_timeout_s=30.0, cpu_limit_s=1.0, call_cpu_limit_s=None
        ) as sandbox,
        pytest.raises(RewardRuntimeError, match=r"CPU time limit|killed"),
    ):
        sandbox.compute({**METRICS, "torque": 2.0}, OBS, ACTION, OBS)


def test_array_metrics_take_the_pickle_path():
    source = "def compute_reward(m, p):\n    return float(m.vector.sum()), {'v': float(m.vector[0])}\n"
    with SandboxedReward(source) as sandbox:
        assert sandbox.compute({"vector": np.array([1.0, 2.0])}, OBS, ACTION, OBS) == (3.0, {"v": 1.0})


def test_garbage_collected_sandbox_is_killed():
    sandbox = SandboxedReward(TINY_BASELINE, TINY_TASK)
    pid = sandbox.pid
    del sandbox
    gc.collect()
    assert wait_gone(pid, 2.0)


_PARENT_SCRIPT = """
import sys, threading, time
import numpy as np
from autogai.rewards import SandboxedReward
source = sys.argv[1]
mode = sys.argv[2]
holder = {}
def make():
    holder["s"] = SandboxedReward(source, call_timeout_s=600, call_cpu_limit_s=None)
if mode == "thread":
    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
else:
    make()
sandbox = holder["s"]
print(sandbox.pid, flush=True)
if mode == "exit":
    sys.exit(0)  # no close(): the atexit finalizer must kill the worker
sandbox.compute({"torque": 2.0, "upright": 1.0}, np.zeros(3), np.zeros(1), np.zeros(3))
"""


@pytest.mark.parametrize("mode", ["main", "thread", "exit"])
def test_worker_dies_with_its_parent(mode, tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_SCRIPT, STALL_WHEN_TORQUE_HIGH, mode],
        stdout=subprocess.PIPE,
        cwd=tmp_path,
        text=True,
    )
    try:
        worker = int(parent.stdout.readline())
        if mode == "exit":
            parent.wait(timeout=20)
        else:
            time.sleep(0.3)  # the worker is now busy in the stalling call
            assert pid_alive(worker)
            parent.send_signal(signal.SIGKILL)
            parent.wait(timeout=10)
        assert wait_gone(worker, 5.0), f"worker {worker} outlived its parent ({mode})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ wrapper


def test_reward_wrapper_replaces_the_reward_and_logs_components():
    before = child_pids()
    env = RewardWrapper(TINY_TASK.make_env(), TINY_BASELINE, TINY_TASK, params={"angle_weight": 2.0})
    assert env.params == {"angle_weight": 2.0, "speed_weight": 0.1}
    direct = load_program(TINY_BASELINE, {"angle_weight": 2.0})
    obs, _ = env.reset(seed=3)
    for step in range(5):
        action = np.array([0.5 * (-1) ** step], dtype=np.float32)
        next_obs, reward, _, _, info = env.step(action)
        assert set(info) >= {"reward_components", "env_reward", "metrics", "step_fitness"}
        metrics = TINY_TASK.metrics_fn(obs, action, info["env_reward"], next_obs, {})
        assert info["metrics"] == metrics
        assert (reward, info["reward_components"]) == direct(metrics, obs, action, next_obs)
        assert info["step_fitness"] == info["env_reward"]
        obs = next_obs
    pid = env.sandbox.pid
    env.close()
    assert not pid_alive(pid)
    assert child_pids() == before


def test_reward_wrapper_raises_when_the_program_fails_mid_run():
    env = RewardWrapper(TINY_TASK.make_env(), FAIL_WHEN_TORQUE_HIGH, TINY_TASK)
    try:
        env.reset(seed=0)
        env.step(np.array([0.5], dtype=np.float32))
        with pytest.raises(RewardRuntimeError, match="ZeroDivisionError"):
            env.step(np.array([2.0], dtype=np.float32))
    finally:
        env.close()


def test_reward_wrapper_contains_a_stall_mid_run():
    """Training calls have a CPU budget: a computing stall ends at 0.25 s of CPU (the reason says so; the 5 s
    wall limit would say "timed out"), and the sandbox keeps serving."""
    before = child_pids()
    env = RewardWrapper(TINY_TASK.make_env(), STALL_WHEN_TORQUE_HIGH, TINY_TASK)
    try:
        env.reset(seed=0)
        env.step(np.array([0.5], dtype=np.float32))
        with pytest.raises(
            RewardRuntimeError, match=r"more than 0\.250 s of CPU \(budget 0\.250 s per call\)"
        ):
            env.step(np.array([2.0], dtype=np.float32))
        assert env.sandbox.alive
        env.step(np.array([0.5], dtype=np.float32))
    finally:
        env.close()
    assert child_pids() == before


def test_wall_clock_stall_without_a_cpu_budget_in_the_wrapper():
    before = child_pids()
    env = RewardWrapper(
        TINY_TASK.make_env(), STALL_WHEN_TORQUE_HIGH, TINY_TASK, call_timeout_s=1.0, call_cpu_limit_s=None
    )
    try:
        env.reset(seed=0)
        with pytest.raises(RewardRuntimeError, match="timed out"):
            env.step(np.array([2.0], dtype=np.float32))
    finally:
        env.close()
    assert child_pids() == before


def test_reward_wrapper_on_the_uav_task_with_its_baseline():
    from autogai.tasks import get_task

    task = get_task("uav-nearfield")
    env = RewardWrapper(task.make_env(), task.baseline_reward, task)
    try:
        env.reset(seed=0)
        for _ in range(3):
            _, reward, _, _, info = env.step(env.action_space.sample())
            assert np.isfinite(reward)
            assert info["reward_components"]
            assert set(info["metrics"]) >= {"rate_df", "power_total_mw", "feasible"}
    finally:
        env.close()


def test_source_of_the_worker_imports_nothing_heavy():
    script = textwrap.dedent(
        """
        import sys
        import autogai.rewards.sandbox_worker, autogai.rewards.program, autogai.rewards.protocol
        heavy = [m for m in ("torch", "gymnasium", "optuna", "langchain") if m in sys.modules]
        print(",".join(heavy))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_frozen_worker_cannot_block_the_caller():
    """A worker that stops reading and answering (SIGSTOP) costs one timeout, not a hang, even when the
    request is larger than the pipe buffer."""
    big = np.zeros(20_000)
    with SandboxedReward(TINY_BASELINE, TINY_TASK, call_timeout_s=1.0) as sandbox:
        os.kill(sandbox.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(RewardRuntimeError, match="timed out"):
            sandbox.compute_batch([(METRICS, big, ACTION, big)] * 8, timeout_s=1.0)
        # one 1 s timeout, not a hang: the stopped worker never answers, so only a hang could exceed this bound
        assert time.monotonic() - started < 10.0
        assert wait_gone(sandbox.pid, 3.0)


def _result(names_json: bytes, total: float, count: int, values: list[float], extra: bytes = b"") -> bytes:
    import struct

    head = b"R\x01" + struct.pack("<I", len(names_json)) + names_json
    return head + struct.pack("<ddH", total, 0.0, count) + struct.pack(f"<{len(values)}d", *values) + extra


@pytest.mark.parametrize(
    "payload",
    [
        b"R\x00",  # truncated
        _result(b"[]", 1.0, 1, [1.0]),  # more values than names
        _result(b'["a"]', 1.0, 1, []),  # fewer values than announced
        _result(b'["a", "a"]', 1.0, 2, [1.0, 2.0]),  # duplicate names
        _result(b'["a"]', 1.0, 1, [1.0], b"junk"),  # trailing bytes
        _result(b'{"a": 1}', 1.0, 1, [1.0]),  # names not a list
        _result(b"[" + b'"x",' * 40 + b'"y"]', 1.0, 41, [0.0] * 41),  # too many components
    ],
)
def test_malformed_results_from_the_sandbox_are_refused(payload):
    from autogai.rewards import protocol

    with pytest.raises(protocol.ProtocolError):
        protocol.decode_result(payload, [], 32)


def test_result_round_trip_and_non_finite_refused():
    from autogai.rewards import protocol
    from autogai.rewards.sandbox import _parse_result

    payload = protocol.encode_result(1.5, {"a": 1.0, "b": 0.5}, 0.0, [])
    total, components, names = protocol.decode_result(payload, [], 32)
    assert (total, components, names) == (1.5, {"a": 1.0, "b": 0.5}, ["a", "b"])
    bad = protocol.encode_result(float("nan"), {"a": 1.0}, 0.0, [])
    total, components, _ = protocol.decode_result(bad, [], 32)
    with pytest.raises(RewardRuntimeError, match="not a finite float"):
        _parse_result(total, components)


def test_wrapper_passes_hybrid_tuple_actions_as_one_flat_vector() -> None:
    """A Tuple(Discrete, Box) action reaches the program as [way-point index, powers...], as in validation."""
    from autogai.rewards import RewardWrapper
    from autogai.tasks import get_task

    task = get_task("uav-nearfield")
    source = (
        "def compute_reward(m, p):\n"
        "    return float(m.action[0]), {'waypoint': float(m.action[0]), 'power_a': float(m.action[1])}\n"
    )
    env = RewardWrapper(task.make_env(action_mode="hybrid"), source, task)
    try:
        env.reset(seed=0)
        _, reward, _, _, info = env.step((3, np.array([0.5, -0.5], dtype=np.float32)))
    finally:
        env.close()
    assert reward == 3.0
    assert info["reward_components"] == {"waypoint": 3.0, "power_a": 0.5}
