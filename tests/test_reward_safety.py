"""The outside tester's findings beyond the sandbox: the judge out of reach, safe output, credentials,
storage directories, trial time limits, corrupt checkpoints; every one ends in one clean line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from reward_helpers import TINY_TASK

from autogai.cli.main import main
from autogai.core.errors import ConfigError, RewardRejectedError, RewardRuntimeError, StorageError
from autogai.core.logging import SecretMaskingFilter, mask_secrets
from autogai.core.text import escape_control, is_printable_identifier
from autogai.rewards import SandboxedReward, validate_reward_program
from autogai.search.budget import PRESETS
from autogai.search.storage import make_storage, redact_url
from autogai.tasks import get_task
from autogai.tasks.card import MetricSpec, TaskCard

OBS, ACTION = np.array([1.0, 0.0, 0.5]), np.array([0.3])
METRICS = {"angle": 0.1, "speed": 0.5, "torque": 0.3, "upright": 0.99, "native": -0.1, "fitness": -0.1}

# ------------------------------------------------------------------------------------------------ the judge


def _card(**overrides) -> TaskCard:
    fields = {
        "id": "judge-test",
        "title": "t",
        "description": "d",
        "env_id": "Pendulum-v1",
        "metrics": (MetricSpec("speed", "1", "s"), MetricSpec("fitness", "1", "the judge")),
        "fitness_description": "f",
        "baseline_reward": "",
        "metrics_fn": TINY_TASK.metrics_fn,
        "fitness_fn": TINY_TASK.fitness_fn,
    }
    return TaskCard(**{**fields, **overrides})


def test_cards_mark_their_judge_metrics():
    assert _card().judge_metrics == ("fitness",)  # the default where the card has a fitness metric
    assert _card(metrics=(MetricSpec("speed", "1", "s"),)).judge_metrics == ()
    assert _card(judge_metrics=()).judge_metrics == ()
    with pytest.raises(ConfigError, match=r"judge_metrics \['score'\] are not metrics"):
        _card(judge_metrics=("score",))
    assert get_task("uav-nearfield").judge_metrics == ("fitness",)
    assert get_task("pendulum").judge_metrics == ()  # its fitness is the native reward: stated explicitly
    uav = get_task("uav-nearfield")
    assert "fitness" not in uav.program_metric_names and "rate_df" in uav.program_metric_names
    assert "fitness | utility | the slot's task utility" in uav.metrics_table()
    assert "(judge only: not readable by reward programs)" in uav.metrics_table()


def test_the_judge_is_never_sent_to_the_sandbox():
    # This program is never validated (SandboxedReward's static checks do not know the card's judge), so it
    # tries to read the judge at run time: the metric is simply not there.
    reader = "def compute_reward(m, p):\n    return m.fitness, {'judge': m.fitness}\n"
    with SandboxedReward(reader, TINY_TASK) as sandbox:
        with pytest.raises(
            RewardRuntimeError,
            match=r"'fitness' is not available \(metrics: action, angle, native, next_obs, obs, speed, torque, upright\)",
        ):
            sandbox.compute(METRICS, OBS, ACTION, OBS)
        with pytest.raises(RewardRuntimeError, match="metric 'fitness' is not available"):
            sandbox.compute_batch([(METRICS, OBS, ACTION, OBS)])
        columns = {name: np.full(2, value) for name, value in METRICS.items()}
        rows = sandbox.compute_rows(
            columns, np.stack([OBS] * 2), np.stack([ACTION] * 2), np.stack([OBS] * 2), [{}], np.zeros(2, int)
        )
        assert set(rows.errors) == {0, 1} and "not available" in rows.errors[0]
    # a task without a judge passes every metric through
    with SandboxedReward(reader) as sandbox:
        assert sandbox.compute(METRICS, OBS, ACTION, OBS) == (-0.1, {"judge": -0.1})


def test_validation_names_the_judge_for_every_route():
    for body in (
        "return m.fitness, {}",
        "view = m\n    return view.fitness, {}",
        "x = f'{m.fitness}'\n    return 0.0, {}",
    ):
        report = validate_reward_program(
            f"def compute_reward(m, p):\n    {body}\n", TINY_TASK, n_transitions=4
        )
        assert not report.ok and report.stage == "metrics"
        assert "reads .fitness, the judge of task reward-test-pendulum" in report.reason


# ------------------------------------------------------------------------------------------- safe output


def test_escape_control_makes_terminal_escapes_visible():
    assert escape_control("plain text, ünïcode ok") == "plain text, ünïcode ok"
    assert escape_control("a\x1b[2K\rb") == "a\\x1b[2K\\x0db"
    assert escape_control("x\u202ey\u200bz\x7f") == "x\\u202ey\\u200bz\\x7f"
    assert escape_control("one\ntwo") == "one\\x0atwo"
    assert escape_control("one\ntwo\tthree", keep_newlines=True) == "one\ntwo\tthree"
    assert is_printable_identifier("rate_df") and not is_printable_identifier("a-b")
    assert not is_printable_identifier("ok\u200b") and not is_printable_identifier(3)


def test_errors_and_log_records_carry_no_control_characters():
    assert RewardRejectedError("bad \x1b[31mred", stage="smoke").reason == "bad \\x1b[31mred"
    assert str(RewardRuntimeError("boom\x1b[2K\n")) == "boom\\x1b[2K\\x0a"
    record = logging.LogRecord("autogai", logging.WARNING, __file__, 1, "component %s", ("\x1b[1Aok",), None)
    SecretMaskingFilter().filter(record)
    assert record.getMessage() == "component \\x1b[1Aok"


def test_credentials_in_urls_are_masked():
    assert mask_secrets("http://user:PW@host/v1") == "http://user:***@host/v1"
    assert (
        mask_secrets("see https://h/x?token=abc&page=2&password=p")
        == "see https://h/x?token=***&page=2&password=***"
    )
    assert mask_secrets("https://h/v1?sig=zz#access_token=yy") == "https://h/v1?sig=***#access_token=***"
    assert (
        mask_secrets("sqlite:////tmp/x.db and http://host:8080/v1")
        == "sqlite:////tmp/x.db and http://host:8080/v1"
    )
    assert (
        redact_url("postgresql://u:secret@db:5432/x?sslpassword=s2")
        == "postgresql://u:***@db:5432/x?sslpassword=***"
    )


# -------------------------------------------------------------------------------------- storage and budget


def test_storage_in_a_missing_directory_is_refused_and_nothing_is_created(tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    with pytest.raises(StorageError, match=r"directory of the SQLite storage .* does not exist"):
        make_storage(f"sqlite:///{missing}/x.db")
    with pytest.raises(StorageError, match=r"directory of the journal file .* does not exist"):
        make_storage(f"journal:///{missing}/x.log")
    assert list(tmp_path.iterdir()) == []
    make_storage(f"sqlite:///{tmp_path}/x.db")  # an existing directory is fine
    assert (tmp_path / "x.db").is_file()


def test_search_with_a_storage_in_a_missing_directory_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(
        ["search", "--preset", "smoke", "--run-dir", str(run), "--storage", f"sqlite:///{tmp_path}/no/x.db"]
    )
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "no").exists()


def test_every_preset_has_a_trial_time_limit():
    for name, budget in PRESETS.items():
        assert budget.trial_time_limit_s is not None and budget.trial_time_limit_s > 0, name


# ------------------------------------------------------------------------------------ corrupt checkpoints


def _checkpoint(tmp_path: Path, meta: bytes, agent: bytes) -> Path:
    directory = tmp_path / "run" / "checkpoint"
    directory.mkdir(parents=True)
    (directory / "checkpoint.json").write_bytes(meta)
    (directory / "agent.pt").write_bytes(agent)
    return tmp_path / "run"


GOOD_META = json.dumps({"format": 1, "task": "pendulum", "agent_file": "agent.pt"}).encode()


@pytest.mark.parametrize(
    ("meta", "agent", "expected"),
    [
        (b"\xff\xfe{not utf-8", b"", r"checkpoint\.json is damaged \(not UTF-8 text"),
        (b'{"format": 1, "task"', b"", r"checkpoint\.json is damaged \(not JSON"),
        (b'{"format": 1}', b"", r"checkpoint\.json lacks the task"),
        (
            GOOD_META,
            b"\x80\x04garbage that is no pickle",
            r"corrupt checkpoint .*agent\.pt \(UnpicklingError",
        ),
        (GOOD_META, b"PK\x03\x04" + b"\x00" * 64, r"corrupt checkpoint .*agent\.pt \(RuntimeError"),
    ],
    ids=["not-utf8", "bad-json", "no-task", "bad-pickle", "bad-zip"],
)
def test_evaluate_on_a_corrupt_checkpoint_is_one_line_naming_the_file(
    tmp_path, capsys, meta, agent, expected
):
    import warnings

    run = _checkpoint(tmp_path, meta, agent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["evaluate", "--run-dir", str(run), "--episodes", "1"]) == 1
    assert [str(w.message) for w in caught] == []  # a warning would be a second line on the terminal
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    import re

    assert re.search(expected, lines[0]), lines[0]


# ------------------------------------------------------------------------------- the CLI on hostile programs


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "PARAMS = {'w': {'default': " + "9" * 400 + ", 'low': 0.0, 'high': 1.0}}\n"
            "def compute_reward(m, p):\n    return 0.0, {}\n",
            "rejected at params (line 1): PARAMS['w']['default'] must be a finite number (got an integer of 400 digits)",
        ),
        (
            "def compute_reward(m, p=m" + ".a" * 450 + "):\n    return 0.0, {}\n",
            "rejected at signature (line 1): the signature must be compute_reward(m, p)",
        ),
        (
            "def compute_reward(m, p):\n    return 1.0, {'\x1b[2K\x1b[1Aaccepted': 1.0}\n",
            "rejected at components (line 1): component names must be identifiers",
        ),
        (
            "def compute_reward(m, p):\n    name = '\\x1b[1A\\x1b[2K' + 'ok'\n    return 1.0, {name: 1.0}\n",
            "rejected at smoke: component names must be identifiers of at most 64 characters (got '\\x1b[1A",
        ),
        (
            "def compute_reward(m, p):\n    assert m.theta > 9, '\\x1b[1A\\x1b[2Kaccepted: fine'\n    return 0.0, {}\n",
            "AssertionError: \\x1b[1A\\x1b[2Kaccepted: fine",
        ),
    ],
    ids=["400-digits", "450-deep", "raw-escape-name", "dynamic-escape-name", "escape-exception"],
)
def test_reward_check_on_hostile_programs_prints_one_clean_line(
    tmp_path, monkeypatch, capsys, source, expected
):
    monkeypatch.chdir(tmp_path)
    program = tmp_path / "reward.py"
    program.write_text(source)
    assert main(["reward", "check", str(program), "--task", "pendulum", "-n", "4"]) == 1
    captured = capsys.readouterr()
    output = captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert "Traceback" not in output
    assert output.replace("\n", "").isprintable(), repr(
        output
    )  # no raw control character reached the terminal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reward.py"]


# ------------------------------------------------------------------------------------ total static checks


def test_any_exception_inside_a_check_is_a_one_line_rejection(monkeypatch):
    """Whatever a future hostile program makes a check raise, the caller gets a rejection, never a crash."""
    from autogai.rewards import program as program_module
    from autogai.rewards import static_checks
    from autogai.rewards.program import RewardProgram

    source = "def compute_reward(m, p):\n    return 0.0, {}\n"

    def explode(*_args):
        raise KeyError("surprise\x1b[2K")

    monkeypatch.setattr(static_checks, "check_param_reads", explode)
    with pytest.raises(RewardRejectedError) as raised:
        RewardProgram.from_source(source)
    assert raised.value.stage == "check"
    assert raised.value.reason == "the program cannot be checked (KeyError: 'surprise\\x1b[2K')"
    monkeypatch.undo()

    accepted = RewardProgram.from_source(source)

    def too_deep():
        raise RecursionError

    monkeypatch.setattr(program_module, "_GuardTransformer", too_deep)
    with pytest.raises(RewardRejectedError) as compiled:
        accepted.compile()
    assert compiled.value.stage == "compile"
    assert "nested too deeply: RecursionError" in compiled.value.reason
