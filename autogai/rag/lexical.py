"""Lexical relevance for retrieval: Okapi BM25 (Robertson & Zaragoza 2009) over word tokens.

The knowledge base blends this score with embedding similarity (:mod:`autogai.rag.knowledge`): names like
``power_total_mw`` or "GAN" are matched exactly, which small sentence encoders blur.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "with",
        "without",
        "why",
        "not",
        "no",
        "do",
        "does",
        "can",
    ]
)
_WORD_RE = re.compile(r"[a-z0-9]+")


def lexical_tokens(text: str) -> list[str]:
    """Lower-case word tokens for BM25; identifiers like ``power_total_mw`` also yield their parts."""
    tokens: list[str] = []
    for word in re.findall(r"[a-z0-9_]+", text.lower()):
        parts = [p for p in word.split("_") if p]
        if len(parts) > 1:
            tokens.append("_".join(parts))
        tokens.extend(parts)
    return [_stem(t) for t in tokens if t not in _STOPWORDS and (len(t) > 1 or t.isdigit())]


def _stem(token: str) -> str:
    """A deliberately tiny plural stripper (rewards -> reward, penalties -> penalty); nothing clever."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


class BM25:
    """Okapi BM25 over a fixed list of texts (k1 = 1.5, b = 0.75)."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.term_counts = [Counter(lexical_tokens(text)) for text in texts]
        self.lengths = [sum(c.values()) for c in self.term_counts]
        self.average_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        document_frequency: Counter[str] = Counter()
        for counts in self.term_counts:
            document_frequency.update(counts.keys())
        n = len(texts)
        self.idf = {t: math.log(1.0 + (n - df + 0.5) / (df + 0.5)) for t, df in document_frequency.items()}

    def scores(self, query: str) -> list[float]:
        terms = [t for t in dict.fromkeys(lexical_tokens(query)) if t in self.idf]
        out = []
        for counts, length in zip(self.term_counts, self.lengths, strict=True):
            norm = self.k1 * (1.0 - self.b + self.b * length / (self.average_length or 1.0))
            total = 0.0
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    total += self.idf[term] * tf * (self.k1 + 1.0) / (tf + norm)
            out.append(total)
        return out
