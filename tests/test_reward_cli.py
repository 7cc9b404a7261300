"""``autogai reward check``: summary and exit 0 when accepted, one line and exit 1 when rejected."""

from __future__ import annotations

from reward_helpers import TINY_BASELINE, child_pids

from autogai.cli.main import main


def test_check_accepted_program_prints_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    program = tmp_path / "reward.py"
    program.write_text(TINY_BASELINE.replace("m.angle", "m.theta").replace("m.speed", "m.theta_dot"))
    assert main(["reward", "check", str(program), "--task", "pendulum", "-n", "32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("accepted:")
    assert "PARAMS:" in out and "angle_weight" in out
    assert "angle" in out and "(total)" in out


def test_check_rejected_program_prints_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    program = tmp_path / "reward.py"
    program.write_text("def compute_reward(m, p):\n    import os\n    return 0.0, {}\n")
    assert main(["reward", "check", str(program), "--task", "pendulum", "-n", "8"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "rejected at syntax (line 2)" in lines[0] and "import" in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_check_stalling_program_is_stopped_by_its_cpu_budget_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    program = tmp_path / "reward.py"
    program.write_text(
        "def compute_reward(m, p):\n    s = 0\n    for i in range(100000):\n        for j in range(100000):\n"
        "            s += j\n    return 0.0, {}\n"
    )
    before = child_pids()
    code = main(["reward", "check", str(program), "--task", "pendulum", "-n", "8", "--time-limit", "1"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    # the per-call CPU budget interrupts the loop inside the call (the reason says so, whatever the machine's speed)
    assert len(err) == 1 and "more than 0.050 s of CPU (budget 0.050 s per call)" in err[0]
    assert child_pids() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reward.py"]


def test_check_json_and_bad_input(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    program = tmp_path / "reward.py"
    program.write_text("def compute_reward(m, p):\n    return m.upright, {'up': m.upright}\n")
    assert main(["reward", "check", str(program), "--task", "pendulum", "-n", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00")
    assert main(["reward", "check", str(binary), "--task", "pendulum"]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["reward", "check", str(tmp_path / "missing.py")]) == 2
    assert main(["reward", "check", str(program), "--task", "no-such-task"]) == 1
    assert "unknown task" in capsys.readouterr().err
