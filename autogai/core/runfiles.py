"""Reading back the files of a run directory, which are untrusted input.

A run directory can be truncated by a full disk, edited by hand or copied from someone else. Every file
autogai reads back (``config.json``, ``state.json``, ``leaderboard.json``, ``design.json``, ``trials.csv``,
``checkpoint.json``) goes through :func:`read_json` or :func:`read_csv_rows`, which turn any damage
(unreadable, not UTF-8, not JSON, the wrong shape) into one :class:`RunDirectoryError` line that names the
file and says what to do. Nothing here writes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from autogai.core.errors import ConfigError, RunDirectoryError
from autogai.core.types import Design

MAX_RUN_FILE_BYTES = 256 * 2**20
"""No file autogai writes into a run directory comes near this; a larger one is not ours."""

REMEDIES = {
    "config.json": "it is written when the run starts: move the directory aside and start the run again",
    "state.json": (
        "delete it and run the same `autogai search` command again: the state is rebuilt from the "
        "designs and the storage"
    ),
    "leaderboard.json": (
        "run the same `autogai search` command again: resuming ranks the scored designs and rewrites it"
    ),
    "design.json": "run the same `autogai search` command again, or remove that design's directory",
    "trials.csv": "run the same `autogai search` command again: resuming rewrites it",
    "curves.csv": "run the same `autogai search` command again: resuming rewrites it",
    "checkpoint.json": "train again into this directory with `autogai train ... --overwrite`",
}
"""What to do about each damaged file, in the words of the error line."""

T = TypeVar("T")


def _remedy(path: Path, remedy: str | None) -> str:
    return remedy or REMEDIES.get(path.name, "restore it or start the run again in a fresh directory")


def damaged(path: Path, reason: str, remedy: str | None = None) -> RunDirectoryError:
    """The one error line about a damaged run file: which file, what is wrong, what to do."""
    return RunDirectoryError(f"{path} is damaged ({reason}); {_remedy(Path(path), remedy)}")


def read_text(path: Path, *, remedy: str | None = None) -> str:
    """The file's UTF-8 text; unreadable, oversized or non-UTF-8 files raise one line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RUN_FILE_BYTES:
            raise damaged(path, f"{size:,} bytes, more than any run file autogai writes", remedy)
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise damaged(path, f"not UTF-8 text at byte {exc.start}", remedy) from None
    except IsADirectoryError:
        raise damaged(path, "a directory where a file belongs", remedy) from None
    except OSError as exc:
        raise RunDirectoryError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_json(
    path: Path,
    expect: type[T],
    *,
    check: Callable[[T], str | None] | None = None,
    remedy: str | None = None,
) -> T:
    """The JSON document in ``path``, which must be a ``expect`` (``dict`` or ``list``) and pass ``check``
    (a function returning what is wrong, or ``None``); anything else raises one line."""
    path = Path(path)
    text = read_text(path, remedy=remedy)
    if not text.strip():
        raise damaged(path, "empty", remedy)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise damaged(path, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", remedy) from None
    except RecursionError:
        raise damaged(path, "nested too deeply", remedy) from None
    if not isinstance(data, expect):
        kind = "an object" if expect is dict else f"a {expect.__name__}"
        raise damaged(path, f"{kind} was expected, it holds {type(data).__name__}", remedy)
    problem = check(data) if check is not None else None
    if problem:
        raise damaged(path, problem, remedy)
    return data


def read_json_if_present(
    path: Path,
    expect: type[T],
    *,
    check: Callable[[T], str | None] | None = None,
    remedy: str | None = None,
) -> T | None:
    """:func:`read_json`, or ``None`` when the file does not exist."""
    if not Path(path).is_file() and not Path(path).is_dir():
        return None
    return read_json(path, expect, check=check, remedy=remedy)


def read_csv_rows(path: Path, *, remedy: str | None = None) -> list[dict[str, str]]:
    """The rows of a CSV file with a header (``[]`` when it does not exist); damage raises one line."""
    path = Path(path)
    if not path.is_file():
        return []
    text = read_text(path, remedy=remedy)
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as exc:
        raise damaged(path, f"not CSV: {exc}", remedy) from None
    if any(None in row for row in rows):
        raise damaged(path, "a row has more cells than the header", remedy)
    return rows


def list_of_records(key: str, required: str) -> Callable[[dict[str, Any]], str | None]:
    """A ``check`` for :func:`read_json`: ``data[key]`` is a list of objects that each name ``required``."""

    def check(data: dict[str, Any]) -> str | None:
        rows = data.get(key, [])
        if not isinstance(rows, list):
            return f"{key!r} is not a list"
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get(required), str):
                return f"entry {index} of {key!r} has no {required!r}"
        return None

    return check


def design_from_dict(data: dict[str, Any], path: Path) -> Design:
    """A :class:`Design` from a design.json's content; a file that does not describe one is one line."""
    try:
        return Design.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise damaged(path, f"not a design: {type(exc).__name__} {exc}") from None


def read_design_file(path: Path) -> Design:
    """The design in a design.json (or in the directory holding one, with its reward.py): what
    ``autogai train --design`` reads. Any damage is one line naming the file."""
    path = Path(path)
    file = path / "design.json" if path.is_dir() else path
    if not file.is_file():
        raise RunDirectoryError(f"no design file {str(file)!r}")
    remedy = "give --design a design.json written by `autogai search` or `autogai propose`"
    data = read_json(file, dict, remedy=remedy)
    if "reward_source" not in data and (file.parent / "reward.py").is_file():
        data["reward_source"] = read_text(file.parent / "reward.py", remedy=remedy)
    if not isinstance(data.get("reward_source"), str):
        raise damaged(file, "no reward program in it", remedy)
    return design_from_dict(data, file)


def read_user_text(path: Path, what: str) -> str:
    """A text file the user named on the command line (a reward program): missing, unreadable or not
    UTF-8 is one :class:`ConfigError` line."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
