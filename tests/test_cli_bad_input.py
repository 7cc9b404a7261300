"""Bad input at every command's edge: one line on stderr, a non-zero exit, no traceback, no raw control
characters on the terminal, and a run directory that is either absent or left as it was (reusable).

Most cases run in-process through ``main()``; the interrupts run as real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from search_helpers import SMOKE_FLAGS, search_env
from training_helpers import PENDULUM_UPRIGHT, TINY_CLI_SETS

from autogai.cli.main import main
from autogai.core.types import Design, EnhancerCombo

REPO = Path(__file__).resolve().parents[1]
EVIL = "\x1b]0;pwned\x07\x1b[2J\u202e"
"""A terminal title change, a screen wipe and a bidirectional override: what untrusted text may hold."""


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def _control_characters(text: str) -> list[str]:
    return [c for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def assert_clean(outcome: Outcome) -> None:
    """Nothing that could drive a terminal, and never a traceback."""
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out
    assert not _control_characters(outcome.out), repr(outcome.out[-300:])
    assert not _control_characters(outcome.err), repr(outcome.err[-300:])


def assert_refused(outcome: Outcome, fragment: str, code: int = 1) -> None:
    assert outcome.code == code, (outcome.code, outcome.err, outcome.out[-500:])
    assert_clean(outcome)
    lines = outcome.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autogai: error:"), outcome.err
    assert fragment in lines[0], lines[0]


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` and a hash of its bytes: a refused command must leave it as it was."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def _offline_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in search_env(tmp_path).items():
        if name.startswith("AUTOGAI_"):
            monkeypatch.setenv(name, value)


def make_search_run(path: Path, *, name: str = "reward-one", rationale: str = "why", code: str = "") -> Path:
    """A finished search's run directory, as the inspection commands read it (config, designs, board)."""
    designs = path / "designs"
    rows = []
    for rank, label in enumerate(("a", "b"), start=1):
        design = Design(
            reward_source=code or PENDULUM_UPRIGHT,
            enhancers=EnhancerCombo.parse("gan" if label == "b" else "plain"),
            rationale=rationale,
            name=f"{name}-{label}",
            generation=0,
        )
        data = {**design.to_dict(), "status": "scored", "rank": rank, "score": {"mean": 1.0, "iqm": 1.0}}
        (designs / design.id).mkdir(parents=True)
        (designs / design.id / "design.json").write_text(json.dumps(data))
        (designs / design.id / "reward.py").write_text(design.reward_source)
        rows.append({"design_id": design.id, "name": design.name, "rank": rank, "iqm": 1.0, "n_seeds": 2})
    (path / "config.json").write_text(
        json.dumps({"run_name": path.name, "task": "pendulum", "llm": "offline"})
    )
    (path / "state.json").write_text(
        json.dumps(
            {"generations": [{"index": 0, "design_ids": [r["design_id"] for r in rows], "status": "scored"}]}
        )
    )
    (path / "leaderboard.json").write_text(json.dumps({"designs": rows}))
    return path


def first_design(run: Path) -> Path:
    return sorted((run / "designs").iterdir())[0]


# --- refused before anything exists: {run} must stay absent ---------------------------------------------

