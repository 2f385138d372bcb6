"""`tiermem search` on a cold start: the search, without the session store (SQLAlchemy), the
write path, the owner's server or the extraction worker that opening a whole `Memory` brings.

A hook that shells out to `tiermem search` on every prompt pays for everything the process
loads. What a search reads is the index, the user's sealing key and the model: this opens
those (the key through the standard library's sqlite3), and the same `Retriever` ranks, so the
answer is the full path's. It answers only when the home is in the state the full path would
leave it in on opening, and returns None otherwise, for the full path to do:

- a process owns the home: the search is its (one call over the home's socket, no model here);
- the journal is ahead of the index, a rebuild or an erasure was interrupted, the index is in
  an older format, or the facts were embedded by another model: opening would repair or refuse;
- the question asks what the assistant said (that recall reads the turns);
- another process is opening the home right now (it holds `serve.lock`).

While it reads it holds `serve.lock` and the index folder's lock, as an owner would: a process
that opens the home meanwhile waits the half second and then owns it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._config import INFO_FILE, LOCK_FILE
from ._quickread import QuickReader


def search(home: Path, sqlite_file: Path, index_path: Path, query: str, user_id: str, limit: int) -> list[Any] | None:
    """The hits `Memory.open(home).search(query, user_id=user_id, limit=limit)` returns, or None
    when this path cannot answer for it (the full path then does)."""
    reader = QuickReader.open(sqlite_file)
    if reader is None:
        return None
    try:
        if user_id not in {u for u, _, _ in reader.users()}:
            return None  # the full path's UnknownUser message
        owner = None
        if (home / INFO_FILE).exists():  # where an owner publishes itself
            from .serve._shared import live_owner

            owner = live_owner(home)
        if owner is not None:
            from .serve._client import RemoteMemory

            remote = RemoteMemory(owner["url"], api_key=owner.get("key"))
            try:
                return remote.search(query, user_id=user_id, limit=limit)
            finally:
                remote.close()
        return _search_here(home, reader, index_path, query, user_id, limit)
    finally:
        reader.close()


def _search_here(home: Path, reader: QuickReader, index_path: Path, query: str, user_id: str,
                 limit: int) -> list[Any] | None:
    from ._errors import InvalidInput
    from ._limits import MAX_QUERY_CHARS, check_text
    from ._said import asks_what_was_said

    try:
        check_text(query, "query", max_chars=MAX_QUERY_CHARS)
    except InvalidInput:
        return None  # the full path's message, before any model is loaded
    if asks_what_was_said(query) or not index_path.is_dir():
        return None
    import portalocker

    try:
        election = open(home / LOCK_FILE, "a+")  # noqa: SIM115 - released below
    except OSError:
        return None
    try:
        try:
            portalocker.lock(election, portalocker.LOCK_EX | portalocker.LOCK_NB)
        except portalocker.LockException:
            return None  # a process is taking the home over: follow it through the full path
        from .embed import MiniLMEmbedder

        embedder = MiniLMEmbedder()
        if not _as_opening_would_leave_it(reader, index_path, f"{embedder.identity}:{embedder.dims}"):
            return None
        return _ranked(reader, index_path, embedder, query, user_id, limit)
    finally:
        election.close()  # closing the file releases the lock


def _as_opening_would_leave_it(reader: QuickReader, index_path: Path, embedder: str) -> bool:
    """Whether opening the home would change nothing the search reads (see IndexSync)."""
    from .index._base import INDEX_FORMAT
    from .index._facts import IDENTITY_FILE, edge_identity, format_key, rebuilding_key, recorded_journal, watermark_key

    if not (index_path / IDENTITY_FILE).is_file():
        return False  # never opened as an index (edge_identity would make one)
    identity = edge_identity(index_path)
    meta = reader.meta()
    return (meta.get("embedder") == embedder
            and meta.get("journal_id") is not None and recorded_journal(index_path) == meta["journal_id"]
            and int(meta.get(watermark_key(identity)) or 0) == reader.last_event_seq()
            and meta.get(format_key(identity)) == INDEX_FORMAT
            and rebuilding_key(identity) not in meta
            and not any(key.startswith("erasing:") for key in meta))  # _write.PENDING_ERASURE: loads the write path


def _ranked(reader: QuickReader, index_path: Path, embedder: Any, query: str, user_id: str, limit: int) -> list[Any]:
    from datetime import UTC, datetime

    from ._retriever import Retriever
    from .index import EdgeFactIndex
    from .retrieve import RetrievalPolicy

    index = EdgeFactIndex(index_path, embedder.dims)
    try:
        index.attach_keys(lambda user, create: reader.user_key(user))
        retriever = Retriever(embedder, index, RetrievalPolicy(), clock=lambda: datetime.now(UTC))
        return [s.hit() for s in retriever.scored(query, user_id, limit)[:limit]]
    finally:
        index.close()
