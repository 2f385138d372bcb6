"""A deterministic, dependency-free embedder for unit tests and smoke runs."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from .._text import content_tokens


class HashEmbedder:
    """Feature-hashes stemmed content words (and word pairs) into a unit vector.

    Texts that share words get similar vectors, so dedup and retrieval behave sensibly in
    tests, but it knows nothing of synonyms: use MiniLM for anything measured.
    """

    def __init__(self, dims: int = 64):
        self.dims = dims
        self.name = f"hash-{dims}"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dims
        tokens = content_tokens(text)
        features = tokens + [a + "_" + b for a, b in zip(tokens, tokens[1:], strict=False)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dims
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0:
            vec[0] = 1.0  # a text of stopwords only still needs a valid unit vector
            return vec
        return [v / norm for v in vec]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)
