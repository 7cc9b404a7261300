"""Response cache, call ledger and price table of the LLM layer.

The cache makes a search reproducible and resumable: every sample is stored under a key made of the
backend, model, temperature, request options, the full message list and the sample index, so a re-run
of the same search replays every reply without network. The ledger is the audit trail: one JSON line per
call (or cache replay) with tokens, latency and an estimated cost. Neither ever stores API keys or
request headers.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogai.core.logging import mask_secrets

CACHE_FORMAT = 1

# US$ per million tokens (input, output). Public list prices when this table was written; an estimate
# only, for the ledger's totals. Longest matching model-name prefix wins. Local servers cost nothing.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4": (15.00, 75.00),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
}


def estimate_cost(
    provider: str, model: str, tokens_in: int | None, tokens_out: int | None, *, local: bool = False
) -> float | None:
    """Estimated US$ of one call; 0 for local servers, ``None`` when the model is not in the table."""
    if local or provider == "ollama":
        return 0.0
    if tokens_in is None and tokens_out is None:
        return None
    name = model.lower().split("/")[-1]
    for prefix in sorted(PRICES_PER_MILLION, key=len, reverse=True):
        if name.startswith(prefix):
            price_in, price_out = PRICES_PER_MILLION[prefix]
            return ((tokens_in or 0) * price_in + (tokens_out or 0) * price_out) / 1e6
    return None


def messages_payload(messages: Sequence[Any]) -> list[dict[str, str]]:
    """``[{"role", "content"}]`` from LangChain messages or ``(role, content)`` tuples (cache key, files)."""
    payload = []
    for message in messages:
        if isinstance(message, tuple):
            role, content = message
        elif isinstance(message, Mapping):
            role, content = message["role"], message["content"]
        else:
            role, content = getattr(message, "type", "user"), message.content
        payload.append(
            {"role": str(role), "content": content if isinstance(content, str) else json.dumps(content)}
        )
    return payload


def cache_key(
    *,
    provider: str,
    model: str,
    temperature: float | None,
    messages: Sequence[Any],
    sample_index: int,
    options: Mapping[str, Any] | None = None,
) -> str:
    """The sha256 key of one sample: backend, model, temperature, options, full prompt, sample index."""
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "provider": provider,
            "model": model,
            "temperature": temperature,
            "options": dict(sorted((options or {}).items())),
            "messages": messages_payload(messages),
            "sample_index": sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    text: str
    tokens_in: int | None = None
    tokens_out: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


class ResponseCache:
    """One JSON file per sample under ``directory/<key[:2]>/<key>.json``; writes are atomic renames.

    Plain files keep the cache inspectable and safe for several worker processes (the last identical
    writer wins with identical content).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedReply | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return None
        return CachedReply(
            text=data["text"],
            tokens_in=data.get("tokens_in"),
            tokens_out=data.get("tokens_out"),
            meta=data.get("meta") or {},
        )

    def put(self, key: str, reply: CachedReply, *, request: Mapping[str, Any] | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "format": CACHE_FORMAT,
            "key": key,
            "text": reply.text,
            "tokens_in": reply.tokens_in,
            "tokens_out": reply.tokens_out,
            "meta": dict(reply.meta),
            "request": dict(request or {}),  # provider/model/temperature/sample: never keys or headers
            "created": time.time(),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Ledger:
    """Appends one JSON line per LLM call to ``path`` (thread-safe); keeps running totals in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.totals: dict[str, Any] = {
            "calls": 0,
            "cache_hits": 0,
            "errors": 0,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost_usd": 0.0,
            "cost_unknown_calls": 0,
        }

    def record(self, entry: Mapping[str, Any]) -> None:
        line = {"time": round(time.time(), 3), **entry}
        with self._lock:
            self.totals["calls"] += 1
            self.totals["cache_hits"] += int(bool(entry.get("cache_hit")))
            self.totals["errors"] += int(not entry.get("ok", True))
            if not entry.get("cache_hit"):
                self.totals["tokens_in"] += int(entry.get("tokens_in") or 0)
                self.totals["tokens_out"] += int(entry.get("tokens_out") or 0)
                cost = entry.get("cost_usd")
                if cost is None and entry.get("ok", True):
                    self.totals["cost_unknown_calls"] += 1
                else:
                    self.totals["cost_usd"] += float(cost or 0.0)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                safe = {k: mask_secrets(v) if isinstance(v, str) else v for k, v in line.items()}
                text = json.dumps(safe, ensure_ascii=False, default=str)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(text + "\n")


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """All entries of a ledger file (missing file: empty list)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
