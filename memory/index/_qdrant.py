"""QdrantFactIndex: facts in a Qdrant server or cluster, through qdrant-client.

The same client also runs in its own local mode (`QdrantClient(path=...)` or
`":memory:"`), which the contract tests use as a stand-in for a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import ConfigError, EmbeddingMismatch, StoreUnavailable
from .._models import Fact
from ._base import (
    DENSE,
    SPARSE,
    TENANT_KEY,
    Condition,
    IndexedFact,
    IndexHit,
    IndexQuery,
    OpDispatch,
    QueryResult,
    conditions,
    hit_from,
    point_id,
    to_payload,
)


class QdrantFactIndex(OpDispatch):
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
    def _upsert(self, points: Sequence[IndexedFact]) -> None:
        m = self._m
        self.client.upsert(self.collection, [
            m.PointStruct(
                id=point_id(p.fact.id),
                vector={DENSE: list(p.vector), SPARSE: m.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                payload=to_payload(p.fact),
            )
            for p in points
        ], wait=True)

    def _set_payload(self, fact: Fact) -> None:
        self.client.overwrite_payload(self.collection, to_payload(fact), points=[point_id(fact.id)], wait=True)

    def _delete(self, fact_ids: Sequence[str]) -> None:
        self.client.delete(self.collection, self._m.PointIdsList(points=[point_id(i) for i in fact_ids]), wait=True)

    def _delete_user(self, user_id: str) -> None:
        self.client.delete(self.collection, self._m.FilterSelector(filter=self._filter(conditions(user_id)[:1])), wait=True)

    # -- reads ------------------------------------------------------------------------------
    def _filter(self, conds: Sequence[Condition]) -> Any:
        m = self._m
        must: list[Any] = []
        for c in conds:
            if c.op == "eq":
                must.append(m.FieldCondition(key=c.key, match=m.MatchValue(value=c.value)))
            elif c.op == "any":
                must.append(m.FieldCondition(key=c.key, match=m.MatchAny(any=c.value)))
            elif c.op == "gt":
                must.append(m.FieldCondition(key=c.key, range=m.Range(gt=c.value)))
            else:
                must.append(m.FieldCondition(key=c.key, range=m.Range(lte=c.value)))
        return m.Filter(must=must)

    def query(self, query: IndexQuery) -> QueryResult:
        m = self._m
        flt = self._filter(conditions(query.user_id, query.as_of, query.kinds))
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
        dense = [hit_from(p) for p in responses[0].points]
        sparse = [hit_from(p) for p in responses[1].points] if len(responses) > 1 else []
        return QueryResult(dense, sparse)

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        if not vectors:
            return []
        m = self._m
        flt = self._filter(conditions(user_id))
        requests = [
            m.QueryRequest(query=list(v), using=DENSE, filter=flt, limit=limit, with_payload=True) for v in vectors
        ]
        return [[hit_from(p) for p in r.points] for r in self.client.query_batch_points(self.collection, requests)]

    def count(self, user_id: str | None = None) -> int:
        flt = self._filter(conditions(user_id)[:1]) if user_id is not None else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def ids(self, user_id: str | None = None) -> set[str]:
        flt = self._filter(conditions(user_id)[:1]) if user_id is not None else None
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

    def optimize(self) -> bool:
        """A Qdrant server optimizes in the background: nothing to do."""
        return False

    def compact(self) -> bool:
        """A Qdrant server rewrites segments with its own optimizer; nothing to do here.
        Returns False: deleted points are gone from queries at once, from disk when the
        server's optimizer vacuums the segment."""
        return False

    def close(self) -> None:
        self.client.close()

