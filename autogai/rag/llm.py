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

Local servers behave otherwise than hosted APIs, and the backend learns how from the server itself:

- **Samples.** llama.cpp's server and Ollama's ``/v1`` ignore ``n`` and return one choice. The first
  reply tells; the backend then asks for each remaining sample separately (``max_concurrency`` at a
  time) and never again sends ``n`` to that server. Every request carries its sample index as ``seed``,
  so a sample is the same whether it came from an ``n`` request or a request of its own.
- **Context window.** :meth:`ChatBackend.context_window` asks the server (llama.cpp's ``/props``,
  vLLM's ``/v1/models``, Ollama's ``/api/show``), else takes ``context_tokens`` (``--llm-context``), else
  a conservative default; prompts are fitted to it by the proposer, and native Ollama gets ``num_ctx``.
- **Structured replies.** With a JSON schema, OpenAI-compatible servers get ``response_format`` (the
  OpenAI ``json_schema`` form, or llama-cpp-python's ``json_object`` with ``schema`` when a server
  refuses the first), native Ollama gets ``format``. ``structured="auto"`` falls back to free text when a
  server refuses both (:class:`StructuredRepliesRefused` tells the caller to rebuild its prompt).
- **Progress.** A ``progress`` callback sees every call start, stream tokens (where the reply is streamed)
  and end; ``timeout_s`` bounds each call, streamed or not. Completed samples are cached as they arrive
  (atomic writes), so an interrupted round keeps what it got.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
from autogai.rag.llm_calls import (
    _INSTALL_HINTS,
    DEFAULT_HOSTED_CONTEXT,
    DEFAULT_LOCAL_CONTEXT,
    PROVIDERS_WITH_N,
    STRUCTURED_MODES,
    CallStatus,
    Completion,
    ContextWindow,
    LLMSpec,
    StructuredRepliesRefused,
    _Call,
    _CallFailed,
    _is_local,
    _message_text,
    _run_concurrently,
    _usage,
    classify_error,
    estimate_message_tokens,
    sanitize_url,
    server_context,
)

logger = logging.getLogger(__name__)


