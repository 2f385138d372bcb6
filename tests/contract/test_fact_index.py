"""One contract, every backend: the embedded qdrant-edge shard, qdrant-client (in its own
local mode, the same client API as a server) and PostgreSQL with pgvector must behave the
same."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import T0
from tiermem import EmbeddingMismatch, Fact, HashEmbedder
from tiermem._text import sparse_document, sparse_query
from tiermem.index import (
    Delete,
    DeleteUser,
    EdgeFactIndex,
    FactIndex,
    IndexedFact,
    IndexQuery,
    PgVectorFactIndex,
    QdrantFactIndex,
    SetPayload,
    Upsert,
)

EMB = HashEmbedder(32)


def make_index(kind: str, path: Path, dims: int = 32, postgres: str | None = None) -> FactIndex:
    if kind == "edge":
        return EdgeFactIndex(path / "edge", dims)
    if kind == "pgvector":
        assert postgres is not None
        return PgVectorFactIndex(postgres, dims, collection=f"tiermem_t_{abs(hash(str(path))) % 10**9}")
    from qdrant_client import QdrantClient

    return QdrantFactIndex(QdrantClient(path=str(path / "local")), dims)


@pytest.fixture(params=["edge", "qdrant-local", "pgvector"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FactIndex]:
    postgres = request.getfixturevalue("clean_postgres") if request.param == "pgvector" else None
    idx = make_index(request.param, tmp_path, postgres=postgres)
    yield idx
    idx.close()


def fact(user: str, text: str, **kw) -> Fact:
    return Fact(user_id=user, kind=kw.pop("kind", "semantic"), text=text, subject=user, valid_from=kw.pop("valid_from", T0), **kw)


def put(index: FactIndex, *facts: Fact) -> None:
    index.apply([Upsert([IndexedFact(f, EMB.embed([f.text])[0], sparse_document(f.text)) for f in facts])])


def query(index: FactIndex, user: str, text: str, **kw) -> tuple[list[str], list[str]]:
    result = index.query(IndexQuery(user, EMB.embed_query(text), sparse_query(text), kw.pop("limit", 10), **kw))
    return [h.fact.text for h in result.dense], [h.fact.text for h in result.sparse]


def test_dense_and_sparse_find_the_matching_fact(index: FactIndex) -> None:
    put(index, fact("ana", "Ana loves hiking in the Alps"), fact("ana", "Ana works at Zalando in Berlin"))
    dense, sparse = query(index, "ana", "hiking Alps")
    assert dense[0] == "Ana loves hiking in the Alps"
    assert sparse == ["Ana loves hiking in the Alps"]  # BM25 matches only documents sharing a term


def test_reads_are_scoped_to_the_tenant(index: FactIndex) -> None:
    put(index, fact("ana", "Ana loves hiking"), fact("bob", "Bob loves hiking"), fact("bob", "Bob hikes daily"))
    dense, sparse = query(index, "ana", "loves hiking", limit=50)
    assert dense == ["Ana loves hiking"] and sparse == ["Ana loves hiking"]
    assert index.count("bob") == 2 and index.count() == 3
    assert {f for f in index.ids("bob")} == index.ids() - index.ids("ana")
    for hits in index.nearest("ana", EMB.embed(["Bob hikes daily"]), 10):
        assert all(h.fact.user_id == "ana" for h in hits)


def test_invalidated_facts_are_hidden_now_but_visible_as_of_then(index: FactIndex) -> None:
    old = fact("ana", "Ana lives in Lisbon")
    put(index, old)
    later = T0 + timedelta(days=30)
    index.apply([SetPayload([old.model_copy(update={"invalid_at": later})])])
    assert query(index, "ana", "Lisbon")[0] == []
    assert query(index, "ana", "Lisbon", as_of=T0 + timedelta(days=1))[0] == ["Ana lives in Lisbon"]
    assert query(index, "ana", "Lisbon", as_of=T0 - timedelta(days=1))[0] == []  # not yet known then
    assert index.nearest("ana", EMB.embed(["Ana lives in Lisbon"]), 5) == [[]]


def test_kind_filter(index: FactIndex) -> None:
    put(index, fact("ana", "Ana went hiking", kind="episodic"), fact("ana", "Ana likes hiking"))
    assert query(index, "ana", "hiking", kinds=("episodic",))[0] == ["Ana went hiking"]


def test_set_payload_keeps_the_vector(index: FactIndex) -> None:
    f = fact("ana", "Ana loves hiking")
    put(index, f)
    index.apply([SetPayload([f.model_copy(update={"sources": ["m-1", "m-2"]})])])
    result = index.query(IndexQuery("ana", EMB.embed_query("loves hiking"), None, 5, with_vectors=True))
    assert result.dense[0].fact.sources == ["m-1", "m-2"]
    assert result.dense[0].vector is not None and len(result.dense[0].vector) == 32


def test_delete_and_delete_user(index: FactIndex) -> None:
    a, b, c = fact("ana", "Ana one"), fact("ana", "Ana two"), fact("bob", "Bob one")
    put(index, a, b, c)
    index.apply([Delete([a.id])])
    assert index.ids("ana") == {b.id}
    index.apply([DeleteUser("ana")])
    assert index.ids() == {c.id}


def test_upsert_is_idempotent(index: FactIndex) -> None:
    f = fact("ana", "Ana loves hiking")
    put(index, f)
    put(index, f)
    assert index.count("ana") == 1


@pytest.mark.parametrize("kind", ["edge", "qdrant-local", "pgvector"])
def test_embedding_size_is_checked_on_open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    postgres = request.getfixturevalue("clean_postgres") if kind == "pgvector" else None
    idx = make_index(kind, tmp_path, dims=32, postgres=postgres)
    put(idx, fact("ana", "Ana loves hiking"))
    idx.close()
    with pytest.raises(EmbeddingMismatch, match="32-dimensional"):
        make_index(kind, tmp_path, dims=64, postgres=postgres)
    reopened = make_index(kind, tmp_path, dims=32, postgres=postgres)
    assert reopened.count() == 1  # the failed open changed nothing
    reopened.close()
