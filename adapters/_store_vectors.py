"""The vectors of a LangGraph store's items, in Qdrant beside the memory's fact index.

One point per embedded field of an item, with a dense vector (the store's embedder) and a
BM25 sparse vector (tiermem's tokenizer). Every point carries `ns_prefixes`, the namespace
and each of its ancestors ("users", "users.ana", ...): a search filters on it in the
index, so a query under ("users", "ana") never reads a point of ("users", "bob").

The embedded default is a qdrant-edge shard in the home (`store_index/<distance>-<dims>`);
a memory on a Qdrant server gets a collection on the same server.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from tiermem._text import SparseVec

DENSE = "dense"
SPARSE = "bm25"
PREFIXES = "ns_prefixes"
ITEM = "item"
DISTANCES = ("cosine", "l2", "inner_product")
_NAMESPACE_UUID = uuid.UUID("5f0d8c1e-7a43-4d36-9d7e-2b4f3c6a9e10")


def item_ref(namespace: str, key: str) -> str:
    return f"{namespace}\x00{key}"


def prefixes(namespace: str) -> list[str]:
    labels = namespace.split(".")
    return [".".join(labels[:i]) for i in range(1, len(labels) + 1)]


class FieldPoint(NamedTuple):
    namespace: str
    key: str
    field: str
    vector: Sequence[float]
    sparse: SparseVec


class PointHit(NamedTuple):
    namespace: str
    key: str
    score: float  # similarity: higher is closer, whatever the distance


def _point_id(namespace: str, key: str, field: str) -> str:
    return str(uuid.uuid5(_NAMESPACE_UUID, f"{namespace}\x00{key}\x00{field}"))


def _payload(p: FieldPoint) -> dict[str, Any]:
    return {"ns": p.namespace, "key": p.key, "field": p.field, ITEM: item_ref(p.namespace, p.key),
            PREFIXES: prefixes(p.namespace)}


class StoreVectors:
    """Backend-neutral part: the thread lock and the score convention."""

    def __init__(self, dims: int, distance: str):
        if distance not in DISTANCES:
            raise ValueError(f"distance_type must be one of {', '.join(DISTANCES)}, got {distance!r}")
        self.dims = dims
        self.distance = distance
        self._lock = threading.Lock()  # the edge shard is not safe for concurrent use

    def similarity(self, raw: float) -> float:
        # Qdrant scores Euclid as a distance (lower is closer); LangGraph's SQL stores report
        # the negated distance so that a higher score is always better.
        return -raw if self.distance == "l2" else raw

    # backends fill these in
    def upsert(self, points: Sequence[FieldPoint]) -> None: raise NotImplementedError
    def delete_items(self, refs: Sequence[str]) -> None: raise NotImplementedError
    def dense(self, vector: Sequence[float], prefix: str, limit: int) -> list[PointHit]: raise NotImplementedError
    def sparse(self, vector: SparseVec, prefix: str, limit: int) -> list[PointHit]: raise NotImplementedError
    def count(self) -> int: raise NotImplementedError
    def close(self) -> None: raise NotImplementedError


def _hits(points: Any, similarity: Any) -> list[PointHit]:
    return [PointHit(p.payload["ns"], p.payload["key"], similarity(float(p.score))) for p in points]


class EdgeStoreVectors(StoreVectors):
    """Points in an embedded qdrant-edge shard (folder locked like the fact index's)."""

    def __init__(self, folder: Path, dims: int, distance: str = "cosine"):
        super().__init__(dims, distance)
        import qdrant_edge as qe

        from tiermem.index._edge import _FolderLock, close_locked

        self._close_locked = close_locked

        self._qe = qe
        self.path = Path(folder)
        self._folder_lock = _FolderLock(self.path)
        try:
            if (self.path / "edge_config.json").exists():
                self._shard = qe.EdgeShard.load(str(self.path))
            else:
                metric = {"cosine": qe.Distance.Cosine, "l2": qe.Distance.Euclid, "inner_product": qe.Distance.Dot}[distance]
                self._shard = qe.EdgeShard.create(str(self.path), qe.EdgeConfig(
                    vectors={DENSE: qe.EdgeVectorParams(size=dims, distance=metric)},
                    sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                ))
                self._shard.update(qe.UpdateOperation.create_field_index(PREFIXES, qe.PayloadSchemaType.Keyword))
                self._shard.update(qe.UpdateOperation.create_field_index(ITEM, qe.PayloadSchemaType.Keyword))
        except BaseException:
            self._folder_lock.release()
            raise

    def _filter(self, prefix: str) -> Any:
        qe = self._qe
        return qe.Filter(must=[qe.FieldCondition(key=PREFIXES, match=qe.MatchValue(prefix))]) if prefix else None

    def upsert(self, points: Sequence[FieldPoint]) -> None:
        qe = self._qe
        with self._lock:
            self._shard.update(qe.UpdateOperation.upsert_points([
                qe.Point(id=_point_id(p.namespace, p.key, p.field),
                         vector={DENSE: list(p.vector), SPARSE: qe.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                         payload=_payload(p))
                for p in points
            ]))

    def delete_items(self, refs: Sequence[str]) -> None:
        qe = self._qe
        with self._lock:
            for start in range(0, len(refs), 500):
                flt = qe.Filter(must=[qe.FieldCondition(key=ITEM, match=qe.MatchAny(list(refs[start:start + 500])))])
                self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))

    def _query(self, query: Any, prefix: str, limit: int, similarity: Any) -> list[PointHit]:
        qe = self._qe
        request = qe.QueryRequest(limit=limit, query=query, filter=self._filter(prefix), with_payload=True, with_vector=False)
        with self._lock:
            points = self._shard.query(request)
        return _hits(points, similarity)

    def dense(self, vector: Sequence[float], prefix: str, limit: int) -> list[PointHit]:
        return self._query(self._qe.Query.Nearest(list(vector), using=DENSE), prefix, limit, self.similarity)

    def sparse(self, vector: SparseVec, prefix: str, limit: int) -> list[PointHit]:
        if not vector[0]:
            return []
        sparse = self._qe.SparseVector(indices=vector[0], values=vector[1])
        return self._query(self._qe.Query.Nearest(sparse, using=SPARSE), prefix, limit, float)  # BM25 weights as they are

    def count(self) -> int:
        with self._lock:
            return int(self._shard.count(self._qe.CountRequest(exact=True)))

    def close(self) -> None:
        with self._lock:
            if self._shard is None:
                return
            shard, self._shard = self._shard, None
            self._close_locked(shard, self._folder_lock)


