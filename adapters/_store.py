"""TiermemStore: LangGraph's `BaseStore` on tiermem's tiers.

Values are JSON documents in the session tier (SQLite, or PostgreSQL by URL); the fields
an `IndexConfig` names are embedded into Qdrant beside the memory's facts
(`_store_vectors.py`). Where LangGraph's own stores disagree, this one follows its SQL
stores (SqliteStore / PostgresStore); `README.md` lists the choices.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import math
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

from tiermem import Memory
from tiermem._errors import EmbeddingMismatch, InvalidInput, MissingDependency
from tiermem._text import sparse_document, sparse_query

from ._store_filters import Matcher, compile_filter
from ._store_vectors import ClientStoreVectors, EdgeStoreVectors, FieldPoint, PointHit, StoreVectors, item_ref

logger = logging.getLogger("tiermem.langgraph")
Ranking = Literal["cosine", "hybrid"]
_RRF_K = 60


def _validate_labels(namespace: Sequence[Any], *, allow_empty: bool) -> tuple[str, ...]:
    """LangGraph's rules for namespace labels (non-empty strings without "." or NUL)."""
    if not isinstance(namespace, tuple | list):
        raise InvalidNamespaceError(f"namespace must be a tuple of strings, got {type(namespace).__name__}")
    if not namespace and not allow_empty:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    for label in namespace:
        if not isinstance(label, str):
            raise InvalidNamespaceError(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels must be strings")
        if not label:
            raise InvalidNamespaceError(f"Namespace labels cannot be empty strings. Got {tuple(namespace)}")
        if "." in label:
            raise InvalidNamespaceError(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels cannot contain periods ('.')")
        if "\x00" in label:
            raise InvalidNamespaceError(f"Invalid namespace label {label!r} in {tuple(namespace)}: labels cannot contain NUL bytes")
    return tuple(namespace)


def _ns_text(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def _ns_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def _matches(namespace: tuple[str, ...], path: Sequence[str], suffix: bool) -> bool:
    if len(namespace) < len(path):
        return False
    pairs = zip(reversed(namespace), reversed(path), strict=False) if suffix else zip(namespace, path, strict=False)
    return all(p == "*" or n == p for n, p in pairs)


class _TiermemEmbeddings:
    """The memory's own embedder (MiniLM by default) in LangChain's Embeddings shape."""

    def __init__(self, embedder: Any):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self.embedder.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return list(self.embedder.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


class _UnavailableEmbedder:
    """Stands in for MiniLM when it is not installed or exported: a store whose IndexConfig
    brings its own `embed` (or has none) never needs it; the memory's fact paths say why
    they cannot embed."""

    dims = 384
    name = identity = "all-MiniLM-L6-v2"

    def __init__(self, reason: Exception):
        self.reason = reason

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise MissingDependency(str(self.reason))

    def embed_query(self, text: str) -> list[float]:
        raise MissingDependency(str(self.reason))


@dataclass
class _Plan:
    """A batch after validation: what must be embedded before it can run."""

    ops: list[Op]
    put_ops: dict[tuple[tuple[str, ...], str], PutOp] = field(default_factory=dict)
    texts: list[tuple[tuple[str, ...], str, str, str]] = field(default_factory=list)  # ns, key, field, text
    queries: dict[int, str] = field(default_factory=dict)  # op index -> query text
    filters: dict[int, Matcher] = field(default_factory=dict)  # op index -> compiled SearchOp.filter


class TiermemStore(BaseStore):
    """A LangGraph `BaseStore` on tiermem: durable JSON items, semantic search through
    tiermem's index, TTL with a sweeper.

    Args:
        memory: an open `Memory`; items live in its session tier and index.
        index: LangGraph's `IndexConfig` (`dims`, `embed`, `fields`; `text_fields` and
            `distance_type` of SqliteStore are accepted too). Without `embed` the memory's
            embedder (MiniLM) is used. Without `index`, `query` is ignored by search.
        ttl: LangGraph's `TTLConfig` (`default_ttl` minutes, `refresh_on_read`,
            `omit_expired`, `sweep_interval_minutes`).
        ranking: "cosine" (default, as LangGraph's stores: `score` is the cosine similarity
            of the best-matching field, results best first) or "hybrid" (the order also
            weighs BM25 keyword matches by reciprocal-rank fusion; `score` stays cosine).

    Example:
        >>> with TiermemStore.open("./.tiermem", index={"dims": 384, "fields": ["text"]}) as store:
        ...     store.put(("users", "ana"), "diet", {"text": "Ana is vegetarian"})
        ...     store.search(("users", "ana"), query="what does Ana eat?")
    """

    supports_ttl = True

    def __init__(self, memory: Memory, *, index: IndexConfig | Mapping[str, Any] | None = None,
                 ttl: TTLConfig | Mapping[str, Any] | None = None, ranking: Ranking = "cosine", _owns_memory: bool = False):
        if ranking not in ("cosine", "hybrid"):
            raise InvalidInput(f"ranking must be 'cosine' or 'hybrid', got {ranking!r}")
        self.memory = memory
        self.session = memory.session
        self.ranking = ranking
        self.ttl_config: TTLConfig | None = dict(ttl) if ttl else None  # type: ignore[assignment]
        self._owns_memory = _owns_memory
        self._scratch: str | None = None
        self._closed = False
        self._sweeper: threading.Thread | None = None
        self._stop_sweeper = threading.Event()
        self.index_config: dict[str, Any] | None = None
        self.embeddings: Any = None
        self._fields: list[tuple[str, Any]] = []
        self._vectors: StoreVectors | None = None
        if index is not None:
            self._configure_index(dict(index))
            self.repair()

    # -- construction ------------------------------------------------------------------------
    def _configure_index(self, config: dict[str, Any]) -> None:
        embed = config.get("embed")
        self.embeddings = _TiermemEmbeddings(self.memory.embedder) if embed is None else ensure_embeddings(embed)
        dims = config.get("dims") or (self.memory.embedder.dims if embed is None else None)
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            raise InvalidInput(f"index['dims'] must be a positive integer (the size of the embed's vectors), got {dims!r}")
        if embed is None and dims != self.memory.embedder.dims:
            raise EmbeddingMismatch(f"index['dims'] is {dims} but the memory's embedder {self.memory.embedder.name} makes "
                                    f"{self.memory.embedder.dims}-dimensional vectors; drop 'dims' or pass an 'embed'")
        fields = config.get("fields", config.get("text_fields")) or ["$"]
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise InvalidInput(f"index['fields'] must be a list of field paths, got {fields!r}")
        self._fields = [(f, "$" if f == "$" else tokenize_path(f)) for f in fields]
        self.index_config = {**config, "dims": dims}
        self._vectors = self._open_vectors(dims, config.get("distance_type", "cosine"))

    def _open_vectors(self, dims: int, distance: str) -> StoreVectors:
        fact_index = self.memory.index
        client = getattr(fact_index, "client", None)
        if client is not None:
            return ClientStoreVectors(client, f"{fact_index.collection}_store_{distance}_{dims}", dims, distance)  # type: ignore[attr-defined]
        folder = Path(fact_index.path).parent / "store_index" / f"{distance}-{dims}"  # type: ignore[attr-defined]
        return EdgeStoreVectors(folder, dims, distance)

    @classmethod
    def open(cls, home: str | Path | None = None, *, index: IndexConfig | Mapping[str, Any] | None = None,
             ttl: TTLConfig | Mapping[str, Any] | None = None, ranking: Ranking = "cosine",
             **memory_options: Any) -> TiermemStore:
        """Open a Memory at `home` (as `Memory.open`) and a store on it; closing the store
        closes the memory. Usable as a context manager. `home=":memory:"` makes a scratch
        home that is deleted when the store closes (for tests). Starts the TTL sweeper when
        `ttl['sweep_interval_minutes']` is set."""
        if "embedder" not in memory_options:
            from tiermem._open import default_embedder

            try:
                memory_options["embedder"] = default_embedder()
            except MissingDependency as exc:
                if index is not None and dict(index).get("embed") is None:
                    raise
                memory_options["embedder"] = _UnavailableEmbedder(exc)
        scratch = None
        if str(home) == ":memory:":  # as SqliteStore.from_conn_string(":memory:"): gone when closed
            scratch = tempfile.mkdtemp(prefix="tiermem-store-")
            home = scratch
        memory = Memory.open(home, **memory_options)
        try:
            store = cls(memory, index=index, ttl=ttl, ranking=ranking, _owns_memory=True)
        except BaseException:
            memory.close()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        store._scratch = scratch
        if store.ttl_config and store.ttl_config.get("sweep_interval_minutes"):
            store.start_ttl_sweeper()
        return store

    def setup(self) -> None:
        """Nothing to do: the schema migrates when the memory opens (kept for code written
        for LangGraph's SQL stores, which need it)."""

    async def asetup(self) -> None:
        """See `setup`."""

    def close(self) -> None:
        """Stop the sweeper, release the index, and close the memory if `open()` made it."""
        if self._closed:
            return
        self._closed = True
        self.stop_ttl_sweeper(timeout=5)
        if self._vectors is not None:
            self._vectors.close()
        if self._owns_memory:
            self.memory.close()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> TiermemStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> TiermemStore:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.close)

    # -- batch ---------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        vectors = self._embed(plan)
        return self._execute(plan, vectors)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        plan = self._plan(ops)
        vectors = await self._aembed(plan)
        return await asyncio.to_thread(self._execute, plan, vectors)

    def _plan(self, ops: Iterable[Op]) -> _Plan:
        if self._closed:
            raise InvalidInput("this TiermemStore is closed; open a new one with TiermemStore.open()")
        plan = _Plan(list(ops))
        for i, op in enumerate(plan.ops):
            if isinstance(op, GetOp):
                _validate_labels(op.namespace, allow_empty=False)
            elif isinstance(op, SearchOp):
                _validate_labels(op.namespace_prefix, allow_empty=True)
                plan.filters[i] = compile_filter(op.filter)  # a bad filter fails before anything runs
                self._check_page(op.limit, op.offset)
                if op.query and self._vectors is not None:
                    plan.queries[i] = op.query
            elif isinstance(op, ListNamespacesOp):
                for condition in op.match_conditions or ():
                    if condition.match_type not in ("prefix", "suffix"):
                        raise InvalidInput(f"match_type must be 'prefix' or 'suffix', got {condition.match_type!r}")
                    _validate_labels(condition.path, allow_empty=True)
                self._check_page(op.limit, op.offset)
            elif isinstance(op, PutOp):
                _validate_labels(op.namespace, allow_empty=False)
                if not isinstance(op.key, str) or not op.key:
                    raise InvalidInput(f"key must be a non-empty string, got {op.key!r}")
                if op.value is not None and not isinstance(op.value, Mapping):
                    raise InvalidInput(f"value must be a dict (or None to delete), got {type(op.value).__name__}")
                if op.index not in (None, False) and (not isinstance(op.index, list | tuple)
                                                      or not all(isinstance(p, str) and p for p in op.index)):
                    raise InvalidInput(f"index must be False, None or a list of field paths, got {op.index!r}")
                if op.ttl is not None and (not isinstance(op.ttl, int | float) or isinstance(op.ttl, bool)
                                           or not math.isfinite(op.ttl) or op.ttl <= 0):
                    raise InvalidInput(f"ttl must be a positive number of minutes or None, got {op.ttl!r}")
                plan.put_ops[(tuple(op.namespace), op.key)] = op  # last write wins
            else:
                raise InvalidInput(f"unknown operation {type(op).__name__}; expected GetOp, PutOp, SearchOp or ListNamespacesOp")
        for (namespace, key), op in plan.put_ops.items():
            if op.value is None or op.index is False or self._vectors is None:
                continue
            paths = self._fields if op.index is None else [(p, "$" if p == "$" else tokenize_path(p)) for p in op.index]
            for path, tokens in paths:
                texts = get_text_at_path(dict(op.value), tokens)
                for n, text in enumerate(texts):
                    plan.texts.append((namespace, key, f"{path}.{n}" if len(texts) > 1 else path, text))
        return plan

    @staticmethod
    def _check_page(limit: Any, offset: Any) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise InvalidInput(f"limit must be a non-negative integer, got {limit!r}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidInput(f"offset must be a non-negative integer, got {offset!r}")

    def _embed(self, plan: _Plan) -> tuple[list[list[float]], dict[int, list[float]]]:
        if self.embeddings is None:
            return [], {}
        docs = self.embeddings.embed_documents([t[3] for t in plan.texts]) if plan.texts else []
        queries = {i: self.embeddings.embed_query(q) for i, q in plan.queries.items()}
        return docs, queries

    async def _aembed(self, plan: _Plan) -> tuple[list[list[float]], dict[int, list[float]]]:
        if self.embeddings is None:
            return [], {}
        docs = await self.embeddings.aembed_documents([t[3] for t in plan.texts]) if plan.texts else []
        queries = {i: await self.embeddings.aembed_query(q) for i, q in plan.queries.items()}
        return docs, queries

    def _execute(self, plan: _Plan, vectors: tuple[list[list[float]], dict[int, list[float]]]) -> list[Result]:
        """Reads first, then writes (as LangGraph's stores do): a read in a batch sees the
        store as it was before the batch's puts."""
        docs, queries = vectors
        if len(docs) != len(plan.texts):
            raise InvalidInput(f"the embed function returned {len(docs)} vectors for {len(plan.texts)} texts")
        now = datetime.now(UTC)
        results: list[Result] = [None] * len(plan.ops)
        gets = [(i, op) for i, op in enumerate(plan.ops) if isinstance(op, GetOp)]
        if gets:
            self._gets(gets, results, now)
        for i, op in enumerate(plan.ops):
            if isinstance(op, SearchOp):
                results[i] = self._search(op, plan.filters[i], queries.get(i), now)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op, now)
        if plan.put_ops:
            self._puts(plan, docs, now)
        return results

    # -- reads ---------------------------------------------------------------------------------
    @property
    def _refreshes(self) -> bool:
        """Reads restart TTLs only when the TTL config says `refresh_on_read` (as LangGraph's
        SQL stores do: an item's TTL otherwise runs from its last write)."""
        return bool(self.ttl_config and self.ttl_config.get("refresh_on_read"))

    def _alive_at(self, now: datetime) -> datetime | None:
        return now if self.ttl_config and self.ttl_config.get("omit_expired") else None

    def _gets(self, gets: list[tuple[int, GetOp]], results: list[Result], now: datetime) -> None:
        pairs = list({(_ns_text(op.namespace), op.key) for _, op in gets})
        rows = self.session.store_get(pairs, alive_at=self._alive_at(now))
        refresh = []
        for i, op in gets:
            row = rows.get((_ns_text(op.namespace), op.key))
            results[i] = None if row is None else _item(row)
            if row is not None and op.refresh_ttl and self._refreshes and row.ttl_minutes is not None:
                refresh.append((row.namespace, row.key))
        if refresh:
            self.session.store_refresh(refresh, now)

    def _search(self, op: SearchOp, match: Matcher, query_vector: list[float] | None, now: datetime) -> list[SearchItem]:
        prefix = _ns_text(op.namespace_prefix)
        alive_at = self._alive_at(now)
        if op.limit == 0:
            return []
        if query_vector is not None and self._vectors is not None:
            found = self._ranked(prefix, query_vector, op, match, alive_at)
        elif not op.filter:
            found = [_search_item(r, json.loads(r.value), None)
                     for r in self.session.store_search(prefix, alive_at=alive_at, limit=op.limit, offset=op.offset)]
        else:  # newest first, filtered here, the page counted after the filter
            passing = ((row, value) for row in self.session.store_scan(prefix, alive_at=alive_at)
                       if match(value := json.loads(row.value)))
            found = [_search_item(row, value, None) for row, value in itertools.islice(passing, op.offset, op.offset + op.limit)]
        if op.refresh_ttl and self._refreshes:
            self.session.store_refresh([(_ns_text(i.namespace), i.key) for i in found], now)
        return found

    def _ranked(self, prefix: str, vector: list[float], op: SearchOp, match: Matcher,
                alive_at: datetime | None) -> list[SearchItem]:
        """Items under `prefix` best first by similarity, filtered; the index is asked for
        more points until the page is full or every point under the prefix was seen."""
        assert self._vectors is not None
        need = op.offset + op.limit
        # With a filter, a window of points may hold few passing items: start wider.
        wanted = max(need * 20, 200) if op.filter else max(need * 3, 50)
        while True:
            hits = self._vectors.dense(vector, prefix, wanted)
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
        if self.ranking == "hybrid" and op.query:
            passing = self._fuse(passing, self._vectors.sparse(sparse_query(op.query), prefix, wanted))
        return [_search_item(rows[pair], values[pair], score) for pair, score in passing[op.offset:need]]

    @staticmethod
    def _fuse(dense: list[tuple[tuple[str, str], float]], sparse: list[PointHit]) -> list[tuple[tuple[str, str], float]]:
        """Reciprocal-rank fusion of the similarity order and the BM25 order (items that
        passed the filters only); cosine breaks ties."""
        keyword_rank: dict[tuple[str, str], int] = {}
        for h in sparse:
            keyword_rank.setdefault((h.namespace, h.key), len(keyword_rank))
        fused = {pair: 1 / (_RRF_K + rank) + (1 / (_RRF_K + keyword_rank[pair]) if pair in keyword_rank else 0.0)
                 for rank, (pair, _) in enumerate(dense)}
        return sorted(dense, key=lambda p: (-fused[p[0]], -p[1], p[0]))

    def _list_namespaces(self, op: ListNamespacesOp, now: datetime) -> list[tuple[str, ...]]:
        namespaces = [_ns_tuple(t) for t in self.session.store_namespaces(self._alive_at(now))]
        for condition in op.match_conditions or ():
            if condition.path:
                namespaces = [ns for ns in namespaces if _matches(ns, tuple(condition.path), condition.match_type == "suffix")]
        if op.max_depth is not None:
            namespaces = list({ns[:op.max_depth] for ns in namespaces})
        return sorted(namespaces)[op.offset:op.offset + op.limit]

    # -- writes --------------------------------------------------------------------------------
    def _puts(self, plan: _Plan, docs: list[list[float]], now: datetime) -> None:
        deletes = [(_ns_text(ns), key) for (ns, key), op in plan.put_ops.items() if op.value is None]
        embedded: dict[tuple[str, str], list[str]] = {}
        for ns, key, path, _ in plan.texts:
            embedded.setdefault((_ns_text(ns), key), []).append(path)
        rows = []
        for (ns, key), op in plan.put_ops.items():
            if op.value is None:
                continue
            pair = (_ns_text(ns), key)
            try:
                value = json.dumps(dict(op.value), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"value of {ns}/{key} is not JSON-serializable ({exc}); store plain JSON types") from exc
            rows.append({"namespace": pair[0], "key": key, "value": value, "created_at": now, "updated_at": now,
                         "expires_at": now + timedelta(minutes=float(op.ttl)) if op.ttl is not None else None,
                         "ttl_minutes": float(op.ttl) if op.ttl is not None else None,
                         "index_fields": json.dumps(embedded[pair]) if pair in embedded else None,
                         # without an index, stale vectors of an earlier value are cleared by repair()
                         "embedded": pair not in embedded and self._vectors is not None})
        # The documents first, then their vectors: a crash in between leaves items marked
        # embedded=False, which repair() embeds again on the next open.
        if deletes:
            self.session.store_delete(deletes)
        self.session.store_put(rows)
        if self._vectors is None:
            return
        touched = deletes + [(r["namespace"], r["key"]) for r in rows]
        if touched:
            self._vectors.delete_items([item_ref(ns, key) for ns, key in touched])
        if plan.texts:
            self._vectors.upsert([FieldPoint(_ns_text(ns), key, path, vector, sparse_document(text))
                                  for (ns, key, path, text), vector in zip(plan.texts, docs, strict=True)])
            self.session.store_mark_embedded(list(embedded), {pair: now for pair in embedded})

    def repair(self, batch_size: int = 256) -> int:
        """Embed items whose vectors never reached the index (a crash between the two
        writes). Runs when the store opens; returns how many items it embedded."""
        if self._vectors is None:
            return 0
        done = 0
        while True:
            rows = self.session.store_unembedded(batch_size)
            if not rows:
                return done
            ops = [PutOp(_ns_tuple(r.namespace), r.key, json.loads(r.value), index=json.loads(r.index_fields or "[]") or False,
                         ttl=None) for r in rows]
            plan = self._plan(ops)
            docs, _ = self._embed(plan)
            self._vectors.delete_items([item_ref(r.namespace, r.key) for r in rows])
            if plan.texts:
                self._vectors.upsert([FieldPoint(_ns_text(ns), key, path, vector, sparse_document(text))
                                      for (ns, key, path, text), vector in zip(plan.texts, docs, strict=True)])
            self.session.store_mark_embedded([(r.namespace, r.key) for r in rows],
                                             {(r.namespace, r.key): r.updated_at for r in rows})
            done += len(rows)
            logger.info("tiermem store: embedded %d items left unembedded by an earlier process", len(rows))

    # -- TTL -----------------------------------------------------------------------------------
    def sweep_ttl(self) -> int:
        """Delete expired items (documents and vectors). Returns how many."""
        expired = self.session.store_expired(datetime.now(UTC))
        if not expired:
            return 0
        removed = self.session.store_delete(expired)
        if self._vectors is not None:
            self._vectors.delete_items([item_ref(ns, key) for ns, key in expired])
        return removed

    async def asweep_ttl(self) -> int:
        return await asyncio.to_thread(self.sweep_ttl)

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> concurrent.futures.Future[None]:
        """Sweep expired items every `sweep_interval_minutes` (default: the TTL config's,
        else 5) in a daemon thread. Returns a Future; cancelling it stops the sweeper."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive():
            future.add_done_callback(lambda f: self._stop_sweeper.set() if f.cancelled() else None)
            return future
        interval = float(sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5) * 60
        self._stop_sweeper.clear()

        def loop() -> None:
            while not self._stop_sweeper.wait(interval):
                try:
                    swept = self.sweep_ttl()
                    if swept:
                        logger.info("tiermem store: swept %d expired items", swept)
                except Exception:
                    logger.exception("tiermem store: TTL sweep failed (retried next interval)")
            if not future.done():
                future.set_result(None)

        self._sweeper = threading.Thread(target=loop, daemon=True, name="tiermem-ttl-sweeper")
        self._sweeper.start()
        future.add_done_callback(lambda f: self._stop_sweeper.set() if f.cancelled() else None)
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper; returns whether it stopped within `timeout` seconds."""
        if self._sweeper is None or not self._sweeper.is_alive():
            return True
        self._stop_sweeper.set()
        self._sweeper.join(timeout)
        stopped = not self._sweeper.is_alive()
        if stopped:
            self._sweeper = None
        return stopped


def _item(row: Any) -> Item:
    return Item(value=json.loads(row.value), key=row.key, namespace=_ns_tuple(row.namespace),
                created_at=row.created_at, updated_at=row.updated_at)


def _search_item(row: Any, value: dict[str, Any], score: float | None) -> SearchItem:
    return SearchItem(namespace=_ns_tuple(row.namespace), key=row.key, value=value,
                      created_at=row.created_at, updated_at=row.updated_at, score=score)


@asynccontextmanager
async def tiermem_store(home: str | Path | None = None, **options: Any) -> Any:
    """An async context manager for `langgraph.json`'s `"store": {"path": ...}`: opens a
    TiermemStore on `home` (default $TIERMEM_HOME, else ./.tiermem) with tiermem's embedder
    indexing the whole value (`fields` from $TIERMEM_STORE_FIELDS, comma-separated), and
    closes it when the server stops."""
    import os

    if "index" not in options:
        fields = [f.strip() for f in os.environ.get("TIERMEM_STORE_FIELDS", "$").split(",") if f.strip()]
        options["index"] = {"fields": fields}
    store = await asyncio.to_thread(lambda: TiermemStore.open(home, **options))
    try:
        yield store
    finally:
        await asyncio.to_thread(store.close)
