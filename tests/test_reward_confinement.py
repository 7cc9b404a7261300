"""The sandbox process holds below the restricted-Python layer: raw code, never checked by the validator,
runs inside a process locked down exactly as the sandbox worker is, and every escape it tries fails."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from reward_helpers import TINY_BASELINE, TINY_TASK, child_pids

from autogai.rewards import SandboxedReward, confinement, sandbox

# Raw Python after enter_sandbox(): what a program would do if it escaped the restricted runtime. Descriptors
# 1 and the pre-made socket's slot are freed first, so the descriptor limit is not what stops the probes.
PROBE = r"""
import json, os, signal, socket, sys
from autogai.rewards import sandbox_worker

config, targets = json.loads(sys.argv[1]), json.loads(sys.argv[2])
listener_port = targets["port"]
premade = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # made before the lock-down, as a leak would be
os.dup2(premade.fileno(), 0)
premade.close()
a, b = os.pipe()
config.update(read_fd=a, write_fd=b, parent_pid=os.getppid())
_, _, state = sandbox_worker.enter_sandbox(config)
os.close(1)
results = {}


def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except BaseException as exc:
        results[name] = type(exc).__name__


def fork():
    if os.fork() == 0:
        os._exit(0)


attempt("write_new", lambda: open(targets["new"], "x").close())
attempt("truncate_open", lambda: open(targets["victim"], "w").close())
attempt("truncate_call", lambda: os.truncate(targets["victim"], 0))
attempt("unlink", lambda: os.unlink(targets["victim"]))
attempt("rename", lambda: os.rename(targets["victim"], targets["new"]))
attempt("read_outside", lambda: open(targets["secret"]).read())
attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
attempt("connect", lambda: socket.socket(fileno=0).connect(("127.0.0.1", listener_port)))
attempt("kill_parent", lambda: os.kill(os.getppid(), signal.SIGURG))
attempt("fork", fork)
results["state"] = {"applied": state.applied, "unavailable": state.unavailable}
results["uid"] = os.getuid()
os.write(2, json.dumps(results).encode())
attempt("exec", lambda: os.execv("/bin/sh", ["sh", "-c", "echo EXECUTED >&2"]))
os.write(2, ("|" + json.dumps({"exec": results["exec"]})).encode())
"""

ESCAPES = (
    "write_new",
    "truncate_open",
    "truncate_call",
    "unlink",
    "rename",
    "read_outside",
    "connect",
    "kill_parent",
    "fork",
    "exec",
)


def _probe(tmp_path, skip: tuple[str, ...] = ()) -> dict:
    # World-writable files in a world-writable directory: file permissions alone would not stop anything.
    tmp_path.chmod(0o777)
    victim, secret = tmp_path / "victim", tmp_path / "secret"
    victim.write_text("precious")
    victim.chmod(0o666)
    secret.write_text("s3cr3t")
    secret.chmod(0o644)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    config = {"memory_limit_mb": 128, "cpu_limit_s": 30, "pdeathsig": False, "skip_layers": list(skip)}
    targets = {
        "new": str(tmp_path / "created"),
        "victim": str(victim),
        "secret": str(secret),
        "port": listener.getsockname()[1],
    }
    before = child_pids()
    try:
        result = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(config), json.dumps(targets)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()
    assert "EXECUTED" not in result.stderr
    first, _, second = result.stderr.rpartition("|")
    outcome = {**json.loads(first), **json.loads(second)}
    assert victim.read_text() == "precious"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret", "victim"]
    assert child_pids() == before
    return outcome


def test_every_escape_fails_inside_the_locked_down_worker(tmp_path):
    outcome = _probe(tmp_path)
    blocked = {name: outcome[name] for name in (*ESCAPES, "socket")}
    assert blocked == {name: "PermissionError" for name in blocked}, blocked
    applied = set(outcome["state"]["applied"])
    unavailable = outcome["state"]["unavailable"]
    # every layer is accounted for: applied, or named with the reason it is not
    for layer in ("netns", "no_new_privs", "landlock", "seccomp"):
        assert layer in applied or unavailable.get(layer), layer
    if os.geteuid() == 0:
        assert "uid" in applied and outcome["uid"] == 65534


def _available(layers: tuple[str, ...], landlock_abi: int) -> bool:
    with SandboxedReward(TINY_BASELINE, TINY_TASK) as probe:
        abis = [
            int(name.removeprefix("landlock_abi"))
            for name in probe.isolation
            if name.startswith("landlock_abi")
        ]
        return all(layer in probe.isolation for layer in layers) and max(abis, default=0) >= landlock_abi


@pytest.mark.parametrize(
    ("off", "needs", "landlock_abi"),
    [
        # without seccomp: Landlock stops files, TCP (ABI 4) and signals to the parent (ABI 6)
        ("seccomp", ("landlock", "netns"), 6),
        ("landlock", ("seccomp",), 0),
        ("uid", ("seccomp", "landlock"), 1),
    ],
)
def test_the_other_layers_hold_when_one_is_missing(tmp_path, off, needs, landlock_abi):
    if not _available(needs, landlock_abi):
        pytest.skip(f"this machine lacks one of {needs} or Landlock ABI {landlock_abi}: nothing to show")
    outcome = _probe(tmp_path, skip=(off,))
    assert outcome["state"]["unavailable"][off] == "turned off by the caller"
    escaped = [name for name in ESCAPES if outcome[name] == "allowed"]
    assert escaped == []


def test_the_worker_reports_its_layers_and_the_parent_logs_them_once(monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "_layers_reported", False)
    with caplog.at_level(logging.INFO, logger="autogai.rewards.sandbox"):
        with SandboxedReward(TINY_BASELINE, TINY_TASK, skip_layers=("seccomp",)) as first:
            assert "seccomp" not in first.isolation
            assert first.unavailable["seccomp"] == "turned off by the caller"
            assert {"fsize", "core", "nofile", "nproc"} <= set(first.isolation)
            for layer in confinement.LAYERS:
                applicable = layer not in ("uid", "userns") or (layer == "uid") == (os.geteuid() == 0)
                if applicable:
                    assert layer in first.isolation or first.unavailable.get(layer), layer
        with SandboxedReward(TINY_BASELINE, TINY_TASK) as second:
            assert "seccomp" in second.isolation or second.unavailable["seccomp"]
            total, _ = second.compute({"angle": 0.5, "speed": 0.0}, np.zeros(3), np.zeros(1), np.zeros(3))
            assert total == pytest.approx(-0.25)
    reports = [r for r in caplog.records if "reward sandbox confinement" in r.getMessage()]
    assert len(reports) == 1
    assert "no_new_privs" in reports[0].getMessage()
