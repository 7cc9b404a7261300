"""Training metrics: per-component reward statistics, violation rates, and the curves written to disk.

Metrics are data: they go to ``curves.csv`` (and TensorBoard when it is installed and asked for); logs are
for people and stay in :mod:`logging`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autogai.core.files import write_atomic
from autogai.core.types import ComponentSummary

_SUMMARY_SAMPLES = 10


class _Running:
    """Sum, count, min and max of a stream of floats (per-step values of one reward component)."""

    __slots__ = ("count", "max", "min", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation, or ``None`` when undefined (fewer than 3 points or a constant series)."""
    if len(x) < 3 or len(x) != len(y):
        return None
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    sa, sb = a.std(), b.std()
    if sa < 1e-12 * max(1.0, abs(a.mean())) or sb < 1e-12 * max(1.0, abs(b.mean())):
        return None
    return float(np.clip(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb), -1.0, 1.0))


def subsample(values: Sequence[float], k: int = _SUMMARY_SAMPLES) -> tuple[float, ...]:
    """About ``k`` values taken evenly from ``values`` (first and last included), oldest first."""
    n = len(values)
    if n <= k:
        return tuple(float(v) for v in values)
    idx = np.unique(np.linspace(0, n - 1, k).round().astype(int))
    return tuple(float(values[i]) for i in idx)


