"""Gymnasium conventions: importing ``autogai.envs`` registers every env, ``gymnasium.register_envs`` accepts
the package, Stable-Baselines3's checker passes, and the README's snippet runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

import autogai.envs

ROOT = Path(__file__).resolve().parents[1]


def _run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: registration must come from the import alone, not from an earlier test.
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )


def test_import_alone_registers_every_env(tmp_path: Path) -> None:
    code = (
        "import gymnasium as gym, autogai.envs\n"
        "for env_id in autogai.envs.ENV_IDS:\n"
        "    env = gym.make(env_id)\n"
        "    obs, info = env.reset(seed=0)\n"
        "    print(env_id, obs.shape)\n"
    )
    result = _run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "autogai/UAVNearField-v0 (106,)" in result.stdout


def test_register_envs_accepts_the_package_and_is_idempotent() -> None:
    gym.register_envs(autogai.envs)
    autogai.envs.register_envs()
    assert set(autogai.envs.ENV_IDS) <= set(gym.registry)
    spec = gym.spec("autogai/UAVNearField-v0")
    assert spec.entry_point == "autogai.envs.uav:UAVNearFieldEnv"


@pytest.mark.parametrize("action_mode", ["continuous", "discrete"])
def test_stable_baselines3_check_env_passes(action_mode: str) -> None:
    from stable_baselines3.common.env_checker import check_env

    env = gym.make("autogai/UAVNearField-v0", action_mode=action_mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning fails the test
        check_env(env, warn=True)


def test_readme_gymnasium_snippet_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-snippet: gymnasium -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "the README lost its Gymnasium / SB3 snippet"
    result = _run_python(match.group(1), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"reward -?\d+\.\d{3}, relay rate \d+\.\d{2} bit/s/Hz", result.stdout), result.stdout
