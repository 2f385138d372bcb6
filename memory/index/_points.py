"""One collection of points (a dense vector, a BM25 sparse vector, a JSON payload): the
interface every long-term backend implements once, and the facts' and the items' indexes
both stand on.

Queries and conditions are plain values, so a backend is a translator from them to one
engine's API (qdrant-edge, qdrant-client; PostgreSQL with pgvector), and the same contract
tests run against each. A backend guards itself against concurrent use from several
threads; its callers never hold a lock around it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from .._text import SparseVec

DENSE = "dense"
CONTEXT = "context"  # a second dense vector: the point's text with the passage it came from
SPARSE = "bm25"
Distance = Literal["cosine", "l2", "inner_product"]
DISTANCES: tuple[str, ...] = ("cosine", "l2", "inner_product")


class Point(NamedTuple):
    id: str  # a UUID string (see `point_id`)
    dense: Sequence[float]
    sparse: SparseVec
    payload: dict[str, Any]
    context: Sequence[float] | None = None  # collections with `Schema.context`; None: the dense vector


class Condition(NamedTuple):
    """One filter condition: "eq" (a keyword), "any" (one of the keywords), "gt" / "lte" (a number)."""

    key: str
    op: str
    value: Any


class Search(NamedTuple):
    """The nearest points to `vector` (dense, sparse with `sparse=True`, or the contextual
    vectors with `context=True`) among those matching every condition. `with_vectors`
    returns each hit's dense vector."""

    vector: Sequence[float] | SparseVec
    where: Sequence[Condition]
    limit: int
    sparse: bool = False
    with_vectors: bool = False
    context: bool = False


class PointHit:
    """A point a search returned. Similarity: higher is closer, whatever the distance."""

    __slots__ = ("payload", "score", "vector", "_cached")

    def __init__(self, payload: dict[str, Any], score: float, vector: list[float] | None = None):
        self.payload = payload
        self.score = score
        self.vector = vector
        self._cached: Any = None


class Schema(NamedTuple):
    """What a collection indexes in its payloads, and how its dense vectors compare."""

    keywords: tuple[str, ...] = ()
    floats: tuple[str, ...] = ()
    tenant: str | None = None  # a keyword every read filters on (stored together by the engine)
    distance: str = "cosine"
    context: bool = False  # a second dense vector per point (`Point.context`, `Search(context=True)`)


PLAIN = Schema()


class PointStore(Protocol):
    """One collection of points in one engine."""

    dims: int
    location: str

    def upsert(self, points: Sequence[Point]) -> None: ...

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None: ...

    def delete(self, point_ids: Sequence[str]) -> None: ...

    def delete_where(self, where: Sequence[Condition]) -> None: ...

    def search(self, searches: Sequence[Search]) -> list[list[PointHit]]: ...

    def count(self, where: Sequence[Condition] = ()) -> int: ...

    def scan(self, where: Sequence[Condition] = (), fields: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """The payloads (only `fields` of them, when given) of every matching point."""
        ...

    def flush(self) -> None: ...

    def optimize(self) -> bool:
        """Maintenance: build vector indexes now, where the engine does not do it itself."""
        ...

    def compact(self) -> bool:
        """Rewrite storage so deleted points leave nothing on disk, where the engine can.
        Returns whether it did."""
        ...

    def close(self) -> None: ...


def point_id(key: str) -> str:
    """Engines take UUIDs (or integers) as point ids: ours are uuid4 hex, anything else
    (a mem0 import's id) is hashed to a UUID."""
    try:
        return str(uuid.UUID(hex=key))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tiermem:{key}"))


def vector_name(search: Search) -> str:
    """Which of a point's vectors a search compares with."""
    return SPARSE if search.sparse else CONTEXT if search.context else DENSE


def context_of(point: Point) -> Sequence[float]:
    """The contextual vector a point is stored with: its own, or its dense vector."""
    return point.context if point.context is not None else point.dense


def similarity(raw: float, distance: str) -> float:
    """Qdrant scores Euclid as a distance (lower is closer): negated, higher is always better."""
    return -raw if distance == "l2" else raw