class ClientStoreVectors(StoreVectors):
    """Points in a collection reached through qdrant-client (a server, or its local mode)."""

    def __init__(self, client: Any, collection: str, dims: int, distance: str = "cosine"):
        super().__init__(dims, distance)
        from qdrant_client import models

        self._m = models
        self.client = client
        self.collection = collection
        if not client.collection_exists(collection):
            metric = {"cosine": models.Distance.COSINE, "l2": models.Distance.EUCLID, "inner_product": models.Distance.DOT}[distance]
            client.create_collection(
                collection, vectors_config={DENSE: models.VectorParams(size=dims, distance=metric)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            client.create_payload_index(collection, PREFIXES, models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(collection, ITEM, models.PayloadSchemaType.KEYWORD)

    def _filter(self, prefix: str) -> Any:
        m = self._m
        return m.Filter(must=[m.FieldCondition(key=PREFIXES, match=m.MatchValue(value=prefix))]) if prefix else None

    def upsert(self, points: Sequence[FieldPoint]) -> None:
        m = self._m
        self.client.upsert(self.collection, [
            m.PointStruct(id=_point_id(p.namespace, p.key, p.field),
                          vector={DENSE: list(p.vector), SPARSE: m.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                          payload=_payload(p))
            for p in points
        ], wait=True)

    def delete_items(self, refs: Sequence[str]) -> None:
        m = self._m
        for start in range(0, len(refs), 500):
            flt = m.Filter(must=[m.FieldCondition(key=ITEM, match=m.MatchAny(any=list(refs[start:start + 500])))])
            self.client.delete(self.collection, m.FilterSelector(filter=flt), wait=True)

    def dense(self, vector: Sequence[float], prefix: str, limit: int) -> list[PointHit]:
        points = self.client.query_points(self.collection, query=list(vector), using=DENSE, query_filter=self._filter(prefix),
                                          limit=limit, with_payload=True).points
        return _hits(points, self.similarity)

    def sparse(self, vector: SparseVec, prefix: str, limit: int) -> list[PointHit]:
        if not vector[0]:
            return []
        points = self.client.query_points(self.collection, query=self._m.SparseVector(indices=vector[0], values=vector[1]),
                                          using=SPARSE, query_filter=self._filter(prefix), limit=limit, with_payload=True).points
        return _hits(points, float)

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def close(self) -> None:
        """The client belongs to the memory's fact index, which closes it."""
