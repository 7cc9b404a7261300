"""Unit tests of the search layer's parts that need no training: statistics, storage URLs, the trial
queue, recovery of trials whose worker died, the search space, the run directory."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autogai.core.errors import RunDirectoryError, StorageError
from autogai.core.statistics import estimate
from autogai.core.types import EnhancerCombo
from autogai.pipeline.rundir import RunDirectory
from autogai.pipeline.stats import pareto_front
from autogai.search.budget import PRESETS, get_preset
from autogai.search.storage import default_storage_url, make_storage, redact_url, storage_scheme

# --- statistics (the functions themselves: tests/test_statistics.py) ---------------------------------


def test_score_estimates_ignore_nonfinite_runs() -> None:
    s = estimate(np.array([1.0, 2.0, np.nan, 3.0]))
    assert s.n == 3 and s.mean == pytest.approx(2.0) and s.iqm == pytest.approx(2.0)
    assert s.low <= s.iqm <= s.high
    assert estimate(np.array([])).n == 0 and math.isnan(estimate(np.array([])).mean)


def test_pareto_front_rate_up_power_down() -> None:
    points = np.array([[1.0, 10.0], [2.0, 10.0], [2.0, 5.0], [0.5, 1.0], [np.nan, 1.0]])
    mask = pareto_front(points, maximize=(True, False))
    assert mask.tolist() == [False, False, True, True, False]


# --- storage URLs -----------------------------------------------------------------------------------


def test_storage_schemes_and_redaction(tmp_path) -> None:
    assert storage_scheme(default_storage_url(tmp_path)) == "sqlite"
    assert storage_scheme("postgresql+psycopg2://u:p@h/db") == "postgresql"
    assert storage_scheme("postgres://u:p@h/db") == "postgresql"
    assert storage_scheme(f"journal:///{tmp_path}/j.log") == "journal"
    with pytest.raises(StorageError, match="unsupported storage scheme 'redis'"):
        storage_scheme("redis://localhost")
    with pytest.raises(StorageError, match="not a URL"):
        storage_scheme("optuna.db")
    assert redact_url("postgresql://user:secret@host:5432/db") == "postgresql://user:***@host:5432/db"


def test_unreachable_postgres_is_one_storage_error() -> None:
    with pytest.raises(StorageError) as info:
        make_storage("postgresql://nobody:pw@127.0.0.1:1/none")
    assert "pw" not in str(info.value) and "\n" not in str(info.value)


def test_sqlite_storage_is_wal(tmp_path) -> None:
    import sqlite3

    make_storage(default_storage_url(tmp_path))
    mode = sqlite3.connect(tmp_path / "optuna.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# --- the trial queue --------------------------------------------------------------------------------


def test_queue_claims_each_trial_once_and_never_creates_trials(tmp_path) -> None:
    from autogai.search.studies import budget_units, claim_waiting_trial, enqueue_to, get_or_create_study

    storage = make_storage(default_storage_url(tmp_path))
    study = get_or_create_study(storage, "run/d-1", {"kind": "tuning"})
    assert enqueue_to(study, 2, first_params=[{"x": 0.5}]) == 2
    assert enqueue_to(study, 2) == 0  # idempotent on resume
    first = claim_waiting_trial(storage, study)
    second = claim_waiting_trial(storage, study)
    assert first is not None and second is not None
    assert first[0].suggest_float("x", 0, 1) == 0.5  # the hint fixed the first trial
    assert claim_waiting_trial(storage, study) is None
    assert len(study.get_trials()) == 2 and budget_units(study) == 2


def _queued_study(tmp_path: Path, name: str, trials: int, first: dict[str, float]):
    """A study of run ``run`` in a fresh SQLite storage with ``trials`` queued, the first fixed at ``first``."""
    from autogai.search.studies import enqueue_to, get_or_create_study

    storage = make_storage(default_storage_url(tmp_path))
    study = get_or_create_study(storage, name)
    enqueue_to(study, trials, first_params=[first])
    return storage, study


def test_dead_local_worker_trial_is_failed_and_requeued(tmp_path) -> None:
    import optuna

    from autogai.search.studies import budget_units, claim_waiting_trial, recover_dead_local_trials

    storage, study = _queued_study(tmp_path, "run/d-2", 1, {"x": 0.25})
    trial, trial_id = claim_waiting_trial(storage, study)
    trial.suggest_float("x", 0, 1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    storage.set_trial_user_attr(
        trial_id, "worker", {"host": __import__("socket").gethostname(), "pid": dead.pid}
    )
    assert recover_dead_local_trials(storage, "run") == [("run/d-2", 0)]
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert study.get_trials()[1].params == {"x": 0.25}
    assert budget_units(study) == 1  # the retry replaces its original
    assert recover_dead_local_trials(storage, "run") == []


def test_a_trial_claimed_but_never_signed_is_requeued_after_the_grace_period(tmp_path: Path) -> None:
    # A search killed between Study.ask (WAITING -> RUNNING) and signing the trial with its worker leaves
    # a trial with no pid and no heartbeat: a resumed search must not wait for it for ever.
    import optuna

    from autogai.search.studies import (
        budget_units,
        claim_waiting_trial,
        fail_orphaned_trials,
        recover_dead_local_trials,
    )

    storage, study = _queued_study(tmp_path, "run/d-3", 2, {"x": 0.5})
    orphan = study.ask()  # claimed, then the process died before it signed the trial
    assert orphan.number == 0 and orphan.user_attrs.get("worker") is None
    assert claim_waiting_trial(storage, study) is not None  # a live worker signs its trial at once
    assert fail_orphaned_trials(storage, study) == []  # younger than the grace period: a live claim
    assert fail_orphaned_trials(storage, study, grace_s=0.0) == [0]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {
        0: optuna.trial.TrialState.FAIL,
        1: optuna.trial.TrialState.RUNNING,
        2: optuna.trial.TrialState.WAITING,
    }
    retry = study.get_trials()[2]
    # never sampled, so the enqueued values travel as the retry's fixed params
    assert (
        retry.system_attrs.get("fixed_params") == {"x": 0.5} and retry.system_attrs.get("failed_trial") == 0
    )
    assert "died before it started" in study.get_trials()[0].user_attrs["reason"]
    assert budget_units(study) == 2  # the retry replaces its original
    assert recover_dead_local_trials(storage, "run") == []  # nothing left to recover
    claimed = claim_waiting_trial(storage, study)
    assert claimed is not None and claimed[0].number == 2 and claimed[0].suggest_float("x", 0, 1) == 0.5


# --- search space -----------------------------------------------------------------------------------


def test_sanitize_hints_clips_snaps_and_drops() -> None:
    from autogai.search.space import sanitize_hints

    budget = get_preset("smoke")
    fixed, notes = sanitize_hints(
        {"learning_rate": 1.0, "batch_size": 100, "diffusion_steps": 4, "w": 3.0, "bogus": 1},
        EnhancerCombo.parse("plain"),
        budget,
        {"w": {"default": 1.0, "low": 0.1, "high": 2.0}},
    )
    assert fixed["learning_rate"] == pytest.approx(3e-3)
    assert fixed["batch_size"] == 32
    assert fixed["reward.w"] == 2.0
    assert "diffusion_steps" not in fixed and "bogus" not in fixed
    assert len(notes) >= 3


def test_td3_space_samples_enhancer_knobs_only_when_on() -> None:
    import optuna

    from autogai.search.space import suggest_td3_params

    budget = PRESETS["smoke"]
    study = optuna.create_study()
    plain = suggest_td3_params(study.ask(), EnhancerCombo.parse("plain"), budget)
    full = suggest_td3_params(study.ask(), EnhancerCombo.parse("gdm+gan+transformer+vae"), budget)
    assert "diffusion_steps" not in plain and plain["net_arch"] == (32, 32)
    assert {"diffusion_steps", "vae_latent_dim", "transformer_dim", "gan_adv_weight"} <= set(full)


def test_trial_space_keeps_the_parameter_names_and_ranges_stored_studies_were_sampled_with() -> None:
    """The space derived from the enhancers' declarations is the one written out before them, name for name:
    trials of existing studies (and hints naming these parameters) stay valid."""
    from autogai.agents.enhancers import Choice, FloatRange
    from autogai.search.space import trial_space

    everything = EnhancerCombo.parse("gdm+gan+transformer+vae")
    small = next(b for b in PRESETS.values() if b.enhancer_scale == "small")
    full = next(b for b in PRESETS.values() if b.enhancer_scale != "small")
    expected_enhancer_space = {
        "small": {
            "diffusion_steps": Choice((3, 5)),
            "bc_weight": Choice((0.0, 0.1, 1.0)),
            "diffusion_hidden": 32,
            "vae_latent_dim": Choice((8, 16)),
            "vae_beta": FloatRange(0.01, 1.0, log=True),
            "vae_hidden": 64,
            "transformer_dim": Choice((16, 32)),
            "transformer_layers": Choice((1,)),
            "transformer_heads": 2,
            "gan_adv_weight": FloatRange(0.01, 1.0, log=True),
        },
        "full": {
            "diffusion_steps": Choice((5, 10)),
            "bc_weight": Choice((0.0, 0.1, 1.0)),
            "vae_latent_dim": Choice((16, 32, 64)),
            "vae_beta": FloatRange(0.01, 1.0, log=True),
            "transformer_dim": Choice((32, 64)),
            "transformer_layers": Choice((1, 2)),
            "transformer_heads": 2,
            "gan_adv_weight": FloatRange(0.01, 1.0, log=True),
        },
    }
    td3 = {
        "learning_rate": FloatRange(1e-4, 3e-3, log=True),
        "tau": Choice((0.001, 0.005, 0.01, 0.02)),
        "gamma": Choice((0.9, 0.95, 0.98, 0.99, 0.995)),
        "exploration_noise": FloatRange(0.05, 0.5),
        "target_policy_noise": FloatRange(0.1, 0.4),
        "policy_delay": Choice((1, 2, 3)),
    }
    for scale, budget in (("small", small), ("full", full)):
        space = trial_space(everything, dataclasses.replace(budget, shape_search=True))
        assert {name: space[name] for name in td3} == td3
        assert {name: space[name] for name in expected_enhancer_space[scale]} == expected_enhancer_space[
            scale
        ]
        assert space["batch_size"] == Choice(tuple(budget.batch_size_choices))
        # without shape search the shape knobs are fixed (a batch of trials is one population)
        fixed = trial_space(everything, dataclasses.replace(budget, shape_search=False))
        assert "policy_delay" not in fixed
        assert (fixed["diffusion_steps"], fixed["vae_latent_dim"], fixed["transformer_layers"]) == (5, 16, 1)
        assert fixed["transformer_dim"] == (16 if scale == "small" else 32)
    assert not {"diffusion_steps", "vae_beta", "transformer_dim", "gan_adv_weight"} & set(
        trial_space(EnhancerCombo.parse("plain"), full)
    )


# --- run directory ----------------------------------------------------------------------------------


def test_run_directory_refuses_a_different_task(tmp_path) -> None:
    run = RunDirectory(tmp_path / "r")
    run.ensure_writable()
    run.write_config({"task": "uav-nearfield", "preset": "smoke"})
    run.write_config({"task": "uav-nearfield", "preset": "smoke", "workers": 2})
    with pytest.raises(RunDirectoryError, match=r"task='uav-nearfield'.*task='pendulum'"):
        run.write_config({"task": "pendulum", "preset": "smoke"})


def test_search_lock_refuses_a_live_holder(tmp_path) -> None:
    import json
    import socket

    run = RunDirectory(tmp_path / "r")
    run.ensure_writable()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run.lock_path.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        with pytest.raises(RunDirectoryError, match="in use by search process"), run.search_lock():
            pass
    finally:
        holder.kill()
        holder.wait()
    with run.search_lock():  # a dead holder's lock is taken over
        assert run.lock_path.exists()
    assert not run.lock_path.exists()


@pytest.mark.parametrize("preset", ["smoke", "quick", "standard", "paper"])
def test_default_first_trial_lies_inside_every_designs_search_space(preset: str) -> None:
    """The warm-start trial must be taken as enqueued: a value outside the space would be resampled."""
    import optuna

    from autogai.core.types import EnhancerCombo
    from autogai.search.budget import PRESETS
    from autogai.search.space import default_trial_params, suggest_reward_params, suggest_td3_params

    budget = PRESETS[preset]
    specs = {
        "rate_weight": {"default": 10.0, "low": 1.0, "high": 50.0},
        "power_weight": {"default": 0.005, "low": 1e-4, "high": 0.05, "log": True},
    }
    for combo in EnhancerCombo.all_combinations():
        defaults = default_trial_params(combo, budget, specs)
        study = optuna.create_study()
        study.enqueue_trial(defaults)
        trial = study.ask()
        suggest_td3_params(trial, combo, budget)
        suggest_reward_params(trial, specs)
        assert trial.params == defaults, combo.short_name
        assert defaults["gamma"] == 0.99 and defaults["reward.power_weight"] == 0.005


def test_first_trial_takes_td3config_defaults_snapped_into_the_budget() -> None:
    from autogai.agents.config import TD3Config
    from autogai.core.types import EnhancerCombo
    from autogai.search.budget import PRESETS
    from autogai.search.space import default_trial_params

    config = TD3Config()
    everything = EnhancerCombo.parse("gdm+gan+vae+transformer")
    full = next(
        b for b in PRESETS.values() if b.enhancer_scale != "small" and (256, 256) in b.net_arch_choices
    )
    defaults = default_trial_params(everything, full, {})
    for name in ("learning_rate", "tau", "gamma", "exploration_noise", "policy_delay", "vae_latent_dim"):
        assert defaults[name] == config.get(name), name
    assert defaults["net_arch"] == "256x256" and defaults["batch_size"] == config.batch_size
    # a small budget cannot hold TD3Config's 32-wide VAE latent: the nearest choice is taken
    small = next(b for b in PRESETS.values() if b.enhancer_scale == "small")
    searched = dataclasses.replace(small, shape_search=True)
    assert default_trial_params(everything, searched, {})["vae_latent_dim"] == 16
    # without shape search the latent size is not a searched parameter (a batch is one population)
    assert "vae_latent_dim" not in default_trial_params(
        everything, dataclasses.replace(small, shape_search=False), {}
    )
