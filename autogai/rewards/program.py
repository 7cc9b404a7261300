"""Reward programs: the public contract and the checked, compilable program.

The contract (docs/reward_programs.md, fixed)::

    PARAMS = {"w": {"default": 1.0, "low": 0.1, "high": 10.0, "log": False}}   # optional

    def compute_reward(m, p):
        components = {"rate": p["w"] * m.rate_df}
        return sum(components.values()), components

:meth:`RewardProgram.from_source` runs the cheap, static fence: parse with :mod:`ast`, then the checks of
:mod:`autogai.rewards.static_checks` (an allow-list over the syntax tree, ``PARAMS`` and signature checks;
what is allowed and why is listed there).

Accepted code is then compiled with every attribute read routed through a typed allow-list and ``**`` through
a bounded power (:mod:`autogai.rewards.restricted`); it is *run* only inside the sandbox process
(:mod:`autogai.rewards.sandbox`). :func:`autogai.rewards.in_process.load_program` runs it in the current
process: trusted code and tests only.
"""

from __future__ import annotations

import ast
import copy
import math
import types
from collections.abc import Mapping

from autogai.core.errors import ConfigError, RewardRejectedError
from autogai.rewards import restricted, static_checks
from autogai.rewards.static_checks import ParamSpec

MAX_SOURCE_CHARS = 50_000


def _describe(exc: BaseException) -> str:
    """One line for an exception a check raised on a hostile program."""
    if isinstance(exc, RecursionError):
        return "nested too deeply: RecursionError"
    if isinstance(exc, MemoryError):
        return "too large: MemoryError"
    if isinstance(exc, OverflowError):
        return "a number is too large: OverflowError"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RewardProgram:
    """A statically checked reward program. Build it with :meth:`from_source`."""

    __slots__ = ("_code", "_tree", "attribute_reads", "component_names", "metric_reads", "params", "source")

    source: str
    """The program exactly as given."""
    params: dict[str, ParamSpec]
    """``PARAMS`` parsed (empty if the program has none)."""
    component_names: tuple[str, ...]
    """Component names if the returned dict is a literal (else empty)."""
    metric_reads: dict[str, int]
    """``m.<name>`` attributes the program reads, with the first line of each (checked against a task)."""
    attribute_reads: dict[str, int]
    """Every ``<anything>.<name>`` the program reads, with its first line: an alias of ``m`` reads metrics
    too, so judge-only metrics are checked against these."""

    def __init__(
        self,
        source: str,
        tree: ast.Module,
        params: dict[str, ParamSpec],
        component_names: tuple[str, ...],
        metric_reads: dict[str, int],
        attribute_reads: dict[str, int] | None = None,
    ) -> None:
        self.source = source
        self._tree = tree
        self.params = params
        self.component_names = component_names
        self.metric_reads = metric_reads
        self.attribute_reads = attribute_reads if attribute_reads is not None else dict(metric_reads)
        self._code: types.CodeType | None = None

    @classmethod
    def from_source(cls, source: str) -> RewardProgram:
        """Parse and statically check ``source``; raise :class:`RewardRejectedError` naming stage and line."""
        if not isinstance(source, str):
            raise RewardRejectedError(f"source must be a string, got {type(source).__name__}", stage="parse")
        if len(source) > MAX_SOURCE_CHARS:
            raise RewardRejectedError(
                f"program is {len(source)} characters long (limit {MAX_SOURCE_CHARS})", stage="parse"
            )
        if not source.strip():
            raise RewardRejectedError("program is empty", stage="parse")
        try:
            tree = ast.parse(source, filename=restricted.PROGRAM_FILENAME)
        except SyntaxError as exc:
            raise RewardRejectedError(f"syntax error: {exc.msg}", stage="parse", line=exc.lineno) from None
        except Exception as exc:  # ValueError (NUL bytes), RecursionError, MemoryError, OverflowError ...
            raise RewardRejectedError(f"cannot parse the program ({_describe(exc)})", stage="parse") from None
        # Every check is total: whatever a hostile program makes a check raise becomes a rejection with a
        # one-line reason (it reaches the user and the repair prompt), never a crash of the caller.
        try:
            static_checks.check_tree(tree)
            params = static_checks.parse_params(tree)
            function = static_checks.check_signature(tree)
            static_checks.check_param_reads(tree, params)
            names = static_checks.component_names(function)
            static_checks.check_component_names(names, function)
            reads = static_checks.attribute_reads(tree, base="m")
            attributes = static_checks.attribute_reads(tree)
        except RewardRejectedError:
            raise
        except Exception as exc:
            raise RewardRejectedError(
                f"the program cannot be checked ({_describe(exc)})", stage="check"
            ) from None
        return cls(source, tree, params, names, reads, attributes)

    # --- parameters ---------------------------------------------------------------------------------------

    def default_params(self) -> dict[str, float]:
        return {name: spec.default for name, spec in self.params.items()}

    def resolve_params(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults updated with ``overrides`` (e.g. an Optuna trial's values); unknown names are an error."""
        values = self.default_params()
        for name, value in (overrides or {}).items():
            if name not in self.params:
                known = ", ".join(self.params) or "none"
                raise ConfigError(f"reward parameter {name!r} is not in PARAMS (known: {known})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"reward parameter {name}={value!r} must be a finite number")
            values[name] = float(value)
        return values

    # --- compilation --------------------------------------------------------------------------------------

    def compile(self) -> types.CodeType:
        """The program compiled for the restricted runtime (attribute reads and ``**`` guarded); a program
        the compiler cannot handle (nested too deeply, too large) is rejected at stage ``compile``."""
        if self._code is None:
            try:
                transformed = _GuardTransformer().visit(_copy_tree(self._tree))
                ast.fix_missing_locations(transformed)
                self._code = compile(transformed, restricted.PROGRAM_FILENAME, "exec")
            except Exception as exc:
                raise RewardRejectedError(
                    f"the program cannot be compiled ({_describe(exc)})", stage="compile"
                ) from None
        return self._code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RewardProgram) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"RewardProgram(params={list(self.params)}, components={list(self.component_names)})"


def _copy_tree(tree: ast.Module) -> ast.Module:
    return copy.deepcopy(tree)


# ------------------------------------------------------------------------------------------- compilation


class _GuardTransformer(ast.NodeTransformer):
    """Routes attribute reads through ``_getattr_`` and ``**`` through ``_pow_``; drops annotations."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        call = ast.Call(
            func=ast.Name(id="_getattr_", ctx=ast.Load()),
            args=[node.value, ast.Constant(value=node.attr)],
            keywords=[],
        )
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            call = ast.Call(
                func=ast.Name(id="_pow_", ctx=ast.Load()), args=[node.left, node.right], keywords=[]
            )
            return ast.copy_location(call, node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Pow):
            return node
        load_target = _as_load(node.target)
        call = ast.Call(
            func=ast.Name(id="_pow_", ctx=ast.Load()), args=[load_target, node.value], keywords=[]
        )
        return ast.copy_location(ast.Assign(targets=[node.target], value=call), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None
        for argument in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            argument.annotation = None
        if node.args.vararg is not None:
            node.args.vararg.annotation = None
        if node.args.kwarg is not None:
            node.args.kwarg.annotation = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        assign = ast.Assign(targets=[node.target], value=node.value)
        ast.copy_location(assign, node)
        return self.visit(assign)


def _as_load(target: ast.expr) -> ast.expr:
    loaded = copy.deepcopy(target)
    for node in ast.walk(loaded):
        if hasattr(node, "ctx"):
            node.ctx = ast.Load()
    return _GuardTransformer().visit(loaded)