class TrainingStats:
    """Per-step and per-episode statistics of a training run (Eureka-style reward feedback).

    Per component: the mean, min and max of its per-step value over all training steps; ``samples``, about
    ten per-episode means of its per-step value taken evenly over training; and the Pearson correlation of
    its per-episode sums with per-episode task fitness (does the component point where fitness points?).
    Violation rates are per-step rates of the card's boolean violation metrics.
    """

    def __init__(self, violation_metrics: Sequence[str] = ()) -> None:
        self.violation_metrics = tuple(violation_metrics)
        self.components: dict[str, _Running] = {}
        self.violation_counts = dict.fromkeys(self.violation_metrics, 0)
        self.steps = 0
        # Per finished episode.
        self.episode_returns: list[float] = []
        self.episode_fitness: list[float] = []
        self.episode_lengths: list[int] = []
        self.episode_component_sums: dict[str, list[float]] = {}
        self.episode_component_means: dict[str, list[float]] = {}
        # Current episode.
        self._return = 0.0
        self._length = 0
        self._component_sums: dict[str, float] = {}
        self._step_fitness: list[float] = []
        # Since the last curve row.
        self._window_components: dict[str, _Running] = {}
        self._window_first_episode = 0

    def on_step(
        self,
        reward: float,
        components: Mapping[str, float],
        metrics: Mapping[str, Any],
        step_fitness: float,
    ) -> None:
        self.steps += 1
        self._return += reward
        self._length += 1
        self._step_fitness.append(step_fitness)
        sums = self._component_sums
        for name, value in components.items():
            value = float(value)
            running = self.components.get(name)
            if running is None:
                running = self.components[name] = _Running()
                self._window_components[name] = _Running()
            running.add(value)
            window = self._window_components.get(name)
            if window is None:
                window = self._window_components[name] = _Running()
            window.add(value)
            sums[name] = sums.get(name, 0.0) + value
        for name in self.violation_metrics:
            if metrics.get(name):
                self.violation_counts[name] += 1

    def on_episode_end(self, episode_fitness: float) -> None:
        if self._length == 0:
            return
        self.episode_returns.append(self._return)
        self.episode_fitness.append(episode_fitness)
        self.episode_lengths.append(self._length)
        n_before = len(self.episode_returns) - 1
        for name in self.components:
            total = self._component_sums.get(name, 0.0)
            sums = self.episode_component_sums.setdefault(name, [math.nan] * n_before)
            means = self.episode_component_means.setdefault(name, [math.nan] * n_before)
            sums.append(total)
            means.append(total / self._length)
        self._return = 0.0
        self._length = 0
        self._component_sums = {}
        self._step_fitness = []

    @property
    def current_step_fitness(self) -> list[float]:
        """Per-step fitness values of the episode in progress."""
        return self._step_fitness

    def violation_rates(self) -> dict[str, float]:
        if self.steps == 0:
            return {}
        return {name: count / self.steps for name, count in self.violation_counts.items()}

    def component_summaries(self) -> dict[str, ComponentSummary]:
        summaries: dict[str, ComponentSummary] = {}
        for name, running in self.components.items():
            means = list(self.episode_component_means.get(name, []))
            sums = list(self.episode_component_sums.get(name, []))
            if not means and self._length:  # no finished episode yet: the one in progress stands in
                partial = self._component_sums.get(name, 0.0)
                means, sums = [partial / self._length], [partial]
            pairs = [(s, f) for s, f in zip(sums, self.episode_fitness, strict=False) if math.isfinite(s)]
            correlation = _pearson([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None
            summaries[name] = ComponentSummary(
                mean=running.mean,
                min=running.min,
                max=running.max,
                samples=subsample([m for m in means if math.isfinite(m)]),
                fitness_correlation=correlation,
            )
        return summaries

    def window_row(self) -> dict[str, float]:
        """Training-side columns of a curve row, over the steps since the previous row; resets the window."""
        row: dict[str, float] = {}
        recent = self.episode_returns[self._window_first_episode :]
        recent_fitness = self.episode_fitness[self._window_first_episode :]
        row["episode_return"] = float(np.mean(recent)) if recent else math.nan
        row["train_episode_fitness"] = float(np.mean(recent_fitness)) if recent_fitness else math.nan
        row["episodes"] = len(self.episode_returns)
        for name, running in self._window_components.items():
            row[f"component/{name}"] = running.mean
        self._window_components = {name: _Running() for name in self.components}
        self._window_first_episode = len(self.episode_returns)
        return row


class LossAverager:
    """Mean of each loss over the updates since the last row (keys may be absent on some updates)."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, losses: Mapping[str, float]) -> None:
        for key, value in losses.items():
            self._sums[key] = self._sums.get(key, 0.0) + float(value)
            self._counts[key] = self._counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        row = {f"loss/{k}": self._sums[k] / self._counts[k] for k in self._sums}
        self._sums, self._counts = {}, {}
        return row


class CurveWriter:
    """Writes curve rows to ``curves.csv`` (rewritten whole on each row so new columns are never lost),
    and to TensorBoard when ``tensorboard`` is true and the package is installed."""

    def __init__(self, path: Path | None, *, tensorboard: bool = False) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []
        self._fields: list[str] = []
        self._tb: Any = None
        if tensorboard and path is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional: CSV is the record
                import logging

                logging.getLogger(__name__).warning(
                    "TensorBoard requested but not installed (pip install tensorboard); writing CSV only"
                )
            else:
                self._tb = SummaryWriter(log_dir=str(path.parent / "tensorboard"))

    def add(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        for key in row:
            if key not in self._fields:
                self._fields.append(key)
        if self.path is not None:
            handle = io.StringIO(newline="")
            writer = csv.DictWriter(handle, fieldnames=self._fields, restval="")
            writer.writeheader()
            for r in self.rows:
                writer.writerow({k: _csv_value(v) for k, v in r.items()})
            write_atomic(self.path, handle.getvalue())
        if self._tb is not None:
            step = int(row.get("step", len(self.rows)))
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value) if abs(value) >= 1e-4 or value == 0 else f"{value:.6e}"
    return value


def read_curves(path: Path) -> list[dict[str, float]]:
    """Read a ``curves.csv`` back as float rows (empty cells become NaN)."""
    with Path(path).open(newline="") as handle:
        return [
            {k: (float(v) if v not in ("", None) else math.nan) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]
