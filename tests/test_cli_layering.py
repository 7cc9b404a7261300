"""The CLI's command modules parse arguments, call the library and print; the work is the library's.

An honest, checkable form of that rule, over every ``autogai/cli/*_commands.py``:

- no ``except`` handler: errors are raised by the library as one AutoGAIError line, and ``cli/main.py`` is
  the one place where exceptions become exit codes;
- no ``while`` loop and no loop inside a loop: iterating over data to compute something is library work
  (a single loop that prints rows is fine);
- no class definitions;
- at most 30 statements per function that are not output calls (``echo``, ``print``, ``console.print``,
  ``console.rule``): long bodies of checks and steps belong in a library function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "autogai" / "cli"
COMMAND_MODULES = sorted(CLI.glob("*_commands.py"))
OUTPUT_CALLS = {"echo", "print", "rule"}
MAX_STATEMENTS = 30


def _is_output(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return False
    function = statement.value.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return name in OUTPUT_CALLS


def _loops_inside(node: ast.AST) -> list[ast.AST]:
    return [
        n for n in ast.walk(node) if n is not node and isinstance(n, (ast.For, ast.While, ast.comprehension))
    ]


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ExceptHandler):
            problems.append(f"{where} handles an exception (raise an AutoGAIError in the library instead)")
        elif isinstance(node, ast.While):
            problems.append(f"{where} has a while loop")
        elif isinstance(node, ast.ClassDef):
            problems.append(f"{where} defines a class")
        elif isinstance(node, ast.For) and _loops_inside(node):
            problems.append(f"{where} nests loops")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            count = sum(isinstance(n, ast.stmt) and not _is_output(n) for n in ast.walk(node)) - 1
            if count > MAX_STATEMENTS:
                problems.append(
                    f"{where} {node.name} has {count} statements besides output (> {MAX_STATEMENTS})"
                )
    return problems


def test_every_command_module_is_checked() -> None:
    names = {p.name for p in COMMAND_MODULES}
    assert {"search_commands.py", "train_commands.py", "propose_commands.py", "env_commands.py"} <= names


@pytest.mark.parametrize("path", COMMAND_MODULES, ids=lambda p: p.name)
def test_command_modules_hold_no_logic_past_argument_handling(path: Path) -> None:
    assert _problems(path) == []


def test_the_rule_catches_logic(tmp_path: Path) -> None:
    """The checker itself: a command that computes instead of calling the library is reported."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_STATEMENTS + 1))
    sample = tmp_path / "sample_commands.py"
    sample.write_text(
        "def command(rows):\n"
        "    try:\n        pass\n    except ValueError:\n        pass\n"
        "    for row in rows:\n        for cell in row:\n            print(cell)\n"
        f"{body}\n"
    )
    problems = _problems(sample)
    assert any("handles an exception" in p for p in problems)
    assert any("nests loops" in p for p in problems)
    assert any("statements besides output" in p for p in problems)
