"""The static checks of a reward program: the first fence, run on the syntax tree before anything executes.

:meth:`autogai.rewards.program.RewardProgram.from_source` parses a program with :mod:`ast` and runs these
checks in turn: an allow-list over the syntax tree (:func:`check_tree`), ``PARAMS`` (:func:`parse_params`,
:func:`check_param_reads`), the signature of ``compute_reward`` (:func:`check_signature`) and literal
component names. Each raises :class:`RewardRejectedError` naming the stage and the line. What is allowed,
and why:

- module level: assignments (``PARAMS``, constants), ``def``, a docstring. Nothing else runs at load time.
- in functions: assignments, ``for`` (over bounded ``range``), ``if``, ``return``, ``break``/``continue``,
  ``assert``, nested ``def``, comprehensions and generator expressions, f-strings.
- not allowed: ``import`` (the sandbox supplies ``math`` and a restricted ``np``), ``while`` (unbounded),
  ``lambda`` (use ``def``), ``class``, ``global``/``nonlocal``, ``try``/``with``/``raise`` (errors must
  surface, not be hidden), ``yield``/``async``/``await``, ``del``, ``match``, decorators, bytes literals,
  assignment to attributes, any name, argument or attribute starting with ``_``, the names in
  :data:`DENIED_NAMES` (``eval``, ``getattr``, ``open`` ...) and the attributes in :data:`DENIED_ATTRIBUTES`
  (``format`` — ``"{0.__class__}".format(x)`` reaches attributes through a string —, ``tofile``,
  ``gi_frame``, ``f_globals`` ...). ``np.<name>`` and ``math.<name>`` must be on the allow-lists the
  sandbox's runtime uses too (:mod:`autogai.rewards.allow_lists`).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autogai.core.errors import RewardRejectedError
from autogai.core.text import is_printable_identifier
from autogai.rewards import allow_lists, restricted

MAX_PARAMS = 64
MAX_PARAM_NAME = 64

DENIED_NAMES: dict[str, str] = {
    name: f"'{name}' is not available in reward programs"
    for name in (
        "__builtins__",
        "__import__",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "open",
        "eval",
        "exec",
        "compile",
        "type",
        "object",
        "input",
        "print",
        "breakpoint",
        "help",
        "memoryview",
        "bytearray",
        "bytes",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "exit",
        "quit",
        "id",
        "hash",
        "iter",
        "next",
        "callable",
        "format",
        "repr",
        "chr",
        "ord",
        "map",
        "filter",
        "slice",
        "issubclass",
        "os",
        "sys",
        "subprocess",
        "builtins",
        "importlib",
        "ctypes",
        "socket",
        "shutil",
        "pickle",
        "pathlib",
        "io",
        "gc",
        "inspect",
    )
}
"""Names a program may not use (most are simply absent from the sandbox; rejecting them here gives a clear reason)."""

_FILE_ATTRIBUTES = ("tofile", "dump", "dumps", "load", "save", "savez", "savetxt", "loadtxt", "genfromtxt")
_MEMORY_ATTRIBUTES = ("ctypes", "ctypeslib", "data", "base", "view", "tobytes", "tostring", "frombuffer")
_FRAME_ATTRIBUTES = (
    "gi_frame",
    "gi_code",
    "gi_yieldfrom",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "ag_code",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "f_code",
    "tb_frame",
    "tb_next",
    "co_code",
    "co_consts",
    "func_globals",
    "mro",
)
DENIED_ATTRIBUTES: dict[str, str] = {
    "format": "str.format is not allowed (format strings can reach attributes); use an f-string",
    "format_map": "str.format_map is not allowed (format strings can reach attributes)",
    "setflags": "setflags is not allowed (the metrics are read-only)",
    "flags": "array flags are not available",
    "fromfile": "file access (fromfile) is not allowed",
    "memmap": "memory maps are not allowed",
    "lib": "np.lib is not available",
    "f2py": "np.f2py is not available",
    "testing": "np.testing is not available",
    **{name: f"file access ({name}) is not allowed" for name in _FILE_ATTRIBUTES},
    **{name: f"raw memory access ({name}) is not allowed" for name in _MEMORY_ATTRIBUTES},
    **{name: f"interpreter internals ({name}) are not allowed" for name in _FRAME_ATTRIBUTES},
}

_ALLOWED_STATEMENTS = (
    ast.FunctionDef,
    ast.Return,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.For,
    ast.If,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Expr,
    ast.Assert,
)
_ALLOWED_EXPRESSIONS = (
    ast.BoolOp,
    ast.NamedExpr,
    ast.BinOp,
    ast.UnaryOp,
    ast.IfExp,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Compare,
    ast.Call,
    ast.FormattedValue,
    ast.JoinedStr,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Starred,
    ast.Name,
    ast.List,
    ast.Tuple,
    ast.Slice,
)
_ALLOWED_OTHER = (
    ast.Module,
    ast.Load,
    ast.Store,
    ast.comprehension,
    ast.arguments,
    ast.arg,
    ast.keyword,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
)
_ALLOWED_NODES = _ALLOWED_STATEMENTS + _ALLOWED_EXPRESSIONS + _ALLOWED_OTHER

_NODE_REASONS: dict[str, str] = {
    "Import": "import is not allowed (the sandbox provides math and np)",
    "ImportFrom": "import is not allowed (the sandbox provides math and np)",
    "While": "while loops are not allowed (use for over a bounded range)",
    "Lambda": "lambda is not allowed (define a helper with def)",
    "ClassDef": "class definitions are not allowed",
    "Global": "global is not allowed",
    "Nonlocal": "nonlocal is not allowed",
    "Try": "try/except is not allowed (errors must surface)",
    "TryStar": "try/except is not allowed (errors must surface)",
    "With": "with is not allowed",
    "AsyncWith": "async code is not allowed",
    "Raise": "raise is not allowed",
    "Yield": "generators (yield) are not allowed",
    "YieldFrom": "generators (yield) are not allowed",
    "AsyncFunctionDef": "async code is not allowed",
    "AsyncFor": "async code is not allowed",
    "Await": "async code is not allowed",
    "Delete": "del is not allowed",
    "Del": "del is not allowed",
    "Match": "match is not allowed",
}

_PARAM_KEYS = ("default", "low", "high", "log", "description")


@dataclass(frozen=True)
class ParamSpec:
    """One tunable constant of a program: its default and search range (``log``: sample on a log scale)."""

    default: float
    low: float
    high: float
    log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default, "low": self.low, "high": self.high, "log": self.log}


def _reject(
    reason: str, stage: str, node: ast.AST | None = None, line: int | None = None
) -> RewardRejectedError:
    if line is None and node is not None:
        line = getattr(node, "lineno", None)
    return RewardRejectedError(reason, stage=stage, line=line)


class _TreeChecker(ast.NodeVisitor):
    """Walks the tree in source order and raises on the first thing outside the allow-list."""

    def __init__(self, bound_names: set[str]) -> None:
        self.bound_names = bound_names
        self.in_annotation = False

    def generic_visit(self, node: ast.AST) -> None:
        if not isinstance(node, _ALLOWED_NODES):
            name = type(node).__name__
            raise _reject(_NODE_REASONS.get(name, f"{name} is not allowed"), "syntax", node)
        super().generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            raise _reject("decorators are not allowed", "syntax", node.decorator_list[0])
        self._check_identifier(node.name, node, "function")
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for argument in [
            *node.args.posonlyargs,
            *node.args.args,
            *node.args.kwonlyargs,
            *([node.args.vararg] if node.args.vararg else []),
            *([node.args.kwarg] if node.args.kwarg else []),
        ]:
            self._check_identifier(argument.arg, argument, "argument")
            if argument.annotation is not None:
                self._visit_annotation(argument.annotation)
        if node.returns is not None:
            self._visit_annotation(node.returns)
        for statement in node.body:
            self.visit(statement)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        self._visit_annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    def _visit_annotation(self, node: ast.AST) -> None:
        # Annotations are dropped before compilation; check them for escapes but not for unknown names.
        previous, self.in_annotation = self.in_annotation, True
        try:
            self.visit(node)
        finally:
            self.in_annotation = previous

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Del):
            raise _reject(_NODE_REASONS["Del"], "syntax", node)
        self._check_identifier(node.id, node, "name")
        if node.id in DENIED_NAMES:
            raise _reject(DENIED_NAMES[node.id], "syntax", node)
        if (
            isinstance(node.ctx, ast.Load)
            and not self.in_annotation
            and node.id not in self.bound_names
            and node.id not in allow_lists.ALLOWED_GLOBAL_NAMES
        ):
            offered = ", ".join(sorted(allow_lists.ALLOWED_GLOBAL_NAMES - {"True", "False", "None"}))
            raise _reject(
                f"name {node.id!r} is not defined (reward programs can use: {offered})", "syntax", node
            )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.visit(node.value)  # inner attributes first: report problems in source order
        attribute = node.attr
        if attribute.startswith("_"):
            raise _reject(
                f"attribute names starting with '_' are not allowed ({attribute!r})", "syntax", node
            )
        if not isinstance(node.ctx, ast.Load):
            raise _reject(f"assigning to attributes is not allowed (.{attribute})", "syntax", node)
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("np", "math"):
            allowed = allow_lists.NUMPY_ALLOWED if base.id == "np" else allow_lists.MATH_ALLOWED
            extra = ("linalg", "newaxis") if base.id == "np" else ()
            if attribute not in allowed and attribute not in extra:
                reason = DENIED_ATTRIBUTES.get(attribute, "not on the sandbox's allow-list")
                raise _reject(f"{base.id}.{attribute} is not available ({reason})", "syntax", node)
        elif (
            isinstance(base, ast.Attribute)
            and base.attr == "linalg"
            and isinstance(base.value, ast.Name)
            and base.value.id == "np"
        ):
            if attribute not in allow_lists.NUMPY_LINALG_ALLOWED:
                raise _reject(f"np.linalg.{attribute} is not available (only np.linalg.norm)", "syntax", node)
        elif attribute in DENIED_ATTRIBUTES:
            raise _reject(DENIED_ATTRIBUTES[attribute], "syntax", node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bytes):
            raise _reject("bytes literals are not allowed", "syntax", node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None:
            self._check_identifier(node.arg, node, "keyword argument")
        self.visit(node.value)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            raise _reject("async code is not allowed", "syntax", node.target)
        self.generic_visit(node)

    @staticmethod
    def _check_identifier(name: str, node: ast.AST, what: str) -> None:
        if name.startswith("_"):
            raise _reject(f"{what} names starting with '_' are not allowed ({name!r})", "syntax", node)


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def check_tree(tree: ast.Module) -> None:
    for statement in tree.body:
        docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if not all(isinstance(t, (ast.Name, ast.Tuple)) for t in targets):
                raise _reject("module-level assignments must bind plain names", "syntax", statement)
        elif not (isinstance(statement, ast.FunctionDef) or docstring):
            name = type(statement).__name__
            reason = _NODE_REASONS.get(
                name,
                f"only assignments and function definitions are allowed at module level (found {name})",
            )
            raise _reject(reason, "syntax", statement)
    checker = _TreeChecker(_bound_names(tree))
    try:
        checker.visit(tree)
    except RecursionError:
        raise RewardRejectedError("program is nested too deeply", stage="syntax") from None


def parse_params(tree: ast.Module) -> dict[str, ParamSpec]:
    assignments: list[tuple[ast.stmt, ast.expr | None]] = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name) and target.id == "PARAMS":
                    assignments.append((statement, statement.value))
                elif isinstance(target, ast.Tuple) and any(
                    isinstance(e, ast.Name) and e.id == "PARAMS" for e in target.elts
                ):
                    raise _reject("PARAMS must be assigned a literal dict on its own", "params", statement)
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == "PARAMS"
        ):
            assignments.append((statement, statement.value))
    if not assignments:
        return {}
    if len(assignments) > 1:
        raise _reject("PARAMS is assigned more than once", "params", assignments[1][0])
    statement, value = assignments[0]
    if value is None:
        raise _reject("PARAMS has no value", "params", statement)
    try:
        raw = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _reject(
            "PARAMS must be a literal dict like {'w': {'default': 1.0, 'low': 0.1, 'high': 10.0}} "
            "(no names, calls or arithmetic)",
            "params",
            statement,
        ) from None
    if not isinstance(raw, dict):
        raise _reject(f"PARAMS must be a dict, got {type(raw).__name__}", "params", statement)
    if len(raw) > MAX_PARAMS:
        raise _reject(f"PARAMS has {len(raw)} entries (limit {MAX_PARAMS})", "params", statement)
    params: dict[str, ParamSpec] = {}
    for name, entry in raw.items():
        params[_check_param_name(name, statement)] = _param_spec(name, entry, statement)
    return params


def _check_param_name(name: Any, statement: ast.AST) -> str:
    if not is_printable_identifier(name) or len(name) > MAX_PARAM_NAME or name.startswith("_"):
        raise _reject(
            f"PARAMS keys must be identifiers of at most {MAX_PARAM_NAME} characters not starting with '_' "
            f"(got {_short_repr(name)})",
            "params",
            statement,
        )
    return name


def _param_spec(name: str, entry: Any, statement: ast.AST) -> ParamSpec:
    where = f"PARAMS[{name!r}]"
    if not isinstance(entry, dict):
        raise _reject(
            f"{where} must be a dict with default, low, high (got {_short_repr(entry)})", "params", statement
        )
    unknown = [key for key in entry if key not in _PARAM_KEYS]
    if unknown:
        raise _reject(
            f"{where} has unknown key {unknown[0]!r} (allowed: default, low, high, log)", "params", statement
        )
    numbers: dict[str, float] = {}
    for key in ("default", "low", "high"):
        if key not in entry:
            raise _reject(f"{where} lacks {key!r}", "params", statement)
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise _reject(
                f"{where}[{key!r}] must be a finite number (got {_short_repr(value)})", "params", statement
            )
        numbers[key] = float(value)
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise _reject(f"{where}['log'] must be True or False (got {_short_repr(log)})", "params", statement)
    if not numbers["low"] <= numbers["default"] <= numbers["high"]:
        raise _reject(
            f"{where} needs low <= default <= high (got low={numbers['low']}, default={numbers['default']}, "
            f"high={numbers['high']})",
            "params",
            statement,
        )
    if log and numbers["low"] <= 0:
        raise _reject(f"{where} has log=True but low={numbers['low']} is not > 0", "params", statement)
    return ParamSpec(numbers["default"], numbers["low"], numbers["high"], log)


def _finite(value: float) -> bool:
    """Finite and representable as a float (a 400-digit integer is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _short_repr(value: Any, limit: int = 60) -> str:
    if isinstance(value, int) and abs(value) >= 10**limit:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_signature(tree: ast.Module) -> ast.FunctionDef:
    functions = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "compute_reward"]
    if not functions:
        raise RewardRejectedError("no function compute_reward(m, p) is defined", stage="signature")
    if len(functions) > 1:
        raise _reject("compute_reward is defined more than once", "signature", functions[1])
    function = functions[0]
    arguments = function.args
    names = [a.arg for a in arguments.args]
    plain = not (
        arguments.posonlyargs
        or arguments.vararg
        or arguments.kwonlyargs
        or arguments.kwarg
        or arguments.defaults
    )
    if names != ["m", "p"] or not plain:
        try:
            got = ast.unparse(arguments)
        except RecursionError:
            got = "... nested too deeply to show"
        raise _reject(
            f"the signature must be compute_reward(m, p), got compute_reward({got[:120]})",
            "signature",
            function,
        )
    for other in ast.walk(tree):
        if (
            isinstance(other, (ast.Name,))
            and other.id == "compute_reward"
            and isinstance(other.ctx, ast.Store)
        ):
            raise _reject("compute_reward must not be reassigned", "signature", other)
    return function


