"""OpenAI-compatible and Ollama embeddings through their real LangChain clients, against a local HTTP
server started by the test (scripted: it embeds with the hashing embedding)."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from rag_helpers import write_docs

from autogai.cli.main import main
from autogai.core.errors import LLMUnavailableError
from autogai.rag.embeddings import HashingEmbeddings
from autogai.rag.knowledge import KnowledgeBase

pytestmark = pytest.mark.integration
DIM = 64


class _EmbeddingHandler(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        vectors = HashingEmbeddings(DIM).embed_documents([str(t) for t in texts])
        type(self).calls.append(self.path)
        if self.path.endswith("/embeddings"):  # OpenAI: /v1/embeddings
            base64_wanted = body.get("encoding_format") == "base64"
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(struct.pack(f"<{DIM}f", *v)).decode()
                    if base64_wanted
                    else v,
                }
                for i, v in enumerate(vectors)
            ]
            reply = {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        elif self.path == "/api/embed":  # Ollama native
            reply = {"model": body.get("model"), "embeddings": vectors}
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_remote_embeddings_ingest_and_query(
    provider: str, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if provider == "openai":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server}/v1")
    else:
        monkeypatch.setenv("OLLAMA_HOST", server)
    _EmbeddingHandler.calls.clear()
    kb = KnowledgeBase(
        tmp_path / "store", embeddings=f"{provider}:test-embed", source_dir=write_docs(tmp_path / "kb")
    )
    assert kb.collection_name == f"kb-{provider}-test-embed"
    report = kb.ingest()
    assert report.chunks_added > 0 and _EmbeddingHandler.calls
    hits = kb.query("adversarial Bellman target of the GAN critic", k=2)
    assert hits[0].doc_id == "enhancer-gan"
    assert len(_EmbeddingHandler.calls) >= 2  # documents, then the query, went through the server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_ollama_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{_closed_port()}")
    kb = KnowledgeBase(
        tmp_path / "store", embeddings="ollama:nomic-embed-text", source_dir=write_docs(tmp_path / "kb")
    )
    with pytest.raises(LLMUnavailableError, match="embeddings ollama:nomic-embed-text failed"):
        kb.ingest()
    assert kb.count() == 0
    code = main(
        [
            "kb",
            "ingest",
            str(tmp_path / "kb"),
            "--store",
            str(tmp_path / "store"),
            "--embeddings",
            "ollama:nomic-embed-text",
        ]
    )
    assert code == 1
    assert "autogai: error:" in capsys.readouterr().err
