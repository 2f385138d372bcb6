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
    from .index import EdgeFactIndex, QdrantFactIndex

    index: FactIndex | None = None
    session: SessionStore | None = None
    try:
        if where.qdrant_url:
            index = QdrantFactIndex.from_url(where.qdrant_url, dims, api_key=where.qdrant_api_key, collection=collection)
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
