"""Task card registry: built-in cards, user cards from Python files or ``module:attribute`` paths.

A user card is a Python file (or importable module) defining ``TASK = TaskCard(...)``. Pass its path or
``package.module:NAME`` wherever a task id is accepted, or call :func:`register_task` from your code.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from autogai.core.errors import AutoGAIError, ConfigError, TaskNotFoundError
from autogai.tasks.card import TaskCard

_REGISTRY: dict[str, TaskCard] = {}
_BUILTINS_LOADED = False


def register_task(card: TaskCard, *, overwrite: bool = False) -> TaskCard:
    """Add ``card`` under ``card.id``; refuses to replace an existing id unless ``overwrite``."""
    if not isinstance(card, TaskCard):
        raise ConfigError(f"register_task expects a TaskCard, got {type(card).__name__}")
    if card.id in _REGISTRY and not overwrite and _REGISTRY[card.id] is not card:
        raise ConfigError(f"task id {card.id!r} is already registered")
    _REGISTRY[card.id] = card
    return card


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from autogai.tasks.pendulum import TASK as pendulum_task
    from autogai.tasks.uav_nearfield import TASK as uav_task

    register_task(uav_task, overwrite=True)
    register_task(pendulum_task, overwrite=True)


def list_tasks() -> list[TaskCard]:
    _load_builtins()
    return list(_REGISTRY.values())


def _card_from_object(obj: object, origin: str) -> TaskCard:
    if not isinstance(obj, TaskCard):
        raise ConfigError(f"{origin} does not define a TaskCard (found {type(obj).__name__})")
    return register_task(obj, overwrite=True)


def get_task(spec: str | TaskCard) -> TaskCard:
    """Resolve a task id, a ``.py`` file defining ``TASK``, or ``module:attribute``."""
    if isinstance(spec, TaskCard):
        return spec
    _load_builtins()
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise TaskNotFoundError(f"task file {spec!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"autogai_user_task_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise TaskNotFoundError(f"cannot load task file {spec!r}")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except AutoGAIError:
            raise  # a TaskCard that refused its own fields says why already
        except (Exception, SystemExit) as exc:  # the file is user code: whatever it raises is one line
            raise TaskNotFoundError(f"cannot load task file {spec!r}: {type(exc).__name__}: {exc}") from exc
        return _card_from_object(getattr(module, "TASK", None), spec)
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except AutoGAIError:
            raise
        except (Exception, SystemExit) as exc:  # ImportError, or whatever the module raises at import
            raise TaskNotFoundError(
                f"cannot import task module {module_name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return _card_from_object(getattr(module, attribute, None), spec)
    valid = ", ".join(sorted(_REGISTRY))
    raise TaskNotFoundError(f"unknown task {spec!r}; valid tasks: {valid} (or a .py file defining TASK)")
