"""The validation pipeline of docs/reward_programs.md: static checks, then a smoke test in the sandbox.

:func:`validate_reward_program` never raises for a bad program: it returns a :class:`ValidationReport` whose
``stage``/``reason``/``line`` become feedback for the proposer's repair round. Stages, cheapest first:

``parse``      the source does not parse (syntax error with its line), is empty or too long;
``syntax``     the allow-list over the syntax tree (imports, dunders, ``while``, ``eval`` ...);
``params``     ``PARAMS`` is not a literal dict of numeric ranges, or ``p["x"]`` names no entry;
``signature``  no ``compute_reward(m, p)``;
``metrics``    ``m.<name>`` is not a metric of the task;
``smoke``      running it in the sandbox on a few hundred transitions of the task failed: an exception, a
               wrong return type, a non-finite total or component, too many components, a call over the
               CPU budget, the memory limit, the wall-clock limit.

An accepted program gets component statistics and warnings (a constant component, one dominating the others
by orders of magnitude, a total that differs from the sum of its components, no components at all).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import RewardRejectedError, RewardRuntimeError
from autogai.rewards.program import RewardProgram
from autogai.rewards.restricted import as_float_array
from autogai.rewards.static_checks import ParamSpec

if TYPE_CHECKING:
    from autogai.tasks.card import TaskCard

logger = logging.getLogger(__name__)

RESERVED_FIELDS = ("obs", "next_obs", "action")
DOMINANCE_ORDERS = 3.0
"""A component whose typical magnitude is this many orders of magnitude above another's is flagged."""


@dataclass(frozen=True)
class Transition:
    """One recorded step: what a reward program sees (metrics and arrays)."""

    metrics: dict[str, float]
    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray

    def as_tuple(self) -> tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray]:
        return self.metrics, self.obs, self.action, self.next_obs


def collect_transitions(
    task: TaskCard, n: int = 256, *, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None
) -> list[Transition]:
    """``n`` transitions of ``task`` under uniformly random actions (resetting at episode ends)."""
    env = task.make_env(**dict(env_kwargs or {}))
    try:
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        transitions: list[Transition] = []
        episode = 0
        while len(transitions) < n:
            action = env.action_space.sample()
            next_obs, env_reward, terminated, truncated, info = env.step(action)
            metrics = task.step_metrics(obs, action, float(env_reward), next_obs, info)
            transitions.append(
                Transition(
                    metrics={str(k): float(v) for k, v in metrics.items()},
                    obs=as_float_array(obs),
                    action=as_float_array(action),
                    next_obs=as_float_array(next_obs),
                )
            )
            obs = next_obs
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
        return transitions
    finally:
        env.close()


@dataclass
class ValidationReport:
    """The verdict on one program. ``ok`` False: ``stage``, ``reason`` and (where known) ``line`` say why."""

    ok: bool
    stage: str | None = None
    reason: str | None = None
    line: int | None = None
    warnings: list[str] = field(default_factory=list)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    component_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per component over the smoke-test transitions: mean, std, min, max."""
    total_stats: dict[str, float] = field(default_factory=dict)
    component_names: tuple[str, ...] = ()
    n_transitions: int = 0
    max_call_cpu_s: float = 0.0
    duration_s: float = 0.0
    task_id: str | None = None

    def raise_if_rejected(self) -> None:
        if not self.ok:
            raise RewardRejectedError(
                self.reason or "rejected", stage=self.stage or "validation", line=self.line
            )

    @property
    def verdict(self) -> str:
        """One line: ``accepted`` or ``rejected at <stage> (line n): <reason>``."""
        if self.ok:
            return "accepted" + (f" with {len(self.warnings)} warning(s)" if self.warnings else "")
        where = f" (line {self.line})" if self.line is not None else ""
        return f"rejected at {self.stage}{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = {name: spec.to_dict() for name, spec in self.params.items()}
        data["component_names"] = list(self.component_names)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def feedback_text(self) -> str:
        """Compact text for a proposer's repair round or feedback prompt."""
        lines = [f"validation: {self.verdict}"]
        for name, stats in self.component_stats.items():
            lines.append(
                f"  {name}: mean {stats['mean']:.4g}, std {stats['std']:.4g}, "
                f"min {stats['min']:.4g}, max {stats['max']:.4g}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _rejected(
    error: RewardRejectedError,
    started: float,
    task: TaskCard | None,
    params: dict[str, ParamSpec] | None = None,
) -> ValidationReport:
    return ValidationReport(
        ok=False,
        stage=error.stage,
        reason=error.reason,
        line=error.line,
        params=dict(params or {}),
        duration_s=time.monotonic() - started,
        task_id=task.id if task is not None else None,
    )


def check_metric_names(program: RewardProgram, task: TaskCard) -> None:
    """Every ``m.<name>`` the program reads must be a metric of ``task`` (or obs/next_obs/action), and no
    judge-only metric may be read by any route (``m.fitness``, an alias of ``m``, ...)."""
    for judge in task.judge_metrics or ():
        if judge in program.attribute_reads:
            raise RewardRejectedError(
                f"reads .{judge}, the judge of task {task.id}: reward programs must not read it "
                "(a reward that copies the score games it)",
                stage="metrics",
                line=program.attribute_reads[judge],
            )
    known = set(task.program_metric_names) | set(RESERVED_FIELDS)
    for name, line in sorted(program.metric_reads.items(), key=lambda item: item[1]):
        if name not in known:
            available = ", ".join([*task.program_metric_names, *RESERVED_FIELDS])
            raise RewardRejectedError(
                f"m.{name} is not a metric of task {task.id} (available: {available})",
                stage="metrics",
                line=line,
            )