NO_GPU = "torch sees no CUDA device"
BEFORE_ANYTHING = [
    # A refused configuration that used to run anyway.
    (["search", "--preset", "smoke", "--device", "cuda"], NO_GPU, 1),
    (["search", "--preset", "smoke", "--steps", "0"], "--steps=0 must be a positive integer", 1),
    (["search", "--preset", "smoke", "--steps", "-1"], "--steps=-1", 1),
    # Values with no upper bound.
    (["search", "--preset", "smoke", "--steps", "99999999999999999999999"], "above the limit", 1),
    (["search", "--preset", "smoke", "--seeds", "99999999999999999999999"], "above the limit", 1),
    (["search", "--preset", "smoke", "--trials", "99999999999999999999999"], "above the limit", 1),
    (["search", "--preset", "smoke", "--designs", "99999999999999999999999"], "above the limit", 1),
    (["search", "--preset", "smoke", "--generations", "99999999999999999999999"], "above the limit", 1),
    (
        ["search", "--preset", "smoke", "--steps", "1000000000", "--trials", "5000"],
        "above the limit of 30 days",
        1,
    ),
    (["search", "--preset", "smoke", "--generations", "0"], "--generations=0", 1),
    (["search", "--preset", "smoke", "--workers", "-1"], "--workers=-1", 1),
    (["search", "--preset", "smoke", "--workers", "100000"], "per CPU core", 1),
    # Empty strings are refused, not read as the default.
    (["search", "--preset", "smoke", "--llm", ""], "--llm is empty", 1),
    (["search", "--preset", "smoke", "--storage", ""], "--storage is empty", 1),
    (["search", "--preset", "smoke", "--task", " "], "--task is empty", 1),
    # LLM provider and server, storage URL, task card, action space: all before the run directory.
    (["search", "--preset", "smoke", "--llm", "nosuchprov:model"], "nosuchprov", 1),
    (["search", "--preset", "smoke", "--llm", "justaword"], "must be provider:model", 1),
    (
        ["search", "--preset", "smoke", "--llm", "openai:m", "--llm-base-url", "http://127.0.0.1:9/v1"],
        "cannot reach the LLM server at http://127.0.0.1:9/v1",
        1,
    ),
    (["search", "--preset", "smoke", "--llm-base-url", "http://127.0.0.1:9/v1"], "needs --llm", 1),
    (["search", "--preset", "smoke", "--storage", "foo://x"], "unsupported storage scheme", 1),
    (["search", "--preset", "smoke", "--storage", "not a url"], "is not a URL", 1),
    (["search", "--preset", "smoke", "--storage", "sqlite:////no/such/dir/x.db"], "/no/such/dir", 1),
    (["search", "--preset", "huge"], "unknown preset", 1),
    (["search", "--task", "no-such-task"], "unknown task", 1),
    (["search", "--task", "pendulum", "--action-space", "hybrid"], "single action space", 1),
    (["search", "--action-space", "warp"], "--action-space", 1),
    (["search", "--preset", "smoke", "--embeddings", "bogus:x"], "bogus", 1),
    (["search", "--device", "tpu"], "--device='tpu' is not valid", 1),
    # Usage errors: the program's own one line, exit 2, no usage block.
    (["search", "--steps", "abc"], "Invalid value for '--steps'", 2),
    (["search", "--no-such-flag"], "No such option: --no-such-flag", 2),
    (["no-such-command"], "No such command", 2),
    # Tracebacks from numbers.
    (["train", "--task", "pendulum", "--seed", "-1", "--steps", "100"], "--seed=-1 must be an integer", 1),
    (["train", "--task", "pendulum", "--seed", "99999999999999999999999"], "32-bit seed", 1),
    (["train", "--task", "pendulum", "--seeds", "0-100000"], "above the limit of 1,024", 1),
    (["train", "--task", "pendulum", "--seeds", "-3"], "does not parse", 1),
    (["train", "--task", "pendulum", "--seeds", "4294967295-4294967296"], "32-bit seed", 1),
    (["train", "--task", "pendulum", "--population", "100000"], "above the limit", 1),
    (["train", "--task", "pendulum", "--steps", "99999999999999999999999"], "above the limit", 1),
    (["train", "--task", "pendulum", "--steps", "0"], "--steps=0", 1),
    # Misleading messages.
    (["train", "--task", "pendulum", "--time-limit", "nan"], "must be a finite number of seconds", 1),
    (["train", "--task", "pendulum", "--time-limit", "inf"], "must be a finite number of seconds", 1),
    (["train", "--task", "pendulum", "--time-limit", "-1"], "must be more than 0 seconds", 1),
    (["train", "--task", "pendulum", "--eval-episodes", "0"], "--eval-episodes=0", 1),
    (["train", "--task", "pendulum", "--eval-episodes", "999999999999"], "above the limit", 1),
    (["train", "--task", ""], "--task is empty", 1),
    (["train", "--task", "pendulum", "--enhancers", ""], "--enhancers is empty", 1),
    (["train", "--task", "pendulum", "--set", "batch_size=1e999999"], "batch_size", 1),
    (["train", "--task", "pendulum", "--device", "cuda"], NO_GPU, 1),
    (["propose", "-n", "1000000000"], "above the limit of 100", 1),
    (["propose", "-n", "0"], "-n=0 must be a positive integer", 1),
    (["propose", "-n", "many"], "Invalid value for '-n'", 2),
    (["propose", "--llm", "nosuchprov:model"], "nosuchprov", 1),
    (["propose", "--llm", ""], "--llm is empty", 1),
    (["propose", "--temperature", "nan"], "--temperature=nan must be a finite number", 1),
    (["propose", "--timeout", "nan"], "must be a finite number of seconds", 1),
    (["propose", "--retries", "1000"], "above the limit", 1),
    (["propose", "--seed", "-1"], "32-bit seed", 1),
    (["propose", "--task", "pendulum", "--action-space", "hybrid"], "single action space", 1),
    (["propose", "--embeddings", ""], "--embeddings is empty", 1),
    # An empty path would quietly mean the current directory.
    (["propose", "--store", ""], "--store is empty", 1),
    (["propose", "--cache="], "--cache is empty", 1),
    (["search", "--storage="], "--storage is empty", 1),
    (["train", "--task", "pendulum", "--reward-param", "w=nan"], "expected a finite number", 1),
    (["train", "--task", "pendulum", "--design", ""], "--design is empty", 1),
]


