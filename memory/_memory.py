"""The `Memory` facade: the public API of DESIGN.md §4, wiring the tiers together.

Dependencies are passed in (`Memory(session=..., index=..., embedder=..., extractor=...)`);
`Memory.open()` is the one place that builds them from configuration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ._config import resolve
from ._context import ContextBuilder
from ._errors import FactNotFound, InvalidInput, UnknownUser
from ._messages import check_id, to_turns
from ._models import AddResult, Candidate, Context, Fact, FactEvent, Hit, as_utc, utcnow
from ._text import norm_hash, sparse_document, sparse_query
from ._tokens import TokenCounter, approx_tokens
from .embed import Embedder
from .extract import Extractor, RuleExtractor
from .index import Delete, DeleteUser, FactIndex, IndexedFact, IndexOp, IndexQuery, SetPayload, Upsert
from .inject import ContextBudget
from .reconcile import Neighbour, ReconcilePolicy, reconcile
from .retrieve import RetrievalPolicy, fuse
from .session import SessionStore

logger = logging.getLogger("tiermem")
MessagesIn = Sequence[Mapping[str, Any]] | Mapping[str, Any] | str
NEIGHBOURS = 5


class Memory:
    """Persistent, tiered memory for one or many users.

    Args:
        session: the session tier and journal (source of truth).
        index: the long-term fact index.
        embedder: makes the vectors the index holds.
        extractor: turns turns into candidate facts (default: `RuleExtractor`, offline).
        retrieval / reconcile_policy / budget: tuning; the defaults are measured on LoCoMo.
        count_tokens: the token counter used for every budget and report.
        model: the Claude model requests are built for (sets the cache minimum).

    Example:
        >>> with Memory.open() as mem:
        ...     mem.add([{"role": "user", "content": "I moved to Berlin"}], user_id="ana")
        ...     mem.search("where does Ana live?", user_id="ana")
    """

    def __init__(
        self,
        *,
        session: SessionStore,
        index: FactIndex,
        embedder: Embedder,
        extractor: Extractor | None = None,
        retrieval: RetrievalPolicy = RetrievalPolicy(),
        reconcile_policy: ReconcilePolicy = ReconcilePolicy(),
        budget: ContextBudget = ContextBudget(),
        count_tokens: TokenCounter = approx_tokens,
        model: str = "claude-haiku-4-5",
        clock: Callable[[], datetime] = utcnow,
    ):
        if index.dims != embedder.dims:
            from ._errors import EmbeddingMismatch

            raise EmbeddingMismatch(
                f"{index.location} holds {index.dims}-dimensional vectors but {embedder.name} makes {embedder.dims}"
            )
        self.session = session
        self.index = index
        self.embedder = embedder
        self.extractor: Extractor = extractor or RuleExtractor()
        self.retrieval = retrieval
        self.reconcile_policy = reconcile_policy
        self.count_tokens = count_tokens
        self.clock = clock
        self._lock = threading.RLock()
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiermem-bg")
        self._closed = False
        self._watermark_key = f"index_seq:{index.location}"
        self._contexts = ContextBuilder(self, budget, model)
        self.session.set_meta("embedder", f"{embedder.name}:{embedder.dims}")
        self._catch_up_index()

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        qdrant_url: str | None = None,
        *,
        qdrant_api_key: str | None = None,
        collection: str = "tiermem_facts",
        embedder: Embedder | None = None,
        extractor: Extractor | None = None,
        **options: Any,
    ) -> Memory:
        """Open memory from configuration: the embedded default, or stores named by URL.

        Args:
            home: folder of the embedded stores (default $TIERMEM_HOME, else ./.tiermem).
            database_url: SQLite or PostgreSQL URL (default $TIERMEM_DATABASE_URL, else
                SQLite in `home`).
            qdrant_url: a Qdrant server (default $TIERMEM_QDRANT_URL, else qdrant-edge in
                `home`/facts).
            embedder: default MiniLM (needs the `embed` extra).

        Raises:
            IndexLocked: another process holds the embedded index.
            EmbeddingMismatch: the index was built with another vector size.
            ConfigError / StoreUnavailable: a URL is malformed or unreachable.
        """
        from .embed import MiniLMEmbedder
        from .index import EdgeFactIndex, QdrantFactIndex

        where = resolve(home, database_url, qdrant_url, qdrant_api_key)
        embedder = embedder or MiniLMEmbedder()
        index: FactIndex | None = None
        session: SessionStore | None = None
        try:
            # Whatever can fail without leaving anything on disk goes first: a bad URL must
            # not leave a fresh database or index folder behind.
            if where.qdrant_url:
                index = QdrantFactIndex.from_url(where.qdrant_url, embedder.dims, api_key=where.qdrant_api_key, collection=collection)
                session = SessionStore(where.database_url)
            else:
                session = SessionStore(where.database_url)
                index = EdgeFactIndex(where.index_path, embedder.dims)
            return cls(session=session, index=index, embedder=embedder, extractor=extractor, **options)
        except BaseException:
            if index is not None:
                index.close()
            if session is not None:
                session.close()
            raise

    # -- write path -----------------------------------------------------------------------
    def add(self, messages: MessagesIn, *, user_id: str, session_id: str = "default", at: datetime | None = None) -> AddResult:
        """Store turns, extract facts from them and reconcile those with what is stored.

        The turns and every fact change are committed in one transaction before the index
        is touched, so nothing `add()` returned is lost to a crash.

        Args:
            messages: message dicts (Anthropic or OpenAI shape); `name` is the speaker,
                `id` the caller's message id (kept as provenance).
            user_id: the tenant.
            session_id: the conversation the turns belong to.
            at: when the turns happened (default now); relative dates resolve against it.

        Returns:
            AddResult with the stored turns and the fact events (add/update/invalidate/noop).

        Raises:
            InvalidInput: bad messages or ids; nothing is stored.

        Example:
            >>> mem.add([{"role": "user", "content": "I moved to Berlin last week", "id": "m-17"}],
            ...         user_id="ana", session_id="s-3", at=datetime(2024, 5, 2, 18, 0))
        """
        self._check_open()
        user_id = check_id(user_id, "user_id")
        session_id = check_id(session_id, "session_id")
        turns = to_turns(messages, user_id=user_id, session_id=session_id, at=as_utc(at) if at else self.clock())
        candidates = self.extractor.extract(turns)
        vectors = self.embedder.embed([c.index_text for c in candidates]) if candidates else []
        with self._lock:
            neighbours = self._neighbours(user_id, candidates, vectors)
            events = reconcile(user_id, candidates, vectors, neighbours, now=self.clock(), policy=self.reconcile_policy)
            vector_of = {e.fact_id: v for e, v in _added_vectors(events, candidates, vectors)}
            stored_turns, stored = self.session.commit(turns, [e for e in events if e.op != "noop"])
            self._apply_to_index(stored, vector_of)
        stored_iter = iter(stored)
        returned = [e if e.op == "noop" else next(stored_iter) for e in events]
        return AddResult(turns=stored_turns, events=returned)

    def _neighbours(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]]
    ) -> list[list[Neighbour]]:
        """Stored facts each candidate may repeat or contradict: its nearest vectors, an exact
        text match, and facts on the same subject and attribute (found by key, not vector)."""
        found = self.index.nearest(user_id, vectors, NEIGHBOURS)
        by_hash = self.session.facts_by_hash(user_id, (norm_hash(c.text) for c in candidates))
        by_key = self.session.facts_by_key(user_id, ((c.subject.lower(), c.attribute) for c in candidates if c.attribute))
        out = []
        for candidate, hits in zip(candidates, found):
            near = [Neighbour(h.fact, h.score) for h in hits]
            if norm_hash(candidate.text) in by_hash:
                near.append(Neighbour(by_hash[norm_hash(candidate.text)], None))
            near += [Neighbour(f, None) for f in by_key.get((candidate.subject.lower(), candidate.attribute or ""), [])]
            out.append(near)
        return out

    def _apply_to_index(self, events: Sequence[FactEvent], vector_of: Mapping[str, Sequence[float]]) -> None:
        ops: list[IndexOp] = []
        for e in events:
            if e.op == "add" and e.fact is not None:
                ops.append(Upsert([IndexedFact(e.fact, vector_of[e.fact_id], sparse_document(e.fact.index_text))]))
            elif e.op in ("update", "invalidate") and e.fact is not None:
                ops.append(SetPayload([e.fact]))
            elif e.op == "forget":
                ops.append(Delete([e.fact_id]))
            elif e.op == "forget_user":
                ops.append(DeleteUser(e.user_id))
        self.index.apply(ops)
        if events and events[-1].seq is not None:
            self.session.set_meta(self._watermark_key, str(events[-1].seq))

    def _catch_up_index(self) -> None:
        """Replay journal entries the index has not seen (after a crash, or a lost folder)."""
        watermark = int(self.session.get_meta(self._watermark_key) or 0)
        last = self.session.last_event_seq()
        if watermark > 0 and self.index.count() == 0 and self.session.count_facts(include_invalid=True) > 0:
            self.reindex()
            return
        if watermark >= last:
            return
        with self._lock:
            while True:
                events = self.session.events_after(watermark)
                if not events:
                    break
                ops: list[IndexOp] = [DeleteUser(e.user_id) for e in events if e.op == "forget_user"]
                touched = list(dict.fromkeys(e.fact_id for e in events if e.op != "forget_user"))
                current = {f.id: f for f in self.session.get_facts(touched)}
                gone = [i for i in touched if i not in current]
                ops.append(Delete(gone))
                ops.append(Upsert(self._indexed(list(current.values()))))
                self.index.apply(ops)
                watermark = events[-1].seq or watermark
                self.session.set_meta(self._watermark_key, str(watermark))
            self.index.flush()

    def _indexed(self, facts: Sequence[Fact]) -> list[IndexedFact]:
        vectors = self.embedder.embed([f.index_text for f in facts]) if facts else []
        return [IndexedFact(f, v, sparse_document(f.index_text)) for f, v in zip(facts, vectors)]

    def reindex(self, *, batch_size: int = 512, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from the journal (all facts, valid or not, so `as_of` works).

        Returns the number of facts indexed.
        """
        self._check_open()
        with self._lock:
            # Every point goes, not just those of users still in the journal: a user erased
            # while the index was unreachable must not survive a rebuild.
            self.index.apply([Delete(sorted(self.index.ids()))])
            total = self.session.count_facts(include_invalid=True)
            done = 0
            while done < total:
                facts = self.session.list_facts(include_invalid=True, limit=batch_size, offset=done)
                if not facts:
                    break
                self.index.apply([Upsert(self._indexed(facts))])
                done += len(facts)
                if progress:
                    progress(done, total)
            self.index.flush()
            self.session.set_meta(self._watermark_key, str(self.session.last_event_seq()))
        return done

    def optimize(self) -> bool:
        """Build the embedded index's HNSW graphs now (blocking maintenance; see EdgeFactIndex).

        Returns whether anything changed. A Qdrant server optimizes on its own.
        """
        self._check_open()
        with self._lock:
            return self.index.optimize()

    # -- read path ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        user_id: str,
        limit: int = 10,
        as_of: datetime | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Hybrid (dense + BM25) search over one user's facts, best first.

        Args:
            query: natural-language query.
            user_id: the tenant; no other user's fact is ever returned.
            limit: how many hits.
            as_of: return facts as they were valid at this time (default: valid now).
            kinds: restrict to "semantic" and/or "episodic".

        Returns:
            Hits with `score` and an `explain` breakdown (dense, sparse, fusion, priors).

        Example:
            >>> [h.fact.text for h in mem.search("where does Ana live?", user_id="ana", limit=3)]
        """
        self._check_open()
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty string")
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer, got {limit!r}")
        return [s.hit() for s in self._scored(query, check_id(user_id, "user_id"), limit, as_of, kinds)[:limit]]

    def _scored(
        self, query: str, user_id: str, limit: int, as_of: datetime | None, kinds: Sequence[str] | None,
        with_vectors: bool = False,
    ) -> list[Any]:
        if kinds is not None and not set(kinds) <= {"semantic", "episodic"}:
            raise InvalidInput(f"kinds must be 'semantic' and/or 'episodic', got {list(kinds)!r}")
        vector = self.embedder.embed_query(query)
        request = IndexQuery(
            user_id=user_id,
            dense=vector,
            sparse=sparse_query(query),
            limit=max(limit, self.retrieval.candidates),
            as_of=as_utc(as_of) if as_of else None,
            kinds=tuple(kinds) if kinds else None,
            with_vectors=with_vectors,
        )
        with self._lock:
            result = self.index.query(request)
        return fuse(result, vector, now=as_utc(as_of) if as_of else self.clock(), policy=self.retrieval)

    def context(
        self,
        message: str,
        *,
        user_id: str,
        session_id: str = "default",
        system: str | None = None,
        budget: int = 8000,
    ) -> Context:
        """Build a provider-ready request for the next turn (no model call, no network).

        Args:
            message: the new user message (always last, never dropped).
            user_id / session_id: whose memory, which conversation's recent turns.
            system: the system prompt (never dropped).
            budget: total tokens for the request, the reply reserve included.

        Returns:
            Context with Anthropic `system` blocks (stable ones carry cache_control),
            alternating `messages`, the paged-in `facts` and a token `report`.

        Example:
            >>> ctx = mem.context("what should I pack?", user_id="ana", session_id="s-4", system="You help.")
            >>> client.messages.create(model=..., system=ctx.system, messages=ctx.messages, max_tokens=1024)
        """
        self._check_open()
        if not isinstance(message, str) or not message.strip():
            raise InvalidInput("message must be a non-empty string")
        if not isinstance(budget, int) or budget < 256:
            raise InvalidInput(f"budget must be an integer of at least 256 tokens, got {budget!r}")
        return self._contexts.build(message, check_id(user_id, "user_id"), check_id(session_id, "session_id"), system, budget)

    # -- inspection and erasure ---------------------------------------------------------------
    def facts(self, *, user_id: str, include_invalid: bool = False, limit: int | None = None, offset: int = 0) -> list[Fact]:
        """A user's facts from the journal, oldest first (no index, no embedder needed).

        Raises:
            UnknownUser: nothing at all is stored for `user_id` (a typo, usually). A user
                whose turns yielded no facts yet gets an empty list.
        """
        self._check_open()
        user_id = check_id(user_id, "user_id")
        facts = self.session.list_facts(user_id, include_invalid=include_invalid, limit=limit, offset=offset)
        if not facts and not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        return facts

    def get(self, fact_id: str) -> Fact:
        """One fact by id. Raises FactNotFound."""
        self._check_open()
        fact = self.session.get_fact(check_id(fact_id, "fact_id"))
        if fact is None:
            raise FactNotFound(f"no fact {fact_id!r}; list ids with `tiermem facts list --user USER`")
        return fact

    def history(self, fact_id: str) -> list[FactEvent]:
        """Every change to a fact, oldest first. Raises FactNotFound."""
        self._check_open()
        events = self.session.history(check_id(fact_id, "fact_id"))
        if not events:
            raise FactNotFound(f"no history for fact {fact_id!r} (unknown or forgotten)")
        return events

    def forget(self, fact_id: str) -> FactEvent:
        """Erase one fact from every tier (journal rows, profile and index)."""
        self._check_open()
        with self._lock:
            event = self.session.forget_fact(check_id(fact_id, "fact_id"), self.clock())
            if event is None:
                raise FactNotFound(f"no fact {fact_id!r} to forget")
            self._apply_to_index([event], {})
        return event

    def forget_user(self, user_id: str) -> FactEvent:
        """Erase everything stored about a user: turns, summaries, profile, facts, index."""
        self._check_open()
        user_id = check_id(user_id, "user_id")
        if not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        with self._lock:
            event = self.session.forget_user(user_id, self.clock())
            self._apply_to_index([event], {})
        return event

    def verify(self) -> dict[str, set[str]]:
        """Compare the index with the journal: ids missing from or extra in the index."""
        journal = {f.id for f in self.session.list_facts(include_invalid=True)}
        with self._lock:
            indexed = self.index.ids()
        return {"missing": journal - indexed, "extra": indexed - journal}

    # -- lifecycle and async twins ------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput("this Memory is closed; open a new one with Memory.open()")

    def _in_background(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run bookkeeping (access stats) off the hot path; failures are logged, not lost."""

        def report(future: Future[Any]) -> None:
            if future.exception() is not None:
                logger.warning("tiermem background task %s failed: %r", fn.__name__, future.exception())

        self._background.submit(fn, *args).add_done_callback(report)

    def close(self) -> None:
        """Flush and release the index (and its folder lock) and the database."""
        if self._closed:
            return
        self._closed = True
        self._background.shutdown(wait=True)
        with self._lock:
            try:
                self.index.close()
            finally:
                self.session.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aadd(self, messages: MessagesIn, **kwargs: Any) -> AddResult:
        """Async `add()`: the same logic on a worker thread (the embedded stores block)."""
        return await asyncio.to_thread(self.add, messages, **kwargs)

    async def asearch(self, query: str, **kwargs: Any) -> list[Hit]:
        """Async `search()`."""
        return await asyncio.to_thread(self.search, query, **kwargs)

    async def acontext(self, message: str, **kwargs: Any) -> Context:
        """Async `context()`."""
        return await asyncio.to_thread(self.context, message, **kwargs)


def _added_vectors(events: Sequence[FactEvent], candidates: Sequence[Any], vectors: Sequence[Sequence[float]]) -> list[tuple[FactEvent, Sequence[float]]]:
    """Pair each 'add' event with the vector of the candidate it came from: keyed by the text
    that was embedded, which a new fact copies from its candidate."""
    by_text = {c.index_text: v for c, v in zip(candidates, vectors)}
    return [(e, by_text[e.fact.index_text]) for e in events if e.op == "add" and e.fact is not None]
