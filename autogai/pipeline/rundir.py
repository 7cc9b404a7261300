"""The run directory: everything a person wants to inspect is a file (see docs/architecture.md).

This module is the one writer of the layout; ``autogai search`` and ``autogai propose`` both go through
:class:`RunDirectory`.

::

    runs/<run-name>/
      config.json              resolved configuration (no secrets)
      state.json               which generations were proposed and scored (resume)
      designs/<design-id>/     reward.py, design.json, prompt.md, response.md, trials.csv, curves.csv
      designs/rejected-g<generation>-<n>/
                               a proposal that could not be used: design.json says why (status rejected)
      leaderboard.csv / .json  ranked designs with intervals
      ledger.jsonl             every LLM call
      optuna.db                the Optuna storage (unless --storage points elsewhere)
      report.html, plots/      written by ``autogai report``
      search.lock              pid of the search process working on the run
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.errors import RunDirectoryError
from autogai.core.files import disk_error, write_atomic
from autogai.core.runfiles import design_from_dict, list_of_records, read_json_if_present
from autogai.core.types import Design

if TYPE_CHECKING:
    from autogai.rag.proposal import ProposalRecord

KEPT_AFTER_A_FAILED_START = ("llm_cache", "ledger.jsonl")
"""Kept when a failed start is undone: LLM replies cost money, and the cache is keyed by model."""

# Keys of config.json that define what a run computes; a resumed command must agree on all of them.
IDENTITY_KEYS = ("task", "action_space", "llm", "preset", "budget_identity", "storage")


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(directory, exc) from exc


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


class RunDirectory:
    """Paths and small read/write helpers of one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def designs_dir(self) -> Path:
        return self.path / "designs"

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.path / "search.lock"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    def design_dir(self, design_id: str) -> Path:
        return self.designs_dir / design_id

    # --- creation and identity ------------------------------------------------------------------

    def ensure_writable(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RunDirectoryError(f"run directory {str(self.path)!r} is not writable: {reason}") from exc

    def read_config(self) -> dict[str, Any] | None:
        """config.json, or ``None`` before the run has started; a damaged file is one error line."""
        return read_json_if_present(self.config_path, dict)

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Raise RunDirectoryError if the run directory holds a different search."""
        existing = self.read_config()
        if existing is None:
            return
        for key in IDENTITY_KEYS:
            if key in existing and existing.get(key) != config.get(key):
                raise RunDirectoryError(
                    f"run directory {str(self.path)!r} holds a search with {key}={existing.get(key)!r}, "
                    f"this command asks for {key}={config.get(key)!r}; use another --run-dir"
                )

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write config.json, or check that an existing one describes the same search."""
        self.check_config(config)
        existing = self.read_config()
        if existing is not None:
            merged = {**existing, **{k: v for k, v in config.items() if k not in ("created_at",)}}
            write_atomic(self.config_path, _dump(merged))
            return
        write_atomic(self.config_path, _dump(dict(config)))

    def entries(self) -> set[Path] | None:
        """What the directory holds now (``None``: it does not exist); see :meth:`remove_created`."""
        return set(self.path.iterdir()) if self.path.is_dir() else None

    def remove_created(self, before: set[Path] | None) -> None:
        """Undo a command that failed before it did anything worth keeping: what the directory did not hold
        ``before`` (:meth:`entries`) goes, except paid LLM replies and their ledger (keyed by model, not by
        run); a directory the command created goes too when nothing is left in it."""
        if not self.path.is_dir():
            return
        for entry in self.entries() or set():
            paid = entry.name in KEPT_AFTER_A_FAILED_START and not (
                entry.is_file() and not entry.stat().st_size
            )
            if entry in (before or set()) or paid:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if before is None and not any(self.path.iterdir()):
            self.path.rmdir()

    # --- lock ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def search_lock(self) -> Iterator[None]:
        """One search process per run directory; a lock left by a dead process is taken over."""
        host = socket.gethostname()
        if self.lock_path.exists():
            try:
                holder = json.loads(self.lock_path.read_text())
            except (OSError, json.JSONDecodeError):
                holder = {}
            pid = holder.get("pid")
            if holder.get("host") == host and isinstance(pid, int) and pid != os.getpid():
                from autogai.search.studies import pid_alive

                if pid_alive(pid):
                    raise RunDirectoryError(
                        f"run directory {str(self.path)!r} is in use by search process {pid}; "
                        "wait for it, or add workers with `autogai worker`"
                    )
        write_atomic(self.lock_path, json.dumps({"host": host, "pid": os.getpid()}))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                self.lock_path.unlink()

    # --- state -----------------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        """state.json; when it is absent (never written, or deleted because it was damaged) the state is
        rebuilt from the designs on disk (:meth:`state_from_designs`). A damaged file is one error line
        naming the way out, raised before the search has rewritten anything."""
        state = read_json_if_present(self.state_path, dict, check=_state_problem)
        return state if state is not None else self.state_from_designs()

    def state_from_designs(self) -> dict[str, Any]:
        """The generations a search proposed, rebuilt from ``designs/*/design.json``.

        Every rebuilt generation is marked ``proposed``: resuming evaluates it again, which only enqueues the
        trials the storage does not hold yet, so nothing finished is trained twice.
        """
        generations: dict[int, list[str]] = {}
        for design_id in self.design_ids():
            data = self.read_design_json(design_id) or {}
            generation = data.get("generation")
            if data.get("proposer") == "baseline" or data.get("status") == "rejected":
                continue
            if isinstance(generation, int) and not isinstance(generation, bool) and generation >= 0:
                generations.setdefault(generation, []).append(design_id)
        return {
            "generations": [
                {"index": index, "design_ids": ids, "status": "proposed"}
                for index, ids in sorted(generations.items())
            ]
        }

    def read_leaderboard(self) -> list[dict[str, Any]] | None:
        """The ranked rows of leaderboard.json, or ``None`` before a generation has been scored."""
        board = read_json_if_present(
            self.leaderboard_path, dict, check=list_of_records("designs", "design_id")
        )
        return None if board is None else list(board.get("designs", []))

    @property
    def leaderboard_path(self) -> Path:
        return self.path / "leaderboard.json"

    def require_leaderboard(self) -> list[dict[str, Any]]:
        """:meth:`read_leaderboard`, where its absence is an error line (inspection commands)."""
        rows = self.read_leaderboard()
        if rows is None:
            raise RunDirectoryError(f"{self.path} has no leaderboard yet (no generation has been scored)")
        return rows

    def read_reward_source(self, design_id: str) -> str | None:
        """A design's reward.py, or ``None`` when it has none; damage is one error line."""
        from autogai.core.runfiles import read_text

        path = self.design_dir(design_id) / "reward.py"
        return read_text(path, remedy="remove that design's directory") if path.is_file() else None

    def write_json(self, name: str, data: Mapping[str, Any]) -> None:
        """A JSON file of the run (e.g. ``plan.json``), replaced atomically."""
        write_atomic(self.path / name, _dump(data))

    def write_state(self, state: Mapping[str, Any]) -> None:
        write_atomic(self.state_path, _dump(state))

    # --- designs ---------------------------------------------------------------------------------

    def write_design(
        self,
        design: Design,
        *,
        prompt: str = "",
        response: str = "",
        validation: Mapping[str, Any] | None = None,
        status: str = "proposed",
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        directory = self.design_dir(design.id)
        _make_dir(directory)
        write_atomic(directory / "reward.py", design.reward_source.rstrip() + "\n")
        if prompt or not (directory / "prompt.md").exists():
            write_atomic(
                directory / "prompt.md", prompt or "(no prompt: this design was not proposed by a model)\n"
            )
        if response or not (directory / "response.md").exists():
            write_atomic(directory / "response.md", response or "(no response)\n")
        data = self.read_design_json(design.id) or {}
        data.update(design.to_dict())
        data["status"] = (
            status if data.get("status") not in ("scored",) or status == "scored" else data["status"]
        )
        if validation is not None:
            data["validation"] = dict(validation)
        data.update(dict(extra or {}))
        write_atomic(directory / "design.json", _dump(data))
        return directory

    def write_rejected(
        self,
        label: str,
        *,
        prompt: str,
        response: str,
        error: str,
        validation: Mapping[str, Any] | None = None,
        reward_source: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        directory = self.designs_dir / label
        _make_dir(directory)
        write_atomic(directory / "prompt.md", prompt or "(no prompt)\n")
        write_atomic(directory / "response.md", response or "(no response)\n")
        if reward_source:
            write_atomic(directory / "reward.py", reward_source.rstrip() + "\n")
        data = {"id": label, "status": "rejected", "error": error, "validation": validation, **(extra or {})}
        write_atomic(directory / "design.json", _dump(data))
        return directory

    def write_proposal(self, record: ProposalRecord, *, label: str) -> Path:
        """One proposer record: a usable design to ``designs/<id>/`` (status proposed), anything else to
        ``designs/<label>/`` (status rejected, with the reason). The parser's notes and the repair rounds
        go into design.json either way, so every decision can be audited."""
        validation = record.validation.to_dict() if record.validation is not None else None
        audit = {"rounds": record.rounds, "sample_index": record.sample_index, "notes": list(record.notes)}
        if record.ok and record.design is not None:
            return self.write_design(
                record.design,
                prompt=record.prompt,
                response=record.response,
                validation=validation,
                status="proposed",
                extra=audit,
            )
        error = record.error or (record.validation.reason if record.validation is not None else "no design")
        design = record.design
        return self.write_rejected(
            label,
            prompt=record.prompt,
            response=record.response,
            error=str(error),
            validation=validation,
            reward_source=design.reward_source if design is not None else None,
            extra={**audit, "design": design.to_dict() if design is not None else None},
        )

    def read_design_json(self, design_id: str) -> dict[str, Any] | None:
        """A design's design.json, or ``None`` when there is none; a damaged file is one error line."""
        return read_json_if_present(self.design_dir(design_id) / "design.json", dict)

    def update_design_json(self, design_id: str, **fields: Any) -> None:
        data = self.read_design_json(design_id) or {"id": design_id}
        data.update(fields)
        write_atomic(self.design_dir(design_id) / "design.json", _dump(data))

    def load_design(self, design_id: str) -> Design:
        data = self.read_design_json(design_id)
        if data is None or "reward_source" not in data:
            raise RunDirectoryError(f"no design {design_id!r} in {self.path}")
        return design_from_dict(data, self.design_dir(design_id) / "design.json")

    def design_ids(self) -> list[str]:
        if not self.designs_dir.is_dir():
            return []
        return sorted(p.name for p in self.designs_dir.iterdir() if (p / "design.json").is_file())


def _state_problem(state: dict[str, Any]) -> str | None:
    generations = state.get("generations")
    if not isinstance(generations, list):
        return "no list of generations"
    for entry in generations:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("index"), int)
            and isinstance(entry.get("design_ids"), list)
            and all(isinstance(i, str) for i in entry["design_ids"])
            and isinstance(entry.get("status"), str)
        ):
            return "a generation entry lacks its index, design ids or status"
    return None


def design_diff(run: RunDirectory, first: str, second: str) -> tuple[str, str]:
    """Unified diffs of two designs: their reward programs, and their configuration (enhancers, hints,
    best parameters, score, parent) as sorted JSON."""

    def code(design_id: str) -> list[str]:
        return (run.read_reward_source(design_id) or "").splitlines(keepends=True)

    def config(design_id: str) -> list[str]:
        data = run.read_design_json(design_id) or {}
        keys = ("enhancers", "hyperparameter_hints", "best_params", "score", "parent")
        view = {key: data.get(key) for key in keys}
        return (json.dumps(view, indent=2, sort_keys=True, default=str) + "\n").splitlines(keepends=True)

    code_diff = "".join(
        difflib.unified_diff(code(first), code(second), f"{first}/reward.py", f"{second}/reward.py")
    )
    config_diff = "".join(
        difflib.unified_diff(config(first), config(second), f"{first}/design.json", f"{second}/design.json")
    )
    return code_diff, config_diff


def open_existing_run(path: Path | str) -> RunDirectory:
    """A run directory that must exist (inspection commands)."""
    run = RunDirectory(Path(path))
    if not run.config_path.is_file():
        raise RunDirectoryError(f"{str(path)!r} is not a run directory (no config.json)")
    run.read_config()  # damaged: one line now, not a traceback later
    return run


def resolve_design_id(run: RunDirectory, ref: str) -> str:
    """A design id, a unique id prefix, a design name, ``baseline`` or a leaderboard rank (``1``)."""
    ids = run.design_ids()
    if ref in ids:
        return ref
    if ref.isdigit() and len(ref) < 10:
        rows = run.read_leaderboard() or []
        index = int(ref) - 1
        if 0 <= index < len(rows):
            return str(rows[index]["design_id"])
    matches = [i for i in ids if i.startswith(ref) or i.startswith("d-" + ref)]
    if len(matches) == 1:
        return matches[0]
    named = [i for i in ids if (run.read_design_json(i) or {}).get("name") == ref]
    if len(named) == 1:
        return named[0]
    if len(matches) > 1 or len(named) > 1:
        raise RunDirectoryError(f"design {ref!r} is ambiguous in {run.path}: {', '.join(matches or named)}")
    raise RunDirectoryError(
        f"no design {ref!r} in {run.path}; designs: {', '.join(ids) or 'none'} (or a leaderboard rank)"
    )