@pytest.mark.parametrize(
    ("argv", "fragment", "code"), BEFORE_ANYTHING, ids=[" ".join(c[0])[:70] for c in BEFORE_ANYTHING]
)
def test_refused_before_the_run_directory_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str, code: int
) -> None:
    if fragment == NO_GPU:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU: --device cuda is valid here")
    run = tmp_path / "run"
    outcome = run_cli(
        capsys, *argv, *(["--run-dir", str(run)] if argv[0] in ("search", "train", "propose") else [])
    )
    assert_refused(outcome, fragment, code)
    assert not run.exists(), sorted(p.name for p in run.iterdir())
    assert not (tmp_path / "runs").exists()  # nor a default run directory


# --- run files are untrusted ------------------------------------------------------------------------------

DAMAGE = {
    "truncated": '{"designs": [{"design_id": "d-',
    "empty": "",
    "not JSON": "garbage, not json",
    "a list": "[1, 2, 3]",
    "binary": "\udcff\udcfe",
    "rows without ids": '{"designs": [{"rank": 1}]}',
}


def _write_damaged(path: Path, damage: str) -> None:
    if damage == "binary":
        path.write_bytes(b"\xff\xfe\x00\x9c")
    else:
        path.write_text(DAMAGE[damage])


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["leaderboard", "{run}"], "leaderboard.json is damaged"),
        (["leaderboard", "{run}", "--json"], "leaderboard.json is damaged"),
        (["report", "{run}"], "leaderboard.json is damaged"),
        (["show", "{run}", "1"], "leaderboard.json is damaged"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_a_damaged_leaderboard_is_one_line_naming_the_file_and_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], fragment: str, damage: str
) -> None:
    run = make_search_run(tmp_path / "r")
    _write_damaged(run / "leaderboard.json", damage)
    before = tree_digest(run)
    outcome = run_cli(capsys, *(a.replace("{run}", str(run)) for a in command))
    assert_refused(outcome, fragment)
    assert "run the same `autogai search` command again" in outcome.err
    assert tree_digest(run) == before


@pytest.mark.parametrize("damage", ["truncated", "not JSON", "a list", "binary"])
def test_damaged_design_and_config_files_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    run = make_search_run(tmp_path / "r")
    design = first_design(run)
    _write_damaged(design / "design.json", damage)
    before = tree_digest(run)
    assert_refused(run_cli(capsys, "show", str(run), design.name), "design.json is damaged")
    assert_refused(run_cli(capsys, "diff", str(run), "1", "2"), "design.json is damaged")
    assert_refused(run_cli(capsys, "train", "--task", "pendulum", "--design", str(design)), "is damaged")
    _write_damaged(run / "config.json", damage)
    assert_refused(run_cli(capsys, "leaderboard", str(run)), "config.json is damaged")
    assert tree_digest(run) != before and not (tmp_path / "runs").exists()


def test_train_design_from_a_binary_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "design.bin"
    binary.write_bytes(bytes(range(256)))
    assert_refused(run_cli(capsys, "train", "--task", "pendulum", "--design", str(binary)), "not UTF-8")
    missing = tmp_path / "nowhere" / "design.json"
    assert_refused(run_cli(capsys, "train", "--task", "pendulum", "--design", str(missing)), "no design file")


def test_a_truncated_state_is_refused_before_the_search_rewrites_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_search_run(tmp_path / "r")
    (run / "state.json").write_text('{"generations": [{"index": 0, "design_')
    before = tree_digest(run)
    outcome = run_cli(capsys, "search", "--task", "pendulum", *SMOKE_FLAGS, "--run-dir", str(run))
    assert_refused(outcome, "state.json is damaged")
    assert "delete it and run the same `autogai search` command again" in outcome.err
    assert tree_digest(run) == before  # config.json untouched, no optuna.db, no worker log


