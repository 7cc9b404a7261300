"""The hostile corpus is stopped with its reason; the legitimate corpus is accepted and gives identical results
inside and outside the sandbox. Nothing is written, no process is left behind."""

from __future__ import annotations

import re

import pytest
from reward_corpus.hostile import HOSTILE, HostileCase
from reward_corpus.legitimate import LEGITIMATE
from reward_helpers import TINY_TASK, child_pids

from autogai.core.errors import RewardRejectedError
from autogai.rewards import (
    RewardProgram,
    SandboxedReward,
    collect_transitions,
    load_program,
    validate_reward_program,
)


@pytest.fixture(scope="module")
def transitions():
    return collect_transitions(TINY_TASK, 24, seed=0)


def test_corpus_sizes_and_coverage():
    assert len(HOSTILE) >= 30
    assert len({case.name for case in HOSTILE}) == len(HOSTILE)
    assert {case.stage for case in HOSTILE} >= {"parse", "syntax", "params", "signature", "metrics", "smoke"}
    assert len(LEGITIMATE) >= 10


@pytest.mark.parametrize("case", HOSTILE, ids=lambda case: case.name)
def test_hostile_program_is_stopped_with_its_reason(case: HostileCase, transitions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "sentinel"
    source = case.source.replace("SENTINEL", str(sentinel))
    before = child_pids()
    options = {"time_limit_s": 5.0, **case.options}

    report = validate_reward_program(source, TINY_TASK, transitions=transitions, **options)

    assert not report.ok, f"{case.name} was accepted"
    assert report.stage == case.stage, report.verdict
    assert re.search(case.reason, report.reason or ""), report.verdict
    assert "\n" not in (report.reason or "")
    assert (report.reason or "").isprintable(), repr(report.reason)  # no terminal escapes from the program
    with pytest.raises(RewardRejectedError) as raised:
        report.raise_if_rejected()
    assert raised.value.stage == case.stage
    if case.stage in ("parse", "syntax", "params", "signature", "components"):
        # Stopped by the static fence alone: the same verdict without any process.
        with pytest.raises(RewardRejectedError) as static:
            RewardProgram.from_source(source)
        assert static.value.stage == case.stage
    assert not sentinel.exists()
    assert list(tmp_path.iterdir()) == []
    assert child_pids() == before


def test_static_rejections_carry_line_numbers():
    lines = {case.name: case for case in HOSTILE}
    for name, line in (("import_os", 1), ("subclasses_escape", 3), ("generator_frame", 4), ("while_true", 3)):
        with pytest.raises(RewardRejectedError) as raised:
            RewardProgram.from_source(lines[name].source)
        assert raised.value.line == line, (name, raised.value)


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_legitimate_program_is_accepted_with_identical_results(name, transitions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = LEGITIMATE[name]
    before = child_pids()

    report = validate_reward_program(source, TINY_TASK, transitions=transitions)
    assert report.ok, report.verdict
    assert report.n_transitions == len(transitions)
    assert report.component_stats
    for stats in report.component_stats.values():
        assert set(stats) == {"mean", "std", "min", "max"}

    direct = load_program(source)
    expected = [direct(*t.as_tuple()) for t in transitions]
    with SandboxedReward(source, TINY_TASK) as sandbox:
        batch = sandbox.compute_batch([t.as_tuple() for t in transitions])
        single = [sandbox.compute(*t.as_tuple()) for t in transitions[:6]]
    assert batch == expected
    assert single == expected[:6]
    assert list(tmp_path.iterdir()) == []
    assert child_pids() == before
