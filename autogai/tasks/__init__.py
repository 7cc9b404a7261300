"""Task cards: description, metrics, fitness and baseline reward of each task."""

from autogai.tasks.card import NATIVE_REWARD_BASELINE, MetricSpec, TaskCard, native_fitness
from autogai.tasks.registry import get_task, list_tasks, register_task

__all__ = [
    "NATIVE_REWARD_BASELINE",
    "MetricSpec",
    "TaskCard",
    "get_task",
    "list_tasks",
    "native_fitness",
    "register_task",
]
