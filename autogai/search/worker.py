"""Worker processes: take WAITING trials of a run's studies from the storage and run them.

``autogai search --workers W`` starts W local workers against the run's storage; ``autogai worker
--storage URL --run NAME`` joins a run from any machine that reaches the storage. Workers coordinate only
through Optuna's storage (trial queue, states, heartbeats); a worker that dies leaves a RUNNING trial that
is failed and re-queued (heartbeat grace period, or at once for a dead process on the same host).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogai.core.seeding import derive_seed
from autogai.search.budget import SearchBudget
from autogai.search.objective import TrialContext, TrialOutcome, run_batch
from autogai.search.storage import make_storage, redact_url
from autogai.search.studies import (
    claim_lock_path,
    claim_waiting_trials,
    fail_stale_trials,
    heartbeat,
    is_scoring_study,
    load_study,
    read_run_config,
    return_trials,
    run_study_names,
)

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

RUN_STATUS_DONE = "done"
MAX_SCORING_POPULATION = 256
"""Upper bound on the validation/test runs of one study claimed at once (all of them, in practice)."""


def make_sampler(budget: SearchBudget, seed: int) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, constant liar for parallel workers) or random search (benchmark baseline)."""
    import optuna

    if budget.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=max(2, budget.trials_per_design // 2),
        multivariate=True,
        group=True,
        constant_liar=True,
    )


def make_pruner(budget: SearchBudget) -> optuna.pruners.BasePruner:
    """Median or successive-halving pruning on the periodic evaluations, never before learning starts."""
    import optuna

    if budget.pruner == "none":
        return optuna.pruners.NopPruner()
    if budget.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(budget.eval_every, budget.learning_starts + 1), reduction_factor=3
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=2, n_warmup_steps=budget.learning_starts, interval_steps=1
    )


