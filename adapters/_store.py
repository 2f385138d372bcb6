"""TiermemStore: LangGraph's `BaseStore` on tiermem's item tier, a translator.

LangGraph's ops become `tiermem.items` ops and go to the memory in one `items()` call (so
the store works over any `MemoryAPI`, a served home included); the documents, their vectors,
the ranking, the filters, TTLs and erasure are the core's. Where LangGraph's own stores
disagree, this one follows its SQL stores (SqliteStore / PostgresStore); `README.md` lists
the choices.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
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

from tiermem import EmbeddingMismatch, InvalidInput, Memory, MemoryAPI, MissingDependency
from tiermem.items import (
    GetItem,
    IndexText,
    ItemIndexSpec,
    ItemOp,
    ItemRecord,
    ListNamespaces,
    PendingItems,
    PutItem,
    SearchItems,
    SweepItems,
    check_namespace,
)

logger = logging.getLogger("tiermem.langgraph")
Ranking = Literal["cosine", "hybrid"]


def _namespace(namespace: Any, *, allow_empty: bool) -> list[str]:
    try:
        return list(check_namespace(namespace, allow_empty=allow_empty))
    except InvalidInput as exc:  # LangGraph's callers catch its own error
        raise InvalidNamespaceError(str(exc)) from None


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


class TiermemStore(BaseStore):
    """A LangGraph `BaseStore` on tiermem: durable JSON items, semantic search through
    tiermem's index, TTL with a sweeper.

    Args:
        memory: the memory that keeps the items: `Memory.open(...)`, or any `MemoryAPI`
            (`Memory.open(url=...)` beside `tiermem serve`).
        index: LangGraph's `IndexConfig` (`dims`, `embed`, `fields`; `text_fields` and
            `distance_type` of SqliteStore are accepted too). Without `embed` the memory's
            embedder (MiniLM) embeds. Without `index`, `query` is ignored by search.
        ttl: LangGraph's `TTLConfig` (`default_ttl` minutes, `refresh_on_read`,
            `omit_expired`, `sweep_interval_minutes`).
        ranking: "cosine" (default, as LangGraph's stores: `score` is the cosine similarity
            of the best-matching field, results best first) or "hybrid" (the order also
            weighs BM25 keyword matches by reciprocal-rank fusion; `score` stays cosine).
        user_label: which label of a namespace is the user an item belongs to, so that
            `memory.forget_user(user)` erases it: 1 (default) for `("users", user_id, ...)` or
            `("memories", user_id)`, 0 for `(user_id, "memories")`, None when items belong to
            no user. Declared here once: no other label ever makes an id a user (user 42's
            `("users", "42", "threads", "7")` is not user 7's).

    Example:
        >>> with TiermemStore.open("./.tiermem", index={"dims": 384, "fields": ["text"]}) as store:
        ...     store.put(("users", "ana"), "diet", {"text": "Ana is vegetarian"})
        ...     store.search(("users", "ana"), query="what does Ana eat?")
    """

    supports_ttl = True

    def __init__(self, memory: MemoryAPI, *, index: IndexConfig | Mapping[str, Any] | None = None,
                 ttl: TTLConfig | Mapping[str, Any] | None = None, ranking: Ranking = "cosine",
                 user_label: int | None = 1, _owns_memory: bool = False):
        if ranking not in ("cosine", "hybrid"):
            raise InvalidInput(f"ranking must be 'cosine' or 'hybrid', got {ranking!r}")
        if user_label is not None and (not isinstance(user_label, int) or isinstance(user_label, bool) or user_label < 0):
            raise InvalidInput(f"user_label must be a label position (0, 1, ...) or None, got {user_label!r}")
        self.user_label = user_label
        self.memory = memory
        self.ranking = ranking
        self.ttl_config: TTLConfig | None = dict(ttl) if ttl else None  # type: ignore[assignment]
        self._owns_memory = _owns_memory
        self._scratch: str | None = None
        self._closed = False
        self._sweeper: threading.Thread | None = None
        self._stop_sweeper = threading.Event()
        self.index_config: dict[str, Any] | None = None
        self.embeddings: Any = None  # the caller's own model (IndexConfig["embed"]); None: the memory embeds
        self._fields: list[tuple[str, Any]] = []
        self._spec: ItemIndexSpec | None = None
        if index is not None:
            self._configure_index(dict(index))
            self.repair()

    def _configure_index(self, config: dict[str, Any]) -> None:
        embed = config.get("embed")
        if embed is not None:
            self.embeddings = ensure_embeddings(embed)
        dims = config.get("dims")
        if embed is None:
            own = self.memory.health()
            if dims is not None and dims != own.get("dims"):
                raise EmbeddingMismatch(f"index['dims'] is {dims} but the memory's embedder {own.get('embedder')} makes "
                                   f"{own.get('dims')}-dimensional vectors; drop 'dims' or pass an 'embed'")
            dims = own.get("dims")
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            raise InvalidInput(f"index['dims'] must be a positive integer (the size of the embed's vectors), got {dims!r}")
        fields = config.get("fields", config.get("text_fields")) or ["$"]
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise InvalidInput(f"index['fields'] must be a list of field paths, got {fields!r}")
        distance = config.get("distance_type", "cosine")
        if distance not in ("cosine", "l2", "inner_product"):
            raise InvalidInput(f"distance_type must be one of cosine, l2, inner_product, got {distance!r}")
        self._fields = [(f, "$" if f == "$" else tokenize_path(f)) for f in fields]
        self.index_config = {**config, "dims": dims}
        self._spec = ItemIndexSpec(dims=dims, distance=distance)

    @classmethod
    def open(cls, home: str | Path | None = None, *, index: IndexConfig | Mapping[str, Any] | None = None,
             ttl: TTLConfig | Mapping[str, Any] | None = None, ranking: Ranking = "cosine",
             user_label: int | None = 1, **memory_options: Any) -> TiermemStore:
        """Open a Memory at `home` (as `Memory.open`) and a store on it; closing the store
        closes the memory. Usable as a context manager. `home=":memory:"` makes a scratch
        home that is deleted when the store closes (for tests). Starts the TTL sweeper when
        `ttl['sweep_interval_minutes']` is set."""
        if "embedder" not in memory_options and "url" not in memory_options:
            from tiermem import MiniLMEmbedder

            try:
                memory_options["embedder"] = MiniLMEmbedder()
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
            store = cls(memory, index=index, ttl=ttl, ranking=ranking, user_label=user_label, _owns_memory=True)
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
        """Stop the sweeper, and close the memory if `open()` made it."""
        if self._closed:
            return
        self._closed = True
        self.stop_ttl_sweeper(timeout=5)
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
        ours = self._translate(list(ops))
        if self.embeddings is not None:
            self._embed(ours)
        return self._results(ours, self.memory.items(ours, index=self._spec))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ours = self._translate(list(ops))
        if self.embeddings is not None:
            await self._aembed(ours)
        return self._results(ours, await asyncio.to_thread(self.memory.items, ours, index=self._spec))

    @property
    def _refreshes(self) -> bool:
        """Reads restart TTLs only when the TTL config says `refresh_on_read` (as LangGraph's
        SQL stores do: an item's TTL otherwise runs from its last write)."""
        return bool(self.ttl_config and self.ttl_config.get("refresh_on_read"))

    @property
    def _omit_expired(self) -> bool:
        return bool(self.ttl_config and self.ttl_config.get("omit_expired"))

    def _translate(self, ops: list[Op]) -> list[ItemOp]:
        if self._closed:
            raise InvalidInput("this TiermemStore is closed; open a new one with TiermemStore.open()")
        out: list[ItemOp] = []
        for op in ops:
            if isinstance(op, GetOp):
                out.append(GetItem(namespace=_namespace(op.namespace, allow_empty=False), key=op.key,
                                   refresh_ttl=bool(op.refresh_ttl) and self._refreshes, omit_expired=self._omit_expired))
            elif isinstance(op, SearchOp):
                out.append(SearchItems(namespace_prefix=_namespace(op.namespace_prefix, allow_empty=True),
                                       query=op.query if self._spec is not None else None, filter=op.filter,
                                       limit=op.limit, offset=op.offset, refresh_ttl=bool(op.refresh_ttl) and self._refreshes,
                                       omit_expired=self._omit_expired, ranking=self.ranking))
            elif isinstance(op, ListNamespacesOp):
                conditions = []
                for condition in op.match_conditions or ():
                    if condition.match_type not in ("prefix", "suffix"):
                        raise InvalidInput(f"match_type must be 'prefix' or 'suffix', got {condition.match_type!r}")
                    conditions.append((condition.match_type, _namespace(condition.path, allow_empty=True)))
                out.append(ListNamespaces(conditions=conditions, max_depth=op.max_depth, limit=op.limit, offset=op.offset,
                                          omit_expired=self._omit_expired))
            elif isinstance(op, PutOp):
                out.append(self._put(op))
            else:
                raise InvalidInput(f"unknown operation {type(op).__name__}; expected GetOp, PutOp, SearchOp or ListNamespacesOp")
        return out

    def _put(self, op: PutOp) -> PutItem:
        namespace = _namespace(op.namespace, allow_empty=False)
        if op.value is not None and not isinstance(op.value, Mapping):
            raise InvalidInput(f"value must be a dict (or None to delete), got {type(op.value).__name__}")
        if op.index not in (None, False) and (not isinstance(op.index, list | tuple)
                                              or not all(isinstance(p, str) and p for p in op.index)):
            raise InvalidInput(f"index must be False, None or a list of field paths, got {op.index!r}")
        if op.ttl is not None and (not isinstance(op.ttl, int | float) or isinstance(op.ttl, bool)):
            raise InvalidInput(f"ttl must be a positive number of minutes or None, got {op.ttl!r}")
        texts: list[IndexText] = []
        if op.value is not None and op.index is not False and self._spec is not None:
            paths = self._fields if op.index is None else [(p, "$" if p == "$" else tokenize_path(p)) for p in op.index]
            for path, tokens in paths:
                found = get_text_at_path(dict(op.value), tokens)
                texts += [IndexText(field=f"{path}.{n}" if len(found) > 1 else path, text=t) for n, t in enumerate(found)]
        return PutItem(namespace=namespace, key=op.key if isinstance(op.key, str) else "",
                       value=dict(op.value) if op.value is not None else None,
                       ttl=float(op.ttl) if op.ttl is not None else None, texts=texts, owner=self._owner(namespace))

    def _owner(self, namespace: Sequence[str]) -> str | None:
        """The user an item of this namespace belongs to: the label at `user_label`."""
        if self.user_label is None or len(namespace) <= self.user_label:
            return None
        return namespace[self.user_label]

    def _to_embed(self, ops: list[ItemOp]) -> tuple[list[IndexText], list[SearchItems]]:
        texts = [t for op in ops if isinstance(op, PutItem) for t in op.texts]
        return texts, [op for op in ops if isinstance(op, SearchItems) and op.query]

    def _embed(self, ops: list[ItemOp]) -> None:
        """The caller's own `embed` makes the vectors here; the memory receives them."""
        texts, searches = self._to_embed(ops)
        vectors = self.embeddings.embed_documents([t.text for t in texts]) if texts else []
        self._place(texts, searches, vectors, [self.embeddings.embed_query(s.query) for s in searches])

    async def _aembed(self, ops: list[ItemOp]) -> None:
        texts, searches = self._to_embed(ops)
        vectors = await self.embeddings.aembed_documents([t.text for t in texts]) if texts else []
        self._place(texts, searches, vectors, [await self.embeddings.aembed_query(s.query) for s in searches])

    @staticmethod
    def _place(texts: list[IndexText], searches: list[SearchItems], vectors: list[Any], queries: list[Any]) -> None:
        if len(vectors) != len(texts):
            raise InvalidInput(f"the embed function returned {len(vectors)} vectors for {len(texts)} texts")
        for text, vector in zip(texts, vectors, strict=True):
            text.vector = [float(x) for x in vector]
        for search, vector in zip(searches, queries, strict=True):
            search.vector = [float(x) for x in vector]

    @staticmethod
    def _results(ops: list[ItemOp], answers: list[Any]) -> list[Result]:
        out: list[Result] = []
        for op, answer in zip(ops, answers, strict=True):
            if isinstance(op, GetItem):
                out.append(None if answer is None else _item(answer))
            elif isinstance(op, SearchItems):
                out.append([_search_item(r) for r in answer])
            elif isinstance(op, ListNamespaces):
                out.append([tuple(ns) for ns in answer])
            else:
                out.append(None)
        return out

    def repair(self) -> int:
        """Embed items whose vectors never reached the index (a crash between the two
        writes). Runs when the store opens; returns how many items it embedded."""
        if self._spec is None:
            return 0
        done = 0
        while True:
            [pending] = self.memory.items([PendingItems(limit=256)], index=self._spec)
            if not pending:
                return done
            puts: list[ItemOp] = [PutItem(namespace=r.namespace, key=r.key, value=r.value, texts=r.texts or [],
                                          owner=self._owner(r.namespace)) for r in pending]
            if self.embeddings is not None:
                self._embed(puts)
            self.memory.items(puts, index=self._spec)
            done += len(puts)
            logger.info("tiermem store: embedded %d items left unembedded by an earlier process", len(puts))

    # -- TTL -----------------------------------------------------------------------------------
    def sweep_ttl(self) -> int:
        """Delete expired items (erased: documents and vectors). Returns how many."""
        [removed] = self.memory.items([SweepItems()], index=self._spec)
        return int(removed or 0)

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


def _item(record: ItemRecord) -> Item:
    return Item(value=record.value, key=record.key, namespace=tuple(record.namespace), created_at=record.created_at,
                updated_at=record.updated_at)


def _search_item(record: ItemRecord) -> SearchItem:
    return SearchItem(namespace=tuple(record.namespace), key=record.key, value=record.value, created_at=record.created_at,
                      updated_at=record.updated_at, score=record.score)


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
