"""Reading LLM replies: the one place that understands what a chat model sends back.

A reply may hold reasoning (``<think>``, ``<thinking>`` or ``<reasoning>`` blocks, as DeepSeek-R1 and Qwen3
write them: code in there is a draft and is ignored; an unclosed block runs to the end of the reply, an
unopened closing tag ends a reasoning preamble), fenced blocks (closed or cut off at the end), JSON (a whole
reply, a ```json block, or the outermost ``{...}``), or prose around unfenced code.

- :func:`extract_reward_programs` / :func:`extract_reward_program`: the reward programs in a reply, best
  first (candidates that pass the static checks before those that do not, then in reply order). ``PARAMS``
  in one block and the function in another are merged. Two harmless lines LLMs add out of habit,
  ``import numpy as np`` and ``import math``, are removed (the sandbox supplies both); any other import
  stays and is rejected by validation.
- :func:`parse_reply`: every design in a reply with what the reply says about it (name, enhancers,
  hyperparameter hints, sources, rationale, parent), before validation.
- :func:`parse_enhancers`, :func:`parse_hints`, :func:`parse_sources`: those fields as typed values, with a
  note for every decision a person should know about.
- :func:`reply_schema`: the JSON schema a backend that constrains decoding is asked to follow. A structured
  reply is one more JSON layout for :func:`parse_reply` (``PARAMS`` as a list with ranges, the
  ``compute_reward`` source apart): it is assembled into the same program text a free-form reply would hold,
  so both kinds of reply become the same design.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogai.core.errors import ProposalError, RewardRejectedError
from autogai.core.types import EnhancerCombo
from autogai.rag.prompts import HINT_KEYS

_REASONING_TAGS = ("think", "thinking", "reasoning")
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)"
    r"(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.DOTALL | re.MULTILINE,
)
"""A fenced block starting on its own line; a block cut off at the end of the reply runs to the end."""
_BENIGN_IMPORT = re.compile(
    r"^[ \t]*(import numpy as np|import math|import numpy)[ \t]*(#.*)?$", re.MULTILINE
)
_PROGRAM_KEYS = (
    "reward_program",
    "reward_code",
    "reward_source",
    "reward",
    "program",
    "code",
    "source",
    "python",
)
_DEFINES_REWARD = re.compile(r"^def compute_reward\s*\(", re.MULTILINE)
_PYTHON_LANGS = ("", "python", "py", "python3", "python3.11", "py3")


def strip_thinking(text: str) -> str:
    """``text`` without reasoning blocks (closed, unclosed to the end, or a preamble ended by a closing tag)."""
    text = _THINK.sub("", text)
    for tag in _REASONING_TAGS:
        closing = f"</{tag}>"
        index = text.lower().rfind(closing)
        if index >= 0:
            text = text[index + len(closing) :]
        opening = f"<{tag}>"
        index = text.lower().find(opening)
        if index >= 0:
            text = text[:index]
    return text


def json_documents(text: str) -> list[Any]:
    """JSON values in ``text``: the whole text, ```json (or untagged) blocks, else the outermost ``{...}``."""
    documents: list[Any] = []
    stripped = text.strip()
    blocks = [m.group("body") for m in FENCE.finditer(text) if m.group("lang").lower() in ("json", "")]
    for attempt in (stripped, *blocks):
        try:
            documents.append(json.loads(attempt))
        except ValueError:
            continue
    if not documents:
        first, last = stripped.find("{"), stripped.rfind("}")
        if 0 <= first < last:
            with contextlib.suppress(ValueError):
                documents.append(json.loads(stripped[first : last + 1]))
    return documents


# --- reward programs ---------------------------------------------------------------------------------


def _normalise(code: str) -> str:
    code = textwrap.dedent(code.replace("\r\n", "\n")).strip("\n")
    code = _BENIGN_IMPORT.sub("", code)
    return code.strip("\n") + "\n"


def _code_in_string(value: str) -> str:
    fenced = list(FENCE.finditer(value))
    return "\n".join(m.group("body") for m in fenced) if fenced else value


def _collect_code(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        preferred = [k for k in _PROGRAM_KEYS if k in node] + [k for k in node if k not in _PROGRAM_KEYS]
        for key in preferred:
            value = node[key]
            if isinstance(value, str) and "def compute_reward" in value:
                code = _code_in_string(value)
                if code not in found:
                    found.append(code)
            else:
                _collect_code(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_code(item, found)


def _top_level_definitions(code: str) -> tuple[set[str], set[str]] | None:
    """(names defined at top level, names loaded) of ``code``, or None if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defined: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef):
            defined.add(statement.name)
        elif isinstance(statement, ast.Assign):
            defined.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return defined, loaded


def _fenced_candidates(text: str) -> list[str]:
    blocks = [
        _normalise(m.group("body"))
        for m in FENCE.finditer(text)
        if m.group("lang").lower() in _PYTHON_LANGS and m.group("body").strip()
    ]
    mains = [b for b in blocks if _DEFINES_REWARD.search(b)]
    others = [b for b in blocks if not _DEFINES_REWARD.search(b)]
    candidates = []
    for main in mains:
        # Merge in blocks defining what the main block uses but lacks (PARAMS, helpers) when split.
        info = _top_level_definitions(main)
        if info is None:
            candidates.append(main)
            continue
        defined, loaded = info
        missing = (loaded | {"PARAMS"}) - defined
        if "PARAMS" in defined:
            missing.discard("PARAMS")
        prefix = []
        for other in others:
            other_info = _top_level_definitions(other)
            if other_info is not None and other_info[0] & missing:
                prefix.append(other)
                missing -= other_info[0]
        candidates.append("\n".join([*prefix, main]) if prefix else main)
    return candidates


_CODE_LINE = re.compile(
    r"^(def |PARAMS\b|[A-Za-z_]\w*\s*=[^=]|[A-Za-z_]\w*\s*\[.*\]\s*=|#|\}|\]|\)|[\"'][\w ]+[\"']\s*:)"
)


def _unfenced_candidates(text: str) -> list[str]:
    lines = text.splitlines()
    candidates: list[str] = []
    for index, line in enumerate(lines):
        if not re.match(r"^\s*def compute_reward\s*\(", line):
            continue
        indent = len(line) - len(line.lstrip())
        start = index
        while start > 0:
            previous = lines[start - 1]
            body = previous[indent:] if previous[:indent].strip() == "" else previous
            if not previous.strip() or previous.startswith(" " * (indent + 1)) or _CODE_LINE.match(body):
                start -= 1
            else:
                break
        end = index + 1
        while end < len(lines):
            following = lines[end]
            body = following[indent:] if following[:indent].strip() == "" else following
            if not following.strip() or following.startswith(" " * (indent + 1)) or _CODE_LINE.match(body):
                end += 1
            else:
                break
        chunk = lines[start:end]
        def_at = index - start
        # Shrink from both ends until the chunk parses (prose that happened to look like code).
        ends = [len(chunk)] + [
            e for e in range(len(chunk) - 1, def_at, -1) if not chunk[e - 1].startswith(" ")
        ]
        found = None
        for offset in range(def_at + 1):
            for stop in ends:
                code = _normalise("\n".join(chunk[offset:stop]))
                if _top_level_definitions(code) is not None:
                    found = code
                    break
            if found is not None:
                break
        candidates.append(found if found is not None else _normalise("\n".join(lines[index:end])))
    return candidates


def _statically_valid(code: str) -> bool:
    from autogai.rewards.program import RewardProgram

    try:
        RewardProgram.from_source(code)
    except RewardRejectedError:
        return False
    return True


def extract_reward_programs(text: str) -> list[str]:
    """Every candidate reward program in ``text``, best first (may be empty)."""
    if not isinstance(text, str) or not text.strip():
        return []
    visible = strip_thinking(text)
    found: list[str] = []
    for document in json_documents(visible):
        _collect_code(document, found)
    candidates = [_normalise(c) for c in found]
    if not candidates:
        candidates = _fenced_candidates(visible)
    if not candidates:
        candidates = _unfenced_candidates(visible)
    unique: list[str] = []
    for candidate in candidates:
        if candidate.strip() and candidate not in unique:
            unique.append(candidate)
    valid = [c for c in unique if _statically_valid(c)]
    return valid + [c for c in unique if c not in valid]


def extract_reward_program(text: str) -> str:
    """The best candidate program in ``text``; raises :class:`ProposalError` if there is none."""
    candidates = extract_reward_programs(text)
    if not candidates:
        preview = " ".join(str(text).split())[:120]
        raise ProposalError(f"no reward program (def compute_reward(m, p)) found in the reply: {preview!r}")
    return candidates[0]


# --- designs -----------------------------------------------------------------------------------------

_DESIGN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(?:\**)\s*design\b.*$", re.IGNORECASE | re.MULTILINE)
_KEY_LINE = re.compile(
    r"^\s*(?:[-*]\s*)?(?:\*\*|__)?(?P<key>enhancers?|sources?|hyperparameters?|hints?|rationale|name|parent)"
    r"(?:\*\*|__)?\s*[:=]\s*(?:\*\*|__)?\s*(?P<value>.*)$",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass
class ParsedDesign:
    """What a reply says about one design, before validation."""

    program: str
    name: str = ""
    enhancers: Any = None
    hints: Any = None
    sources: Any = None
    rationale: str = ""
    parent: str | None = None
    notes: list[str] = field(default_factory=list)


# --- structured replies ------------------------------------------------------------------------------


def reply_schema(n_designs: int) -> dict[str, Any]:
    """The JSON schema of a structured reply holding ``n_designs`` design(s).

    Every property is required and no other is allowed (what OpenAI's strict structured outputs demand;
    llama.cpp and Ollama turn the same schema into a grammar). Enhancers and hyperparameter names are
    enums, so even a small model can only write valid ones.
    """
    number = {"type": "number"}
    param = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "default": number,
            "low": number,
            "high": number,
            "log": {"type": "boolean"},
        },
        "required": ["name", "default", "low", "high", "log"],
        "additionalProperties": False,
    }
    hint = {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": list(HINT_KEYS)}, "value": number},
        "required": ["name", "value"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "name": {"type": "string"},
        "rationale": {"type": "string"},
        "enhancers": {
            "type": "string",
            "enum": sorted({c.short_name for c in EnhancerCombo.all_combinations()}),
        },
        "params": {"type": "array", "items": param},
        "compute_reward": {"type": "string"},
        "hyperparameters": {"type": "array", "items": hint},
        "sources": {"type": "array", "items": {"type": "string"}},
        "parent": {"type": "string"},
    }
    design = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"designs": {"type": "array", "items": design, "minItems": 1, "maxItems": n_designs}},
        "required": ["designs"],
        "additionalProperties": False,
    }


def _number(value: Any) -> str:
    return (
        repr(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    )


def params_source(params: Sequence[Any]) -> str:
    """``PARAMS = {...}`` from a structured reply's list of ``{name, default, low, high, log}`` (one per line)."""
    lines = []
    for item in params:
        if not isinstance(item, Mapping) or not str(item.get("name") or "").strip():
            continue
        fields = [f'"default": {_number(item.get("default"))}']
        fields += [f'"{key}": {_number(item.get(key))}' for key in ("low", "high") if key in item]
        if item.get("log") is True:
            fields.append('"log": True')
        lines.append(f"    {json.dumps(str(item['name']).strip())}: {{{', '.join(fields)}}},")
    return "PARAMS = {\n" + "\n".join(lines) + "\n}\n" if lines else ""


def _structured_program(item: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The program of a structured design: ``PARAMS`` rendered from its list, then the function."""
    code = _code_in_string(str(item.get("compute_reward") or ""))
    notes: list[str] = []
    raw_params = item.get("params")
    params: list[Any] = raw_params if isinstance(raw_params, list) else []
    definitions = _top_level_definitions(_normalise(code))
    if definitions is not None and "PARAMS" in definitions[0]:
        if params:
            notes.append("the reply's compute_reward defines PARAMS itself; its params list was ignored")
        return code, notes
    header = params_source(params)
    return (header + "\n\n" + _normalise(code) if header else code), notes


def _hint_items(value: Any) -> Any:
    """Structured hints come as ``[{name, value}]``; anything else is passed on unchanged."""
    if isinstance(value, list) and all(isinstance(v, Mapping) and "name" in v for v in value):
        return {str(v["name"]): v.get("value") for v in value}
    return value


def _designs_from_json(data: Any) -> list[ParsedDesign]:
    if isinstance(data, Mapping):
        items = data.get("designs")
        if items is None:
            items = [data]
    elif isinstance(data, list):
        items = data
    else:
        return []
    designs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        notes: list[str] = []
        if isinstance(item.get("compute_reward"), str):
            program, notes = _structured_program(item)
        else:
            raw = next((item[k] for k in _PROGRAM_KEYS if isinstance(item.get(k), str)), None)
            if raw is None:
                continue
            program = _code_in_string(raw)
        if "compute_reward" not in program:
            continue
        designs.append(
            ParsedDesign(
                program=_normalise(program),
                name=str(item.get("name") or ""),
                enhancers=item.get("enhancers", item.get("enhancer")),
                hints=_hint_items(
                    item.get("hyperparameters", item.get("hyperparameter_hints", item.get("hints")))
                ),
                sources=item.get("sources"),
                rationale=str(item.get("rationale") or ""),
                parent=str(item["parent"]) if item.get("parent") else None,
                notes=notes,
            )
        )
    return designs


def _sections(text: str) -> list[str]:
    """Split a free-form reply into one section per design (headings, else one per program fence)."""
    headings = list(_DESIGN_HEADING.finditer(text))
    if headings:
        bounds = [h.start() for h in headings] + [len(text)]
        sections = [text[a:b] for a, b in itertools.pairwise(bounds)]
        preface = text[: headings[0].start()]
        if "compute_reward" in preface:  # a program before the first heading is a design too
            sections.insert(0, preface)
        return sections
    fences = [m for m in FENCE.finditer(text) if "compute_reward" in m.group("body")]
    if len(fences) <= 1:
        return [text]
    sections = []
    start = 0
    for i, fence in enumerate(fences):
        end = fences[i + 1].start() if i + 1 < len(fences) else len(text)
        # metadata lines usually precede a program; text right after the last program belongs to it
        cut = end
        if i + 1 < len(fences):
            gap = text[fence.end() : fences[i + 1].start()]
            first_key = _KEY_LINE.search(gap)
            heading = re.search(r"^\s*(?:#{1,6}|\*\*|\d+[.)])", gap, re.MULTILINE)
            marks = [m.start() for m in (first_key, heading) if m is not None]
            cut = fence.end() + min(marks) if marks else end
        sections.append(text[start:cut])
        start = cut
    return sections


def _metadata(section: str) -> dict[str, str]:
    """``key: value`` lines outside code fences; rationale may continue over following lines."""
    outside = FENCE.sub("\n", section)
    values: dict[str, str] = {}
    matches = list(_KEY_LINE.finditer(outside))
    for i, match in enumerate(matches):
        key = match.group("key").lower().rstrip("s")
        key = {"enhancer": "enhancers", "source": "sources", "hyperparameter": "hints", "hint": "hints"}.get(
            key, key
        )
        value = match.group("value").strip()
        if key == "rationale":
            end = matches[i + 1].start() if i + 1 < len(matches) else len(outside)
            block = outside[match.start("value") : end]
            value = block.split("\n\n")[0].strip() if block.strip() else value
        values.setdefault(key, value.strip().strip("*_`").strip())
    heading = _DESIGN_HEADING.search(section)
    if heading and "name" not in values:
        title = re.sub(
            r"^\s*#+\s*\**\s*design\b\s*\d*\s*[:.\-–—]?\s*", "", heading.group(0), flags=re.IGNORECASE
        )
        values["name"] = title.strip(" *`")
    return values


