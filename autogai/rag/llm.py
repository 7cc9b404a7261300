"""LLM backends through LangChain's ``init_chat_model``, with a response cache, a ledger and retries.

``--llm openai:<model>`` (plus ``--llm-base-url`` for any OpenAI-compatible server: vLLM, llama.cpp,
LM Studio, Ollama's ``/v1``), ``--llm ollama:<model>`` (Ollama's native ``/api/chat``),
``--llm anthropic:<model>`` and every other provider string LangChain knows. API keys are read from the
environment by the provider packages; autogai never stores them (an OpenAI-compatible local server
without a key gets a dummy key, in memory only).

Retries are done here, not by the provider clients (their own retries are switched off), so the policy
is the same for every backend and testable: timeouts, HTTP 408/409/429/5xx, connection failures and
malformed (unparseable) responses are retried with exponential backoff up to ``max_retries`` times.
A backend that still fails for every requested sample raises :class:`LLMUnavailableError` with one
clear line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from autogai.core.errors import ConfigError, LLMUnavailableError, MissingDependencyError
from autogai.core.logging import mask_secrets
from autogai.rag.llm_cache import (
    CachedReply,
    Ledger,
    ResponseCache,
    cache_key,
    estimate_cost,
    messages_payload,
)

logger = logging.getLogger(__name__)

PROVIDERS_WITH_N = frozenset({"openai"})
"""Providers whose API returns several samples for one request (``n``)."""

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


class ChatBackend:
    """One configured chat model with cache, ledger, retries and K-sample requests.

    Args:
        spec: ``provider:model``.
        base_url: server URL (OpenAI-compatible ``.../v1`` for ``openai``, Ollama's root for ``ollama``).
        temperature: sampling temperature (part of the cache key).
        timeout_s: per-request timeout in seconds.
        max_retries: extra attempts after the first on retryable failures.
        backoff_s: first backoff delay; doubles every retry (a server's ``Retry-After`` wins if larger).
        cache_dir: response cache directory (``None``: no cache).
        ledger_path: ``ledger.jsonl`` path (``None``: totals in memory only).
        structured: ask for JSON output (OpenAI ``response_format``, Ollama ``format``); ``None`` picks
            JSON where the backend is known to support it (OpenAI's own API, native Ollama).
        max_concurrency: parallel requests when the provider has no ``n``.
        max_tokens: reply length limit where the provider needs one (Anthropic).
        chat_model: a ready LangChain chat model to use instead of ``init_chat_model`` (tests, custom).
    """

    def __init__(
        self,
        spec: str | LLMSpec,
        *,
        base_url: str | None = None,
        temperature: float = 0.7,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        cache_dir: Path | None = None,
        ledger_path: Path | None = None,
        ledger: Ledger | None = None,
        structured: bool | None = None,
        max_concurrency: int = 4,
        max_tokens: int = 4096,
        chat_model: Any | None = None,
    ) -> None:
        self.spec = LLMSpec.parse(spec)
        self.base_url = base_url
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = backoff_s
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_tokens = max_tokens
        self.cache = ResponseCache(Path(cache_dir)) if cache_dir is not None else None
        self.ledger = ledger if ledger is not None else Ledger(ledger_path)
        if structured is None:
            structured = (self.spec.provider == "openai" and not base_url) or self.spec.provider == "ollama"
        self.structured = bool(structured)
        self._model = chat_model
        self._model_lock = threading.Lock()
        self._sleep: Callable[[float], None] = time.sleep

    # -- identity -----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.spec)

    @property
    def supports_n(self) -> bool:
        if self.spec.provider not in PROVIDERS_WITH_N:
            return False
        model = self._model
        use_responses = getattr(model, "_use_responses_api", None) if model is not None else None
        return not (callable(use_responses) and use_responses({}))

    @property
    def local(self) -> bool:
        return self.spec.provider == "ollama" or _is_local(self.base_url)

    def _options(self) -> dict[str, Any]:
        return {"structured": self.structured}

    # -- model construction -------------------------------------------------------------------------

    def _build_model(self) -> Any:
        try:
            from langchain.chat_models import init_chat_model
        except ImportError as exc:  # pragma: no cover - langchain is a core dependency
            raise MissingDependencyError("the LLM backends need langchain (pip install langchain)") from exc
        provider, model = self.spec.provider, self.spec.model
        kwargs: dict[str, Any] = {"temperature": self.temperature}
        if provider == "openai":
            kwargs.update(timeout=self.timeout_s, max_retries=0)
            if self.base_url:
                kwargs["base_url"] = self.base_url
                kwargs["use_responses_api"] = False  # compatible servers speak Chat Completions
                if not os.environ.get("OPENAI_API_KEY"):
                    kwargs["api_key"] = "not-needed"  # local servers without auth; memory only
            elif not os.environ.get("OPENAI_API_KEY"):
                raise LLMUnavailableError(
                    "OPENAI_API_KEY is not set; export it (keys are read from the environment only) "
                    "or pass --llm-base-url for a local OpenAI-compatible server"
                )
        elif provider == "ollama":
            kwargs["client_kwargs"] = {"timeout": self.timeout_s}
            if self.base_url:
                kwargs["base_url"] = self.base_url
        elif provider == "anthropic":
            kwargs.update(timeout=self.timeout_s, max_retries=0, max_tokens=self.max_tokens)
            if self.base_url:
                kwargs["base_url"] = self.base_url
        else:
            kwargs.update(timeout=self.timeout_s, max_retries=0)
            if self.base_url:
                kwargs["base_url"] = self.base_url
        try:
            try:
                return init_chat_model(model, model_provider=provider, **kwargs)
            except (TypeError, ValueError) as exc:
                if provider in ("openai", "ollama", "anthropic") or "provider" in str(exc).lower():
                    raise
                # an integration that does not take timeout/max_retries: let it use its defaults
                slim = {k: v for k, v in kwargs.items() if k in ("temperature", "base_url")}
                return init_chat_model(model, model_provider=provider, **slim)
        except ImportError as exc:
            package = _INSTALL_HINTS.get(provider, f"langchain-{provider.replace('_', '-')}")
            raise MissingDependencyError(f"--llm {self.spec} needs {package}: {exc}") from exc
        except ValueError as exc:
            if "provider" in str(exc).lower():
                first = str(exc).splitlines()[0]
                raise ConfigError(f"--llm {self.spec}: {first}") from exc
            raise LLMUnavailableError(f"--llm {self.spec}: {mask_secrets(str(exc).splitlines()[0])}") from exc
        except Exception as exc:  # e.g. a provider client refusing to start without a key
            raise LLMUnavailableError(
                f"--llm {self.spec}: cannot create the client: {mask_secrets(str(exc).splitlines()[0])}"
            ) from exc

    def ensure_client(self) -> None:
        """Build the provider's client now (package installed, key set, provider known), so a command
        refuses a bad ``--llm`` before it has created anything; raises one AutoGAIError line."""
        self._chat_model()

    def _chat_model(self) -> Any:
        with self._model_lock:
            if self._model is None:
                self._model = self._build_model()
            return self._model

    # -- calls --------------------------------------------------------------------------------------

    def complete(
        self,
        messages: Sequence[Any],
        *,
        n: int = 1,
        first_sample: int = 0,
        purpose: str = "propose",
    ) -> list[Completion]:
        """``n`` samples (indices ``first_sample ...``) for ``messages``, cached samples first.

        Failed samples come back with ``error`` set; if every sample that needed the network failed,
        :class:`LLMUnavailableError` is raised instead.
        """
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        prompt_sha = hashlib.sha256(
            json.dumps(messages_payload(messages), sort_keys=True).encode()
        ).hexdigest()[:12]
        results: dict[int, Completion] = {}
        keys: dict[int, str] = {}
        for index in range(first_sample, first_sample + n):
            keys[index] = cache_key(
                provider=self.spec.provider,
                model=self.spec.model,
                temperature=self.temperature,
                messages=messages,
                sample_index=index,
                options=self._options(),
            )
            cached = self.cache.get(keys[index]) if self.cache is not None else None
            if cached is not None:
                results[index] = Completion(
                    index,
                    cached.text,
                    cache_hit=True,
                    tokens_in=cached.tokens_in,
                    tokens_out=cached.tokens_out,
                )
                self._record(
                    purpose,
                    prompt_sha,
                    index,
                    1,
                    cache_hit=True,
                    ok=True,
                    tokens_in=cached.tokens_in,
                    tokens_out=cached.tokens_out,
                )
        missing = [i for i in keys if i not in results]
        if missing:
            fresh = self._fetch(messages, missing, purpose, prompt_sha)
            for completion in fresh:
                results[completion.sample_index] = completion
                if completion.ok and self.cache is not None:
                    self.cache.put(
                        keys[completion.sample_index],
                        CachedReply(completion.text or "", completion.tokens_in, completion.tokens_out),
                        request={
                            "provider": self.spec.provider,
                            "model": self.spec.model,
                            "temperature": self.temperature,
                            "sample_index": completion.sample_index,
                            "purpose": purpose,
                            "prompt_sha": prompt_sha,
                        },
                    )
            failed = [c for c in fresh if not c.ok]
            if failed and len(failed) == len(missing):
                reason = failed[0].error or "unknown error"
                where = f" at {sanitize_url(self.base_url)}" if self.base_url else ""
                attempts = max(c.attempts for c in failed)
                raise LLMUnavailableError(
                    f"LLM {self.spec}{where} failed after {attempts} attempt(s): {reason}"
                )
        return [results[i] for i in sorted(results)]

    def _fetch(
        self, messages: Sequence[Any], indices: list[int], purpose: str, prompt_sha: str
    ) -> list[Completion]:
        self._chat_model()  # built before supports_n is asked (the model decides its API)
        if self.supports_n and len(indices) > 1:
            out: list[Completion] = []
            pending = list(indices)
            # a compatible server may ignore n and return fewer choices: ask again for the rest
            for _ in range(3):
                if not pending:
                    break
                got = self._call_with_retries(messages, pending, purpose, prompt_sha)
                out.extend(got)
                done = {c.sample_index for c in got}
                if any(not c.ok for c in got):
                    pending = []
                    break
                pending = [i for i in pending if i not in done]
            for index in pending:
                out.append(Completion(index, None, error="the server returned fewer samples than requested"))
            return out
        if len(indices) == 1:
            return self._call_with_retries(messages, indices, purpose, prompt_sha)
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(indices))) as pool:
            futures = [
                pool.submit(self._call_with_retries, messages, [i], purpose, prompt_sha) for i in indices
            ]
            return [c for f in futures for c in f.result()]

    def _call_with_retries(
        self, messages: Sequence[Any], indices: list[int], purpose: str, prompt_sha: str
    ) -> list[Completion]:
        """One request for ``len(indices)`` samples, retried; returns completions for the samples it got."""
        from langchain_core.messages import convert_to_messages

        model = self._chat_model()
        chat_messages = convert_to_messages(list(messages))  # (role, text) tuples, dicts or messages
        n = len(indices)
        kwargs: dict[str, Any] = {}
        if n > 1:
            kwargs["n"] = n
        if self.structured:
            if self.spec.provider == "openai":
                kwargs["response_format"] = {"type": "json_object"}
            elif self.spec.provider == "ollama":
                kwargs["format"] = "json"
        failure: _CallFailed | None = None
        attempts = 0
        for attempt in range(self.max_retries + 1):
            attempts = attempt + 1
            started = time.perf_counter()
            try:
                result = model.generate([chat_messages], **kwargs)
                generations = result.generations[0] if result.generations else []
                texts = [_message_text(getattr(g, "message", None)) for g in generations]
                if not texts or any(t is None or not t.strip() for t in texts):
                    raise ValueError("the reply has no text content")
                latency = time.perf_counter() - started
                tokens_in, tokens_out = _usage(generations[0].message)
                cost = estimate_cost(
                    self.spec.provider, self.spec.model, tokens_in, tokens_out, local=self.local
                )
                self._record(
                    purpose,
                    prompt_sha,
                    indices[0],
                    n,
                    cache_hit=False,
                    ok=True,
                    attempt=attempt + 1,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    latency_s=latency,
                    cost_usd=cost,
                    samples_returned=len(texts),
                )
                got = list(zip(indices, texts, strict=False))
                return [
                    Completion(
                        index,
                        text,
                        tokens_in=tokens_in if j == 0 else 0,
                        tokens_out=tokens_out if j == 0 else 0,
                        latency_s=latency,
                        attempts=attempt + 1,
                    )
                    for j, (index, text) in enumerate(got)
                ]
            except LLMUnavailableError:
                raise
            except MissingDependencyError:
                raise
            except Exception as exc:
                failure = classify_error(exc)
                latency = time.perf_counter() - started
                self._record(
                    purpose,
                    prompt_sha,
                    indices[0],
                    n,
                    cache_hit=False,
                    ok=False,
                    attempt=attempt + 1,
                    latency_s=latency,
                    error=f"{failure.kind}: {failure}",
                )
                logger.info("LLM call %s attempt %d failed: %s", self.spec, attempt + 1, failure)
                if not failure.retryable:
                    if failure.kind in ("auth", "not_found"):
                        raise LLMUnavailableError(f"LLM {self.spec}: {failure}") from None
                    break
                if attempt < self.max_retries:
                    delay = self.backoff_s * (2**attempt)
                    if failure.retry_after is not None:
                        delay = max(delay, min(failure.retry_after, 60.0))
                    self._sleep(min(delay, 60.0))
        assert failure is not None
        return [Completion(i, None, attempts=attempts, error=str(failure)) for i in indices]

    def _record(self, purpose: str, prompt_sha: str, sample_index: int, n: int, **fields: Any) -> None:
        entry = {
            "backend": self.spec.provider,
            "model": self.spec.model,
            "base_url": sanitize_url(self.base_url),
            "purpose": purpose,
            "prompt_sha": prompt_sha,
            "sample_index": sample_index,
            "n": n,
            "temperature": self.temperature,
        }
        entry.update(fields)
        if fields.get("cache_hit"):
            entry.setdefault("cost_usd", 0.0)
            entry.setdefault("latency_s", 0.0)
        entry["latency_s"] = round(float(entry.get("latency_s") or 0.0), 4)
        self.ledger.record(entry)

    def usage(self) -> dict[str, Any]:
        """Totals over this backend's calls: calls, cache hits, errors, tokens, estimated cost."""
        return dict(self.ledger.totals)
