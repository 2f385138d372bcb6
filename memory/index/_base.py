"""The long-term tier's interface. Operations and queries are plain values, so a backend
is a translator from them to one Qdrant API, and tests can replay them against any backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from .._models import Fact, as_utc
from .._text import SparseVec

DENSE = "dense"
SPARSE = "bm25"
TENANT_KEY = "user_id"
# The 'still valid' end of the validity window: after every date tiermem accepts (years up to
# 9000). Format 1 used the year 3000, which facts dated later ran into; indexes of that
# format are rebuilt once on open (IndexSync). Format 3: keyword tokens are Snowball stems
# (format 2's hand-written stemmer made other token ids), so the sparse vectors are rebuilt.
FAR_FUTURE = 253402300799.0  # 9999-12-31T23:59:59Z
INDEX_FORMAT = "3"
INDEX_FORMATS = {"2": "validity dates after 3000", "3": "Snowball stemming for keywords"}  # what each format brought
DERIVED_KEYS = frozenset({"valid_from_ts", "invalid_at_ts", "event_ts"})


class IndexedFact(NamedTuple):
    fact: Fact
    vector: Sequence[float]
    sparse: SparseVec


class Upsert(NamedTuple):
    points: Sequence[IndexedFact]


class SetPayload(NamedTuple):
    facts: Sequence[Fact]


class Delete(NamedTuple):
    fact_ids: Sequence[str]


class DeleteUser(NamedTuple):
    user_id: str


IndexOp = Upsert | SetPayload | Delete | DeleteUser


class IndexQuery(NamedTuple):
    """Dense and sparse candidates for one user; `as_of` selects facts valid at that time."""

    user_id: str
    dense: Sequence[float]
    sparse: SparseVec | None
    limit: int
    as_of: datetime | None = None
    kinds: tuple[str, ...] | None = None
    with_vectors: bool = False  # also return dense vectors (for near-duplicate removal)


class IndexHit:
    """A point the index returned. The `Fact` is built from the payload only when asked
    for: ranking reads a few payload fields, and most candidates are never returned."""

    __slots__ = ("payload", "score", "vector", "_fact")

    def __init__(self, payload: dict[str, Any], score: float, vector: list[float] | None = None):
        self.payload = payload
        self.score = score
        self.vector = vector
        self._fact: Fact | None = None

    @property
    def fact_id(self) -> str:
        return str(self.payload["id"])

    @property
    def fact(self) -> Fact:
        if self._fact is None:
            self._fact = from_payload(self.payload)
        return self._fact


def hit_from(point: Any) -> IndexHit:
    """An IndexHit from either client's scored point (both have payload, score, vector)."""
    vector = point.vector.get(DENSE) if isinstance(point.vector, dict) else None
    return IndexHit(point.payload, float(point.score), vector)


class QueryResult(NamedTuple):
    dense: list[IndexHit]
    sparse: list[IndexHit]


class FactIndex(Protocol):
    """A Qdrant collection of facts, scoped by tenant on every read."""

    dims: int
    location: str

    def apply(self, ops: Sequence[IndexOp]) -> None: ...

    def query(self, query: IndexQuery) -> QueryResult: ...

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        """Nearest valid facts of one user for each vector (the dedup step)."""
        ...

    def count(self, user_id: str | None = None) -> int: ...

    def ids(self, user_id: str | None = None) -> set[str]: ...

    def flush(self) -> None: ...

    def optimize(self) -> bool:
        """Maintenance: build vector indexes now, where the backend does not do it itself."""
        ...

    def compact(self) -> bool:
        """Rewrite storage so deleted points leave nothing on disk, where the backend can."""
        ...

    def close(self) -> None: ...


# -- pure helpers shared by the backends ----------------------------------------------------

def timestamp(value: datetime | None) -> float:
    return as_utc(value).timestamp() if value is not None else FAR_FUTURE


def to_payload(fact: Fact) -> dict[str, Any]:
    payload = fact.model_dump(mode="json", exclude={"access_count", "last_accessed_at"})
    # Numeric copies for range filters: Qdrant compares floats faster than date strings.
    payload["valid_from_ts"] = timestamp(fact.valid_from)
    # World time decides validity (`as_of`); a fact retracted without a world end time
    # (expired_at only) stops at its record time.
    payload["invalid_at_ts"] = timestamp(fact.invalid_at if fact.invalid_at is not None else fact.expired_at)
    payload["event_ts"] = timestamp(fact.event_at or fact.valid_from)
    return payload


def from_payload(payload: dict[str, Any]) -> Fact:
    data = {k: v for k, v in payload.items() if k not in DERIVED_KEYS}
    return Fact.model_validate(data)


class Condition(NamedTuple):
    """One backend-neutral filter condition; each backend maps it to its own classes."""

    key: str
    op: str  # "eq" | "any" | "gt" | "lte"
    value: Any


def conditions(user_id: str, as_of: datetime | None = None, kinds: Sequence[str] | None = None) -> list[Condition]:
    """What 'this user's facts, valid at as_of (default: now)' means, in one place."""
    max_from, min_invalid = validity_window(as_of)
    out = [Condition(TENANT_KEY, "eq", user_id), Condition("invalid_at_ts", "gt", min_invalid)]
    if max_from is not None:
        out.append(Condition("valid_from_ts", "lte", max_from))
    if kinds:
        out.append(Condition("kind", "any", list(kinds)))
    return out


class OpDispatch:
    """`apply()` for a backend: routes each op value to the backend's four primitives."""

    def apply(self, ops: Sequence[IndexOp]) -> None:
        for op in ops:
            if isinstance(op, Upsert):
                if op.points:
                    self._upsert(op.points)
            elif isinstance(op, SetPayload):
                for fact in op.facts:
                    self._set_payload(fact)
            elif isinstance(op, Delete):
                if op.fact_ids:
                    self._delete(op.fact_ids)
            elif isinstance(op, DeleteUser):
                self._delete_user(op.user_id)
            else:
                raise TypeError(f"unknown index op {op!r}; expected Upsert, SetPayload, Delete or DeleteUser")

    def _upsert(self, points: Sequence[IndexedFact]) -> None:
        raise NotImplementedError

    def _set_payload(self, fact: Fact) -> None:
        raise NotImplementedError

    def _delete(self, fact_ids: Sequence[str]) -> None:
        raise NotImplementedError

    def _delete_user(self, user_id: str) -> None:
        raise NotImplementedError


def validity_window(as_of: datetime | None) -> tuple[float | None, float]:
    """(max valid_from_ts, min invalid_at_ts) for 'valid at as_of' (now: no lower bound)."""
    if as_of is None:
        return None, FAR_FUTURE - 1
    ts = as_utc(as_of).timestamp()
    return ts, ts


def point_id(fact_id: str) -> str:
    """Qdrant point ids must be UUIDs or integers; ours are uuid4 hex, foreign ones are hashed."""
    try:
        return str(uuid.UUID(hex=fact_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tiermem:{fact_id}"))
