"""`Memory`: the `MemoryAPI` contract on stores opened in this process.

Dependencies are passed in (`Memory(session=..., index=..., embedder=..., extractor=...)`);
`Memory.open()` is the one place that builds them from configuration. The facade checks
arguments and delegates: `Retriever` reads, `WritePipeline` writes, `FileWrites` keeps the
memory tool's files, `IndexSync` keeps the index in step with the journal, `ContextBuilder`
assembles requests and `ExtractionWorker` runs phase 2 of add() in the background. The
methods' documentation is the contract's (`tiermem.MemoryAPI`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from . import telemetry
from ._config import resolve
from ._context import ContextBuilder
from ._contract import MemoryAPI, MessagesIn
from ._documents import to_documents
from ._erasure import ErasureReceipt
from ._errors import (
    ConfigError,
    EmbeddingMismatch,
    FactNotFound,
    InvalidInput,
    MemoryClosed,
    OutcomeUnknown,
    StoreUnavailable,
    UnknownUser,
)
from ._files import FileWrites, check_path
from ._messages import (
    MAX_BUDGET,
    MAX_FACT_CHARS,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_REASON_CHARS,
    check_count,
    check_id,
    check_ids,
    check_metadata,
    check_text,
    check_time,
    check_timeout,
    to_turns,
)
from ._models import (
    AddResult,
    Backlog,
    CallUsage,
    Context,
    ExtractionFailure,
    Fact,
    FactEvent,
    Hit,
    MemoryFile,
    Turn,
    UsageReport,
    utcnow,
)
from ._open import check_embedder, default_embedder, stores
from ._requests import request_key
from ._retriever import Retriever
from ._sync import IndexSync
from ._tokens import TokenCounter, approx_tokens
from ._upkeep import SessionUpkeep
from ._worker import ExtractionWorker
from ._write import WritePipeline
from .embed import Embedder
from .extract import Extractor, RuleExtractor
from .extract._rules import statement
from .index import FactIndex
from .inject import ContextBudget
from .items import ItemIndexSpec, ItemOp, ItemResult, ItemTier
from .reconcile import ReconcilePolicy, Reconciler, RuleReconciler
from .retrieve import RetrievalPolicy
from .session import SessionStore
from .summarize import ExtractiveSummarizer, Summarizer

if TYPE_CHECKING:
    from ._reextract import ReextractPlan, ReextractReport
    from .serve import RemoteMemory, SharedMemory

logger = logging.getLogger("tiermem")
T = TypeVar("T")
Extraction = Literal["inline", "background"]


# Calls that change nothing: retried once when the database connection broke under them.
_RETRIED = frozenset({"search", "context", "facts", "users", "get", "history", "files", "usage", "backlog", "verify",
                      "flush", "health"})


def _connection_lost(exc: DBAPIError) -> bool:
    """A dropped connection, a server restart or failover, a refused connection (PostgreSQL);
    not a constraint, a syntax error or SQLite's busy file."""
    if exc.connection_invalidated:
        return True
    module = type(exc.orig).__module__ if exc.orig is not None else ""
    return module.startswith("psycopg") and isinstance(exc, OperationalError | InterfaceError)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]


