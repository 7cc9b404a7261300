"""Training layer: the training loop, evaluation on the task fitness, metrics writers, checkpoints.

Importing this package is cheap (numpy only); torch arrives with the agents when a run starts.
"""

from __future__ import annotations

from autogai.training.checkpoint import (
    find_checkpoint,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
)
from autogai.training.evaluation import evaluate_population, oracle_fitness
from autogai.training.loop import train, train_one
from autogai.training.metrics import TrainingStats, read_curves
from autogai.training.results import TRAIN_STATUSES, EvaluationResult, TrainResult
from autogai.training.session import AgentSpec, PopulationSession, evaluation_seed

__all__ = [
    "TRAIN_STATUSES",
    "AgentSpec",
    "EvaluationResult",
    "PopulationSession",
    "TrainResult",
    "TrainingStats",
    "evaluate_population",
    "evaluation_seed",
    "find_checkpoint",
    "load_checkpoint",
    "oracle_fitness",
    "read_checkpoint_meta",
    "read_curves",
    "save_checkpoint",
    "train",
    "train_one",
]
