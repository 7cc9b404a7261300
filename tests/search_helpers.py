"""Helpers of the search tests: run the CLI in-process or as a process, read a run's storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SMOKE_FLAGS = [
    "--preset",
    "smoke",
    "--generations",
    "1",
    "--designs",
    "1",
    "--trials",
    "2",
    "--seeds",
    "2",
    "-q",
]


def search_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a search subprocess: caches and the knowledge base store inside tmp_path."""
    env = dict(os.environ)
    env["AUTOGAI_CACHE"] = str(tmp_path / "cache")
    env["AUTOGAI_EMBEDDINGS"] = "hash"
    env["AUTOGAI_RUNS"] = str(tmp_path / "runs")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def cli(args: list[str], tmp_path: Path, *, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogai.cli.main", *args],
        env=search_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autogai.cli.main", *args],
        env=search_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot(storage_url: str, run_name: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(study, trial number) -> state, value, retry-of, reason, worker of every trial of the run."""
    from autogai.search.storage import make_storage
    from autogai.search.studies import load_study, run_study_names

    storage = make_storage(storage_url, heartbeat=False)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for name in run_study_names(storage, run_name):
        for t in load_study(storage, name).get_trials(deepcopy=False):
            out[(name, t.number)] = {
                "state": t.state.name,
                "value": t.value,
                "retry_of": t.system_attrs.get("failed_trial"),
                "reason": t.user_attrs.get("reason"),
                "worker": t.user_attrs.get("worker"),
            }
    return out


def count_states(snap: dict[tuple[str, int], dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in snap.values():
        counts[info["state"]] = counts.get(info["state"], 0) + 1
    return counts