def parse_reply(text: str) -> list[ParsedDesign]:
    """Every design in a reply, JSON first, then free-form sections. Programs are not validated here."""
    cleaned = strip_thinking(text)
    for data in json_documents(cleaned):
        from_json = _designs_from_json(data)
        if from_json:
            return from_json
    designs: list[ParsedDesign] = []
    seen: set[str] = set()
    for section in _sections(cleaned):
        programs = extract_reward_programs(section)
        if not programs:
            continue
        program = programs[0]
        key = "\n".join(line.rstrip() for line in program.strip().splitlines())
        if key in seen:
            continue
        seen.add(key)
        meta = _metadata(section)
        rationale = meta.get("rationale", "")
        if not rationale:  # prose around the code is the rationale
            prose = FENCE.sub("", section)
            prose = _KEY_LINE.sub("", prose)
            prose = _DESIGN_HEADING.sub("", prose)
            rationale = " ".join(prose.split())[:1200]
        designs.append(
            ParsedDesign(
                program=program,
                name=meta.get("name", ""),
                enhancers=meta.get("enhancers"),
                hints=meta.get("hints"),
                sources=meta.get("sources"),
                rationale=rationale,
                parent=meta.get("parent") or None,
            )
        )
    return designs


_ENHANCER_WORDS = {
    "gdm": "gdm",
    "diffusion": "gdm",
    "gan": "gan",
    "adversarial": "gan",
    "vae": "vae",
    "variational": "vae",
    "transformer": "transformer",
    "attention": "transformer",
}


