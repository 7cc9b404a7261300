"""``autogai train`` / ``autogai evaluate``: return codes, outputs, one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from training_helpers import TINY_CLI_SETS

from autogai.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_evaluate_pendulum(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    code, out, err = run(
        capsys,
        "train",
        "--task",
        "pendulum",
        "--steps",
        "200",
        "--seed",
        "1",
        "--run-dir",
        str(run_dir),
        "--eval-every",
        "100",
        "--eval-episodes",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        *TINY_CLI_SETS,
    )
    assert code == 0, err
    assert out.startswith("completed: pendulum plain seed 1, 200 steps")
    assert (run_dir / "curves.csv").is_file()

    code, out, err = run(capsys, "evaluate", "--run-dir", str(run_dir), "--episodes", "2", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["task"] == "pendulum" and data["episodes"] == 2 and data["steps"] == 200

    # Training again into the same directory needs --overwrite.
    code, _, err = run(capsys, "train", "--task", "pendulum", "--steps", "10", "--run-dir", str(run_dir))
    assert code == 1 and "--overwrite" in err and len(err.strip().splitlines()) == 1


def test_train_uav_hybrid_with_reward_file_and_evaluate(tmp_path, capsys) -> None:
    reward = tmp_path / "reward.py"
    reward.write_text(
        'PARAMS = {"rate_weight": {"default": 10.0, "low": 1.0, "high": 50.0}}\n'
        "def compute_reward(m, p):\n"
        '    c = {"rate": p["rate_weight"] * m.rate_df, "power": -0.005 * m.power_total_mw}\n'
        "    return sum(c.values()), c\n"
    )
    run_dir = tmp_path / "uav"
    code, out, err = run(
        capsys,
        "train",
        "--task",
        "uav-nearfield",
        "--enhancers",
        "gdm+gan",
        "--action-space",
        "hybrid",
        "--steps",
        "150",
        "--run-dir",
        str(run_dir),
        "--reward",
        str(reward),
        "--reward-param",
        "rate_weight=20",
        "--eval-every",
        "0",
        "--eval-episodes",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        *TINY_CLI_SETS,
        "--set",
        "diffusion_hidden=16",
    )
    assert code == 0, err
    assert "gdm+gan" in out and "oracle" in out
    assert (run_dir / "reward.py").read_text() == reward.read_text()
    (agent,) = json.loads((run_dir / "config.json").read_text())["agents"]
    assert agent["reward_params"]["rate_weight"] == 20.0

    code, out, err = run(capsys, "evaluate", "--run-dir", str(run_dir), "--episodes", "2")
    assert code == 0, err
    for word in ("fitness", "rate_df", "power_total_mw", "infeasible", "oracle"):
        assert word in out, word


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--task", "no-such-task"], "unknown task"),
        (["train", "--task", "pendulum", "--action-space", "hybrid"], "single action space"),
        (["train", "--task", "uav-nearfield", "--action-space", "warp"], "--action-space"),
        (["train", "--task", "pendulum", "--enhancers", "magic"], "unknown enhancer"),
        (["train", "--task", "pendulum", "--steps", "0"], "--steps"),
        (["train", "--task", "pendulum", "--set", "no_such_field=1"], "unknown TD3Config field"),
        (["train", "--task", "pendulum", "--set", "batch_size=big"], "batch_size"),
        (["train", "--task", "pendulum", "--set", "gamma=2"], "gamma"),
        (["train", "--task", "pendulum", "--set", "oops"], "key=value"),
        (["train", "--task", "pendulum", "--device", "tpu"], "--device"),
        (["train", "--task", "pendulum", "--reward", "/nonexistent/reward.py"], "cannot read reward file"),
        (["train", "--task", "pendulum", "--reward-param", "w=abc"], "expected a number"),
        (["evaluate", "--run-dir", "/nonexistent/run"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, argv: list[str], fragment: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autogai: error:"), err
    assert fragment in lines[0]


def test_rejected_reward_file_is_one_line(tmp_path, capsys) -> None:
    reward = tmp_path / "evil.py"
    reward.write_text("import os\ndef compute_reward(m, p):\n    return 0.0, {}\n")
    code, _, err = run(
        capsys, "train", "--task", "pendulum", "--reward", str(reward), "--run-dir", str(tmp_path)
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "rejected" in lines[0]
    assert not (tmp_path / "checkpoint").exists()


def test_evaluate_without_checkpoint_is_one_line(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "evaluate", "--run-dir", str(tmp_path))
    assert code == 1 and "no checkpoint" in err and len(err.strip().splitlines()) == 1


def test_train_from_a_design_json(tmp_path, capsys) -> None:
    from training_helpers import PENDULUM_UPRIGHT

    from autogai.core.types import Design, EnhancerCombo

    design_dir = tmp_path / "designs" / "d-1"
    design_dir.mkdir(parents=True)
    design = Design(reward_source=PENDULUM_UPRIGHT, enhancers=EnhancerCombo.parse("gan"))
    (design_dir / "design.json").write_text(json.dumps(design.to_dict()))
    run_dir = tmp_path / "run"
    code, out, err = run(
        capsys,
        "train",
        "--task",
        "pendulum",
        "--design",
        str(design_dir),
        "--steps",
        "60",
        "--run-dir",
        str(run_dir),
        "--eval-every",
        "0",
        "--eval-episodes",
        "1",
        "--no-progress",
        *TINY_CLI_SETS,
    )
    assert code == 0, err
    assert "pendulum gan" in out
    assert (run_dir / "reward.py").read_text() == PENDULUM_UPRIGHT


def test_train_a_population_then_evaluate_each_agent(tmp_path, capsys) -> None:
    run_dir = tmp_path / "population"
    argv = ["train", "--task", "pendulum", "--steps", "200", "--seeds", "0-2", "--run-dir", str(run_dir)]
    argv += [
        "--eval-every",
        "100",
        "--eval-episodes",
        "2",
        "--device",
        "cpu",
        "--no-progress",
        *TINY_CLI_SETS,
    ]
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["seed"] for r in results] == [0, 1, 2] and all(r["status"] == "completed" for r in results)

    # Every agent is in the checkpoint; evaluating agent i on the run's evaluation episodes gives the
    # fitness of agent i's final evaluation in training.
    for index, result in enumerate(results):
        code, out, err = run(
            capsys, "evaluate", "--run-dir", str(run_dir), "--agent", str(index), "--episodes", "2", "--json"
        )
        assert code == 0, err
        data = json.loads(out)
        assert data["agent"] == index and data["steps"] == 200
        assert data["seed"] == json.loads((run_dir / "config.json").read_text())["eval_seed"]
        assert data["episode_fitness"] == pytest.approx(
            result["final_evaluation"]["episode_fitness"], rel=1e-5
        )
    code, out, err = run(capsys, "evaluate", "--run-dir", str(run_dir), "--episodes", "1")
    assert code == 0, err
    assert [line.split(" agent ")[1].split(" ")[0] for line in out.splitlines() if " agent " in line] == [
        "0",
        "1",
        "2",
    ]

    # The human-readable form: one line per agent, then the IQM over agents.
    code, out, err = run(capsys, *argv[: -len(TINY_CLI_SETS)], *TINY_CLI_SETS, "--overwrite")
    assert code == 0, err
    lines = out.splitlines()
    for index in range(3):
        assert any(
            line.startswith(f"agent {index} completed: pendulum plain seed {index}, 200 steps")
            for line in lines
        )
        assert any(line.startswith(f"agent {index} evaluation: fitness") for line in lines)
    assert any(
        line.startswith("IQM fitness over 3 of 3 agents:") and "95% bootstrap interval" in line
        for line in lines
    )

    # An agent the checkpoint does not hold: one line, through the real command line.
    cli = _cli("evaluate", "--run-dir", str(run_dir), "--agent", "7")
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().splitlines() == [cli.stderr.strip()]
    assert "no agent 7 in the checkpoint" in cli.stderr and "holds agents 0, 1, 2" in cli.stderr


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """``python -m autogai.cli.main ARGV`` in a fresh process, with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "autogai.cli.main", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--population", "0"], "--population"),
        (["--seeds", "0-x"], "--seeds '0-x' does not parse"),
        (["--seeds", "5-2"], "does not parse"),
        (["--seeds", "1,1"], "names a seed twice"),
        (["--seeds", "0-3", "--population", "4"], "either --seeds or --population"),
        # 64 agents with a replay of 10^12 rows each: the estimate exceeds any machine's free memory, and the
        # check runs before the replay (allocated lazily) or any env step.
        (
            ["--population", "64", "--steps", str(10**9), "--set", f"buffer_size={10**12}"],
            "free; train fewer agents at once or shrink the networks or buffer_size",
        ),
        # Networks far too large: sized on the meta device, so nothing is allocated before the error.
        (
            ["--population", "64", "--set", "net_arch=20000,20000"],
            "free; train fewer agents at once or shrink the networks or buffer_size",
        ),
    ],
)
def test_bad_population_input_is_one_line_without_traceback(tmp_path, argv: list[str], fragment: str) -> None:
    run_dir = tmp_path / "run"
    cli = _cli(
        "train", "--task", "pendulum", "--device", "cpu", "--no-progress", "--run-dir", str(run_dir), *argv
    )
    assert cli.returncode == 1, cli.stdout
    assert "Traceback" not in cli.stderr
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autogai: error:"), cli.stderr
    assert fragment in lines[0]
    assert not (run_dir / "checkpoint").exists() and not (run_dir / "curves.csv").exists()


def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: --device cuda is valid here")
    code, _, err = run(
        capsys,
        "train",
        "--task",
        "pendulum",
        "--device",
        "cuda",
        "--run-dir",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "torch sees no CUDA device" in lines[0], err
    assert not (tmp_path / "run" / "checkpoint").exists()
