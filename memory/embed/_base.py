"""The embedder interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Embedder(Protocol):
    """Turns texts into unit-length vectors of a fixed size."""

    name: str
    dims: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents (batched)."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed one query; implementations may cache recent queries."""
        ...
