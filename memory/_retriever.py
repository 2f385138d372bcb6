"""The retriever: embedder, index and ranking policy behind one object, shared by the read
path (search, context) and the write path (neighbours for dedup, vectors for the index)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ._models import Fact, as_utc
from ._text import sparse_document, sparse_query
from .embed import Embedder
from .index import FactIndex, IndexedFact, IndexHit, IndexQuery
from .retrieve import RetrievalPolicy, Scored, fuse


class Retriever:
    """Hybrid dense + BM25 retrieval over one tenant's facts.

    Args:
        embedder: makes query and document vectors.
        index: the long-term tier.
        policy: fusion weights and thresholds.
        clock: "now" for recency and validity.

    Reads take no lock of the memory's: the index guards itself, call by call, so a write
    in progress (a model call included) never holds up a search.
    """

    def __init__(self, embedder: Embedder, index: FactIndex, policy: RetrievalPolicy, clock: Callable[[], datetime]):
        self.embedder = embedder
        self.index = index
        self.policy = policy
        self.clock = clock

    def scored(
        self, query: str, user_id: str, limit: int, as_of: datetime | None = None, kinds: Sequence[str] | None = None,
    ) -> list[Scored]:
        """Every candidate for `query`, ranked, with its explanation (not cut to `limit`).
        Arguments are the facade's, already checked."""
        vector = self.embedder.embed_query(query)
        request = IndexQuery(
            user_id=user_id,
            dense=vector,
            sparse=sparse_query(query),
            limit=max(limit, self.policy.candidates),
            as_of=as_utc(as_of) if as_of else None,
            kinds=tuple(kinds) if kinds else None,
        )
        result = self.index.query(request)
        return fuse(result, vector, now=as_utc(as_of) if as_of else self.clock(), policy=self.policy)

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        return self.index.nearest(user_id, vectors, limit)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts)) if texts else []

    def indexed(self, facts: Sequence[Fact], vectors: Sequence[Sequence[float]] | None = None) -> list[IndexedFact]:
        """Index points for facts: dense vectors (embedded here unless given) and BM25 weights."""
        if vectors is None:
            vectors = self.embed([f.index_text for f in facts])
        return [IndexedFact(f, v, sparse_document(f.index_text)) for f, v in zip(facts, vectors, strict=True)]
