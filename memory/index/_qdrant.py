"""QdrantFactIndex: facts in a Qdrant server or cluster, through qdrant-client.

The same client also runs in its own local mode (`QdrantClient(path=...)` or
`":memory:"`), which the contract tests use as a stand-in for a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import ConfigError, EmbeddingMismatch, StoreUnavailable
from ._base import (
    DENSE,
    SPARSE,
    TENANT_KEY,
    Delete,
    DeleteUser,
    IndexHit,
    IndexOp,
    IndexQuery,
    QueryResult,
    SetPayload,
    Upsert,
    point_id,
    to_payload,
    validity_window,
)


class QdrantFactIndex:
    """Facts in one Qdrant collection, every read filtered by the tenant key.

    Args:
        client: a ready ``qdrant_client.QdrantClient`` (server, cloud or local mode).
        dims: the embedder's vector size; checked against an existing collection.
        collection: the collection name.
    """

    def __init__(self, client: Any, dims: int, collection: str = "tiermem_facts"):
        from qdrant_client import models

        self._m = models
        self.client = client
        self.dims = dims
        self.collection = collection
        self.location = f"qdrant collection {collection!r}"
        self._ensure_collection()

    @classmethod
    def from_url(cls, url: str, dims: int, *, api_key: str | None = None, collection: str = "tiermem_facts") -> QdrantFactIndex:
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
                "or unset TIERMEM_QDRANT_URL to use the embedded index"
            ) from exc
        return cls(client, dims, collection)

    def _ensure_collection(self) -> None:
        m = self._m
        if self.client.collection_exists(self.collection):
            vectors = self.client.get_collection(self.collection).config.params.vectors
            stored = vectors[DENSE].size if isinstance(vectors, dict) else vectors.size
            if stored != self.dims:
                raise EmbeddingMismatch(
                    f"{self.location} holds {stored}-dimensional vectors but the embedder makes {self.dims}; "
                    "use the embedder it was built with, or another collection"
                )
            return
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: m.VectorParams(size=self.dims, distance=m.Distance.COSINE)},
            sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        self.client.create_payload_index(
            self.collection, TENANT_KEY, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)
        )
        self.client.create_payload_index(self.collection, "kind", m.PayloadSchemaType.KEYWORD)
        for key in ("valid_from_ts", "invalid_at_ts"):
            self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.FLOAT)

    # -- writes -----------------------------------------------------------------------------
    def apply(self, ops: Sequence[IndexOp]) -> None:
        m = self._m
        for op in ops:
            if isinstance(op, Upsert):
                points = [
                    m.PointStruct(
                        id=point_id(p.fact.id),
                        vector={DENSE: list(p.vector), SPARSE: m.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                        payload=to_payload(p.fact),
                    )
                    for p in op.points
                ]
                if points:
                    self.client.upsert(self.collection, points, wait=True)
            elif isinstance(op, SetPayload):
                for fact in op.facts:
                    self.client.overwrite_payload(self.collection, to_payload(fact), points=[point_id(fact.id)], wait=True)
            elif isinstance(op, Delete):
                if op.fact_ids:
                    self.client.delete(
                        self.collection, m.PointIdsList(points=[point_id(i) for i in op.fact_ids]), wait=True
                    )
            elif isinstance(op, DeleteUser):
                self.client.delete(self.collection, m.FilterSelector(filter=self._tenant(op.user_id)), wait=True)

    # -- reads ------------------------------------------------------------------------------
    def _tenant(self, user_id: str) -> Any:
        m = self._m
        return m.Filter(must=[m.FieldCondition(key=TENANT_KEY, match=m.MatchValue(value=user_id))])

    def _filter(self, user_id: str, as_of: Any = None, kinds: tuple[str, ...] | None = None) -> Any:
        m = self._m
        max_from, min_invalid = validity_window(as_of)
        must: list[Any] = [
            m.FieldCondition(key=TENANT_KEY, match=m.MatchValue(value=user_id)),
            m.FieldCondition(key="invalid_at_ts", range=m.Range(gt=min_invalid)),
        ]
        if max_from is not None:
            must.append(m.FieldCondition(key="valid_from_ts", range=m.Range(lte=max_from)))
        if kinds:
            must.append(m.FieldCondition(key="kind", match=m.MatchAny(any=list(kinds))))
        return m.Filter(must=must)

    def query(self, query: IndexQuery) -> QueryResult:
        m = self._m
        flt = self._filter(query.user_id, query.as_of, query.kinds)
        requests = [
            m.QueryRequest(query=list(query.dense), using=DENSE, filter=flt, limit=query.limit,
                           with_payload=True, with_vector=[DENSE] if query.with_vectors else False)
        ]
        if query.sparse and query.sparse[0]:
            requests.append(
                m.QueryRequest(
                    query=m.SparseVector(indices=query.sparse[0], values=query.sparse[1]), using=SPARSE,
                    filter=flt, limit=query.limit, with_payload=True,
                    with_vector=[DENSE] if query.with_vectors else False,
                )
            )
        responses = self.client.query_batch_points(self.collection, requests)
        dense = [_hit(p) for p in responses[0].points]
        sparse = [_hit(p) for p in responses[1].points] if len(responses) > 1 else []
        return QueryResult(dense, sparse)

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        if not vectors:
            return []
        m = self._m
        flt = self._filter(user_id)
        requests = [
            m.QueryRequest(query=list(v), using=DENSE, filter=flt, limit=limit, with_payload=True) for v in vectors
        ]
        return [[_hit(p) for p in r.points] for r in self.client.query_batch_points(self.collection, requests)]

    def count(self, user_id: str | None = None) -> int:
        flt = self._tenant(user_id) if user_id is not None else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def ids(self, user_id: str | None = None) -> set[str]:
        flt = self._tenant(user_id) if user_id is not None else None
        out: set[str] = set()
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=1000, offset=offset, with_payload=["id"], with_vectors=False
            )
            out.update(r.payload["id"] for r in records)
            if offset is None:
                return out

    def flush(self) -> None:
        """Writes are sent with wait=True; nothing is buffered client-side."""

    def close(self) -> None:
        self.client.close()


def _hit(point: Any) -> IndexHit:
    vector = point.vector.get(DENSE) if isinstance(point.vector, dict) else None
    return IndexHit(point.payload, float(point.score), vector)
