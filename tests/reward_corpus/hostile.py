"""Hostile and broken reward programs, each with the stage and reason it must be stopped with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HostileCase:
    name: str
    source: str
    stage: str
    """Validation stage that must stop it: parse, syntax, params, signature, metrics, smoke."""
    reason: str
    """Regular expression the reason must match."""
    options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of validate_reward_program (short limits for the slow ones)."""

    @property
    def static(self) -> bool:
        return self.stage != "smoke"


def _fn(body: str, *, header: str = "") -> str:
    """A compute_reward whose body is ``body`` (4-space indented lines), after optional module ``header``."""
    lines = "\n".join("    " + line if line else "" for line in body.strip("\n").splitlines())
    return f"{header}\ndef compute_reward(m, p):\n{lines}\n"


OK = "return 0.0, {'zero': 0.0}"

CPU_BUDGET = r"more than [\d.]+ s of CPU \(budget [\d.]+ s per call\)"
"""The reason of a program stopped by its per-call CPU budget."""


def _or_cpu_budget(reason: str) -> str:
    """``reason``, or the per-call CPU budget: a program that does bulk work before it reaches another limit
    (sizing a list of 100,000 arrays) may use up its CPU budget first on a slower machine. Either way it is
    stopped by a resource limit and contained; which limit comes first depends on the machine's speed."""
    return rf"(?:{reason})|{CPU_BUDGET}"