def _tracked(method: Callable[..., T]) -> Callable[..., T]:
    """A public call: refused once the Memory is closed, and waited for by close(), so a
    close() from another thread never pulls the stores out from under a running add();
    one span of the application's tracer when it has one (`tiermem.telemetry`)."""

    signature = inspect.signature(method)
    name = method.__name__

    def run(self: Memory, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with self._calls:
            if self._closed:
                raise MemoryClosed("this Memory is closed; open a new one with Memory.open()")
            self._active += 1
        try:
            try:
                return method(self, *args, **kwargs)
            except DBAPIError as exc:
                if not _connection_lost(exc):
                    raise
                if name not in _RETRIED:
                    raise OutcomeUnknown(f"{name}: the connection to the database broke ({_first_line(exc)}); the write "
                                         "may or may not have been stored: read it back (facts(), backlog()) before "
                                         "sending it again") from exc
            try:  # a read: once more, on a fresh connection (the pool dropped the broken one)
                return method(self, *args, **kwargs)
            except DBAPIError as exc:
                if not _connection_lost(exc):
                    raise
                raise StoreUnavailable(f"{name}: the database cannot be reached ({_first_line(exc)}); is it running, "
                                       "and is its URL right?") from exc
        finally:
            with self._calls:
                self._active -= 1
                self._calls.notify_all()

    @functools.wraps(method)
    def call(self: Memory, *args: Any, **kwargs: Any) -> T:
        if not telemetry.listening():
            return run(self, args, kwargs)

        def arguments() -> dict[str, Any]:
            try:
                return dict(signature.bind(self, *args, **kwargs).arguments)
            except TypeError:  # the call itself will say what is wrong
                return dict(kwargs)

        with telemetry.operation(name, arguments) as span:
            result = run(self, args, kwargs)
            span.result(name, result)
            return result

    return call


class Memory(MemoryAPI):
    """Persistent, tiered memory for one or many users, on stores opened in this process.

    Args:
        session: the session tier and journal (source of truth).
        index: the long-term fact index.
        embedder: makes the vectors the index holds.
        extractor: turns turns into candidate facts (default: `RuleExtractor`, offline).
        reconciler / summarizer: decide fact changes / fold evicted turns into summaries
            (defaults: the offline rule reconciler and extractive summarizer).
        extraction: "inline" (phase 2 of add() finishes before it returns) or "background"
            (add() returns once its turns are committed; `flush()` waits for the rest).
        retrieval / reconcile_policy / budget: tuning; the defaults are measured on LoCoMo.
        count_tokens: the token counter used for every budget and report.
        model: the Claude model requests are built for (sets the cache minimum).
        queue_size: batches the background queue holds before add() blocks (back-pressure).
        retry_delays: seconds between retries of a failed phase 2.

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
        reconciler: Reconciler | None = None,
        summarizer: Summarizer | None = None,
        extraction: Extraction = "inline",
        retrieval: RetrievalPolicy | None = None,
        reconcile_policy: ReconcilePolicy | None = None,
        budget: ContextBudget | None = None,
        count_tokens: TokenCounter = approx_tokens,
        model: str = "claude-haiku-4-5",
        clock: Callable[[], datetime] = utcnow,
        queue_size: int = 256,
        retry_delays: Sequence[float] = (0.5, 2.0, 8.0, 30.0),
        reembed: bool = False,
    ):
        if extraction not in ("inline", "background"):
            raise InvalidInput(f"extraction must be 'inline' or 'background', got {extraction!r}")
        if index.dims != embedder.dims:
            raise EmbeddingMismatch(
                f"{index.location} holds {index.dims}-dimensional vectors but {embedder.name} makes {embedder.dims}"
            )
        self.session = session
        self.index = index
        self.embedder = embedder
        self.extractor: Extractor = extractor or RuleExtractor()
        self.extraction = extraction
        self.count_tokens = count_tokens
        self.clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._calls = threading.Condition()
        self._active = 0
        self._on_close: list[tuple[bool, Callable[[], Any]]] = []
        changed_embedder = check_embedder(session, embedder, reembed)
        budget = budget or ContextBudget()
        summarizer = summarizer or ExtractiveSummarizer(count_tokens)
        reconciler = reconciler or RuleReconciler(reconcile_policy)
        for part in (self.extractor, reconciler, summarizer):
            self._bind_usage(part)
        index.attach_keys(session.user_key)  # the embedded index seals payloads with per-user keys
        self.retriever = Retriever(embedder, index, retrieval or RetrievalPolicy(), clock, passages=session.source_passages,
                                   assistant_turns=session.assistant_turns)
        self.sync = IndexSync(session, self.retriever, self._lock)
        upkeep = SessionUpkeep(session, budget, count_tokens, summarizer, clock)
        self.item_tier = ItemTier(session, embedder, index.sibling, self._lock)
        self.writes = WritePipeline(session, self.retriever, self.sync, upkeep, self.extractor, reconciler, self._lock, clock,
                                    erase_items=self.item_tier.erase_user)
        self.file_writes = FileWrites(session, self.retriever, self.sync, self.writes.forget_many, self._lock, clock)
        self._stats = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiermem-stats")
        self.contexts = ContextBuilder(session, self.retriever, budget, model, count_tokens, clock,
                                       record_access=lambda facts: self._off_hot_path(session.record_access, facts, clock()))
        self.reembedded = False
        if changed_embedder:
            self.sync.reindex()  # every stored vector again, with the new embedder
            self.reembedded = True
        else:
            self.sync.catch_up()
            self.sync.repair_drift()
        if self.writes.finish_erasures():  # a forget() a crash interrupted, done now
            logger.warning("tiermem: finished an erasure an earlier process left under way")
        self.worker = ExtractionWorker(self.writes.extract, self._record_failure, idle=self._idle,
                                       queue_size=queue_size, retry_delays=retry_delays)
        self._recover_pending()

    def _recover_pending(self) -> None:
        """Turns committed by phase 1 whose phase 2 never committed (a crash, a close that
        timed out, failed retries) are extracted now, in the background."""
        pending = self.session.pending_turns()
        if pending:
            logger.info("tiermem: extracting %d turns left pending by an earlier process", len(pending))
        by_user: dict[str, list[Turn]] = {}
        for turn in pending:
            by_user.setdefault(turn.user_id, []).append(turn)
        for user_id, turns in by_user.items():
            for start in range(0, len(turns), 64):
                self.worker.submit(user_id, turns[start:start + 64], block=False)

    def _record_failure(self, user_id: str, turns: Sequence[Turn], exc: BaseException) -> int:
        logger.warning("tiermem: extraction of %d turns of %r failed: %r (it will be retried)", len(turns), user_id, exc)
        return self.session.record_failure(user_id, [t.id for t in turns], repr(exc), self.clock())

    def _idle(self) -> None:
        if self.sync.behind:
            self.sync.catch_up()

    @overload
    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, database_url: str | None = None,
             qdrant_url: str | None = None, *, url: None = None, share: Literal[False], **options: Any) -> Memory: ...

    @overload
    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, database_url: str | None = None,
             qdrant_url: str | None = None, *, url: None = None, **options: Any) -> Memory | SharedMemory: ...

    @overload
    @classmethod
    def open(cls, home: None = None, database_url: None = None, qdrant_url: None = None, *, url: str,
             api_key: str | None = None) -> RemoteMemory: ...

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        qdrant_url: str | None = None,
        *,
        index_url: str | None = None,
        qdrant_api_key: str | None = None,
        collection: str = "tiermem_facts",
        embedder: Embedder | None = None,
        extractor: Extractor | str | None = None,
        extraction: Extraction | None = None,
        reconciler: Reconciler | str | None = None,
        summarizer: Summarizer | str | None = None,
        anthropic_client: Any = None,
        claude_model: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        share: bool = True,
        **options: Any,
    ) -> Memory | RemoteMemory | SharedMemory:
        """Open memory from configuration: the embedded default, or stores named by URL.

        Args:
            home: folder of the embedded stores (default $TIERMEM_HOME, else ./.tiermem).
            database_url: SQLite or PostgreSQL URL (default $TIERMEM_DATABASE_URL, else
                SQLite in `home`).
            index_url: the long-term tier: "postgresql://..." (pgvector: one PostgreSQL can
                hold every tier, shared by any number of processes), "http(s)://..." (a
                Qdrant server), or nothing (default $TIERMEM_INDEX_URL, else qdrant-edge in
                `home`/facts, one process at a time).
            qdrant_url: the same as `index_url` (its name before pgvector; $TIERMEM_QDRANT_URL).
            embedder: default MiniLM (needs the `embed` extra).
            extractor / reconciler / summarizer: an object, or a name: "claude", or the
                offline "rules" / "rules" / "extractive" (default $TIERMEM_EXTRACTOR,
                $TIERMEM_RECONCILER, $TIERMEM_SUMMARIZER, else offline).
            extraction: "inline" or "background" (default $TIERMEM_EXTRACTION, else
                background with the Claude extractor and inline otherwise).
            anthropic_client: an `anthropic.Anthropic` for the Claude paths (default: one
                built from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL).
            claude_model: the model of the Claude paths (default $TIERMEM_CLAUDE_MODEL,
                else claude-haiku-4-5).
            url: a `tiermem serve` to call instead of opening stores here
                ("http://127.0.0.1:PORT" or "unix:///path"): returns a `RemoteMemory`, the
                same `MemoryAPI` with the same results and errors. `api_key` goes with it
                (default $TIERMEM_API_KEY).
            share: with the embedded index (one process may open it), join the process that
                owns the home: when none does, this one becomes the owner (the Memory is
                returned, and serves the home to other processes on a Unix socket inside the
                home, owner-only, with a key in `serve.json`: no TCP port is opened); when one does (`tiermem serve`, `tiermem mcp`, another
                program's Memory.open), a `SharedMemory` is returned: the same `MemoryAPI`,
                its calls run by the owner, taken over by this process if the owner goes.
                `share=False`: open the stores here or raise IndexLocked.
            options: passed to `Memory(...)` (budget, retrieval, count_tokens, ...).

        Raises:
            IndexLocked: another process holds the embedded index.
            EmbeddingMismatch: the index was built with another embedder.
            ConfigError / StoreUnavailable: a URL is malformed or unreachable, or a Claude
                path was asked for without ANTHROPIC_API_KEY (nor a client).
        """
        if url is not None:
            from .serve import RemoteMemory

            return RemoteMemory(url, api_key=api_key)
        from ._components import build, choose

        names = {"extractor": choose("extractor", extractor), "reconciler": choose("reconciler", reconciler),
                 "summarizer": choose("summarizer", summarizer)}
        parts = build(names, anthropic_client=anthropic_client, claude_model=claude_model,
                      count_tokens=options.get("count_tokens"))
        claude = names["extractor"] == "claude" or getattr(parts["extractor"], "name", None) == "claude"
        mode = extraction or os.environ.get("TIERMEM_EXTRACTION") or ("background" if claude else "inline")
        embedder = embedder or default_embedder()
        if index_url and qdrant_url and index_url != qdrant_url:
            raise ConfigError("give index_url or its older name qdrant_url, not both")
        where = resolve(home, database_url, index_url or qdrant_url, qdrant_api_key)
        if share and where.index_kind == "embedded":
            from .serve._shared import open_home

            return open_home(where.home, {"database_url": database_url, "embedder": embedder, "extraction": mode,
                                          "collection": collection, **{k: v for k, v in parts.items() if v is not None},
                                          **options})
        with stores(where, embedder.dims, collection) as (session, index):
            return cls(session=session, index=index, embedder=embedder, extraction=mode,  # type: ignore[arg-type]
                       **parts, **options)

    @property
    def location(self) -> str:
        """Where the tiers live: the database (password hidden) and the index."""
        return f"{self.session.url_for_humans} + {self.index.location}"

    # -- writing --------------------------------------------------------------------------------
    @_tracked
    def add(self, messages: MessagesIn, *, user_id: str, session_id: str = "default", at: datetime | None = None,
            metadata: Mapping[str, Any] | None = None) -> AddResult:
        user_id = check_id(user_id, "user_id")
        session_id = check_id(session_id, "session_id")
        turns = to_turns(messages, user_id=user_id, session_id=session_id, at=self.clock() if at is None else at,
                         metadata=metadata, count_tokens=self.count_tokens)
        key = request_key.get()
        stored = self.session.append_turns(turns, request_key=key)
        if stored is None:  # a served request resent after a lost answer: its turns are stored already
            seen = self.session.seen_request(key)  # type: ignore[arg-type]
            return AddResult(turns=self.session.get_turns(seen.turn_ids if seen else []), events=[],
                             pending=bool(self.session.count_pending(user_id)))
        if self.extraction == "background":
            self.worker.submit(user_id, stored)
            return AddResult(turns=stored, events=[], pending=True)
        try:
            events = self.writes.extract(user_id, stored)
        except Exception as exc:  # phase 1 is committed: record, retry, and say so
            attempt = self._record_failure(user_id, stored, exc)
            self.worker.retry_later(user_id, stored, attempt)
            return AddResult(turns=stored, events=[], pending=True, error=f"{type(exc).__name__}: {exc}")
        return AddResult(turns=stored, events=events or [])

    @_tracked
    def remember(self, text: str, *, user_id: str, kind: str | None = None, metadata: Mapping[str, Any] | None = None,
                 at: datetime | None = None) -> AddResult:
        user_id = check_id(user_id, "user_id")
        check_text(text, "text", max_chars=MAX_FACT_CHARS)
        if kind is not None and kind not in ("semantic", "episodic"):
            raise InvalidInput(f"kind must be 'semantic' or 'episodic', got {kind!r}")
        when = self.clock() if at is None else check_time(at, "at")
        candidate = statement(text.strip(), user_id=user_id, at=when, kind=kind,
                              metadata=check_metadata(metadata)).model_copy(update={"extractor": "caller"})
        return AddResult(turns=[], events=self.writes.remember(user_id, candidate))

    @_tracked
    def update(self, fact_id: str, text: str | None = None, *, metadata: Mapping[str, Any] | None = None,
               user_id: str | None = None) -> FactEvent:
        if text is None and metadata is None:
            raise InvalidInput("update() needs text or metadata (or both)")
        if text is not None:
            check_text(text, "text", max_chars=MAX_FACT_CHARS)
        new_metadata = check_metadata(metadata) if metadata is not None else None
        return self.writes.correct(self.get(fact_id, user_id=user_id), None if text is None else text.strip(), new_metadata)

    @_tracked
    def flush(self, timeout: float | None = None) -> bool:
        done = self.worker.flush(check_timeout(timeout))
        # Journal rows another process wrote (an import beside this owner) reach the index too.
        if self.sync.watermark < self.session.last_event_seq():
            self.sync.catch_up()
        return done

    @_tracked
    def backlog(self, user_id: str | None = None) -> Backlog:
        failures: list[ExtractionFailure] = self.session.failures(user_id)
        return Backlog(pending_turns=self.session.count_pending(user_id), failures=failures)

    # -- reading --------------------------------------------------------------------------------
    @_tracked
    def search(self, query: str, *, user_id: str, limit: int = 10, as_of: datetime | None = None,
               kinds: Sequence[str] | None = None) -> list[Hit]:
        check_text(query, "query", max_chars=MAX_QUERY_CHARS)
        check_count(limit, "limit")
        as_of = check_time(as_of, "as_of") if as_of is not None else None
        if kinds is not None and (isinstance(kinds, str) or not set(kinds) <= {"semantic", "episodic"}):
            raise InvalidInput(f"kinds must be a list of 'semantic' and/or 'episodic', got {kinds!r}")
        return [s.hit() for s in self.retriever.scored(query, check_id(user_id, "user_id"), limit, as_of, kinds)[:limit]]

    @_tracked
    def context(self, message: str, *, user_id: str, session_id: str = "default", system: str | None = None,
                budget: int = 8000, documents: Sequence[Any] | None = None, exclude_turns: Sequence[str] = ()) -> Context:
        check_text(message, "message")
        check_count(budget, "budget", low=256, high=MAX_BUDGET)
        if system is not None:
            check_text(system, "system", allow_empty=True)
        docs = to_documents(documents)
        return self.contexts.build(message, check_id(user_id, "user_id"), check_id(session_id, "session_id"), system, budget,
                                   docs, frozenset(check_ids(exclude_turns, "exclude_turns")))

    @_tracked
    def facts(self, *, user_id: str, include_invalid: bool = False, limit: int | None = None, offset: int = 0) -> list[Fact]:
        user_id = check_id(user_id, "user_id")
        check_count(limit, "limit", none=True)
        check_count(offset, "offset", low=0, high=MAX_OFFSET)
        facts = self.session.list_facts(user_id, include_invalid=include_invalid, limit=limit, offset=offset)
        if not facts and not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        return facts

    @_tracked
    def users(self) -> list[tuple[str, int, int]]:
        return self.session.users()

    @_tracked
    def turns(self, *, user_id: str, session_id: str | None = None, refs: Sequence[str] | None = None,
              limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[Turn]:
        user_id = check_id(user_id, "user_id")
        check_count(limit, "limit")
        check_count(offset, "offset", low=0, high=MAX_OFFSET)
        if session_id is not None:
            session_id = check_id(session_id, "session_id")
        if refs is not None:
            refs = check_ids(refs, "refs")
        if not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        if refs is not None:
            found = [t for t in self.session.turns_by_ref(user_id, refs)
                     if session_id is None or t.session_id == session_id]
            return (found[::-1] if newest_first else found)[offset:offset + limit]
        return self.session.turns(user_id, session_id, limit=limit, offset=offset, newest_first=newest_first)

    @_tracked
    def get(self, fact_id: str, *, user_id: str | None = None) -> Fact:
        fact = self.session.get_fact(check_id(fact_id, "fact_id"))
        if fact is None or (user_id is not None and fact.user_id != check_id(user_id, "user_id")):
            raise FactNotFound(f"no fact {fact_id!r}; list ids with `tiermem facts list --user USER`")
        return fact

    @_tracked
    def history(self, fact_id: str, *, user_id: str | None = None) -> list[FactEvent]:
        fact = self.session.get_fact(check_id(fact_id, "fact_id"))
        if fact is None or (user_id is not None and fact.user_id != check_id(user_id, "user_id")):
            raise FactNotFound(f"no history for fact {fact_id!r} (unknown, forgotten, or another user's)")
        return self.session.history(fact_id)

    # -- changing and erasing -------------------------------------------------------------------
    @_tracked
    def retract(self, fact_id: str, *, user_id: str | None = None, reason: str = "retracted") -> FactEvent:
        check_text(reason, "reason", max_chars=MAX_REASON_CHARS)
        fact = self.get(fact_id, user_id=user_id)
        if not fact.is_valid:
            raise InvalidInput(f"fact {fact_id!r} is already invalid; restore() it first, or leave it")
        return self.writes.retract(fact, reason.strip())

    @_tracked
    def restore(self, fact_id: str, *, user_id: str | None = None) -> FactEvent:
        fact = self.get(fact_id, user_id=user_id)
        if fact.is_valid:
            raise InvalidInput(f"fact {fact_id!r} is valid; nothing to restore")
        return self.writes.restore(fact)

    @_tracked
    def forget(self, fact_id: str, *, user_id: str | None = None, redact_turns: bool = False) -> FactEvent:
        return self.writes.forget(check_id(fact_id, "fact_id"), check_id(user_id, "user_id") if user_id is not None else None,
                                  redact_turns=bool(redact_turns))

    @_tracked
    def forget_session(self, session_id: str, *, user_id: str) -> dict[str, int]:
        user_id = check_id(user_id, "user_id")
        session_id = check_id(session_id, "session_id")
        if not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        return self.writes.forget_session(user_id, session_id)

    @_tracked
    def forget_user(self, user_id: str) -> ErasureReceipt:
        user_id = check_id(user_id, "user_id")
        if not self.session.has_user(user_id) and not self.item_tier.has_items(user_id):
            raise UnknownUser(f"no user {user_id!r} is stored; list users with `tiermem users`")
        return self.writes.forget_user(user_id)

    # -- memory-tool files ----------------------------------------------------------------------
    @_tracked
    def files(self, *, user_id: str, prefix: str = "") -> list[MemoryFile]:
        return self.session.files(check_id(user_id, "user_id"), check_path(prefix) if prefix else "")

    @_tracked
    def write_file(self, path: str, content: str, *, user_id: str, if_version: int | None = None) -> MemoryFile:
        return self.file_writes.write(check_id(user_id, "user_id"), path, content, if_version)

    @_tracked
    def delete_files(self, paths: Sequence[str], *, user_id: str) -> int:
        if isinstance(paths, str) or not isinstance(paths, Sequence):
            raise InvalidInput(f"paths must be a list of paths, got {type(paths).__name__}")
        return self.file_writes.delete(check_id(user_id, "user_id"), paths)

    # -- items ------------------------------------------------------------------------------------
    @_tracked
    def items(self, ops: Sequence[ItemOp], *, index: ItemIndexSpec | None = None) -> list[ItemResult]:
        if isinstance(ops, str | bytes) or not isinstance(ops, Sequence):
            raise InvalidInput(f"ops must be a list of item operations, got {type(ops).__name__}")
        return self.item_tier.run(ops, index)

    # -- model usage ----------------------------------------------------------------------------
    @_tracked
    def usage(self, user_id: str | None = None, session_id: str | None = None) -> UsageReport:
        from .claude._report import usage_report

        if user_id is not None:
            user_id = check_id(user_id, "user_id")
        if session_id is not None:
            session_id = check_id(session_id, "session_id")
        return usage_report(self.session.usage_rows(user_id, session_id), user_id=user_id, session_id=session_id)

    @_tracked
    def record_usage(self, usage: CallUsage) -> None:
        if not isinstance(usage, CallUsage):
            raise InvalidInput(f"usage must be a CallUsage, got {type(usage).__name__}")
        self.session.record_usage(usage)

    def _bind_usage(self, part: Any) -> None:
        """A model-backed part (it has a `caller`) records its calls in this memory's usage table."""
        caller = getattr(part, "caller", None)
        if caller is not None and caller.record is None:
            caller.record = self.session.record_usage

    # -- maintenance (this process's stores only: not on the served contract) -------------------
    @_tracked
    def reindex(self, *, batch_size: int = 512, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from the journal (all facts, valid or not, so `as_of` works).

        Returns the number of facts indexed.
        """
        return self.sync.reindex(batch_size=batch_size, progress=progress)

    @_tracked
    def optimize(self, *, compact: bool = False) -> bool:
        """Build the embedded index's HNSW graphs now (blocking maintenance; see EdgeFactIndex).
        With `compact=True`, first rewrite the index with only the points it holds now: the
        pages of erased users' points (sealed ciphertext and their vectors) leave the disk.

        Returns whether anything changed. A Qdrant server optimizes on its own.
        """
        with self._lock:
            compacted = self.index.compact(patient=True) if compact else False
            if compact:  # PostgreSQL: the tables an erasure could not rewrite without waiting
                self.session.scrub((), lock_timeout=60.0)
            return self.index.optimize() or compacted

    @_tracked
    def verify(self) -> dict[str, set[str]]:
        """Compare the index with the journal: ids missing from or extra in the index."""
        return self.sync.verify()

    def plan_reextract(self, user_id: str, *, extractor: Extractor | str = "claude", batch: bool = False) -> ReextractPlan:
        """What `reextract()` would do and cost (no model call is made). Returns a
        ReextractPlan; `plan.describe()` says it in a line."""
        from . import _reextract

        user_id = check_id(user_id, "user_id")
        if not self.session.has_user(user_id):
            raise UnknownUser(f"no user {user_id!r} in this memory")
        return _reextract.plan_for(user_id, self.session.turns(user_id), extractor, self._anthropic_client(), batch=batch,
                                   bind_usage=self._bind_usage)

    @_tracked
    def reextract(self, user_id: str, *, extractor: Extractor | str = "claude", batch: bool = False,
                  plan: ReextractPlan | None = None, progress: Callable[[int, int], None] | None = None,
                  poll_interval: float = 30.0) -> ReextractReport:
        """Rebuild a user's facts from the stored turns with another extractor, destroying
        nothing: the facts extracted before are invalidated with the reason "re-extracted" in
        the same transaction that stores the new ones (history kept; facts from remember()
        stay, and forgotten facts stay forgotten). `batch=True` sends the calls through the
        Message Batches API (half price; resumable: a second run after a crash picks up the
        submitted batch).

        Args:
            plan: the result of `plan_reextract()` the caller already showed (and priced).

        Returns:
            ReextractReport (the plan, facts invalidated and added, fallbacks, batch id).
        """
        from . import _reextract

        p = plan or self.plan_reextract(user_id, extractor=extractor, batch=batch)
        return _reextract.run(p, self.writes, self.session, poll_interval=poll_interval, progress=progress)

    def _anthropic_client(self) -> Any:
        for part in (self.extractor, self.writes.reconciler, self.writes.upkeep.summarizer):
            caller = getattr(part, "caller", None)
            if caller is not None:
                return caller.client
        return None

    # -- lifecycle ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        from . import __version__

        policy = self.retriever.policy
        return {"ok": not self._closed, "version": __version__, "pid": os.getpid(), "location": self.location,
                "embedder": self.embedder.name, "dims": self.embedder.dims,
                # what `context()` pages in: a hit's explain['dense'] or ['context'] at least
                # min_relevance, or explain['sparse_norm'] at least min_lexical_relevance
                "page_in": {"min_relevance": policy.min_relevance, "min_lexical_relevance": policy.min_lexical_relevance}}

    def _off_hot_path(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run bookkeeping (access stats) off the hot path; failures are logged, not lost."""

        def report(future: Future[Any]) -> None:
            if future.exception() is not None:
                logger.warning("tiermem background task %s failed: %r", fn.__name__, future.exception())

        self._stats.submit(fn, *args).add_done_callback(report)

    def on_close(self, callback: Callable[[], Any], *, before: bool = False) -> None:
        """Run `callback` when this memory closes: after its stores are released, or with
        `before`, before anything closes (how an owner stops serving the home)."""
        self._on_close.append((before, callback))

    def close(self, timeout: float | None = 10.0) -> None:
        """Let calls already running in other threads finish, finish background extraction
        (up to `timeout` seconds each; what is left stays pending and is extracted by the
        next open), then release the index (and its folder lock) and the database. Calls
        made after close() raise MemoryClosed."""
        with self._calls:
            if self._closed:
                return
            self._closed = True
        for before, callback in self._on_close:
            if before:
                callback()
        with self._calls:
            if not self._calls.wait_for(lambda: self._active == 0, timeout):
                logger.warning("tiermem: closing with %d calls still running after %s s", self._active, timeout)
        self.worker.close(timeout)
        self._stats.shutdown(wait=True)
        with self._lock:
            try:
                self.item_tier.close()
                self.index.close()
            finally:
                self.session.close()
        for before, callback in self._on_close:
            if not before:
                callback()

    def __enter__(self) -> Memory:
        return self
