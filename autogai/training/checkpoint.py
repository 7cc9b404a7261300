"""Checkpoints: the whole population (``TD3Population.save``) plus a JSON that says how to rebuild its world.

Layout of a checkpoint directory::

    checkpoint/
      agent.pt          TD3Population.save: configs, seeds, spaces, enhancers, weights, optimisers
      checkpoint.json   task, env kwargs, enhancers, reward source, per agent (index, seed, TD3 config,
                        reward params), step

``autogai evaluate --run-dir DIR`` needs nothing else.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autogai.core.errors import AutoGAIError, RunDirectoryError
from autogai.core.files import write_atomic

CHECKPOINT_DIR = "checkpoint"
AGENT_FILE = "agent.pt"
META_FILE = "checkpoint.json"
FORMAT_VERSION = 1


def save_checkpoint(agent: Any, directory: Path, meta: Mapping[str, Any]) -> Path:
    """Save ``agent`` and ``meta`` into ``directory`` (created if needed); returns the directory.

    The JSON is written last and atomically, so a checkpoint with a readable ``checkpoint.json`` has a
    complete ``agent.pt`` next to it.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        agent.save(directory / AGENT_FILE)
        payload = {"format": FORMAT_VERSION, **meta, "agent_file": AGENT_FILE}
        write_atomic(directory / META_FILE, json.dumps(payload, indent=2, sort_keys=True, default=str))
    except OSError as exc:
        raise RunDirectoryError(f"cannot write checkpoint to {directory}: {exc}") from exc
    return directory


def find_checkpoint(path: Path) -> Path:
    """The checkpoint directory for ``path``: a checkpoint directory itself or a run directory holding one."""
    path = Path(path)
    if not path.exists():
        raise RunDirectoryError(f"run directory {str(path)!r} does not exist")
    for candidate in (path, path / CHECKPOINT_DIR):
        if (candidate / META_FILE).is_file():
            return candidate
    raise RunDirectoryError(
        f"no checkpoint in {str(path)!r} (expected {CHECKPOINT_DIR}/{META_FILE}; was training run there?)"
    )


def read_checkpoint_meta(path: Path) -> dict[str, Any]:
    """The checkpoint's JSON; a missing, corrupt or foreign file is one :class:`RunDirectoryError` naming it."""
    from autogai.core.runfiles import read_json

    directory = find_checkpoint(path)
    meta_path = directory / META_FILE
    meta = read_json(meta_path, dict)
    if meta.get("format") != FORMAT_VERSION:
        raise RunDirectoryError(f"checkpoint metadata {meta_path} has an unknown format")
    if not isinstance(meta.get("task"), str) or not isinstance(meta.get("agent_file", AGENT_FILE), str):
        raise RunDirectoryError(f"checkpoint metadata {meta_path} lacks the task or the agent file name")
    meta["checkpoint_dir"] = str(directory)
    return meta


INTERRUPTED_FILE = "interrupted.json"
"""Written into a run directory whose training was interrupted (Ctrl-C, SIGTERM)."""
RESULT_FILE = "result.json"
"""Written by :func:`autogai.training.train` when training ends; a run without it did not finish."""


def mark_interrupted(run_dir: Path) -> None:
    """Record that training in ``run_dir`` was interrupted (best effort: a directory that was never
    created stays absent)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        return
    payload = {"status": "interrupted", "note": "training did not finish; run the same train command again"}
    # The interrupt is reported on stderr anyway, and result.json's absence still marks the run.
    with contextlib.suppress(OSError):
        (run_dir / INTERRUPTED_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def forget_previous_outcome(run_dir: Path) -> None:
    """Training starts (again) in ``run_dir``: an old interruption note or result no longer applies, so the
    run counts as incomplete until this training writes its result."""
    for name in (INTERRUPTED_FILE, RESULT_FILE):
        marker = Path(run_dir) / name
        if marker.is_file():
            marker.unlink()


def is_incomplete_training(run_dir: Path) -> bool:
    """A run directory where training started (config.json) but never finished (no result.json)."""
    run_dir = Path(run_dir)
    return (run_dir / "config.json").is_file() and not (run_dir / RESULT_FILE).is_file()


def check_training_finished(run_dir: Path) -> None:
    """One :class:`RunDirectoryError` line when ``run_dir`` holds a training run that did not finish."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or (run_dir / RESULT_FILE).is_file():
        return
    how = "start it again with the same `autogai train` command"
    if (run_dir / INTERRUPTED_FILE).is_file():
        raise RunDirectoryError(f"training in {run_dir} was interrupted and is incomplete; {how}")
    raise RunDirectoryError(
        f"training in {run_dir} did not finish (still running, or killed); wait for it or {how}"
    )


def load_checkpoint(
    path: Path, *, device: str | None = None, agent: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """Load ``(population, meta)`` from a run directory or checkpoint directory.

    ``device`` (``cpu``/``cuda``/``auto``) overrides the device the agents were trained on. ``agent`` (an
    index of ``meta["agents"]``, i.e. the agent's index in the training run) keeps that agent alone, and
    ``meta["agents"]`` then lists only it.
    """
    from autogai.agents import TD3Population

    meta = read_checkpoint_meta(path)
    agent_path = Path(meta["checkpoint_dir"]) / meta.get("agent_file", AGENT_FILE)
    if not agent_path.exists():
        raise RunDirectoryError(f"checkpoint {meta['checkpoint_dir']} has no {agent_path.name}")
    try:
        with warnings.catch_warnings():  # a damaged file makes torch's unpickler warn before it fails
            warnings.simplefilter("ignore", UserWarning)
            population = TD3Population.load(agent_path, device=device)
    except AutoGAIError as exc:
        raise RunDirectoryError(f"unusable checkpoint {agent_path}: {exc}") from None
    except Exception as exc:  # torch.load of a damaged file: UnpicklingError, RuntimeError, EOFError, ...
        # torch's own text suggests weights_only=False, i.e. unpickling an untrusted file: never shown.
        raise RunDirectoryError(
            f"corrupt checkpoint {agent_path} ({type(exc).__name__}: not a weights-only file autogai wrote); "
            "train again with `autogai train ... --overwrite`"
        ) from None
    if agent is not None:
        indices = [int(a["index"]) for a in meta.get("agents", [])]
        if agent not in indices:
            raise RunDirectoryError(
                f"no agent {agent} in the checkpoint at {meta['checkpoint_dir']}; it holds agents "
                f"{', '.join(map(str, indices)) or 'none'}"
            )
        position = indices.index(agent)
        population.keep([position])
        meta["agents"] = [meta["agents"][position]]
    return population, meta
