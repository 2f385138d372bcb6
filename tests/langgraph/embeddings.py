"""A deterministic test embedder in LangChain's `Embeddings` shape: each character gets a
fixed pseudo-random direction, a text is the normalized frequency-weighted sum. Texts that
share characters are close, so rankings are predictable without a model."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

from langchain_core.embeddings import Embeddings


class CharFrequencyEmbeddings(Embeddings):
    def __init__(self, dims: int = 64):
        self.dims = dims
        self._directions: dict[str, list[float]] = {}
        self.calls = 0

    def _direction(self, char: str) -> list[float]:
        if char not in self._directions:
            seed = hashlib.sha256(char.encode()).digest()
            values = []
            for i in range(self.dims):
                block = hashlib.sha256(seed + i.to_bytes(4, "little")).digest()
                values.append(int.from_bytes(block[:4], "little") / 2**32 - 0.5)
            self._directions[char] = values
        return self._directions[char]

    def _embed(self, text: str) -> list[float]:
        counts = Counter(text)
        vector = [0.0] * self.dims
        for char, n in counts.items():
            for i, x in enumerate(self._direction(char)):
                vector[i] += n * x
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._embed(text)


def cosine(a: list[float], b: list[float]) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0
