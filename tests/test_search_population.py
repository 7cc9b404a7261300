"""Trials as populations: batches claimed through Optuna's ask, grouped by shape, pruned per trial inside a
running population, and a two-generation search whose second generation learns from the first."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from search_helpers import SMOKE_FLAGS, cli, search_env

from autogai.core.types import Design, EnhancerCombo
from autogai.search.budget import get_preset
from autogai.search.objective import TrialContext, run_batch
from autogai.search.storage import default_storage_url, make_storage
from autogai.search.studies import claim_waiting_trials, enqueue_to, get_or_create_study


def test_batches_are_claimed_from_the_queue_and_never_grow_it(tmp_path: Path) -> None:
    storage = make_storage(default_storage_url(tmp_path))
    study = get_or_create_study(storage, "run/d-1", {"kind": "tuning"})
    enqueue_to(study, 5, first_params=[{"x": 0.25}])
    first = claim_waiting_trials(storage, study, 3)
    second = claim_waiting_trials(storage, study, 3)
    assert [len(first), len(second)] == [3, 2]
    assert claim_waiting_trials(storage, study, 3) == []
    assert len(study.get_trials()) == 5  # ask() popped queued trials and created none
    numbers = [trial.number for trial, _ in first + second]
    assert sorted(numbers) == list(range(5))
    assert first[0][0].suggest_float("x", 0, 1) == 0.25  # the queued hint fixed the first trial
    states = {t.state.name for t in study.get_trials()}
    assert states == {"RUNNING"}


class _PruneTrialOne(optuna.pruners.BasePruner):
    """Prunes exactly trial 1 at its first report (the others never)."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == 1


def test_a_pruned_trial_leaves_its_population_and_the_others_finish(tmp_path: Path) -> None:
    budget = get_preset("smoke").with_overrides(total_steps=300, eval_every=150, learning_starts=100)
    context = TrialContext(run_name="run", task="pendulum", budget=budget, device="cpu")
    from autogai.tasks import get_task

    design = Design(
        reward_source=get_task("pendulum").baseline_reward, enhancers=EnhancerCombo(), name="baseline"
    )
    study = optuna.create_study(direction="maximize", pruner=_PruneTrialOne())
    enqueue = [study.enqueue_trial({}) for _ in range(3)]
    assert len(enqueue) == 3
    trials = [study.ask() for _ in range(3)]
    attrs = {"design": design.to_dict(), "kind": "tuning", "reward_params": {}}
    outcomes = run_batch(trials, attrs, context)
    states = [o.state for o in outcomes]
    assert states == ["COMPLETE", "PRUNED", "COMPLETE"], [o.attrs.get("reason") for o in outcomes]
    assert outcomes[1].result.steps_done == 150  # left at its first report after learning starts
    assert outcomes[0].result.steps_done == outcomes[2].result.steps_done == 300
    # every trial reported its own intermediate values
    assert trials[0].study.trials[0].intermediate_values


@pytest.mark.integration
def test_two_generation_search_feeds_generation_zero_back_into_generation_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "two-gens"
    flags = [f for f in SMOKE_FLAGS]
    flags[flags.index("--generations") + 1] = "2"
    result = cli(["search", "--task", "uav-nearfield", *flags, "--run-dir", str(run)], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((run / "state.json").read_text())
    generations = {entry["index"]: entry["design_ids"] for entry in state["generations"]}
    assert set(generations) == {0, 1} and generations[1]
    board = {row["design_id"]: row for row in json.loads((run / "leaderboard.json").read_text())["designs"]}
    scored_before = [
        d for d in [*generations[0], state["baseline_id"]] if board[d]["validation_iqm"] is not None
    ]
    assert scored_before
    for design_id in generations[1]:
        prompt = (run / "designs" / design_id / "prompt.md").read_text()
        assert "## Feedback" in prompt
        for earlier in scored_before:  # every scored design of generation 0 (and the baseline) is fed back
            assert earlier in prompt
            # ... with its validation score: test seeds are used once, for the verdict, never for feedback
            assert f"fitness score {board[earlier]['validation_iqm']:.3g}" in prompt
        stored = json.loads((run / "designs" / design_id / "design.json").read_text())
        assert stored["parent"] in scored_before  # a child of a scored design, not a fresh composition
    # The results collection holds exactly the designs that beat the baseline on validation seeds.
    for name, value in search_env(tmp_path).items():
        if name.startswith("AUTOGAI_"):
            monkeypatch.setenv(name, value)  # undone after the test: later tests see their own settings
    from autogai.rag.knowledge import KnowledgeBase

    kb = KnowledgeBase(embeddings="hash")
    stored_ids = {r.design["id"] for r in kb.query_results("uav-nearfield", "design", k=20)}
    winners = set(state["remembered"])
    assert stored_ids == winners
    for design_id in winners:
        assert board[design_id]["validation_iqm"] > board[state["baseline_id"]]["validation_iqm"]