def check_param_reads(tree: ast.Module, params: Mapping[str, ParamSpec]) -> None:
    """``p["name"]`` with a literal name must name an entry of PARAMS (catches typos before any run)."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        if "p" not in {a.arg for a in function.args.args}:
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id == "p"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
                and node.slice.value not in params
            ):
                known = ", ".join(params) if params else "the program has no PARAMS"
                raise _reject(
                    f"p[{node.slice.value!r}] is read but PARAMS has no such entry ({known})", "params", node
                )
            if isinstance(node, ast.Name) and node.id == "p" and isinstance(node.ctx, ast.Store):
                raise _reject("p must not be reassigned", "params", node)


def attribute_reads(tree: ast.Module, base: str | None = None) -> dict[str, int]:
    """``.name`` reads with their first line: on the name ``base`` only, or on anything (None)."""
    reads: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            base is None or (isinstance(node.value, ast.Name) and node.value.id == base)
        ):
            line = node.lineno
            if node.attr not in reads or line < reads[node.attr]:
                reads[node.attr] = line
    return reads


def component_names(function: ast.FunctionDef) -> tuple[str, ...]:
    """Names of the components if ``compute_reward`` returns a dict literal (directly or via one name)."""
    returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    names: list[str] = []
    for node in returns:
        value = node.value
        if not (isinstance(value, ast.Tuple) and len(value.elts) == 2):
            return ()
        components = value.elts[1]
        keys: list[str] | None = None
        if isinstance(components, ast.Dict):
            keys = _literal_keys(components)
        elif isinstance(components, ast.Name):
            keys = _keys_assigned_to(function, components.id)
        if keys is None:
            return ()
        names.extend(k for k in keys if k not in names)
    return tuple(names)


def check_component_names(names: tuple[str, ...], function: ast.FunctionDef) -> None:
    """Literal component names are shown in tables, logs and prompts: printable identifiers only."""
    for name in names:
        if not restricted.valid_component_name(name):
            raise _reject(
                f"component names must be identifiers of at most {restricted.MAX_COMPONENT_NAME} characters "
                f"(got {_short_repr(name)})",
                "components",
                function,
            )


def _literal_keys(node: ast.Dict) -> list[str] | None:
    keys = []
    for key in node.keys:
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        keys.append(key.value)
    return keys


def _keys_assigned_to(function: ast.FunctionDef, name: str) -> list[str] | None:
    keys: list[str] = []
    found = False
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            if not isinstance(node.value, ast.Dict):
                return None
            literal = _literal_keys(node.value)
            if literal is None:
                return None
            keys.extend(k for k in literal if k not in keys)
            found = True
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == name
                ):
                    if not (isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
                        return None
                    if target.slice.value not in keys:
                        keys.append(target.slice.value)
        elif isinstance(node, ast.AugAssign):
            target = node.target
            if isinstance(target, ast.Name) and target.id == name:
                return None
    return keys if found else None
