"""The facts' index, as values: the operations and queries of the long-term tier, the
payload a fact is stored with, and what 'this user's valid facts' means as conditions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from .._models import Fact, as_utc
from .._text import SparseVec
from ._points import Condition, PointHit

TENANT_KEY = "user_id"
# The 'still valid' end of the validity window: after every date tiermem accepts (years up to
# 9000). Format 1 used the year 3000, which facts dated later ran into; indexes of that
# format are rebuilt once on open (IndexSync). Format 3: keyword tokens are Snowball stems
# (format 2's hand-written stemmer made other token ids), so the sparse vectors are rebuilt.
# Format 4: a second dense vector per fact, its text with its source turns (contextual).
# Format 5: on the sealed embedded index, keyword ids derived with the user's key (`_sealing`).
FAR_FUTURE = 253402300799.0  # 9999-12-31T23:59:59Z
INDEX_FORMAT = "5"
INDEX_FORMATS = {"2": "validity dates after 3000", "3": "Snowball stemming for keywords",
                 "4": "contextual vectors: each fact read with the turns it came from",
                 "5": "keyword ids derived with each user's key on the embedded index",
                 "6": "payloads and keyword ids sealed with each user's key on the pgvector index"}  # what each format brought
DERIVED_KEYS = frozenset({"valid_from_ts", "invalid_at_ts", "event_ts"})


class IndexedFact(NamedTuple):
    fact: Fact
    vector: Sequence[float]
    sparse: SparseVec
    context: Sequence[float] | None = None  # the fact read with its source turns (None: the vector)


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


class IndexHit(PointHit):
    """A fact's point as a search returned it. The `Fact` is built from the payload only
    when asked for: ranking reads a few payload fields, and most candidates are never returned."""

    __slots__ = ()

    @property
    def fact_id(self) -> str:
        return str(self.payload["id"])

    @property
    def fact(self) -> Fact:
        if self._cached is None:
            self._cached = from_payload(self.payload)
        return self._cached


class QueryResult(NamedTuple):
    dense: list[IndexHit]
    sparse: list[IndexHit]
    context: list[IndexHit] = []  # nearest by contextual vector  # noqa: RUF012 - never mutated


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


def conditions(user_id: str, as_of: datetime | None = None, kinds: Sequence[str] | None = None) -> list[Condition]:
    """What 'this user's facts, valid at as_of (default: now)' means, in one place."""
    max_from, min_invalid = validity_window(as_of)
    out = [Condition(TENANT_KEY, "eq", user_id), Condition("invalid_at_ts", "gt", min_invalid)]
    if max_from is not None:
        out.append(Condition("valid_from_ts", "lte", max_from))
    if kinds:
        out.append(Condition("kind", "any", list(kinds)))
    return out


def validity_window(as_of: datetime | None) -> tuple[float | None, float]:
    """(max valid_from_ts, min invalid_at_ts) for 'valid at as_of' (now: no lower bound)."""
    if as_of is None:
        return None, FAR_FUTURE - 1
    ts = as_utc(as_of).timestamp()
    return ts, ts