def test_a_resume_missing_a_recorded_design_is_refused_before_anything_is_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = make_search_run(tmp_path / "r")
    shutil.rmtree(first_design(run))
    before = tree_digest(run)
    outcome = run_cli(capsys, "search", "--task", "pendulum", *SMOKE_FLAGS, "--run-dir", str(run))
    assert_refused(outcome, "no design 'd-")
    assert tree_digest(run) == before


def test_a_deleted_state_is_rebuilt_from_the_designs(tmp_path: Path) -> None:
    from autogai.pipeline.rundir import RunDirectory

    run = RunDirectory(make_search_run(tmp_path / "r"))
    recorded = json.loads(run.state_path.read_text())
    run.state_path.unlink()
    rebuilt = run.read_state()
    assert [g["design_ids"] for g in rebuilt["generations"]] == [
        sorted(g["design_ids"]) for g in recorded["generations"]
    ]
    assert all(g["status"] == "proposed" for g in rebuilt["generations"])  # evaluated again, not skipped


def _fake_training_run(
    path: Path, *, agent: bytes | None = b"not a torch file", finished: bool = True
) -> Path:
    (path / "checkpoint").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"task": "pendulum"}))
    (path / "checkpoint" / "checkpoint.json").write_text(json.dumps({"format": 1, "task": "pendulum"}))
    if agent is not None:
        (path / "checkpoint" / "agent.pt").write_bytes(agent)
    if finished:
        (path / "result.json").write_text("[]")
    return path


def test_evaluate_refuses_damaged_and_unfinished_runs_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = _fake_training_run(tmp_path / "corrupt")
    outcome = run_cli(capsys, "evaluate", "--run-dir", str(corrupt))
    assert_refused(outcome, "corrupt checkpoint")
    assert "weights_only" not in outcome.err  # never torch's hint to unpickle an untrusted file
    (corrupt / "checkpoint" / "checkpoint.json").write_text('{"format": 1, "ta')
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt)), "checkpoint.json is damaged")
    unfinished = _fake_training_run(tmp_path / "unfinished", finished=False)
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(unfinished)), "did not finish")
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(tmp_path / "none")), "does not exist")
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt), "--seed", "-1"), "32-bit seed")
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt), "--agent", "-1"), "--agent=-1")
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt), "--episodes", "0"), "--episodes=0")
    assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt), "--device", "gpu"), "--device")
    import torch

    if not torch.cuda.is_available():
        assert_refused(run_cli(capsys, "evaluate", "--run-dir", str(corrupt), "--device", "cuda"), NO_GPU)


# --- other commands' edges --------------------------------------------------------------------------------


def test_inspection_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_search_run(tmp_path / "r")
    assert_refused(run_cli(capsys, "show", str(run), "no-such-design"), "no design 'no-such-design'")
    assert_refused(run_cli(capsys, "show", str(run), "99999999999999999999"), "no design")
    assert_refused(run_cli(capsys, "show", str(run), ""), "argument 3 is empty")
    assert_refused(run_cli(capsys, "leaderboard", ""), "argument 2 is empty")
    assert_refused(run_cli(capsys, "leaderboard", str(tmp_path / "nowhere")), "is not a run directory")
    assert_refused(run_cli(capsys, "diff", str(run), "1"), "Missing argument", code=2)
    (run / "leaderboard.json").unlink()
    assert_refused(run_cli(capsys, "leaderboard", str(run)), "has no leaderboard yet")


def test_knowledge_base_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new_store = tmp_path / "new-store"
    assert_refused(run_cli(capsys, "kb", "list", "--store", str(new_store)), "no knowledge-base store")
    assert not new_store.exists()
    document = REPO / "knowledge_base" / sorted(os.listdir(REPO / "knowledge_base"))[0]
    outcome = run_cli(capsys, "kb", "ingest", str(document), "--store", str(new_store))
    assert_refused(outcome, "is a file; kb ingest takes a folder")
    assert_refused(run_cli(capsys, "kb", "ingest", str(tmp_path / "missing")), "does not exist")
    assert_refused(run_cli(capsys, "kb", "query", " ", "--store", str(new_store)), "TEXT is empty")
    assert_refused(run_cli(capsys, "kb", "query", "x", "-k", "999999999"), "above the limit")
    assert_refused(run_cli(capsys, "kb", "query", "x", "--kind", "bogus"), "unknown document kind")
    assert_refused(run_cli(capsys, "kb", "list", "--embeddings", ""), "--embeddings is empty")
    assert not new_store.exists()


