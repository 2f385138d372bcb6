"""The long-term tier: one `FactIndex` interface, an embedded and a server backend."""

from ._base import (
    Delete,
    DeleteUser,
    FactIndex,
    IndexedFact,
    IndexHit,
    IndexOp,
    IndexQuery,
    QueryResult,
    SetPayload,
    Upsert,
)
from ._edge import EdgeFactIndex
from ._qdrant import QdrantFactIndex

__all__ = [
    "Delete",
    "DeleteUser",
    "EdgeFactIndex",
    "FactIndex",
    "IndexHit",
    "IndexOp",
    "IndexQuery",
    "IndexedFact",
    "QdrantFactIndex",
    "QueryResult",
    "SetPayload",
    "Upsert",
]
