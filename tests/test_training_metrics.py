"""Training statistics and curve files (no torch, no env)."""

from __future__ import annotations

import math

import pytest

from autogai.training.metrics import CurveWriter, LossAverager, TrainingStats, read_curves, subsample
from autogai.training.results import EvaluationResult, TrainResult


def test_component_summaries_track_steps_episodes_and_correlation() -> None:
    stats = TrainingStats(violation_metrics=("bad",))
    # Five episodes of 4 steps; component "good" tracks fitness, "noise" does not.
    for episode in range(5):
        for step in range(4):
            stats.on_step(
                reward=1.0,
                components={"good": float(episode), "noise": float((-1) ** (episode * 3 + step))},
                metrics={"bad": step == 0},
                step_fitness=float(episode),
            )
        stats.on_episode_end(episode_fitness=float(episode))
    summaries = stats.component_summaries()
    good = summaries["good"]
    assert (good.mean, good.min, good.max) == (2.0, 0.0, 4.0)
    assert good.samples == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert good.fitness_correlation == pytest.approx(1.0)
    assert summaries["noise"].fitness_correlation is None  # constant episode sums: undefined
    assert stats.violation_rates() == {"bad": 0.25}
    assert stats.episode_returns == [4.0] * 5

    row = stats.window_row()
    assert row["episode_return"] == 4.0 and row["component/good"] == 2.0 and row["episodes"] == 5
    assert math.isnan(stats.window_row()["episode_return"])  # the window restarts


def test_partial_episode_stands_in_before_the_first_episode_ends() -> None:
    stats = TrainingStats()
    stats.on_step(0.5, {"c": 2.0}, {}, 1.0)
    stats.on_step(0.5, {"c": 4.0}, {}, 1.0)
    summary = stats.component_summaries()["c"]
    assert summary.samples == (3.0,) and summary.fitness_correlation is None


def test_subsample_keeps_ends_and_about_ten() -> None:
    values = list(range(100))
    picked = subsample(values)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 99
    assert subsample([1.0, 2.0]) == (1.0, 2.0)


def test_curve_writer_adds_late_columns_and_round_trips(tmp_path) -> None:
    writer = CurveWriter(tmp_path / "curves.csv")
    writer.add({"step": 1.0, "fitness": 2.5})
    writer.add({"step": 2.0, "fitness": math.nan, "loss/critic": 1e-7})
    rows = read_curves(tmp_path / "curves.csv")
    assert rows[0]["fitness"] == 2.5 and math.isnan(rows[0]["loss/critic"])
    assert math.isnan(rows[1]["fitness"]) and rows[1]["loss/critic"] == pytest.approx(1e-7)


def test_loss_averager_handles_missing_keys() -> None:
    losses = LossAverager()
    losses.add({"critic": 1.0, "actor": -2.0})
    losses.add({"critic": 3.0})
    assert losses.pop() == {"loss/critic": 2.0, "loss/actor": -2.0}
    assert losses.pop() == {}


def test_results_serialise_without_nan() -> None:
    evaluation = EvaluationResult(episode_fitness=(1.0, 3.0), seed=7, oracle_fitness=4.0)
    assert evaluation.fitness_mean == 2.0 and evaluation.oracle_fraction == 0.5
    assert "oracle 4" in evaluation.summary()
    result = TrainResult(status="pruned", final_evaluation=evaluation, curve=[{"step": 1.0, "x": math.nan}])
    data = result.to_dict()
    assert data["fitness"] == 2.0 and data["curve"][0]["x"] is None
    assert result.ok and not TrainResult(status="diverged").ok