def test_reward_check_edges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "reward.py"
    program.write_text(PENDULUM_UPRIGHT)
    check = ["reward", "check", str(program), "--task", "pendulum"]
    assert_refused(run_cli(capsys, *check, "--time-limit", "nan"), "must be a finite number of seconds")
    assert_refused(run_cli(capsys, *check, "--time-limit", "100"), "must be <= 40")
    assert_refused(run_cli(capsys, *check, "--transitions", "0"), "--transitions=0")
    assert_refused(run_cli(capsys, *check, "--task", ""), "--task is empty")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00")
    assert_refused(run_cli(capsys, "reward", "check", str(binary)), "is not UTF-8 text")
    assert_refused(run_cli(capsys, "reward", "check", str(tmp_path / "missing.py")), "does not exist", code=2)


def test_worker_edges(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(run_cli(capsys, "worker", "--storage", "", "--run", "r"), "--storage is empty")
    assert_refused(run_cli(capsys, "worker", "--storage", "foo://x", "--run", "r"), "unsupported storage")
    assert_refused(run_cli(capsys, "worker", "--storage", "sqlite:///x.db", "--run", " "), "--run is empty")
    outcome = run_cli(capsys, "worker", "--storage", "sqlite:///x.db", "--run", "r", "--max-trials", "0")
    assert_refused(outcome, "--max-trials=0")


def test_a_file_as_run_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "afile"
    file.write_text("mine")
    for command in (["search", "--preset", "smoke"], ["propose"], ["train", "--task", "pendulum"]):
        assert_refused(run_cli(capsys, *command, "--run-dir", str(file)), "is a file")
    assert file.read_text() == "mine"


def test_a_command_module_that_fails_to_import_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import autogai.cli.main as cli_main

    monkeypatch.setattr(
        cli_main, "_COMMAND_MODULES", (*cli_main._COMMAND_MODULES, "autogai.cli.no_such_commands")
    )
    assert_refused(run_cli(capsys, "env", "list"), "cannot load autogai.cli.no_such_commands")


def test_a_large_search_is_priced_once_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """The cost line of a large budget appears with the first progress update (after every check has
    passed and the run has started), once, on stderr; a refused run prints its error line alone."""
    from autogai.cli._render import SearchProgressView
    from autogai.core.validation import cost_line, max_env_steps

    assert cost_line(1_000) is None
    note = cost_line(max_env_steps() // 2)
    assert note is not None and "days" in note
    view = SearchProgressView(quiet=True, notes=[note])
    assert capsys.readouterr().err == ""
    view.update(None)
    view.update(None)
    view.close()
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [f"autogai: {note}"]


# --- escaped output ---------------------------------------------------------------------------------------


def test_untrusted_text_never_reaches_the_terminal_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = PENDULUM_UPRIGHT + f"# {EVIL}\n"
    run = make_search_run(tmp_path / f"r{EVIL}\nline", name=f"n{EVIL}[red]x", rationale=f"r{EVIL}", code=code)
    design = first_design(run).name
    for argv in (
        ["leaderboard", str(run)],
        ["leaderboard", str(run), "--json"],
        ["show", str(run), design],
        ["show", str(run), "2"],
        ["diff", str(run), "1", "2"],
    ):
        outcome = run_cli(capsys, *argv)
        assert outcome.code == 0, outcome.err
        assert_clean(outcome)
    outcome = run_cli(capsys, "show", str(run), design)
    assert "\\x1b]0;pwned\\x07" in outcome.out  # shown, as visible escapes
    assert "[red]x" in outcome.out  # rich markup in a name is text, not a colour


def test_a_failed_start_leaves_nothing_and_the_corrected_search_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search refused after its directory exists (here: the LLM goes away while proposing) removes what
    it wrote, so the corrected command on the same --run-dir runs; the run's name, full of terminal codes,
    reaches neither the progress nor the table raw; a lost state.json is rebuilt without retraining."""
    from autogai.core.errors import LLMUnavailableError
    from autogai.pipeline import loop

    def unreachable(self: object, *args: object, **kwargs: object) -> None:
        raise LLMUnavailableError("the LLM server went away")

    run = tmp_path / f"r{EVIL}\nx"
    argv = ["search", "--task", "pendulum", *SMOKE_FLAGS, "--designs", "1", "--run-dir", str(run)]
    with monkeypatch.context() as patch:
        patch.setattr(loop._Search, "propose", unreachable)
        assert_refused(run_cli(capsys, *argv), "the LLM server went away")
    assert not run.exists()
    run.mkdir()  # a directory the user made: left empty, not removed
    with monkeypatch.context() as patch:
        patch.setattr(loop._Search, "propose", unreachable)
        assert_refused(run_cli(capsys, *argv), "the LLM server went away")
    assert run.is_dir() and not any(run.iterdir())
    outcome = run_cli(capsys, *argv)
    assert outcome.code == 0, outcome.err
    assert_clean(outcome)
    assert (run / "leaderboard.json").is_file()
    assert_clean(run_cli(capsys, "leaderboard", str(run)))

    # state.json lost: the same command rebuilds it from the designs and trains nothing twice.
    from search_helpers import snapshot

    trials = snapshot(f"sqlite:///{run.resolve() / 'optuna.db'}", run.name)
    assert trials and all(t["state"] not in ("WAITING", "RUNNING") for t in trials.values())
    (run / "state.json").unlink()
    outcome = run_cli(capsys, *argv)
    assert outcome.code == 0, outcome.err
    assert snapshot(f"sqlite:///{run.resolve() / 'optuna.db'}", run.name) == trials
    assert json.loads((run / "state.json").read_text())["generations"][0]["status"] == "scored"


# --- interrupts (real processes) --------------------------------------------------------------------------


def _start(argv: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**search_env(tmp_path), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "autogai.cli.main", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.integration
def test_an_interrupted_search_says_how_to_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = ["search", "--task", "pendulum", *SMOKE_FLAGS, "--steps", "100000", "--run-dir", str(run)]
    process = _start(argv, tmp_path)
    _wait_for(run / "state.json", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [f"autogai: interrupted; resume with: autogai {' '.join(argv)}"]
    assert not _control_characters(out + err)


@pytest.mark.integration
def test_an_interrupted_training_is_marked_and_evaluate_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = ["train", "--task", "pendulum", "--steps", "2000000", "--eval-every", "0", "--no-progress"]
    argv += ["--device", "cpu", *TINY_CLI_SETS, "--run-dir", str(run)]
    process = _start(argv, tmp_path)
    _wait_for(run / "config.json", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert not _control_characters(out + err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "autogai: interrupted; training starts again from step 0 with:"
    )
    assert json.loads((run / "interrupted.json").read_text())["status"] == "interrupted"

    evaluate = subprocess.run(
        [sys.executable, "-m", "autogai.cli.main", "evaluate", "--run-dir", str(run)],
        env={**search_env(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert evaluate.returncode == 1 and "Traceback" not in evaluate.stderr
    assert evaluate.stderr.strip().splitlines() == [
        f"autogai: error: training in {run} was interrupted and is incomplete; start it again with the same "
        "`autogai train` command"
    ]
    # The same command (shorter here) reuses the directory without --overwrite, and the mark goes.
    short = [a if a != "2000000" else "60" for a in argv]
    finished = subprocess.run(
        [sys.executable, "-m", "autogai.cli.main", *short],
        env={**search_env(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr
    assert not (run / "interrupted.json").exists() and (run / "result.json").is_file()


@pytest.mark.integration
def test_on_a_real_terminal_untrusted_text_cannot_drive_it(tmp_path: Path) -> None:
    """On a terminal rich colours its output with escape codes of its own; the ones hidden in a run's name,
    a design's name, rationale and code must still arrive as visible text, never as codes."""
    import pty

    run = make_search_run(
        tmp_path / f"r{EVIL}", name=f"n{EVIL}", rationale=f"r{EVIL}", code=PENDULUM_UPRIGHT + f"# {EVIL}\n"
    )
    for argv in (["leaderboard", str(run)], ["show", str(run), "1"]):
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "autogai.cli.main", *argv],
            env={**search_env(tmp_path), "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "COLUMNS": "200"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed when the process ended
                break
            if not chunk:
                break
            output += chunk
        os.close(leader)
        assert process.wait(timeout=120) == 0, output[-2000:]
        assert b"\x1b]0;pwned" not in output and b"\x1b[2J" not in output and b"\x07" not in output
        assert "\u202e".encode() not in output
        assert b"\\x1b]0;pwned" in output  # the same text, escaped


@pytest.mark.integration
def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """``autogai env check | head -1``: the closed pipe ends the command quietly."""
    process = _start(["env", "check"], tmp_path)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("autogai env check")
    process.stdout.close()
    assert process.wait(timeout=300) == 1
    assert process.stderr.read() == ""
