"""Atomic file writes: a run file is either its old content or its new content, never half of one.

Every writer of a run's files goes through :func:`write_atomic`: the data goes to a temporary file in the
same directory, is flushed to the disk (``fsync``), and replaces the target with ``os.replace`` (atomic on
POSIX). A full disk or a read-only directory leaves the old file untouched, removes the temporary file and
raises :class:`~autogai.core.errors.RunDirectoryError` with one line naming the path and what it needed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from autogai.core.errors import RunDirectoryError

_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def disk_error(path: Path | str, exc: OSError, needed_bytes: int | None = None) -> RunDirectoryError:
    """One line for an OSError met while writing ``path``: what failed, what it needed, how to go on."""
    if exc.errno in _SPACE_ERRNOS:
        need = f" (needed {needed_bytes} bytes)" if needed_bytes is not None else ""
        return RunDirectoryError(
            f"no space left on the device holding {str(path)!r}{need}; free some space and run the same "
            "command again to resume"
        )
    reason = exc.strerror or str(exc)
    return RunDirectoryError(f"cannot write {str(path)!r}: {reason}")


def write_atomic(path: Path | str, data: str | bytes) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` through a synced temporary file and ``os.replace``."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise disk_error(target, exc, len(payload)) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
