"""The one error family of autogai.

Every error a user can cause (bad flag, unknown task, rejected reward program, unreachable LLM, ...) is an
:class:`AutoGAIError`; the CLI prints its message as one line and exits non-zero. ``assert`` is kept for
internal invariants only.
"""

from __future__ import annotations

from autogai.core.text import escape_control


class AutoGAIError(Exception):
    """Base class of every error autogai raises on purpose. Its message is one clear line for a user."""


class ConfigError(AutoGAIError, ValueError):
    """A configuration value is invalid; the message names the value and the valid choices."""


class TaskNotFoundError(ConfigError):
    """No task card is registered under the requested id."""


class MissingDependencyError(AutoGAIError, ImportError):
    """An optional dependency is not installed; the message says what to install."""


class RewardRejectedError(AutoGAIError):
    """A reward program failed validation.

    ``stage`` names the validation step (``parse``, ``syntax``, ``params``, ``signature``, ``smoke``, ...),
    ``line`` the source line where there is one.
    """

    def __init__(self, reason: str, *, stage: str = "validation", line: int | None = None) -> None:
        self.reason = escape_control(str(reason))  # reasons quote program text: never raw control characters
        self.stage = stage
        self.line = line
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"reward program rejected at {stage}{where}: {reason}")


class RewardRuntimeError(AutoGAIError):
    """A reward program raised, stalled or returned non-finite values while running in the sandbox.

    The message quotes what the program raised: it is kept on one line, control characters escaped.
    """

    def __init__(self, message: str) -> None:
        super().__init__(escape_control(str(message)))


class ProposalError(AutoGAIError):
    """A proposer's reply could not be turned into a usable design."""


class TrainingDivergedError(AutoGAIError):
    """Training produced non-finite losses or parameters; the message says where."""


class LLMUnavailableError(AutoGAIError):
    """The configured LLM backend could not be reached or keeps failing after retries."""


class StorageError(AutoGAIError):
    """The study storage (SQLite, journal file, PostgreSQL) is unusable: bad URL, unreachable, read-only."""


class RunDirectoryError(AutoGAIError):
    """The run directory cannot be created or written, or belongs to a different configuration."""
