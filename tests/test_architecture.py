"""The claims of docs/architecture.md (and of the module docstrings it relies on), checked against the code:
which modules write files, where torch is imported, that the sandbox's parent never unpickles, and that no
module outgrows one job."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autogai"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_MODULE_LINES = 700

# Calls that create or change files: a method of a path or a figure, a function of os/shutil/torch/sqlite3/
# tempfile, or open() with a writing mode.
_WRITING_METHODS = frozenset({"write_text", "write_bytes", "touch", "mkdir", "savefig"})
_WRITING_FUNCTIONS = frozenset(
    {
        ("os", "replace"),
        ("os", "rename"),
        ("shutil", "copy"),
        ("shutil", "copyfile"),
        ("shutil", "copytree"),
        ("shutil", "move"),
        ("torch", "save"),
        ("sqlite3", "connect"),
        ("tempfile", "mkstemp"),
        ("tempfile", "mkdtemp"),
        ("tempfile", "NamedTemporaryFile"),
    }
)
_OPENERS = frozenset({"open", "fdopen"})


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _opens_for_writing(call: ast.Call) -> bool:
    """``open(path, "w")``, ``path.open("a")``, ``os.fdopen(fd, "w")``: a literal mode that writes."""
    function = call.func
    name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
    if name not in _OPENERS:
        return False
    modes = [k.value for k in call.keywords if k.arg == "mode"]
    positional = 0 if isinstance(function, ast.Attribute) and name == "open" else 1
    if len(call.args) > positional:
        modes.append(call.args[positional])
    return any(
        isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+") for m in modes
    )


def _writes_files(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute):
            if function.attr in _WRITING_METHODS:
                return True
            if (
                isinstance(function.value, ast.Name)
                and (function.value.id, function.attr) in _WRITING_FUNCTIONS
            ):
                return True
        if _opens_for_writing(node):
            return True
    return False


def _documented_writers() -> set[str]:
    """The module paths in the first column of architecture.md's "Who writes files" table."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Who writes files", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(autogai/[\w/]+\.py)` \|", section, flags=re.MULTILINE))


def test_the_modules_that_write_files_are_the_ones_architecture_md_names() -> None:
    writers = {
        _name(path) for path in _modules() if _writes_files(ast.parse(path.read_text(encoding="utf-8")))
    }
    documented = _documented_writers()
    assert "autogai/pipeline/rundir.py" in writers  # the scan finds writes at all
    assert writers - documented == set(), "modules that write files but are missing from docs/architecture.md"
    assert documented - writers == set(), "modules docs/architecture.md names as writers that write nothing"


def _torch_imports(tree: ast.Module) -> tuple[bool, bool]:
    """(imports torch at module level, imports torch anywhere)."""
    top = anywhere = False
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        if any(name == "torch" or name.startswith("torch.") for name in names):
            anywhere = True
            top = top or node in tree.body
    return top, anywhere


def test_torch_is_imported_at_import_time_by_the_agents_layer_only() -> None:
    """autogai/agents/__init__.py and docs/architecture.md: torch at import time in ``autogai.agents`` only;
    the training loop, the local embeddings and seeding import it inside the functions that use it."""
    at_import, inside_functions = set(), set()
    for path in _modules():
        top, anywhere = _torch_imports(ast.parse(path.read_text(encoding="utf-8")))
        if top:
            at_import.add(_name(path))
        elif anywhere:
            inside_functions.add(_name(path))
    assert at_import and all(name.startswith("autogai/agents/") for name in at_import), sorted(at_import)
    lazy_outside_agents = {name for name in inside_functions if not name.startswith("autogai/agents/")}
    assert lazy_outside_agents <= {
        "autogai/training/session.py",
        "autogai/training/metrics.py",
        "autogai/rag/embeddings.py",
        "autogai/core/seeding.py",
    }, sorted(lazy_outside_agents)


def test_the_sandbox_parent_never_unpickles_what_the_worker_wrote() -> None:
    """autogai/rewards/sandbox.py and protocol.py read replies with json.loads and struct.unpack only."""
    for module in ("sandbox.py", "protocol.py"):
        tree = ast.parse((PACKAGE / "rewards" / module).read_text(encoding="utf-8"))
        unpickling = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "pickle"
            and node.attr in ("load", "loads", "Unpickler")
        ]
        assert unpickling == [], f"rewards/{module} unpickles at lines {unpickling}"


def test_no_module_is_longer_than_700_lines() -> None:
    lengths = {_name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _modules()}
    assert max(lengths.values()) > 100  # the scan reads real modules
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}