def validate_reward_program(
    source: str | RewardProgram,
    task: TaskCard,
    *,
    n_transitions: int = 256,
    time_limit_s: float = 20.0,
    call_cpu_limit_s: float = 0.05,
    memory_limit_mb: int = 256,
    params: Mapping[str, float] | None = None,
    transitions: Sequence[Transition] | None = None,
    seed: int = 0,
    start_timeout_s: float = 15.0,
) -> ValidationReport:
    """Run the whole pipeline on ``source`` for ``task``; never raises for a bad program.

    Arguments:
        n_transitions: random-action transitions of the task to smoke-test on (ignored if ``transitions``).
        time_limit_s: wall-clock limit of loading and running the program in the sandbox (the worker's own
            start-up is not counted); also its CPU limit.
        call_cpu_limit_s: CPU budget of a single ``compute_reward`` call.
        memory_limit_mb: memory the sandbox may allocate beyond its start-up footprint.
        params: parameter values to test with (defaults of ``PARAMS`` otherwise).
        transitions: pre-recorded transitions (e.g. shared by many candidates of one generation).
        start_timeout_s: how long the sandbox worker may take to start (not counted in ``time_limit_s``).
    """
    from autogai.rewards.sandbox import SandboxedReward

    started = time.monotonic()
    program: RewardProgram | None = None
    try:
        program = source if isinstance(source, RewardProgram) else RewardProgram.from_source(source)
        check_metric_names(program, task)
        values = program.resolve_params(params)
    except RewardRejectedError as error:
        return _rejected(error, started, task, program.params if program is not None else None)

    if transitions is None:
        transitions = collect_transitions(task, n_transitions, seed=seed)
    items = [t.as_tuple() for t in transitions]

    results: list[tuple[float, dict[str, float]]] = []
    sandbox: SandboxedReward | None = None
    try:
        try:
            sandbox = SandboxedReward(
                program,
                task,
                values,
                call_timeout_s=time_limit_s,
                call_cpu_limit_s=call_cpu_limit_s,
                memory_limit_mb=memory_limit_mb,
                cpu_limit_s=time_limit_s + 5.0,  # start-up and warm-up use CPU too
                load_timeout_s=time_limit_s,
                start_timeout_s=start_timeout_s,
            )
            deadline = time.monotonic() + time_limit_s - sandbox.load_seconds
            for start in range(0, len(items), 64):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RewardRuntimeError(f"timed out: the smoke test exceeded {time_limit_s:g} s")
                results += sandbox.compute_batch(items[start : start + 64], timeout_s=remaining)
        except RewardRejectedError as error:
            return _rejected(error, started, task, program.params)
        except RewardRuntimeError as error:
            reason, line = _split_line(str(error))
            if "timed out" in reason:
                reason = f"timed out: the program did not finish within the {time_limit_s:g} s limit"
            return ValidationReport(
                ok=False,
                stage="smoke",
                reason=reason,
                line=line,
                params=dict(program.params),
                duration_s=time.monotonic() - started,
                task_id=task.id,
            )
    finally:
        if sandbox is not None:
            max_call_cpu_s = sandbox.max_call_cpu_s
            sandbox.close()

    report = ValidationReport(
        ok=True,
        params=dict(program.params),
        n_transitions=len(results),
        max_call_cpu_s=max_call_cpu_s,
        task_id=task.id,
    )
    _diagnose(report, results)
    report.component_names = tuple(report.component_stats) or program.component_names
    report.duration_s = time.monotonic() - started
    return report


def _split_line(message: str) -> tuple[str, int | None]:
    """Pull a ``(line n)`` marker out of a sandbox error message."""
    import re

    match = re.search(r" \(line (\d+)\)", message)
    if match is None:
        return message, None
    return (message[: match.start()] + message[match.end() :]).strip(), int(match.group(1))


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _diagnose(report: ValidationReport, results: list[tuple[float, dict[str, float]]]) -> None:
    """Component statistics and the Eureka-style warnings (constant, dominating, total != sum)."""
    if not results:
        report.warnings.append("no transitions were evaluated")
        return
    totals = np.array([total for total, _ in results])
    report.total_stats = _stats(totals)
    names: list[str] = []
    for _, components in results:
        names.extend(name for name in components if name not in names)
    if not names:
        report.warnings.append("the program returns no components: feedback cannot say which term did what")
        return
    series = {name: np.array([c.get(name, 0.0) for _, c in results]) for name in names}
    varying_sets = {tuple(sorted(c)) for _, c in results}
    if len(varying_sets) > 1:
        report.warnings.append("the set of component names changes between steps; keep it fixed")
    for name, values in series.items():
        report.component_stats[name] = _stats(values)
        if len(values) > 1 and values.std() == 0.0:
            report.warnings.append(
                f"component {name!r} is constant ({values[0]:.4g}) over {len(values)} transitions: "
                "it does not shape behaviour"
            )
    scales = {name: float(np.mean(np.abs(values))) for name, values in series.items()}
    nonzero = {name: scale for name, scale in scales.items() if scale > 0}
    if len(nonzero) > 1:
        largest = max(nonzero, key=nonzero.__getitem__)
        smallest = min(nonzero, key=nonzero.__getitem__)
        orders = math.log10(nonzero[largest] / nonzero[smallest])
        if orders >= DOMINANCE_ORDERS:
            report.warnings.append(
                f"component {largest!r} (mean |value| {nonzero[largest]:.3g}) dominates {smallest!r} "
                f"({nonzero[smallest]:.3g}) by {orders:.1f} orders of magnitude"
            )
    sums = np.array([sum(c.values()) for _, c in results])
    gap = np.abs(sums - totals)
    if float(gap.max()) > 1e-6 * max(1.0, float(np.abs(totals).max())):
        report.warnings.append(
            f"the total differs from the sum of the components (by up to {float(gap.max()):.3g})"
        )
