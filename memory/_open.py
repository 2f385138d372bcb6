"""Building the stores from configuration (`Memory.open`): the one place that does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ._config import Locations
from .embed import Embedder
from .index import FactIndex
from .session import SessionStore


def default_embedder() -> Embedder:
    from .embed import MiniLMEmbedder

    return MiniLMEmbedder()


@contextmanager
def stores(where: Locations, dims: int, collection: str) -> Iterator[tuple[SessionStore, FactIndex]]:
    """The session store and the index, closed again if what uses them fails to start.

    Whatever can fail without leaving anything on disk goes first: a bad URL must not
    leave a fresh database or index folder behind.
    """
    from .index import EdgeFactIndex, PgVectorFactIndex, QdrantFactIndex

    index: FactIndex | None = None
    session: SessionStore | None = None
    try:
        kind = where.index_kind
        if kind == "qdrant":
            index = QdrantFactIndex.from_url(where.index_url, dims, api_key=where.index_api_key,  # type: ignore[arg-type]
                                             collection=collection)
            session = SessionStore(where.database_url)
        elif kind == "pgvector":
            index = PgVectorFactIndex(where.index_url, dims, collection)  # type: ignore[arg-type]
            session = SessionStore(where.database_url)
        else:
            session = SessionStore(where.database_url)
            index = EdgeFactIndex(where.index_path, dims)
        yield session, index
    except BaseException:
        if index is not None:
            index.close()
        if session is not None:
            session.close()
        raise


def check_embedder(session: SessionStore, embedder: Embedder, reembed: bool) -> bool:
    """The database records which embedder made its vectors; another one makes vectors the
    stored ones cannot be compared with. Returns whether the facts must be re-embedded.

    Raises:
        EmbeddingMismatch: another embedder made them and `reembed` was not asked.
    """
    from ._errors import EmbeddingMismatch

    identity = f"{getattr(embedder, 'identity', embedder.name)}:{embedder.dims}"
    stored = session.get_meta("embedder")
    if stored is not None and "@" not in stored and stored == f"{identity.split('@')[0]}:{embedder.dims}":
        stored = identity  # recorded before model hashes were: the same model by name
    mismatch = stored is not None and stored != identity and session.count_facts(include_invalid=True) > 0
    if mismatch and not reembed:
        raise EmbeddingMismatch(
            f"the facts in this memory were embedded with {stored.rsplit(':', 1)[0]}, not {embedder.name}; "  # type: ignore[union-attr]
            "open it with that embedder, or re-embed every fact with `tiermem reindex --embedder NAME` "
            "(Memory.open(..., reembed=True))"
        )
    if session.get_meta("embedder") != identity:
        session.set_meta("embedder", identity)
    return mismatch