HOSTILE: list[HostileCase] = [
    # --- imports ---------------------------------------------------------------------------------------
    HostileCase("import_os", "import os\n" + _fn("os.system('touch SENTINEL')\n" + OK), "syntax", r"import"),
    HostileCase("from_import", "from os import system\n" + _fn(OK), "syntax", r"import"),
    HostileCase("import_in_function", _fn("import subprocess\n" + OK), "syntax", r"import"),
    HostileCase("dunder_import", _fn("__import__('os').system('touch SENTINEL')\n" + OK), "syntax", r"'_'"),
    # --- dunder and introspection escapes -----------------------------------------------------------------
    HostileCase(
        "subclasses_escape",
        _fn("classes = ().__class__.__base__.__subclasses__()\n" + OK),
        "syntax",
        r"'_'.*__class__",
    ),
    HostileCase("builtins_name", _fn("b = __builtins__\n" + OK), "syntax", r"'_'"),
    HostileCase("getattr_escape", _fn("g = getattr(m, '__class__')\n" + OK), "syntax", r"'getattr'"),
    HostileCase("globals_call", _fn("g = globals()\n" + OK), "syntax", r"'globals'"),
    HostileCase("eval_call", _fn("x = eval('1 + 1')\n" + OK), "syntax", r"'eval'"),
    HostileCase("exec_call", _fn("exec(\"open('SENTINEL', 'w')\")\n" + OK), "syntax", r"'exec'"),
    HostileCase("type_call", _fn("t = type(m)\n" + OK), "syntax", r"'type'"),
    HostileCase("vars_call", _fn("v = vars(m)\n" + OK), "syntax", r"'vars'"),
    HostileCase("function_globals", _fn("g = compute_reward.__globals__\n" + OK), "syntax", r"'_'"),
    # --- format strings -----------------------------------------------------------------------------------
    HostileCase("format_escape", _fn("s = '{0.__class__}'.format(m)\n" + OK), "syntax", r"str\.format"),
    HostileCase(
        "format_map_escape", _fn("s = '{x.__class__}'.format_map({'x': m})\n" + OK), "syntax", r"format_map"
    ),
    HostileCase(
        "str_format_unbound",
        _fn("s = str.format('{0.__globals__}', compute_reward)\n" + OK),
        "syntax",
        r"format",
    ),
    HostileCase("fstring_dunder", _fn("s = f'{m.__class__.__init__.__globals__}'\n" + OK), "syntax", r"'_'"),
    # --- generator frames ---------------------------------------------------------------------------------
    HostileCase(
        "generator_frame",
        _fn("g = (x for x in [1])\nframe = g.gi_frame\nh = frame.f_back.f_globals\n" + OK),
        "syntax",
        r"gi_frame",
    ),
    HostileCase("frame_globals", _fn("a = m.f_globals\n" + OK), "syntax", r"f_globals"),
    HostileCase(
        "generator_attribute_runtime",
        _fn("g = (x for x in [1])\nr = g.gi_running\n" + OK),
        "smoke",
        r"forbidden: attribute 'gi_running' of generator",
    ),
    # --- numpy: files, memory, the system -------------------------------------------------------------------
    HostileCase("np_save", _fn("np.save('SENTINEL', m.obs)\n" + OK), "syntax", r"np\.save"),
    HostileCase("np_load", _fn("x = np.load('SENTINEL')\n" + OK), "syntax", r"np\.load"),
    HostileCase("np_loadtxt", _fn("x = np.loadtxt('/etc/passwd')\n" + OK), "syntax", r"np\.loadtxt"),
    HostileCase("np_genfromtxt", _fn("x = np.genfromtxt('/etc/passwd')\n" + OK), "syntax", r"np\.genfromtxt"),
    HostileCase("np_fromfile", _fn("x = np.fromfile('/etc/passwd')\n" + OK), "syntax", r"np\.fromfile"),
    HostileCase("np_savetxt", _fn("np.savetxt('SENTINEL', m.obs)\n" + OK), "syntax", r"np\.savetxt"),
    HostileCase("array_tofile", _fn("m.obs.tofile('SENTINEL')\n" + OK), "syntax", r"tofile"),
    HostileCase("array_dump", _fn("m.obs.dump('SENTINEL')\n" + OK), "syntax", r"dump"),
    HostileCase("array_ctypes", _fn("a = m.obs\nptr = a.ctypes.data\n" + OK), "syntax", r"ctypes"),
    HostileCase("array_base", _fn("b = m.obs.base\n" + OK), "syntax", r"base"),
    HostileCase("np_ctypeslib", _fn("x = np.ctypeslib.as_array(m.obs)\n" + OK), "syntax", r"np\.ctypeslib"),
    HostileCase("np_f2py", _fn("np.f2py.compile('x', modulename='evil')\n" + OK), "syntax", r"np\.f2py"),
    HostileCase(
        "np_lib_stride_tricks",
        _fn("x = np.lib.stride_tricks.as_strided(m.obs, (10**6,))\n" + OK),
        "syntax",
        r"np\.lib",
    ),
    HostileCase(
        "np_memmap", _fn("x = np.memmap('SENTINEL', mode='w+', shape=(4,))\n" + OK), "syntax", r"np\.memmap"
    ),
    HostileCase(
        "np_alias_runtime",
        _fn("mods = [np]\nx = mods[0].random\n" + OK),
        "smoke",
        r"forbidden: np\.random is not available",
    ),
    HostileCase(
        "array_attribute_runtime",
        _fn("s = m.obs.strides\n" + OK),
        "smoke",
        r"forbidden: attribute 'strides' of ndarray",
    ),
    # --- the interpreter's own doors ----------------------------------------------------------------------
    HostileCase("open_write", _fn("open('SENTINEL', 'w').write('x')\n" + OK), "syntax", r"'open'"),
    HostileCase("input_call", _fn("x = input()\n" + OK), "syntax", r"'input'"),
    HostileCase("breakpoint_call", _fn("breakpoint()\n" + OK), "syntax", r"'breakpoint'"),
    HostileCase("print_call", _fn("print('hello')\n" + OK), "syntax", r"'print'"),
    HostileCase("os_name", _fn("os.system('touch SENTINEL')\n" + OK), "syntax", r"'os'"),
    HostileCase(
        "class_finaliser",
        "class Evil:\n    def __del__(self):\n        open('SENTINEL', 'w')\n\n" + _fn("e = Evil()\n" + OK),
        "syntax",
        r"class",
    ),
    HostileCase("lambda_recursion", _fn("f = (lambda g: g(g))\n" + OK), "syntax", r"lambda"),
    HostileCase("global_statement", _fn("global PARAMS\n" + OK), "syntax", r"global"),
    HostileCase(
        "try_swallow", _fn("try:\n    x = 1 / 0\nexcept Exception:\n    x = 0.0\n" + OK), "syntax", r"try"
    ),
    HostileCase("with_statement", _fn("with m:\n    pass\n" + OK), "syntax", r"with"),
    HostileCase("yield_generator", _fn("yield 1.0\n" + OK), "syntax", r"yield"),
    HostileCase(
        "async_function", "async def compute_reward(m, p):\n    return 0.0, {}\n", "syntax", r"async"
    ),
    HostileCase("decorator", "def deco(f):\n    return f\n\n@deco\n" + _fn(OK), "syntax", r"decorator"),
    HostileCase("module_level_code", "for i in range(3):\n    pass\n" + _fn(OK), "syntax", r"module level"),
    HostileCase("rebind_guard", _fn("_getattr_ = None\n" + OK), "syntax", r"'_'"),
    # --- loops, memory, recursion ------------------------------------------------------------------------
    HostileCase("while_true", _fn("while True:\n    pass\n" + OK), "syntax", r"while"),
    HostileCase(
        "huge_range", _fn("s = 0\nfor i in range(10**12):\n    s += i\n" + OK), "smoke", r"range of \d+ items"
    ),
    HostileCase(
        "infinite_loop_growing_list",
        _fn("items = [0]\nfor x in items:\n    items.append(x)\n" + OK),
        "smoke",
        r"memory|timed out|of CPU",
        {"time_limit_s": 2.0, "memory_limit_mb": 96},
    ),
    HostileCase(
        "cpu_loop_stall",
        _fn("s = 0\nfor i in range(100000):\n    for j in range(100000):\n        s += j\n" + OK),
        "smoke",
        r"more than 0\.050 s of CPU \(budget 0\.050 s per call\)",
        {"time_limit_s": 1.5},
    ),
    HostileCase("list_bomb", _fn("x = [0] * 10**9\n" + OK), "smoke", r"memory limit exceeded"),
    HostileCase("string_bomb", _fn("x = 'a' * 10**10\n" + OK), "smoke", r"memory limit exceeded"),
    HostileCase(
        "array_bomb_ones", _fn("x = np.ones(10**10)\n" + OK), "smoke", r"np\.ones of \d+ elements exceeds"
    ),
    HostileCase(
        "array_bomb_outer",
        _fn("a = np.arange(10**6) * 1.0\nx = np.outer(a, a)\n" + OK),
        "smoke",
        _or_cpu_budget(r"np\.outer of 1000000000000 elements exceeds"),
    ),
    # element-count limit bypasses (outside tester): every constructor and combinator is sized first
    HostileCase(
        "arange_small_step",
        _fn("x = np.arange(0.0, 1.0, 1e-9)\n" + OK),
        "smoke",
        r"np\.arange of 1000000000 elements exceeds",
    ),
    HostileCase(
        "arange_keywords_only",
        _fn("x = np.arange(start=0.0, stop=1.0, step=1e-9)\n" + OK),
        "smoke",
        r"np\.arange of 1000000000 elements exceeds",
    ),
    HostileCase(
        "ones_like_positional_shape",
        _fn("x = np.ones_like(m.obs, float, 'C', True, (100000, 100000))\n" + OK),
        "smoke",
        r"np\.ones_like of 10000000000 elements exceeds",
    ),
    HostileCase(
        "subarray_dtype",
        _fn("x = np.zeros(1000, dtype=('f8', (1000000,)))\n" + OK),
        "smoke",
        r"np\.zeros: dtype .* is not allowed",
    ),
    HostileCase(
        "subarray_dtype_positional",
        _fn("x = np.ones(1000, '(1000000,)f8')\n" + OK),
        "smoke",
        r"np\.ones: dtype .* is not allowed",
    ),
    HostileCase(
        "string_dtype", _fn("x = np.full(10, 1.0, 'U100000000')\n" + OK), "smoke", r"dtype .*U100000000"
    ),
    HostileCase(
        "astype_subarray", _fn("x = m.obs.astype('(1000000,)f8')\n" + OK), "smoke", r"\.astype: dtype"
    ),
    HostileCase(
        "concatenate_bomb",
        _fn("a = np.ones(1000)\nx = np.concatenate([a] * 100000)\n" + OK),
        "smoke",
        _or_cpu_budget(r"np\.concatenate of 100000000 elements exceeds"),
    ),
    HostileCase(
        "stack_bomb",
        _fn("a = np.ones(1000)\nx = np.stack([a] * 100000)\n" + OK),
        "smoke",
        _or_cpu_budget(r"np\.stack of 100000000 elements exceeds"),
    ),
    HostileCase(
        "broadcast_bomb",
        _fn("a = np.ones(100000)\nx = np.multiply(a.reshape(100000, 1), a)\n" + OK),
        "smoke",
        r"np\.multiply of 10000000000 elements exceeds",
    ),
    HostileCase(
        "dot_bomb",
        _fn("a = np.ones(100000)\nx = a.reshape(100000, 1).dot(a.reshape(1, 100000))\n" + OK),
        "smoke",
        r"dot of 10000000000 elements exceeds",
    ),
    HostileCase(
        "operator_broadcast_bomb",
        _fn("a = np.ones(100000)\nx = a.reshape(100000, 1) * a\n" + OK),
        "smoke",
        r"memory limit exceeded",
    ),
    HostileCase(
        "module_level_bomb",
        "BIG = [1.0] * 10**9\n" + _fn(OK),
        "smoke",
        r"while loading: memory limit exceeded",
    ),
    HostileCase("pow_bomb", _fn("x = 10 ** 10 ** 10\n" + OK), "smoke", r"integer power"),
    HostileCase(
        "runaway_recursion",
        "def down(n):\n    return down(n + 1) + 1\n\n" + _fn("return float(down(0)), {}"),
        "smoke",
        r"recursion too deep",
    ),
    # --- exceptions and outputs -------------------------------------------------------------------------
    HostileCase("zero_division", _fn("x = m.speed / 0.0\n" + OK), "smoke", r"ZeroDivisionError"),
    HostileCase("index_error", _fn("x = [1][5]\n" + OK), "smoke", r"IndexError"),
    HostileCase("nan_total", _fn("return float('nan'), {'a': 1.0}"), "smoke", r"total is non-finite"),
    HostileCase("inf_total", _fn("return math.inf, {'a': 1.0}"), "smoke", r"total is non-finite"),
    HostileCase("nan_component", _fn("return 1.0, {'a': math.nan}"), "smoke", r"component 'a' is non-finite"),
    HostileCase(
        "inf_component_sometimes",
        _fn("a = float(np.divide(1.0, 0.0)) if m.speed > 0 else 0.0\nreturn 1.0, {'a': a}"),
        "smoke",
        r"component 'a' is non-finite",
    ),
    HostileCase("wrong_return_string", _fn("return 'high'"), "smoke", r"must return \(total, components\)"),
    HostileCase("wrong_total_type", _fn("return [1.0], {}"), "smoke", r"total must be a float"),
    HostileCase("components_not_dict", _fn("return 1.0, [1.0]"), "smoke", r"components must be a dict"),
    HostileCase(
        "component_not_number", _fn("return 1.0, {'a': 'x'}"), "smoke", r"component 'a' must be a float"
    ),
    HostileCase(
        "returns_none", _fn("x = 1.0"), "smoke", r"must return \(total, components\), got a NoneType"
    ),
    HostileCase(
        "enormous_components",
        _fn("c = {'c' + str(i): 1.0 for i in range(1000)}\nreturn 1.0, c"),
        "smoke",
        r"1000 components exceed the limit of 32",
    ),
    # --- contract violations -----------------------------------------------------------------------------
    HostileCase(
        "wrong_signature_one_arg",
        "def compute_reward(m):\n    return 0.0, {}\n",
        "signature",
        r"compute_reward\(m, p\)",
    ),
    HostileCase(
        "wrong_signature_names",
        "def compute_reward(metrics, params):\n    return 0.0, {}\n",
        "signature",
        r"compute_reward\(m, p\)",
    ),
    HostileCase(
        "wrong_signature_varargs",
        "def compute_reward(m, p, *rest):\n    return 0.0, {}\n",
        "signature",
        r"compute_reward\(m, p\)",
    ),
    HostileCase(
        "missing_function",
        "def reward(m, p):\n    return 0.0, {}\n",
        "signature",
        r"no function compute_reward",
    ),
    HostileCase("syntax_error", "def compute_reward(m, p)\n    return 0.0, {}\n", "parse", r"syntax error"),
    HostileCase("empty_program", "\n\n", "parse", r"empty"),
    HostileCase(
        "params_out_of_range",
        _fn(OK, header="PARAMS = {'w': {'default': 5.0, 'low': 1.0, 'high': 2.0}}"),
        "params",
        r"low <= default <= high",
    ),
    HostileCase(
        "params_non_literal",
        _fn(OK, header="W = 1.0\nPARAMS = {'w': {'default': W, 'low': 0.0, 'high': 2.0}}"),
        "params",
        r"literal dict",
    ),
    HostileCase(
        "params_call",
        _fn(OK, header="PARAMS = dict(w={'default': 1.0, 'low': 0.0, 'high': 2.0})"),
        "params",
        r"literal dict",
    ),
    HostileCase("params_not_dict", _fn(OK, header="PARAMS = [1.0, 2.0]"), "params", r"must be a dict"),
    HostileCase(
        "params_log_nonpositive",
        _fn(OK, header="PARAMS = {'w': {'default': 1.0, 'low': 0.0, 'high': 2.0, 'log': True}}"),
        "params",
        r"log=True",
    ),
    HostileCase(
        "params_string_value",
        _fn(OK, header="PARAMS = {'w': {'default': '1', 'low': 0.0, 'high': 2.0}}"),
        "params",
        r"finite number",
    ),
    HostileCase(
        "params_missing_key",
        _fn(OK, header="PARAMS = {'w': {'default': 1.0, 'low': 0.0}}"),
        "params",
        r"lacks 'high'",
    ),
    HostileCase("params_unknown_read", _fn("return p['weight'] * m.speed, {}"), "params", r"p\['weight'\]"),
    HostileCase("unknown_metric", _fn("return m.altitude, {}"), "metrics", r"m\.altitude is not a metric"),
    # --- the judge (outside tester): read by any route, rejected -----------------------------------------
    HostileCase(
        "judge_direct", _fn("return m.fitness, {'score': m.fitness}"), "metrics", r"\.fitness, the judge"
    ),
    HostileCase("judge_alias", _fn("view = m\nx = view.fitness\n" + OK), "metrics", r"\.fitness, the judge"),
    HostileCase(
        "judge_in_helper",
        "def peek(metrics):\n    return metrics.fitness\n\n" + _fn("return peek(m), {'s': 0.0}"),
        "metrics",
        r"\.fitness, the judge",
    ),
    HostileCase("judge_in_fstring", _fn("s = f'{m.fitness}'\n" + OK), "metrics", r"\.fitness, the judge"),
    # --- hostile values that used to crash the checks (outside tester) -----------------------------------
    HostileCase(
        "params_400_digit_default",
        _fn(OK, header="PARAMS = {'w': {'default': " + "9" * 400 + ", 'low': 0.0, 'high': 1.0}}"),
        "params",
        r"finite number \(got an integer of 400 digits\)",
    ),
    HostileCase(
        "deep_attribute_chain_default",
        "def compute_reward(m, p=m" + ".a" * 450 + "):\n    return 0.0, {}\n",
        "signature",
        r"compute_reward\(m, p\)",
    ),
    HostileCase(
        "very_deep_attribute_chain",
        _fn("x = m" + ".a" * 5000 + "\n" + OK),
        "parse",
        r"nested too deeply",
    ),
    HostileCase(
        "deep_parentheses", _fn("x = " + "(" * 300 + "1" + ")" * 300 + "\n" + OK), "parse", r"too many|nested"
    ),
    # --- terminal escapes in program text (outside tester): rejected or shown escaped -------------------
    HostileCase(
        "escape_code_component_literal",
        _fn("return 1.0, {'\\x1b[2K\\raccepted': 1.0}"),
        "components",
        r"identifiers .*\\x1b\[2K",
    ),
    HostileCase(
        "escape_code_component_dynamic",
        _fn("name = '\\x1b[1A\\x1b[2K' + 'ok'\nreturn 1.0, {name: 1.0}"),
        "smoke",
        r"component names must be identifiers .*\\x1b\[1A",
    ),
    HostileCase(
        "escape_code_exception_text",
        _fn("assert m.speed > 1e9, '\\x1b[1A\\x1b[2Kaccepted: all good'\n" + OK),
        "smoke",
        r"AssertionError: \\x1b\[1A\\x1b\[2Kaccepted: all good",
    ),
    HostileCase(
        "bidi_override_component",
        _fn("return 1.0, {'abc\\u202e': 1.0}"),
        "components",
        r"identifiers",
    ),
    # --- mutation of the inputs --------------------------------------------------------------------------
    HostileCase("mutate_metric_attribute", _fn("m.speed = 0.0\n" + OK), "syntax", r"assigning to attributes"),
    HostileCase("mutate_obs", _fn("m.obs[0] = 1.0\n" + OK), "smoke", r"read-only"),
    HostileCase("mutate_obs_inplace", _fn("o = m.obs\no += 1.0\n" + OK), "smoke", r"read-only"),
    HostileCase(
        "mutate_params",
        _fn("p['w'] = 100.0\n" + OK, header="PARAMS = {'w': {'default': 1.0, 'low': 0.0, 'high': 2.0}}"),
        "smoke",
        r"does not support item assignment",
    ),
    HostileCase("np_out_into_obs", _fn("np.clip(m.obs, 0.0, 1.0, out=m.obs)\n" + OK), "smoke", r"read-only"),
    # --- slow -------------------------------------------------------------------------------------------
    HostileCase(
        "slow_calls",
        _fn(
            "s = 0.0\nfor i in range(1000):\n    for j in range(1000):\n        s += i * j\nreturn 0.0, {'s': s * 0.0}"
        ),
        "smoke",
        r"CPU \(budget",
        {"call_cpu_limit_s": 0.01, "time_limit_s": 10.0},
    ),
]