def parse_enhancers(value: Any) -> tuple[EnhancerCombo, str | None]:
    """An enhancer combination from a reply field; ``(plain, note)`` when it cannot be understood."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return EnhancerCombo(), "no enhancers given; using plain TD3"
    try:
        if isinstance(value, Mapping):
            return EnhancerCombo.parse({str(k): str(v) for k, v in value.items()}), None
        if isinstance(value, (list, tuple)):
            return EnhancerCombo.parse("+".join(str(v) for v in value)), None
        text = str(value).strip().strip("`'\"*").lower()
        text = re.split(r"[(;\n]| - | — ", text)[0].strip().strip("`'\"*")
        text = re.sub(r"\s*\+\s*", "+", text)
        return EnhancerCombo.parse(text), None
    except Exception:
        words = re.findall(r"[a-z]+", str(value).lower())
        found = sorted({_ENHANCER_WORDS[w] for w in words if w in _ENHANCER_WORDS})
        if found:
            return EnhancerCombo.parse("+".join(found)), f"enhancers {value!r} read as {'+'.join(found)}"
        if any(w in ("plain", "none", "td3") for w in words):
            return EnhancerCombo(), None
        return EnhancerCombo(), f"enhancers {value!r} not understood; using plain TD3"


def parse_hints(value: Any) -> tuple[dict[str, Any], list[str]]:
    """Hyperparameter hints restricted to TD3Config names with plain values."""
    notes: list[str] = []
    if value is None or value == "":
        return {}, notes
    data: Any = value
    if isinstance(value, str):
        text = value.strip().strip("`")
        if text.lower() in ("none", "n/a", "-", "{}"):
            return {}, notes
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
            for part in re.split(r"[,;]", text):
                key, sep, raw = part.partition("=") if "=" in part else part.partition(":")
                if not sep:
                    continue
                try:
                    data[key.strip().strip("\"'")] = json.loads(raw.strip())
                except ValueError:
                    data[key.strip().strip("\"'")] = raw.strip()
    if not isinstance(data, Mapping):
        return {}, [f"hyperparameters {value!r} not understood; ignored"]
    hints: dict[str, Any] = {}
    dropped = []
    for key, raw in data.items():
        if key not in HINT_KEYS:
            dropped.append(str(key))
            continue
        if isinstance(raw, bool):
            dropped.append(str(key))
        elif isinstance(raw, (int, float)) and math.isfinite(raw):
            hints[key] = raw
        elif key == "net_arch" and isinstance(raw, (list, tuple)) and all(isinstance(x, int) for x in raw):
            hints[key] = list(raw)
        else:
            dropped.append(str(key))
    if dropped:
        notes.append(f"ignored unknown or non-numeric hyperparameters: {', '.join(dropped)}")
    return hints, notes


def parse_sources(value: Any, known: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """Cited ids that were actually offered (chunk ids or their documents); others are dropped."""
    if value is None:
        return (), []
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\s]+", str(value))
    known_set = set(known) | {k.split("#")[0] for k in known}
    kept: list[str] = []
    dropped: list[str] = []
    for item in items:
        source = str(item).strip().strip("[]`'\"*()").strip()
        if not source or source.lower() in ("none", "n/a", "-"):
            continue
        if source in known_set:
            if source not in kept:
                kept.append(source)
        else:
            dropped.append(source)
    notes = (
        [f"dropped sources that were not among the retrieved excerpts: {', '.join(dropped)}"]
        if dropped
        else []
    )
    return tuple(kept), notes
