from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.langgraph.embeddings import CharFrequencyEmbeddings
from tiermem import HashEmbedder
from tiermem.adapters.langgraph import TiermemStore


@pytest.fixture
def open_store(home: Path) -> Iterator[Callable[..., TiermemStore]]:
    """Open TiermemStores on the test's home (a real SQLite file and qdrant-edge shard);
    every one opened is closed at the end."""
    opened: list[TiermemStore] = []

    def make(**options: Any) -> TiermemStore:
        options.setdefault("embedder", HashEmbedder(64))
        store = TiermemStore.open(home, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., TiermemStore]) -> TiermemStore:
    return open_store()


@pytest.fixture
def embeddings() -> CharFrequencyEmbeddings:
    return CharFrequencyEmbeddings(dims=96)


@pytest.fixture
def vstore(open_store: Callable[..., TiermemStore], embeddings: CharFrequencyEmbeddings) -> TiermemStore:
    return open_store(index={"dims": embeddings.dims, "embed": embeddings})
