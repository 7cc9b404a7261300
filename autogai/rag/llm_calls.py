"""What the LLM client works with besides the backend itself: provider specs, context windows, call status
for progress displays, completions, error classification, token estimates and running samples concurrently.

:mod:`autogai.rag.llm` holds :class:`~autogai.rag.llm.ChatBackend`, which uses all of these; they live apart
so that the backend reads as one job (asking a server for samples, caching and recording them).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from autogai.core.errors import ConfigError, LLMUnavailableError
from autogai.core.logging import mask_secrets
from autogai.rag.llm_cache import messages_payload

logger = logging.getLogger(__name__)


PROVIDERS_WITH_N = frozenset({"openai"})
"""Providers whose API may return several samples for one request (``n``); servers may still ignore it."""

STRUCTURED_MODES = ("auto", "on", "off")
"""``--llm-structured``: ask for schema-constrained replies where the backend supports them (auto),
always (on: a backend that cannot is an error), or never (off: free text)."""

DEFAULT_LOCAL_CONTEXT = 2048
"""Context window assumed for a local server that does not report one (llama.cpp's default ``n_ctx``)."""

DEFAULT_HOSTED_CONTEXT = 32768
"""Context window assumed for a hosted model (every current hosted chat model has at least this)."""

MIN_REPLY_TOKENS = 256
"""The least a reply is left when a prompt only fits a small window by taking part of the reply's share
(a reward program with its design lines takes about 150 to 250 tokens)."""

CHARS_PER_TOKEN = 3.2
"""Prompt-size estimate where the server has no tokenizer endpoint: what SmolLM2's 49k-token vocabulary
takes on autogai's prompts (3.2 to 3.6 characters per token; code and tables take more tokens than prose).
Models with larger vocabularies (Llama 3, Qwen, GPT-4o) need fewer tokens, so the estimate errs on the
safe side for them."""

_INSTALL_HINTS = {
    "anthropic": "langchain-anthropic (pip install 'autogai[anthropic]')",
    "openai": "langchain-openai",
    "ollama": "langchain-ollama",
}


@dataclass(frozen=True)
class LLMSpec:
    """``provider:model`` as given on the command line (``ollama:qwen3:8b`` keeps the model's colon)."""

    provider: str
    model: str

    @classmethod
    def parse(cls, spec: str | LLMSpec) -> LLMSpec:
        if isinstance(spec, LLMSpec):
            return spec
        text = str(spec).strip()
        provider, sep, model = text.partition(":")
        if not sep:
            lowered = text.lower()
            if lowered.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
                provider, model = "openai", text
            elif lowered.startswith("claude"):
                provider, model = "anthropic", text
            else:
                raise ConfigError(
                    f"LLM spec {spec!r} must be provider:model, e.g. openai:gpt-4o-mini, "
                    "ollama:qwen3:8b, anthropic:claude-sonnet-4-5 (or 'offline')"
                )
        provider = provider.strip().lower().replace("-", "_")
        if not provider or not model.strip():
            raise ConfigError(f"LLM spec {spec!r} must be provider:model, e.g. openai:gpt-4o-mini")
        return cls(provider, model.strip())

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class ContextWindow:
    """The model's context window in tokens and where that figure came from."""

    tokens: int
    source: str


@dataclass
class CallStatus:
    """One LLM call in flight, for a progress display (updated in place; ``finished`` at the end)."""

    call_id: int
    label: str
    started: float = field(default_factory=time.monotonic)
    tokens_out: int = 0
    streaming: bool = False
    finished: bool = False
    error: str | None = None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class StructuredRepliesRefused(LLMUnavailableError):
    """The server refused every structured-reply form; in ``auto`` mode the caller retries with free text."""


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated from its length (:data:`CHARS_PER_TOKEN`)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_message_tokens(messages: Sequence[Any]) -> int:
    """Tokens of a chat prompt: every message's text plus a few for its role markers."""
    return sum(estimate_tokens(m["content"]) + 8 for m in messages_payload(messages))


@dataclass(frozen=True)
class Completion:
    """One sample of one request: the reply text, or the error that made it unusable."""

    sample_index: int
    text: str | None
    cache_hit: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_s: float = 0.0
    attempts: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


class _CallFailed(Exception):
    """A request failed for good; ``kind`` says why, ``retryable`` whether more attempts could help."""

    def __init__(self, kind: str, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


def sanitize_url(url: str | None) -> str | None:
    """Drop user:password from a URL before it is logged or written anywhere."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def _is_local(url: str | None) -> bool:
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.endswith(".local")


def classify_error(exc: BaseException) -> _CallFailed:
    """Map a provider/client exception onto retryable or final failure kinds (no provider imports)."""
    message = mask_secrets(" ".join(str(exc).split()))[:300] or type(exc).__name__
    name = type(exc).__name__
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if "LengthFinishReasonError" in names:  # a structured reply cut by its token limit: the same again
        return _CallFailed(
            "length", "the reply reached its token limit before its JSON was complete", retryable=False
        )
    if isinstance(status, int) and 200 <= status < 300:
        return _CallFailed("malformed", f"malformed response (HTTP {status}): {message}", retryable=True)
    if isinstance(status, int) and status > 0:
        retry_after: float | None = None
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        try:
            raw_after = headers.get("retry-after")
            retry_after = float(raw_after) if raw_after else None
        except (TypeError, ValueError):
            retry_after = None
        text = f"HTTP {status}: {message}"
        if status == 429:
            return _CallFailed("rate_limit", text, retryable=True, retry_after=retry_after)
        if status in (408, 409) or status >= 500:
            return _CallFailed("server_error", text, retryable=True, retry_after=retry_after)
        if status in (401, 403):
            return _CallFailed("auth", f"{text} (check the API key in the environment)", retryable=False)
        if status == 404:
            return _CallFailed(
                "not_found", f"{text} (is the model name right and available?)", retryable=False
            )
        return _CallFailed("bad_request", text, retryable=False)
    if "Timeout" in name or isinstance(exc, TimeoutError) or any("Timeout" in n for n in names):
        return _CallFailed("timeout", f"timed out: {message}", retryable=True)
    if isinstance(exc, ConnectionError) or names & {"APIConnectionError", "ConnectError", "NetworkError"}:
        return _CallFailed("connection", f"cannot connect: {message}", retryable=True)
    if isinstance(exc, (ValueError, KeyError, TypeError)) or names & {"ValidationError", "DecodingError"}:
        return _CallFailed("malformed", f"malformed response: {name}: {message}", retryable=True)
    return _CallFailed("error", f"{name}: {message}", retryable=True)


def _message_text(message: Any) -> str | None:
    content = getattr(message, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return None


def _usage(message: Any) -> tuple[int | None, int | None]:
    usage = getattr(message, "usage_metadata", None) or {}
    return usage.get("input_tokens"), usage.get("output_tokens")


@dataclass(frozen=True)
class _Call:
    """What every request of one :meth:`ChatBackend.complete` shares."""

    messages: Sequence[Any]
    purpose: str
    prompt_sha: str
    schema: Mapping[str, Any] | None
    details: dict[str, Any]
    reply_tokens: int | None = None


def _run_concurrently(jobs: Sequence[Callable[[], list[Completion]]], limit: int) -> list[Completion]:
    """Run ``jobs`` on daemon threads, ``limit`` at a time; results in job order.

    Daemon threads and a main thread that waits in short steps keep Ctrl-C prompt: the interrupt reaches
    the main thread at once and no exit waits for a request still in flight (what a thread pool would do).
    """
    results: list[list[Completion]] = [[] for _ in jobs]
    errors: list[BaseException] = []
    gate = threading.Semaphore(limit)
    lock = threading.Lock()
    done = threading.Event()
    remaining = [len(jobs)]

    def work(position: int, job: Callable[[], list[Completion]]) -> None:
        try:
            with gate:
                results[position] = job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

    for position, job in enumerate(jobs):
        threading.Thread(target=work, args=(position, job), daemon=True, name=f"llm-call-{position}").start()
    while not done.wait(0.2):
        pass
    if errors:
        raise errors[0]
    return [c for result in results for c in result]


def server_context(
    provider: str, model: str, base_url: str | None, timeout_s: float
) -> tuple[int, str] | None:
    """(context window in tokens, where it was read) as the server reports it: Ollama's ``/api/show``,
    llama.cpp's ``/props``, or vLLM-style fields of ``/v1/models``; None where it says nothing."""
    import httpx

    timeout = min(10.0, timeout_s)
    if provider == "ollama":
        root = (base_url or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434").rstrip("/")
        if "://" not in root:
            root = f"http://{root}"
        reply = httpx.post(f"{root}/api/show", json={"model": model}, timeout=timeout)
        reply.raise_for_status()
        info = reply.json().get("model_info") or {}
        sizes = [int(v) for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)]
        return (max(sizes), "/api/show") if sizes else None
    if provider != "openai" or not base_url:
        return None
    base = base_url.rstrip("/")
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    try:  # llama.cpp's own server
        props = httpx.get(f"{root}/props", timeout=timeout)
        if props.status_code == 200:
            data = props.json()
            settings = data.get("default_generation_settings") or {}
            n_ctx = settings.get("n_ctx", data.get("n_ctx"))
            if isinstance(n_ctx, int) and n_ctx > 0:
                return n_ctx, "/props"
    except (httpx.HTTPError, ValueError):
        pass
    models = httpx.get(f"{base}/models", timeout=timeout)
    models.raise_for_status()
    entries = [e for e in models.json().get("data") or [] if isinstance(e, Mapping)]
    # the model asked for, or the only one served (llama.cpp serves one model whatever it is called)
    named = [e for e in entries if e.get("id") == model] or (entries if len(entries) == 1 else [])
    for entry in named:
        for key in ("max_model_len", "context_length", "max_context_length"):  # vLLM, others
            if isinstance(entry.get(key), int) and entry[key] > 0:
                return int(entry[key]), f"/v1/models {key}"
    return None
