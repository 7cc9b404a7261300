"""Scripted local LLM servers for the LLM tests: OpenAI-compatible and Ollama-native, on 127.0.0.1.

Each server runs ``http.server`` in a thread on an ephemeral port and answers from a script: a list of
steps consumed one per request (or a function of the request body). Steps:

- ``Reply(*texts)``: HTTP 200 with one choice per text (the OpenAI server returns ``min(n, len)``
  choices; the Ollama server streams the first text as NDJSON, or returns it in one JSON object when the
  request has ``"stream": false``).
- ``Status(code)``: that HTTP status with an error body.
- ``Sleep(seconds, then)``: wait (past the client's timeout), then answer with ``then``.
- ``Garbage(body)``: HTTP 200 with a body that is not the API's JSON.

Every request body is kept in ``server.requests`` so tests can count attempts and read prompts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
        self, script: list[Step] | Callable[[dict[str, Any]], Step], *, default: Step | None = None
    ) -> None:
        self.script = script
        self.default = default
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
                step = server._next(self.path, body)
                server._answer(self, body, step)

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
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            if not path.startswith(self.path):
                return Status(404)
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

    # -- helpers for assertions --
    def prompts(self) -> list[str]:
        """The last user message of every request, in order."""
        out = []
        for body in self.requests:
            messages = body.get("messages") or []
            out.append(str(messages[-1].get("content", "")) if messages else "")
        return out


class OpenAIServer(ScriptedServer):
    """``POST /v1/chat/completions`` (Chat Completions, non-streaming), honouring ``n``."""

    path = "/v1/chat/completions"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def reply(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Reply) -> None:
        n = int(body.get("n") or 1)
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
