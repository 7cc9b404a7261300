"""Task cards: description, metrics, fitness and baseline reward of each task."""

from autogai.tasks.card import MetricSpec, TaskCard
from autogai.tasks.registry import get_task, list_tasks, register_task

__all__ = ["MetricSpec", "TaskCard", "get_task", "list_tasks", "register_task"]
