"""The long-term tier: `FactIndex` (facts as points) over one `PointStore` interface with a
backend per engine: qdrant-edge (embedded, the default), qdrant-client (a server) and
PostgreSQL with pgvector."""

from ._base import (
    Delete,
    DeleteUser,
    IndexedFact,
    IndexHit,
    IndexOp,
    IndexQuery,
    QueryResult,
    SetPayload,
    Upsert,
)
from ._facts import EdgeFactIndex, FactIndex, PgVectorFactIndex, QdrantFactIndex
from ._points import Condition, Point, PointHit, PointStore, Schema, Search

__all__ = [
    "Condition",
    "Delete",
    "DeleteUser",
    "EdgeFactIndex",
    "FactIndex",
    "IndexHit",
    "IndexOp",
    "IndexQuery",
    "IndexedFact",
    "PgVectorFactIndex",
    "Point",
    "PointHit",
    "PointStore",
    "QdrantFactIndex",
    "QueryResult",
    "Schema",
    "Search",
    "SetPayload",
    "Upsert",
]
