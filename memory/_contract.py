"""The public contract: what every memory answers, in-process or served.

`Memory` (the stores opened here), `RemoteMemory` (`Memory.open(url=...)`, a `tiermem serve`
elsewhere) and `SharedMemory` (a home several processes share) are all `MemoryAPI`s, as
qdrant-client's local and remote clients are both `QdrantBase`s: integrations are written
against this class and work over any of them. The served method table (`tiermem serve`) is
derived from it, so a method cannot be on one side only.

A method's body here forwards its arguments, by the names of its own signature, to
`_call(name, arguments)`: a client that only implements `_call` gets every method with the
contract's exact signature (it cannot drift). `Memory` overrides each method with the real
work and inherits the documentation.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from ._erasure import ErasureReceipt
    from ._models import AddResult, Backlog, CallUsage, Context, Fact, FactEvent, Hit, MemoryFile, Turn, UsageReport
    from .items import ItemIndexSpec, ItemOp, ItemResult

MessagesIn = Sequence[Mapping[str, Any]] | Mapping[str, Any] | str


P = ParamSpec("P")
R = TypeVar("R")


def forwarded(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """The body of a contract method: its arguments, by the names of its own signature, to
    `self._call(name, arguments)`. A client that implements only `_call` gets every method
    with the contract's exact signature (it cannot drift); `Memory` overrides each method."""
    name = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def forward(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        return self._call(name, arguments)

    return forward


def twin(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """The async twin of a contract method: the same call on a worker thread (the embedded
    stores block), dispatched by name, so a subclass's own method is the one that runs."""
    name = method.__name__

    async def run(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(getattr(self, name), *args, **kwargs)

    run.__name__ = run.__qualname__ = f"a{name}"
    run.__doc__ = f"Async `{name}()`: the same call on a worker thread."
    return run


class MemoryAPI:
    """Persistent, tiered memory for one or many users: the methods every memory has."""

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement {name}()")

    # -- writing --------------------------------------------------------------------------------
    @forwarded
    def add(self, messages: MessagesIn, *, user_id: str, session_id: str = "default", at: datetime | None = None,
            metadata: Mapping[str, Any] | None = None) -> AddResult:
        """Store turns, then extract facts from them and reconcile those with what is stored.

        Phase 1 commits the turns before anything else; phase 2 (extract, reconcile, journal,
        index) runs inline or in the background (see `extraction`). A failure in phase 2
        never undoes phase 1 and never makes add() raise: it is recorded and retried, and the
        result says `pending=True` with the `error`.

        Args:
            messages: message dicts (Anthropic or OpenAI shape); `name` is the speaker,
                `id` the caller's message id (kept as provenance).
            user_id: the tenant.
            session_id: the conversation the turns belong to.
            at: when the turns happened (default now); relative dates resolve against it.
            metadata: a JSON object carried onto every fact extracted from these turns.

        Returns:
            AddResult with the stored turns, the fact events (add/update/invalidate/noop)
            once phase 2 has run, and `pending`.

        Raises:
            InvalidInput: bad messages, ids or metadata; nothing is stored.

        Example:
            >>> mem.add([{"role": "user", "content": "I moved to Berlin last week", "id": "m-17"}],
            ...         user_id="ana", session_id="s-3", at=datetime(2024, 5, 2, 18, 0))
        """
        ...

    @forwarded
    def remember(self, text: str, *, user_id: str, kind: str | None = None, metadata: Mapping[str, Any] | None = None,
                 at: datetime | None = None) -> AddResult:
        """Store one fact as given: no extraction, but deduplicated and reconciled (a
        contradicted fact is invalidated, with history).

        Args:
            text: a self-contained statement ("Ana is allergic to peanuts").
            user_id: the tenant.
            kind: "semantic" or "episodic" (default: guessed from the text).
            metadata: a JSON object stored with the fact.
            at: when the statement became true (default now).

        Returns:
            AddResult with no turns and the events (`result.facts[0]` is the fact).

        Example:
            >>> mem.remember("Ana is allergic to peanuts", user_id="ana").facts[0].id
        """
        ...

    @forwarded
    def update(self, fact_id: str, text: str | None = None, *, metadata: Mapping[str, Any] | None = None,
               user_id: str | None = None) -> FactEvent:
        """Correct a fact's text, or replace its metadata, or both. The fact keeps its id;
        its old version stays in `history()`.

        Raises:
            InvalidInput: neither `text` nor `metadata` given, or one of them is malformed.
            FactNotFound: no such fact (or it belongs to another user than `user_id`).
        """
        ...

    @forwarded
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until background extraction has caught up, and the index with the journal
        (rows another process wrote: an import beside this owner). Returns False on timeout.

        Batches whose retries are spent stay pending (see `backlog()`) and are retried by
        the next open.
        """
        ...

    @forwarded
    def backlog(self, user_id: str | None = None) -> Backlog:
        """Turns waiting for phase 2 and the failures recorded for them."""
        ...

    # -- reading --------------------------------------------------------------------------------
    @forwarded
    def search(self, query: str, *, user_id: str, limit: int = 10, as_of: datetime | None = None,
               kinds: Sequence[str] | None = None) -> list[Hit]:
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
        ...

    @forwarded
    def context(self, message: str, *, user_id: str, session_id: str = "default", system: str | None = None,
                budget: int = 8000, documents: Sequence[Any] | None = None, exclude_turns: Sequence[str] = ()) -> Context:
        """Build a provider-ready request for the next turn (no model call, no network).

        Args:
            message: the new user message (always last, never dropped).
            user_id / session_id: whose memory, which conversation's recent turns.
            system: the system prompt (never dropped).
            budget: total tokens for the request, the reply reserve included.
            documents: caller documents (RAG chunks, a file, ...): strings, dicts with
                `text` and optional `id`, `title`, `priority` (higher stays longer) and
                `stable` (same text every turn: cached in the prefix), or Anthropic
                text/document blocks. They get `ContextBudget.documents_share` of the budget.
            exclude_turns: ids of stored turns to leave out of the history (the new turn an
                adapter has already stored and sends itself, verbatim).

        When the request is over budget, parts give back in this order: lowest-priority
        documents (trimmed at a sentence boundary, then dropped), the memory block, older
        turns, the summary. The system prompt, profile and new message are never dropped;
        `report.dropped` says what went and why.

        Returns:
            Context with Anthropic `system` blocks (stable ones carry cache_control),
            alternating `messages`, the paged-in `facts` and a token `report`.

        Example:
            >>> ctx = mem.context("what should I pack?", user_id="ana", session_id="s-4", system="You help.")
            >>> client.messages.create(model=..., system=ctx.system, messages=ctx.messages, max_tokens=1024)
        """
        ...

    @forwarded
    def facts(self, *, user_id: str, include_invalid: bool = False, limit: int | None = None, offset: int = 0) -> list[Fact]:
        """A user's facts from the journal, oldest first (no index, no embedder needed).

        Raises:
            UnknownUser: nothing at all is stored for `user_id` (a typo, usually). A user
                whose turns yielded no facts yet gets an empty list.
        """
        ...

    @forwarded
    def users(self) -> list[tuple[str, int, int]]:
        """(user_id, valid facts, turns) for every stored user."""
        ...

    @forwarded
    def turns(self, *, user_id: str, session_id: str | None = None, refs: Sequence[str] | None = None,
              limit: int = 100, offset: int = 0, newest_first: bool = False) -> list[Turn]:
        """A user's stored turns, verbatim: one session's in turn order, or all of them by time.

        Args:
            session_id: only this conversation's turns.
            refs: only the turns with these ids or caller message ids (what `Fact.sources` holds),
                in the order given; refs that name nothing stored are left out.
            limit / offset: a page of at most `limit` turns, after skipping `offset`.
            newest_first: the latest turns first (a user's last activity is `turns(..., limit=1,
                newest_first=True)`).

        Raises:
            UnknownUser: nothing at all is stored for `user_id`.
        """
        ...

    @forwarded
    def get(self, fact_id: str, *, user_id: str | None = None) -> Fact:
        """One fact by id; with `user_id`, only that user's (another user's fact is FactNotFound)."""
        ...

    @forwarded
    def history(self, fact_id: str, *, user_id: str | None = None) -> list[FactEvent]:
        """Every change to a fact, oldest first (its versions are `event.previous` / `event.fact`).

        Raises:
            FactNotFound: unknown or forgotten (erased with its history), or another user's.
        """
        ...

    # -- changing and erasing -------------------------------------------------------------------
    @forwarded
    def retract(self, fact_id: str, *, user_id: str | None = None, reason: str = "retracted") -> FactEvent:
        """Stop using a fact without erasing it: it is invalidated (journaled with `reason`,
        kept in `history()`, out of search and context) and `restore()` brings it back.
        Use `forget()` to erase it for real.

        Raises:
            FactNotFound: no such fact (or another user's, when `user_id` is given).
            InvalidInput: the fact is already invalid.
        """
        ...

    @forwarded
    def restore(self, fact_id: str, *, user_id: str | None = None) -> FactEvent:
        """Make a retracted (or otherwise invalidated) fact valid again.

        Raises:
            FactNotFound: no such fact (erased, or another user's).
            InvalidInput: the fact is valid already.
        """
        ...

    @forwarded
    def forget(self, fact_id: str, *, user_id: str | None = None, redact_turns: bool = False) -> FactEvent:
        """Erase one fact from every tier (journal rows, profile, index and its files).

        Args:
            redact_turns: also delete the turns the fact came from (its `sources`), and
                rebuild their sessions' summaries without them. Otherwise the turns stay
                (context() shows them while they are recent, summaries keep what they
                said), but the statement the fact came from is marked in them so that no
                extraction or `reextract()` brings the fact back.

        Raises:
            FactNotFound: no such fact (or another user's, when `user_id` is given).
        """
        ...

    @forwarded
    def forget_session(self, session_id: str, *, user_id: str) -> dict[str, int]:
        """Erase one conversation: its turns and summaries, and every fact that came from one
        of its turns (their text leaves every tier, as with `forget()`). Returns how many
        turns and facts went.

        Raises:
            UnknownUser: nothing is stored for `user_id`.
        """
        ...

    @forwarded
    def forget_user(self, user_id: str) -> ErasureReceipt:
        """Erase everything stored about a user: turns, summaries, profile, facts, files,
        items, index.

        When it returns, none of the user's text is in the local store files: SQLite zeroes
        deleted rows and its WAL is checkpointed and truncated; the embedded index is
        rewritten without the user's points. The journal keeps a tombstone naming only a
        hash of the id.

        Returns:
            An `ErasureReceipt`: rows removed per tier, and whether a scan of the local files
            found any removed text (`verified`, `leftovers`).
        """
        ...

    # -- memory-tool files ----------------------------------------------------------------------
    @forwarded
    def files(self, *, user_id: str, prefix: str = "") -> list[MemoryFile]:
        """A user's files (Claude's memory tool), by path; with `prefix`, the file at that
        path and those under it as a folder."""
        ...

    @forwarded
    def write_file(self, path: str, content: str, *, user_id: str, if_version: int | None = None) -> MemoryFile:
        """Write a file and the fact that makes it searchable, in one transaction.

        Args:
            if_version: 0 to create only (the path must be free: no file there, nor under it
                as a folder, nor a file at one of its parent folders); a version to write only
                over that version; None to write whatever is there.

        Raises:
            WriteConflict: `if_version` did not hold (someone else wrote first): read again
                and retry. Nothing was written.
            InvalidInput: a bad path or content (NUL, too long); nothing was written.
        """
        ...

    @forwarded
    def delete_files(self, paths: Sequence[str], *, user_id: str) -> int:
        """Erase files and their facts (text gone from every tier). Returns how many."""
        ...

    # -- items (what a LangGraph store keeps) ---------------------------------------------------
    @forwarded
    def items(self, ops: Sequence[ItemOp], *, index: ItemIndexSpec | None = None) -> list[ItemResult]:
        """Run a batch of item operations (`tiermem.items`: GetItem, PutItem, SearchItems,
        ListNamespaces, SweepItems, PendingItems) and answer each, reads before writes.

        Items are JSON documents under namespaces, kept in the session tier; the texts a
        put names are embedded (with the caller's vectors, or the memory's embedder) into a
        collection of the long-term tier's engine made for `index` (its dims and distance).
        A deleted or expired item is erased: its text leaves the database and index files.
        `forget_user(u)` erases the items written with `owner=u` (`PutItem.owner`; the
        LangGraph store sets it from a declared position of the namespace).

        Raises:
            InvalidInput: a bad namespace, key, value, filter or page; nothing was written.
        """
        ...

    # -- model usage ----------------------------------------------------------------------------
    @forwarded
    def usage(self, user_id: str | None = None, session_id: str | None = None) -> UsageReport:
        """Model tokens and cost of the Claude paths (and of MemoryClient requests): input,
        cache writes (5m / 1h), cache reads, output, the share of input read from cache, and
        the cost priced from the model table; in total, by model and by purpose.

        Example:
            >>> report = mem.usage(user_id="ana")
            >>> report.total.cache_read_share, report.total.cost_usd
        """
        ...

    @forwarded
    def record_usage(self, usage: CallUsage) -> None:
        """Add one model call's tokens to the usage table (what MemoryClient does for each
        chat request, so that `usage()` prices them with the memory's own calls)."""
        ...

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """Where this memory lives, for people: a database and an index, or a server's URL."""
        return type(self).__name__

    @forwarded
    def health(self) -> dict[str, Any]:
        """Whether this memory answers, its version, and where it keeps its tiers."""
        ...

    def close(self, timeout: float | None = 10.0) -> None:
        """Release what this object holds (stores, connections); later calls raise MemoryClosed."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async twins: one for every served method, made from its signature -------------------
    aadd = twin(add)
    aremember = twin(remember)
    aupdate = twin(update)
    aflush = twin(flush)
    abacklog = twin(backlog)
    asearch = twin(search)
    acontext = twin(context)
    afacts = twin(facts)
    ausers = twin(users)
    aturns = twin(turns)
    aget = twin(get)
    ahistory = twin(history)
    aretract = twin(retract)
    arestore = twin(restore)
    aforget = twin(forget)
    aforget_session = twin(forget_session)
    aforget_user = twin(forget_user)
    afiles = twin(files)
    awrite_file = twin(write_file)
    adelete_files = twin(delete_files)
    aitems = twin(items)
    ausage = twin(usage)
    arecord_usage = twin(record_usage)
    ahealth = twin(health)


# The methods the contract serves, in the order the docs list them. Everything else on a
# MemoryAPI (close, the async twins, the context manager) is local to the object.
CONTRACT = (
    "add", "remember", "update", "flush", "backlog", "search", "context", "facts", "users", "turns", "get", "history", "retract",
    "restore", "forget", "forget_session", "forget_user", "files", "write_file", "delete_files", "items", "usage", "record_usage", "health",
)
