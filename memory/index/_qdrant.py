"""QdrantPoints: a collection in a Qdrant server or cluster, through qdrant-client.

The same client also runs in its own local mode (`QdrantClient(path=...)` or
`":memory:"`), which the contract tests use as a stand-in for a server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .._errors import ConfigError, EmbeddingMismatch, StoreUnavailable
from ._points import (
    CONTEXT,
    DENSE,
    PLAIN,
    SPARSE,
    Condition,
    Point,
    PointHit,
    Schema,
    Search,
    context_of,
    similarity,
    vector_name,
)

logger = logging.getLogger("tiermem")


def client_for(url: str, api_key: str | None = None) -> Any:
    """A qdrant-client for a server URL, checked to answer."""
    from qdrant_client import QdrantClient

    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"qdrant_url {url!r} must start with http:// or https:// (e.g. http://localhost:6333)")
    client = QdrantClient(url=url, api_key=api_key, timeout=10, check_compatibility=False)
    try:
        client.get_collections()
    except Exception as exc:  # the client raises transport-specific types; all mean "unreachable"
        client.close()
        raise StoreUnavailable(
            f"cannot reach Qdrant at {url} ({type(exc).__name__}: {exc}); start the server, fix the URL, "
            "or unset TIERMEM_INDEX_URL to use the embedded index"
        ) from exc
    return client


class QdrantPoints:
    """Points in one Qdrant collection.

    Args:
        client: a ready ``qdrant_client.QdrantClient`` (server, cloud or local mode).
        collection: the collection name (created with `schema` if missing).
        dims: the vector size; checked against an existing collection.
        owns_client: close the client with this collection.
    """

    def __init__(self, client: Any, collection: str, dims: int, schema: Schema = PLAIN, *, owns_client: bool = True):
        from qdrant_client import models

        self._m = models
        self.client = client
        self.collection = collection
        self.dims = dims
        self.schema = schema
        self.owns_client = owns_client
        self.location = f"qdrant collection {collection!r}"
        self._guard = threading.RLock()  # qdrant-client's local mode is not thread-safe; a server client is cheap to guard
        self._ensure()

    def _ensure(self) -> None:
        m = self._m
        if self.client.collection_exists(self.collection):
            vectors = self.client.get_collection(self.collection).config.params.vectors
            stored = vectors[DENSE].size if isinstance(vectors, dict) else vectors.size
            if stored != self.dims:
                raise EmbeddingMismatch(
                    f"{self.location} holds {stored}-dimensional vectors but the embedder makes {self.dims}; "
                    "use the embedder it was built with, or another collection"
                )
            if not self.schema.context or (isinstance(vectors, dict) and CONTEXT in vectors):
                return
            # Made before contextual vectors: the points are derived from the journal, which
            # rebuilds them into the new layout (Qdrant cannot add a named vector in place).
            logger.warning("tiermem: %s predates contextual vectors; it is made anew and rebuilt from the journal",
                           self.location)
            self.client.delete_collection(self.collection)
        metric = {"cosine": m.Distance.COSINE, "l2": m.Distance.EUCLID, "inner_product": m.Distance.DOT}[self.schema.distance]
        self.client.create_collection(
            self.collection,
            vectors_config={name: m.VectorParams(size=self.dims, distance=metric)
                            for name in ((DENSE, CONTEXT) if self.schema.context else (DENSE,))},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        if self.schema.tenant:
            self.client.create_payload_index(
                self.collection, self.schema.tenant, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True))
        for key in self.schema.keywords:
            self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.KEYWORD)
        for key in self.schema.floats:
            self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.FLOAT)

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        m = self._m
        with self._guard:
            self.client.upsert(self.collection, [m.PointStruct(id=p.id, payload=p.payload, vector=self._vectors(p))
                                                 for p in points], wait=True)

    def _vectors(self, p: Point) -> dict[str, Any]:
        vectors: dict[str, Any] = {DENSE: list(p.dense), SPARSE: self._m.SparseVector(indices=p.sparse[0], values=p.sparse[1])}
        if self.schema.context:
            vectors[CONTEXT] = list(context_of(p))
        return vectors

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        with self._guard:
            self.client.overwrite_payload(self.collection, payload, points=[point_id], wait=True)

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            with self._guard:
                self.client.delete(self.collection, self._m.PointIdsList(points=list(point_ids)), wait=True)

    def delete_where(self, where: Sequence[Condition]) -> None:
        with self._guard:
            self.client.delete(self.collection, self._m.FilterSelector(filter=self._filter(where)), wait=True)

    # -- reads ------------------------------------------------------------------------------
    def _filter(self, where: Sequence[Condition]) -> Any:
        m = self._m
        if not where:
            return None
        must: list[Any] = []
        for c in where:
            if c.op == "eq":
                must.append(m.FieldCondition(key=c.key, match=m.MatchValue(value=c.value)))
            elif c.op == "any":
                must.append(m.FieldCondition(key=c.key, match=m.MatchAny(any=list(c.value))))
            elif c.op == "gt":
                must.append(m.FieldCondition(key=c.key, range=m.Range(gt=c.value)))
            else:
                must.append(m.FieldCondition(key=c.key, range=m.Range(lte=c.value)))
        return m.Filter(must=must)

    def search(self, searches: Sequence[Search]) -> list[list[PointHit]]:
        if not searches:
            return []
        m = self._m
        requests = []
        for s in searches:
            vector = m.SparseVector(indices=s.vector[0], values=s.vector[1]) if s.sparse else list(s.vector)
            requests.append(m.QueryRequest(query=vector, using=vector_name(s), filter=self._filter(s.where),
                                           limit=s.limit, with_payload=True,
                                           with_vector=[DENSE] if s.with_vectors else False))
        with self._guard:
            responses = self.client.query_batch_points(self.collection, requests)
        return [[_hit(p, self.schema.distance if not s.sparse else "cosine") for p in r.points]
                for s, r in zip(searches, responses, strict=True)]

    def count(self, where: Sequence[Condition] = ()) -> int:
        with self._guard:
            return int(self.client.count(self.collection, count_filter=self._filter(where), exact=True).count)

    def scan(self, where: Sequence[Condition] = (), fields: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        offset = None
        while True:
            with self._guard:
                records, offset = self.client.scroll(self.collection, scroll_filter=self._filter(where), limit=1000,
                                                     offset=offset, with_payload=list(fields) or True, with_vectors=False)
            for r in records:
                yield r.payload or {}
            if offset is None:
                return

    def flush(self) -> None:
        """Writes are sent with wait=True; nothing is buffered client-side."""

    def optimize(self) -> bool:
        """A Qdrant server optimizes in the background: nothing to do."""
        return False

    def compact(self) -> bool:
        """A Qdrant server rewrites segments with its own optimizer; nothing to do here.
        Returns False: deleted points are gone from queries at once, from disk when the
        server's optimizer vacuums the segment."""
        return False

    def close(self) -> None:
        if self.owns_client:
            with self._guard:
                self.client.close()


def _hit(point: Any, distance: str) -> PointHit:
    vector = point.vector.get(DENSE) if isinstance(point.vector, dict) else None
    return PointHit(point.payload or {}, similarity(float(point.score), distance), vector)