class Worker:
    """Runs trials of one run until the run is done (or, with ``exit_when_idle``, nothing is queued)."""

    def __init__(
        self,
        storage_url: str,
        run_name: str,
        *,
        device: str | None = None,
        parent_pid: int | None = None,
        exit_when_idle: bool = False,
        poll_interval_s: float = 0.5,
        max_trials: int | None = None,
        slot: int | None = None,
    ) -> None:
        self.storage_url = storage_url
        self.run_name = run_name
        self.storage = make_storage(storage_url)
        config = read_run_config(self.storage, run_name)
        self.context = TrialContext.from_dict(config["context"])
        if device:
            self.context = dataclasses.replace(self.context, device=device)
        self.parent_pid = parent_pid
        self.exit_when_idle = exit_when_idle
        self.poll_interval_s = poll_interval_s
        self.max_trials = max_trials
        self.trials_done = 0
        self._stop = False
        self.stop_signal: int | None = None
        """The signal (SIGTERM, SIGINT) that stopped this worker, if one did."""
        self._training = False
        self._studies: dict[str, optuna.Study] = {}
        self._study_attrs: dict[str, dict[str, Any]] = {}
        self._last_stale_check = 0.0
        # A local worker's slot (0..W-1) seeds its samplers, so one worker repeats a search exactly from the
        # search's seed; a worker joining from elsewhere has no slot and seeds from its process.
        self.slot = slot
        self._seed_part: int | str = slot if slot is not None else f"pid{os.getpid()}-{time.time_ns()}"
        self._rng = random.Random(derive_seed(self.context.seed, "rotation", self._seed_part))
        self._claim_lock = claim_lock_path(storage_url)

    def warm_up(self) -> None:
        """Import the training stack and build the task's env once, while the search is still proposing:
        the first trial then starts at full speed."""
        try:
            import autogai.training  # noqa: F401  (torch, agents, rewards)
            from autogai.tasks import get_task

            get_task(self.context.task).make_env(**self.context.resolved_env_kwargs()).close()
        except Exception as exc:  # a broken task shows up as a failed trial with its reason
            logger.debug("warm-up failed: %s", exc)

    def request_stop(self, signum: int | None = None, _frame: Any = None) -> None:
        """Signal handler: stop now. Training is interrupted at once (its trials go back to the queue);
        a claim or a result being written finishes first, so the storage never holds half of one."""
        self._stop = True
        if signum is not None and self.stop_signal is None:
            self.stop_signal = signum
        if self._training:
            self._training = False
            raise KeyboardInterrupt(f"worker stopped by signal {signum}")

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)

    @property
    def exit_code(self) -> int:
        """0, or the shell's convention for a process ended by a signal (130 SIGINT, 143 SIGTERM)."""
        return 0 if self.stop_signal is None else 128 + int(self.stop_signal)

    def should_stop(self) -> bool:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            self._stop = True  # the search that started us is gone: do not train orphaned
        return self._stop

    def _study(self, name: str) -> optuna.Study:
        if name not in self._studies:
            # The study's name within the run (not the run's name): the same seed repeats a search in
            # another run directory.
            seed = derive_seed(self.context.seed, name.split("/", 1)[-1], self._seed_part)
            self._studies[name] = load_study(
                self.storage,
                name,
                sampler=make_sampler(self.context.budget, seed),
                pruner=make_pruner(self.context.budget),
            )
        return self._studies[name]

    def _attrs(self, name: str) -> dict[str, Any]:
        if name not in self._study_attrs:
            self._study_attrs[name] = dict(self._study(name).user_attrs)
        return self._study_attrs[name]

    def _run_is_done(self) -> bool:
        return read_run_config(self.storage, self.run_name).get("status") in (RUN_STATUS_DONE, "stopped")

    def claim(self) -> tuple[optuna.Study, list[tuple[optuna.Trial, int]]] | None:
        """A batch of WAITING trials of one study: all waiting validation or test seeds of a design at once
        (fixed configurations of one shape: one population), or up to ``population_size`` tuning trials."""
        names = run_study_names(self.storage, self.run_name)
        # Validation and test studies first (they gate the end of a phase), then a rotation so two
        # workers rarely race for the same queue.
        heldout = [n for n in names if is_scoring_study(n)]
        tuning = [n for n in names if n not in heldout]
        if tuning:
            k = self._rng.randrange(len(tuning))
            tuning = tuning[k:] + tuning[:k]
        check_stale = time.monotonic() - self._last_stale_check > 5.0
        budget = self.context.budget
        for name in heldout + tuning:
            study = self._study(name)
            if check_stale:
                fail_stale_trials(self.storage, study)
            limit = MAX_SCORING_POPULATION if name in heldout else budget.population_size
            claimed = claim_waiting_trials(self.storage, study, limit, lock_path=self._claim_lock)
            if claimed:
                if check_stale:
                    self._last_stale_check = time.monotonic()
                return study, claimed
        if check_stale:
            self._last_stale_check = time.monotonic()
        return None

    def run_batch(
        self, study: optuna.Study, claimed: list[tuple[optuna.Trial, int]], claim_s: float = 0.0
    ) -> list[str]:
        """Train a claimed batch and store its results. Stopped before or while it trains (signal, parent
        gone), it hands every trial of the batch back to the queue and raises KeyboardInterrupt."""
        attrs = self._attrs(study.study_name)
        started = time.monotonic()
        trials = [trial for trial, _ in claimed]
        with contextlib.ExitStack() as beats:
            for _, trial_id in claimed:
                beats.enter_context(heartbeat(self.storage, trial_id))
            try:
                if self.should_stop():
                    raise KeyboardInterrupt("worker stopped before the batch started")
                self._training = True
                try:
                    outcomes = run_batch(trials, attrs, self.context, should_stop=self.should_stop)
                finally:
                    self._training = False
            except KeyboardInterrupt:
                self._training = False
                returned = return_trials(
                    self.storage, study, [t.number for t in trials], "worker stopped mid-trial; re-queued"
                )
                logger.warning(
                    "%s: stopped; %d trial(s) of the batch back in the queue", study.study_name, len(returned)
                )
                raise
        duration = round(time.monotonic() - started, 3)
        for outcome in outcomes:
            outcome.result.claim_s = round(claim_s, 4)
        return [
            self._tell(study, trial, trial_id, outcome, duration, len(claimed))
            for (trial, trial_id), outcome in zip(claimed, outcomes, strict=True)
        ]

    def _tell(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        trial_id: int,
        outcome: TrialOutcome,
        duration: float,
        population: int,
    ) -> str:
        import optuna
        from optuna.trial import TrialState

        outcome.result.duration_s = duration
        outcome.result.population = population
        try:
            for key, value in outcome.result.to_attrs().items():
                self.storage.set_trial_user_attr(trial_id, key, value)
            if outcome.state == "COMPLETE":
                study.tell(trial, outcome.value)
            elif outcome.state == "PRUNED":
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            # Someone declared this worker dead (heartbeat grace passed) and re-queued the trial.
            logger.warning(
                "%s trial %d was failed by another process while it ran; result dropped",
                study.study_name,
                trial.number,
            )
            return "FAIL"
        logger.info("%s trial %d: %s %s", study.study_name, trial.number, outcome.state, outcome.value)
        return outcome.state

    def run(self) -> int:
        """Work until the run is done; returns the number of trials this worker finished."""
        while not self.should_stop():
            if self.max_trials is not None and self.trials_done >= self.max_trials:
                break
            asked = time.monotonic()
            claimed = self.claim()
            if claimed is None:
                if self._run_is_done() or self.exit_when_idle:
                    break
                time.sleep(self.poll_interval_s)
                continue
            try:
                states = self.run_batch(*claimed, claim_s=time.monotonic() - asked)
            except KeyboardInterrupt:
                break
            self.trials_done += len(states)
        return self.trials_done


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGKILL when the search process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn_worker(
    storage_url: str,
    run_name: str,
    *,
    device: str | None = None,
    log_path: Path | None = None,
    slot: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start one local worker process (``python -m autogai.search.worker``) tied to this process."""
    command = [
        sys.executable,
        "-m",
        "autogai.search.worker",
        "--storage",
        storage_url,
        "--run",
        run_name,
        "--parent-pid",
        str(os.getpid()),
    ]
    if device:
        command += ["--device", device]
    if slot is not None:
        command += ["--slot", str(slot)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    preexec: Callable[[], None] | None = (
        _set_parent_death_signal if sys.platform.startswith("linux") else None
    )
    if log_path is None:
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, preexec_fn=preexec
        )
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=log, env=env, preexec_fn=preexec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autogai.search.worker", description=__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--device", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--exit-when-idle", action="store_true")
    parser.add_argument("--max-trials", type=int, default=None)
    parser.add_argument("--slot", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    from autogai.core.errors import AutoGAIError
    from autogai.core.logging import configure_logging

    configure_logging(args.verbose)
    from autogai.core.logging import mask_secrets
    from autogai.core.text import escape_control

    try:
        worker = Worker(
            args.storage,
            args.run,
            device=args.device,
            parent_pid=args.parent_pid,
            exit_when_idle=args.exit_when_idle,
            max_trials=args.max_trials,
            slot=args.slot,
        )
        worker.install_signal_handlers()
        worker.warm_up()
        done = worker.run()
    except AutoGAIError as exc:
        print(f"autogai worker: error: {escape_control(mask_secrets(str(exc)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 130
    logger.info("worker on %s run %s finished %d trials", redact_url(args.storage), args.run, done)
    return worker.exit_code


if __name__ == "__main__":
    sys.exit(main())
