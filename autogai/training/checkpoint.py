"""Checkpoints: the whole population (``TD3Population.save``) plus a JSON that says how to rebuild its world.

Layout of a checkpoint directory::

    checkpoint/
      agent.pt          TD3Population.save: configs, seeds, spaces, enhancers, weights, optimisers
      checkpoint.json   task, env kwargs, enhancers, reward source, per agent (index, seed, TD3 config,
                        reward params), step

``autogai evaluate --run-dir DIR`` needs nothing else.
"""

from __future__ import annotations

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def read_checkpoint_meta(path: Path) -> dict[str, Any]:
    """The checkpoint's JSON; a missing, corrupt or foreign file is one :class:`RunDirectoryError` naming it."""
    directory = find_checkpoint(path)
    meta_path = directory / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8 or bad JSON
        raise RunDirectoryError(f"corrupt checkpoint metadata {meta_path}: {_first_line(exc)}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise RunDirectoryError(f"checkpoint metadata {meta_path} has an unknown format")
    if not isinstance(meta.get("task"), str) or not isinstance(meta.get("agent_file", AGENT_FILE), str):
        raise RunDirectoryError(f"checkpoint metadata {meta_path} lacks the task or the agent file name")
    meta["checkpoint_dir"] = str(directory)
    return meta


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
        raise RunDirectoryError(f"corrupt checkpoint {agent_path}: {_first_line(exc)}") from None
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
