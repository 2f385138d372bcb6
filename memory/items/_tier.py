"""The item tier: JSON documents under namespaces (what a LangGraph store keeps), stored in
the session tier, their fields embedded into a collection of the long-term tier's engine,
found by meaning and keywords, expired by TTL, erased like facts.

`ItemTier.run(ops, index)` takes a batch of `ItemOp` values and answers each, reads
before writes (as LangGraph's stores do: a read in a batch sees the items as they were
before the batch's puts). Deleting an item erases it: its row is scrubbed from the
database files and its points are rewritten out of the index files.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._errors import EmbeddingMismatch, InvalidInput
from .._models import utcnow
from .._text import sparse_document, sparse_query
from ..embed import Embedder
from ..index._items import FieldPoint, ItemHit, ItemIndex, item_ref, item_schema
from ..index._points import PointStore, Schema
from ..session import ITEM_TABLES, SessionStore
from ._filters import Matcher, compile_filter
from ._ops import (
    GetItem,
    IndexText,
    ItemIndexSpec,
    ItemOp,
    ItemRecord,
    ItemResult,
    ListNamespaces,
    PendingItems,
    PutItem,
    SearchItems,
    SweepItems,
)

RRF_K = 60
INDEXES_KEY = "item_indexes"  # session meta: the (distance, dims) collections items were ever indexed in
Opener = Callable[[str, int, Schema], PointStore]


def check_namespace(namespace: Any, *, allow_empty: bool) -> tuple[str, ...]:
    """A namespace: a list of non-empty string labels without "." or NUL (the rules of
    LangGraph's stores)."""
    if not isinstance(namespace, tuple | list):
        raise InvalidInput(f"namespace must be a tuple of strings, got {type(namespace).__name__}")
    if not namespace and not allow_empty:
        raise InvalidInput("Namespace cannot be empty.")
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidInput(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels must be strings")
        if not label:
            raise InvalidInput(f"Namespace labels cannot be empty strings. Got {tuple(namespace)}")
        if "." in label:
            raise InvalidInput(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels cannot contain periods ('.')")
        if "\x00" in label:
            raise InvalidInput(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels cannot contain NUL bytes")
    return tuple(namespace)


def check_page(limit: Any, offset: Any) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1_000_000_000:
            raise InvalidInput(f"{name} must be an integer from 0 to 1,000,000,000, got {value!r}")


def _check(op: ItemOp) -> Matcher | None:
    """Validate one op before anything runs; returns a search's compiled filter."""
    if isinstance(op, GetItem):
        check_namespace(op.namespace, allow_empty=False)
        _check_key(op.key)
    elif isinstance(op, PutItem):
        check_namespace(op.namespace, allow_empty=False)
        _check_key(op.key)
        if op.ttl is not None and (not math.isfinite(op.ttl) or not 0 < op.ttl <= 1e9):
            raise InvalidInput(f"ttl must be a positive number of minutes (at most 1e9) or None, got {op.ttl!r}")
        if op.value is not None:
            try:
                json.dumps(op.value, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"value of {op.namespace}/{op.key} is not plain JSON ({exc})") from None
    elif isinstance(op, SearchItems):
        check_namespace(op.namespace_prefix, allow_empty=True)
        check_page(op.limit, op.offset)
        return compile_filter(op.filter)
    elif isinstance(op, ListNamespaces):
        for _, path in op.conditions:
            check_namespace([label for label in path], allow_empty=True)
        check_page(op.limit, op.offset)
        if op.max_depth is not None and op.max_depth < 1:
            raise InvalidInput(f"max_depth must be a positive integer or None, got {op.max_depth!r}")
    elif isinstance(op, PendingItems):
        check_page(op.limit, 0)
    return None


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key or "\x00" in key:
        raise InvalidInput(f"key must be a non-empty string without NUL, got {key!r}")


def _ns(labels: Sequence[str]) -> str:
    return ".".join(labels)


def _labels(text: str) -> list[str]:
    return text.split(".") if text else []


def _record(row: Any, value: dict[str, Any] | None = None, score: float | None = None) -> ItemRecord:
    return ItemRecord(namespace=_labels(row.namespace), key=row.key, value=value if value is not None else json.loads(row.value),
                      created_at=row.created_at, updated_at=row.updated_at, score=score)


def _matches(namespace: list[str], path: Sequence[str], suffix: bool) -> bool:
    if len(namespace) < len(path):
        return False
    pairs = zip(reversed(namespace), reversed(path), strict=False) if suffix else zip(namespace, path, strict=False)
    return all(p == "*" or n == p for n, p in pairs)


class ItemTier:
    """Args:
        session: where the documents live (its item table).
        embedder: embeds what a caller sends without vectors.
        open_points: opens a collection of the facts' engine by name (an embedded shard
            beside the facts', or a collection on the same Qdrant server).
        lock: the memory's write lock (writes run under it; reads take none).
    """

    def __init__(self, session: SessionStore, embedder: Embedder, open_points: Opener, lock: threading.RLock):
        self.session = session
        self.embedder = embedder
        self.open_points = open_points
        self.lock = lock
        self._indexes: dict[tuple[str, int], ItemIndex] = {}
        self._opening = threading.Lock()

    def _index(self, spec: ItemIndexSpec) -> ItemIndex:
        key = (spec.distance, spec.dims)
        with self._opening:
            if key not in self._indexes:
                self._indexes[key] = ItemIndex(self.open_points(f"{spec.distance}-{spec.dims}", spec.dims,
                                                                item_schema(spec.distance)))
                used = {tuple(k) for k in json.loads(self.session.get_meta(INDEXES_KEY) or "[]")}
                if key not in used:
                    self.session.set_meta(INDEXES_KEY, json.dumps(sorted([*used, key])))
            return self._indexes[key]

    def _all_indexes(self) -> list[ItemIndex]:
        specs = json.loads(self.session.get_meta(INDEXES_KEY) or "[]")
        return [self._index(ItemIndexSpec(distance=distance, dims=dims)) for distance, dims in specs]

    # -- the batch ------------------------------------------------------------------------------
    def run(self, ops: Sequence[ItemOp], index: ItemIndexSpec | None) -> list[ItemResult]:
        filters = {i: f for i, op in enumerate(ops) if (f := _check(op)) is not None}
        vectors = self._embed(ops, index)
        now = utcnow()
        results: list[ItemResult] = [None] * len(ops)
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetItem)]
        if gets:
            self._gets(gets, results, now)
        for i, op in enumerate(ops):
            if isinstance(op, SearchItems):
                results[i] = self._search(op, filters[i], vectors.get(("query", i)), index, now)
            elif isinstance(op, ListNamespaces):
                results[i] = self._namespaces(op, now)
            elif isinstance(op, PendingItems):
                results[i] = self._pending(op.limit)
        puts = {(_ns(op.namespace), op.key): (i, op) for i, op in enumerate(ops) if isinstance(op, PutItem)}  # last wins
        if puts:
            self._puts(list(puts.values()), vectors, index, now)
        for i, op in enumerate(ops):
            if isinstance(op, SweepItems):
                results[i] = self.sweep(now)
        return results

    def _embed(self, ops: Sequence[ItemOp], index: ItemIndexSpec | None) -> dict[tuple[Any, ...], list[float]]:
        """The vectors the caller did not send, made with the memory's embedder."""
        wanted: dict[tuple[Any, ...], str] = {}
        for i, op in enumerate(ops):
            if isinstance(op, PutItem) and op.value is not None:
                wanted.update({("text", i, n): t.text for n, t in enumerate(op.texts) if t.vector is None})
            elif isinstance(op, SearchItems) and op.query and op.vector is None and index is not None:
                wanted[("query", i)] = op.query
        given: dict[tuple[Any, ...], list[float]] = {
            ("query", i): op.vector for i, op in enumerate(ops) if isinstance(op, SearchItems) and op.vector}
        given |= {("text", i, n): t.vector for i, op in enumerate(ops) if isinstance(op, PutItem)
                  for n, t in enumerate(op.texts) if t.vector is not None}
        if wanted and index is None:
            raise InvalidInput("texts to index need an index spec (its dims and distance)")
        if wanted and self.embedder.dims != index.dims:  # type: ignore[union-attr]
            raise EmbeddingMismatch(f"the index holds {index.dims}-dimensional vectors but {self.embedder.name} makes "  # type: ignore[union-attr]
                                    f"{self.embedder.dims}; send vectors made with the store's own embed")
        keys = list(wanted)
        made = self.embedder.embed([wanted[k] for k in keys]) if keys else []
        out = {**given, **dict(zip(keys, made, strict=True))}
        wrong = next((v for v in out.values() if index is not None and len(v) != index.dims), None)
        if wrong is not None:
            raise InvalidInput(f"a vector has {len(wrong)} dimensions; the index takes {index.dims}")  # type: ignore[union-attr]
        return out

    # -- reads -----------------------------------------------------------------------------------
    def _gets(self, gets: list[tuple[int, GetItem]], results: list[ItemResult], now: datetime) -> None:
        for omit in (False, True):
            chosen = [(i, op) for i, op in gets if op.omit_expired is omit]
            rows = self.session.store_get(list({(_ns(op.namespace), op.key) for _, op in chosen}), alive_at=now if omit else None)
            refresh = []
            for i, op in chosen:
                row = rows.get((_ns(op.namespace), op.key))
                results[i] = None if row is None else _record(row)
                if row is not None and op.refresh_ttl and row.ttl_minutes is not None:
                    refresh.append((row.namespace, row.key))
            if refresh:
                self.session.store_refresh(refresh, now)

    def _search(self, op: SearchItems, match: Matcher, vector: list[float] | None, index: ItemIndexSpec | None,
                now: datetime) -> list[ItemRecord]:
        prefix = _ns(op.namespace_prefix)
        alive_at = now if op.omit_expired else None
        if op.limit == 0:
            return []
        if vector is not None and index is not None:
            found = self._ranked(self._index(index), prefix, vector, op, match, alive_at)
        elif not op.filter:
            found = [_record(r) for r in self.session.store_search(prefix, alive_at=alive_at, limit=op.limit, offset=op.offset)]
        else:  # newest first, filtered here, the page counted after the filter
            passing = ((row, value) for row in self.session.store_scan(prefix, alive_at=alive_at)
                       if match(value := json.loads(row.value)))
            found = [_record(row, value) for row, value in itertools.islice(passing, op.offset, op.offset + op.limit)]
        if op.refresh_ttl and found:
            self.session.store_refresh([(_ns(r.namespace), r.key) for r in found], now)
        return found

    def _ranked(self, index: ItemIndex, prefix: str, vector: list[float], op: SearchItems, match: Matcher,
                alive_at: datetime | None) -> list[ItemRecord]:
        """Items under `prefix` best first by similarity, filtered; the index is asked for
        more points until the page is full or every point under the prefix was seen."""
        need = op.offset + op.limit
        # With a filter, a window of points may hold few passing items: start wider.
        wanted = max(need * 20, 200) if op.filter else max(need * 3, 50)
        while True:
            hits = index.dense(vector, prefix, wanted)
            best: dict[tuple[str, str], float] = {}
            for h in hits:  # points come best first: an item's first point is its best field
                best.setdefault((h.namespace, h.key), h.score)
            rows = self.session.store_get(list(best), alive_at=alive_at)
            values = {pair: json.loads(row.value) for pair, row in rows.items()}
            passing = [(pair, score) for pair, score in best.items() if pair in values and match(values[pair])]
            if len(passing) >= need or len(hits) < wanted:
                break
            wanted *= 4
        passing.sort(key=lambda p: (-p[1], p[0]))
        if op.ranking == "hybrid" and op.query:
            passing = _fuse(passing, index.sparse(sparse_query(op.query), prefix, wanted))
        return [_record(rows[pair], values[pair], score) for pair, score in passing[op.offset:need]]

    def _namespaces(self, op: ListNamespaces, now: datetime) -> list[list[str]]:
        namespaces = [_labels(t) for t in self.session.store_namespaces(now if op.omit_expired else None)]
        for kind, path in op.conditions:
            if path:
                namespaces = [ns for ns in namespaces if _matches(ns, path, kind == "suffix")]
        if op.max_depth is not None:
            namespaces = [list(t) for t in {tuple(ns[:op.max_depth]) for ns in namespaces}]
        return sorted(namespaces)[op.offset:op.offset + op.limit]

    def _pending(self, limit: int) -> list[ItemRecord]:
        return [_record(r).model_copy(update={"texts": [IndexText(**t) for t in json.loads(r.index_fields or "[]")]})
                for r in self.session.store_unembedded(limit)]

    # -- writes -----------------------------------------------------------------------------------
    def _puts(self, puts: list[tuple[int, PutItem]], vectors: dict[tuple[Any, ...], list[float]],
              index: ItemIndexSpec | None, now: datetime) -> None:
        deletes = [(_ns(op.namespace), op.key) for _, op in puts if op.value is None]
        rows: list[dict[str, Any]] = []
        points: list[FieldPoint] = []
        written: list[tuple[str, str]] = []
        unembedded: list[tuple[str, str]] = []
        for i, op in puts:
            if op.value is None:
                continue
            pair = (_ns(op.namespace), op.key)
            texts = [IndexText(field=t.field, text=t.text) for t in op.texts] if index is not None else []
            rows.append({"namespace": pair[0], "key": op.key, "value": json.dumps(op.value, ensure_ascii=False),
                         "created_at": now, "updated_at": now,
                         "expires_at": now + timedelta(minutes=op.ttl) if op.ttl is not None else None,
                         "ttl_minutes": op.ttl, "index_fields": json.dumps([t.model_dump() for t in texts]) if texts else None,
                         "embedded": not texts, "owner": op.owner})
            written.append(pair)
            if texts:
                unembedded.append(pair)
            points += [FieldPoint(pair[0], op.key, t.field, vectors[("text", i, n)], sparse_document(t.text))
                       for n, t in enumerate(texts)]
        touched = deletes + written
        with self.lock:
            # The documents first, then their vectors: a crash in between leaves items marked
            # embedded=False, which PendingItems hands back to be embedded again.
            if deletes:
                self.session.store_delete(deletes)
            self.session.store_put(rows)
            if index is not None:
                self._index(index)  # known from now on, so that every later write clears its points too
            for item_index in self._all_indexes():
                item_index.delete_items([item_ref(ns, key) for ns, key in touched])
            if points and index is not None:
                self._index(index).upsert(points)
                self.session.store_mark_embedded(unembedded, dict.fromkeys(unembedded, now))
            if deletes:
                self._erase_traces()

    def _erase_traces(self) -> None:
        """A deleted item's text leaves the disk: the database's freed pages and WAL, and
        the index files (rewritten without the deleted points)."""
        self.session.scrub(ITEM_TABLES)
        for item_index in self._all_indexes():
            item_index.compact()

    def sweep(self, now: datetime | None = None) -> int:
        """Delete the expired items, erased as any deleted item. Returns how many."""
        expired = self.session.store_expired(now or utcnow())
        if not expired:
            return 0
        with self.lock:
            removed = self.session.store_delete(expired)
            for item_index in self._all_indexes():
                item_index.delete_items([item_ref(ns, key) for ns, key in expired])
            self._erase_traces()
        return removed

    def _user_items(self, user_id: str) -> list[tuple[str, str]]:
        """The items declared the user's when written (`PutItem.owner`): a namespace label
        never makes an id a user."""
        return self.session.store_keys(owner=user_id)

    def has_items(self, user_id: str) -> bool:
        return bool(self._user_items(user_id))

    def erase_user(self, user_id: str) -> list[str]:
        """Erase the items of a user: those written with `owner=user_id`. Returns their values as text
        (to check the files for); the caller holds the write lock and scrubs the database."""
        pairs = self._user_items(user_id)
        if not pairs:
            return []
        values = [row.value for row in self.session.store_get(pairs).values()]
        self.session.store_delete(pairs)
        for item_index in self._all_indexes():
            item_index.delete_items([item_ref(ns, key) for ns, key in pairs])
            item_index.compact()
        return values

    def close(self) -> None:
        for item_index in self._indexes.values():
            item_index.close()
        self._indexes.clear()


def _fuse(dense: list[tuple[tuple[str, str], float]], sparse: Iterable[ItemHit]) -> list[tuple[tuple[str, str], float]]:
    """Reciprocal-rank fusion of the similarity order and the BM25 order (items that passed
    the filters only); cosine breaks ties."""
    keyword_rank: dict[tuple[str, str], int] = {}
    for h in sparse:
        keyword_rank.setdefault((h.namespace, h.key), len(keyword_rank))
    fused = {pair: 1 / (RRF_K + rank) + (1 / (RRF_K + keyword_rank[pair]) if pair in keyword_rank else 0.0)
             for rank, (pair, _) in enumerate(dense)}
    return sorted(dense, key=lambda p: (-fused[p[0]], -p[1], p[0]))