class ChatBackend:
    """One configured chat model with cache, ledger, retries and K-sample requests.

    Args:
        spec: ``provider:model``.
        base_url: server URL (OpenAI-compatible ``.../v1`` for ``openai``, Ollama's root for ``ollama``).
        temperature: sampling temperature (part of the cache key).
        timeout_s: limit of one call in seconds (a streamed reply included).
        max_retries: extra attempts after the first on retryable failures.
        backoff_s: first backoff delay; doubles every retry (a server's ``Retry-After`` wins if larger).
        cache_dir: response cache directory (``None``: no cache).
        ledger_path: ``ledger.jsonl`` path (``None``: totals in memory only).
        structured: ``auto``, ``on`` or ``off`` (:data:`STRUCTURED_MODES`); used by calls given a schema.
        context_tokens: the model's context window when the server does not say (``--llm-context``).
        max_concurrency: samples asked at once from a server without ``n`` (default: 1 for a local server,
            which generates one reply at a time and would only let queued requests run into their
            timeout; 4 for a hosted API).
        max_tokens: reply length limit (Anthropic needs one; local servers get what the context leaves).
        progress: called with a :class:`CallStatus` when a call starts, streams tokens and ends.
        stream: stream replies (``None``: where the server reports token usage at the end of a stream:
            OpenAI's API and native Ollama; llama.cpp's Python server does not, so it is not streamed
            and its ledger keeps the real counts).
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
        structured: str = "auto",
        context_tokens: int | None = None,
        max_concurrency: int | None = None,
        max_tokens: int = 4096,
        progress: Callable[[CallStatus], None] | None = None,
        stream: bool | None = None,
        chat_model: Any | None = None,
    ) -> None:
        self.spec = LLMSpec.parse(spec)
        self.base_url = base_url
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = backoff_s
        if context_tokens is not None and context_tokens < 256:
            raise ConfigError(f"--llm-context must be at least 256 tokens, got {context_tokens}")
        self.context_tokens = context_tokens
        if max_concurrency is None:
            max_concurrency = 1 if self.local else 4
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_tokens = max_tokens
        self.cache = ResponseCache(Path(cache_dir)) if cache_dir is not None else None
        self.ledger = ledger if ledger is not None else Ledger(ledger_path)
        self.structured_mode = self._check_structured(structured)
        self._structured_style = self._initial_style()
        self.progress = progress
        self.stream = (
            stream
            if stream is not None
            else self.spec.provider == "ollama" or (self.spec.provider == "openai" and not base_url)
        )
        self._model = chat_model
        self._model_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._honours_n: bool | None = None
        self._context: ContextWindow | None = None
        self._tokenizer: str | bool | None = None  # the server's tokenizer endpoint; False: none, estimate
        self._token_counts: dict[str, int] = {}
        self._call_ids = itertools.count(1)
        self._sleep: Callable[[float], None] = time.sleep

    # -- identity -----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.spec)

    @property
    def supports_n(self) -> bool:
        if self.spec.provider not in PROVIDERS_WITH_N or self._honours_n is False:
            return False
        model = self._model
        use_responses = getattr(model, "_use_responses_api", None) if model is not None else None
        return not (callable(use_responses) and use_responses({}))

    @property
    def local(self) -> bool:
        return self.spec.provider == "ollama" or _is_local(self.base_url)

    @property
    def structured(self) -> bool:
        """Whether calls with a schema currently ask for a structured reply."""
        return self._structured_style is not None

    def _check_structured(self, mode: str) -> str:
        value = str(mode).strip().lower()
        if value not in STRUCTURED_MODES:
            raise ConfigError(f"--llm-structured must be one of {', '.join(STRUCTURED_MODES)}, got {mode!r}")
        if value == "on" and self.spec.provider not in ("openai", "ollama"):
            raise ConfigError(
                f"--llm-structured on: autogai asks for structured replies from OpenAI-compatible servers "
                f"and Ollama only, not {self.spec.provider}; use auto or off"
            )
        return value

    def _initial_style(self) -> str | None:
        if self.structured_mode == "off":
            return None
        if self.spec.provider == "openai":
            return "json_schema"
        if self.spec.provider == "ollama":
            return "ollama_format"
        return None

    def _options(self, schema: Mapping[str, Any] | None) -> dict[str, Any]:
        style = self._structured_style if schema is not None else None
        options: dict[str, Any] = {"structured": style or "off"}
        if style is not None:
            options["schema"] = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]
        return options

    # -- context window -----------------------------------------------------------------------------

    def context_window(self) -> ContextWindow:
        """The context window: what the server reports, else ``context_tokens``, else a default."""
        if self._context is None:
            self._context = self._discover_context()
            logger.info(
                "LLM %s context window: %d tokens (%s)", self.spec, self._context.tokens, self._context.source
            )
        return self._context

    def _discover_context(self) -> ContextWindow:
        import httpx

        reported = None
        try:
            reported = server_context(self.spec.provider, self.spec.model, self.base_url, self.timeout_s)
        except httpx.ConnectError as exc:
            if self.context_tokens is None:  # nothing listens there: say so now, not after fitting a prompt
                where = f" at {sanitize_url(self.base_url)}" if self.base_url else ""
                raise LLMUnavailableError(
                    f"LLM {self.spec}{where}: cannot connect: {mask_secrets(str(exc))}"
                ) from None
            logger.debug("server unreachable for its context window (%s); using --llm-context", exc)
        except Exception as exc:  # a server without these endpoints: not an error
            logger.debug("no context window from the server: %s", exc)
        if reported is not None:
            tokens, where = reported
            if self.context_tokens is not None and self.context_tokens < tokens:
                return ContextWindow(
                    self.context_tokens, f"--llm-context (the server reports {tokens} at {where})"
                )
            return ContextWindow(tokens, f"reported by the server ({where})")
        if self.context_tokens is not None:
            return ContextWindow(self.context_tokens, "--llm-context")
        if self.local:
            return ContextWindow(
                DEFAULT_LOCAL_CONTEXT,
                "default for a local server that does not report its context (--llm-context)",
            )
        return ContextWindow(DEFAULT_HOSTED_CONTEXT, "default for a hosted model (--llm-context)")

    def count_tokens(self, messages: Sequence[Any]) -> int:
        """Tokens of a chat prompt: by the server's own tokenizer where it has one (llama.cpp), else
        :func:`estimate_message_tokens`. Each message adds a few tokens for its role markers."""
        payload = messages_payload(messages)
        if self._tokenizer is not False:
            try:
                return sum(self._server_count(m["content"]) + 8 for m in payload)
            except Exception as exc:  # no tokenizer endpoint: estimate from now on
                logger.debug("no tokenizer on the server (%s); estimating prompt sizes", exc)
                self._tokenizer = False
        return estimate_message_tokens(messages)

    def _server_count(self, text: str) -> int:
        if text in self._token_counts:
            return self._token_counts[text]
        if self.spec.provider != "openai" or not self.base_url or not self.local:
            raise LookupError("only local OpenAI-compatible servers are asked")
        import httpx

        base = self.base_url.rstrip("/")
        root = base[: -len("/v1")] if base.endswith("/v1") else base
        endpoints = {  # llama-cpp-python's server, llama.cpp's own server
            "extras": (f"{root}/extras/tokenize/count", {"input": text}),
            "llama.cpp": (f"{root}/tokenize", {"content": text}),
        }
        order = [self._tokenizer] if isinstance(self._tokenizer, str) else list(endpoints)
        for name in order:
            url, body = endpoints[name]
            reply = httpx.post(url, json=body, timeout=min(10.0, self.timeout_s))
            if reply.status_code != 200:
                continue
            data = reply.json()
            count = data.get("count") if "count" in data else len(data.get("tokens") or [])
            if isinstance(count, int) and (count > 0 or not text):
                self._tokenizer = name
                self._token_counts[text] = count
                return count
        raise LookupError("no tokenizer endpoint answered")

    def reply_tokens(self) -> int:
        """Tokens kept free for the reply: a quarter of the window, at least 256, at most ``max_tokens``."""
        return min(self.max_tokens, max(256, self.context_window().tokens // 4))

    def prompt_budget(self, reply_tokens: int | None = None) -> int:
        """Tokens a prompt may take: the window less the reply's share (``reply_tokens``, default
        :meth:`reply_tokens`)."""
        return self.context_window().tokens - (self.reply_tokens() if reply_tokens is None else reply_tokens)

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
            else:
                kwargs["stream_usage"] = True  # token counts at the end of a streamed reply
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
        schema: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        reply_tokens: int | None = None,
    ) -> list[Completion]:
        """``n`` samples (indices ``first_sample ...``) for ``messages``, cached samples first.

        ``schema``: the JSON schema of a structured reply, used while :attr:`structured` holds.
        ``details``: extra fields for this call's ledger entries (e.g. how the prompt was fitted).
        ``reply_tokens``: the reply's length limit where the prompt took part of its share.
        Failed samples come back with ``error`` set; if every sample that needed the network failed,
        :class:`LLMUnavailableError` is raised instead.
        """
        if n < 1:
            raise ConfigError(f"number of samples must be >= 1, got {n}")
        prompt_sha = hashlib.sha256(
            json.dumps(messages_payload(messages), sort_keys=True).encode()
        ).hexdigest()[:12]
        call = _Call(messages, purpose, prompt_sha, schema, dict(details or {}), reply_tokens)
        results: dict[int, Completion] = {}
        for index in range(first_sample, first_sample + n):
            cached = self.cache.get(self._key(call, index)) if self.cache is not None else None
            if cached is not None:
                results[index] = Completion(
                    index,
                    cached.text,
                    cache_hit=True,
                    tokens_in=cached.tokens_in,
                    tokens_out=cached.tokens_out,
                )
                self._record(
                    call,
                    index,
                    1,
                    cache_hit=True,
                    ok=True,
                    tokens_in=cached.tokens_in,
                    tokens_out=cached.tokens_out,
                )
        missing = [i for i in range(first_sample, first_sample + n) if i not in results]
        if missing:
            fresh = self._fetch(call, missing)
            for completion in fresh:
                results[completion.sample_index] = completion
            failed = [c for c in fresh if not c.ok]
            if failed and len(failed) == len(missing):
                reason = failed[0].error or "unknown error"
                where = f" at {sanitize_url(self.base_url)}" if self.base_url else ""
                attempts = max(c.attempts for c in failed)
                raise LLMUnavailableError(
                    f"LLM {self.spec}{where} failed after {attempts} attempt(s): {reason}"
                )
        return [results[i] for i in sorted(results)]

    def _key(self, call: _Call, index: int) -> str:
        return cache_key(
            provider=self.spec.provider,
            model=self.spec.model,
            temperature=self.temperature,
            messages=call.messages,
            sample_index=index,
            options=self._options(call.schema),
        )

    def _store(self, call: _Call, completions: list[Completion]) -> None:
        """Cache each sample as it arrives (atomic), so an interrupted round keeps what it got."""
        if self.cache is None:
            return
        for completion in completions:
            if completion.ok:
                self.cache.put(
                    self._key(call, completion.sample_index),
                    CachedReply(completion.text or "", completion.tokens_in, completion.tokens_out),
                    request={
                        "provider": self.spec.provider,
                        "model": self.spec.model,
                        "temperature": self.temperature,
                        "sample_index": completion.sample_index,
                        "purpose": call.purpose,
                        "prompt_sha": call.prompt_sha,
                    },
                )

    def _fetch(self, call: _Call, indices: list[int]) -> list[Completion]:
        self._chat_model()  # built before supports_n is asked (the model decides its API)
        out: list[Completion] = []
        pending = list(indices)
        if self.supports_n and len(pending) > 1:
            got = self._request(call, pending)
            out.extend(got)
            received = {c.sample_index for c in got}
            if any(not c.ok for c in got):
                return out + [
                    Completion(i, None, error=got[0].error, attempts=got[0].attempts)
                    for i in pending
                    if i not in received
                ]
            with self._state_lock:
                honoured = len(received) == len(pending)
                if self._honours_n is None and not honoured:
                    logger.info(
                        "LLM %s returned %d of %d samples for one request (the server ignores n): "
                        "asking for each sample separately from now on",
                        self.spec,
                        len(received),
                        len(pending),
                    )
                self._honours_n = honoured if self._honours_n is None else self._honours_n and honoured
            pending = [i for i in pending if i not in received]
        if len(pending) == 1:
            return out + self._request(call, pending)
        if pending:
            out += _run_concurrently(
                [functools.partial(self._request, call, [i]) for i in pending], self.max_concurrency
            )
        return out

    def _request_kwargs(self, call: _Call, n: int, first: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        reply_tokens = call.reply_tokens or self.reply_tokens()
        style = self._structured_style if call.schema is not None else None
        if self.spec.provider == "openai":
            if n > 1:
                kwargs["n"] = n
            kwargs["seed"] = first  # one sample, one seed: reproducible on servers that honour it
            if self.local:  # LangChain would send max_completion_tokens, which llama-cpp-python ignores
                kwargs["extra_body"] = {"max_tokens": reply_tokens}
            if style == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "designs", "schema": dict(call.schema or {}), "strict": True},
                }
            elif style == "json_object_schema":  # llama-cpp-python's form
                kwargs["response_format"] = {"type": "json_object", "schema": dict(call.schema or {})}
        elif self.spec.provider == "ollama":
            needed = estimate_message_tokens(call.messages) + reply_tokens
            window = self.context_window().tokens
            # whole 2k steps: Ollama reloads the model whenever num_ctx changes
            num_ctx = min(window, max(2048, math.ceil(needed / 2048) * 2048))
            kwargs["options"] = {
                "temperature": self.temperature,
                "seed": first,
                "num_ctx": num_ctx,
                "num_predict": reply_tokens,
            }
            if style == "ollama_format":
                kwargs["format"] = dict(call.schema or {})
        return kwargs

    def _downgrade_structured(self, failure: _CallFailed, style: str) -> bool:
        """After a server refused ``style``: switch to the next form and say whether to ask again."""
        with self._state_lock:
            if self._structured_style != style:
                return True  # another thread already switched
            if style == "json_schema" and self.spec.provider == "openai" and self.base_url:
                logger.info(
                    "LLM %s refused response_format json_schema (%s); trying json_object", self.spec, failure
                )
                self._structured_style = "json_object_schema"
                return True
            if self.structured_mode == "on":
                raise LLMUnavailableError(
                    f"LLM {self.spec} refuses structured replies ({failure}); use --llm-structured auto or off"
                )
            self._structured_style = None
        raise StructuredRepliesRefused(f"LLM {self.spec} refuses structured replies: {failure}")

    def _request(self, call: _Call, indices: list[int]) -> list[Completion]:
        """One request for ``len(indices)`` samples, retried; returns completions for the samples it got."""
        from langchain_core.messages import convert_to_messages

        model = self._chat_model()
        chat_messages = convert_to_messages(list(call.messages))  # (role, text) tuples, dicts or messages
        n = len(indices)
        failure: _CallFailed | None = None
        attempts = 0
        attempt = 0
        while attempt <= self.max_retries:
            attempts = attempt + 1
            style = self._structured_style if call.schema is not None else None
            kwargs = self._request_kwargs(call, n, indices[0])
            label = f"{call.purpose} sample {indices[0]}" + (f"-{indices[-1]}" if n > 1 else "")
            status = CallStatus(next(self._call_ids), label, streaming=self.stream and n == 1)
            self._notify(status)
            started = time.perf_counter()
            try:
                if status.streaming:
                    texts, usage = self._streamed(model, chat_messages, kwargs, status, started)
                else:
                    texts, usage = self._generated(model, chat_messages, kwargs)
                if not texts or any(t is None or not t.strip() for t in texts):
                    raise ValueError("the reply has no text content")
                latency = time.perf_counter() - started
                tokens_in, tokens_out = usage
                status.finished = True
                status.tokens_out = tokens_out or status.tokens_out
                self._notify(status)
                cost = estimate_cost(
                    self.spec.provider, self.spec.model, tokens_in, tokens_out, local=self.local
                )
                self._record(
                    call,
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
                    structured=style or "off",
                )
                got = [
                    Completion(
                        index,
                        text,
                        tokens_in=tokens_in if j == 0 else 0,
                        tokens_out=tokens_out if j == 0 else 0,
                        latency_s=latency,
                        attempts=attempt + 1,
                    )
                    for j, (index, text) in enumerate(zip(indices, texts, strict=False))
                ]
                self._store(call, got)
                return got
            except (LLMUnavailableError, MissingDependencyError):
                raise
            except Exception as exc:
                failure = classify_error(exc)
                latency = time.perf_counter() - started
                status.finished, status.error = True, failure.kind
                self._notify(status)
                self._record(
                    call,
                    indices[0],
                    n,
                    cache_hit=False,
                    ok=False,
                    attempt=attempt + 1,
                    latency_s=latency,
                    error=f"{failure.kind}: {failure}",
                    structured=style or "off",
                )
                logger.info("LLM call %s attempt %d failed: %s", self.spec, attempt + 1, failure)
                # a server that does not know a structured form answers 400/422, or 500 naming the
                # field (llama-cpp-python's validation error)
                refused = failure.kind == "bad_request" or (
                    failure.kind == "server_error" and "response_format" in str(failure)
                )
                if style is not None and refused and self._downgrade_structured(failure, style):
                    continue  # the same attempt again in the next structured form
                if not failure.retryable:
                    if failure.kind in ("auth", "not_found"):
                        raise LLMUnavailableError(f"LLM {self.spec}: {failure}") from None
                    break
                if attempt < self.max_retries:
                    delay = self.backoff_s * (2**attempt)
                    if failure.retry_after is not None:
                        delay = max(delay, min(failure.retry_after, 60.0))
                    self._sleep(min(delay, 60.0))
                attempt += 1
        assert failure is not None
        return [Completion(i, None, attempts=attempts, error=str(failure)) for i in indices]

    def _generated(
        self, model: Any, chat_messages: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[str | None], tuple[int | None, int | None]]:
        result = model.generate([chat_messages], **kwargs)
        generations = result.generations[0] if result.generations else []
        texts = [_message_text(getattr(g, "message", None)) for g in generations]
        usage = _usage(generations[0].message) if generations else (None, None)
        return texts, usage

    def _streamed(
        self, model: Any, chat_messages: list[Any], kwargs: dict[str, Any], status: CallStatus, started: float
    ) -> tuple[list[str | None], tuple[int | None, int | None]]:
        full: Any = None
        for chunk in model.stream(chat_messages, **kwargs):
            full = chunk if full is None else full + chunk
            if _message_text(chunk):
                status.tokens_out += 1
                self._notify(status)
            if time.perf_counter() - started > self.timeout_s:
                raise TimeoutError(f"the reply took longer than {self.timeout_s:g} s (--llm-timeout)")
        if full is None:
            return [], (None, None)
        return [_message_text(full)], _usage(full)

    def _notify(self, status: CallStatus) -> None:
        if self.progress is not None:
            try:
                self.progress(status)
            except Exception as exc:  # a display must never fail a call
                logger.debug("progress callback failed: %s", exc)

    def _record(self, call: _Call, sample_index: int, n: int, **fields: Any) -> None:
        entry = {
            "backend": self.spec.provider,
            "model": self.spec.model,
            "base_url": sanitize_url(self.base_url),
            "purpose": call.purpose,
            "prompt_sha": call.prompt_sha,
            "sample_index": sample_index,
            "n": n,
            "temperature": self.temperature,
            **call.details,
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
