"""ItemIndex: the vectors of the item tier (a LangGraph store's documents), points in one
collection of the same engines as the facts' (`PointStore`).

One point per embedded field of an item, with a dense vector and a BM25 sparse vector.
Every point carries `ns_prefixes`, the namespace and each of its ancestors ("users",
"users.ana", ...): a search filters on it in the engine, so a query under ("users", "ana")
never reads a point of ("users", "bob").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import NamedTuple

from .._text import SparseVec
from ._points import Condition, Point, PointStore, Schema, Search

PREFIXES = "ns_prefixes"
ITEM = "item"
_ITEM_UUID = uuid.UUID("5f0d8c1e-7a43-4d36-9d7e-2b4f3c6a9e10")


def item_schema(distance: str) -> Schema:
    return Schema(keywords=(PREFIXES, ITEM), distance=distance)


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


class ItemHit(NamedTuple):
    namespace: str
    key: str
    score: float  # similarity: higher is closer, whatever the distance


class ItemIndex:
    """Item fields as points, filtered by namespace prefix in the engine."""

    def __init__(self, points: PointStore):
        self.points = points
        self.dims = points.dims

    def upsert(self, fields: Sequence[FieldPoint]) -> None:
        self.points.upsert([
            Point(str(uuid.uuid5(_ITEM_UUID, f"{f.namespace}\x00{f.key}\x00{f.field}")), f.vector, f.sparse,
                  {"ns": f.namespace, "key": f.key, "field": f.field, ITEM: item_ref(f.namespace, f.key),
                   PREFIXES: prefixes(f.namespace)})
            for f in fields
        ])

    def delete_items(self, refs: Sequence[str]) -> None:
        for start in range(0, len(refs), 500):
            self.points.delete_where([Condition(ITEM, "any", list(refs[start:start + 500]))])

    def _search(self, vector: Sequence[float] | SparseVec, prefix: str, limit: int, sparse: bool) -> list[ItemHit]:
        where = [Condition(PREFIXES, "eq", prefix)] if prefix else []
        [hits] = self.points.search([Search(vector, where, limit, sparse=sparse)])
        return [ItemHit(h.payload["ns"], h.payload["key"], h.score) for h in hits]

    def dense(self, vector: Sequence[float], prefix: str, limit: int) -> list[ItemHit]:
        return self._search(vector, prefix, limit, sparse=False)

    def sparse(self, vector: SparseVec, prefix: str, limit: int) -> list[ItemHit]:
        return self._search(vector, prefix, limit, sparse=True) if vector[0] else []

    def count(self) -> int:
        return self.points.count()

    def compact(self) -> bool:
        return self.points.compact()

    def close(self) -> None:
        self.points.close()
