"""TiermemStore against the BaseStore contract (langgraph.store.base docstrings), and the
choices its README states where LangGraph's own stores disagree."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, Item, ListNamespacesOp, PutOp, SearchOp

from tests.langgraph.embeddings import CharFrequencyEmbeddings, cosine
from tiermem import HashEmbedder, Memory
from tiermem._errors import EmbeddingMismatch, InvalidInput
from tiermem.adapters.langgraph import TiermemStore


# -- get / put / delete / batch ---------------------------------------------------------------
def test_put_get_update_delete_keep_created_at(store):
    store.put(("docs", "ana"), "d1", {"title": "Plan", "n": 1})
    first = store.get(("docs", "ana"), "d1")
    assert isinstance(first, Item) and first.value == {"title": "Plan", "n": 1}
    assert first.namespace == ("docs", "ana") and first.key == "d1"
    assert first.created_at.tzinfo is not None
    time.sleep(0.01)
    store.put(("docs", "ana"), "d1", {"title": "Plan v2"})
    second = store.get(("docs", "ana"), "d1")
    assert second.value == {"title": "Plan v2"}
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert store.get(("docs", "bob"), "d1") is None
    store.delete(("docs", "ana"), "d1")
    assert store.get(("docs", "ana"), "d1") is None


def test_batch_results_in_order_and_reads_see_the_store_before_the_batch(store):
    store.put(("test", "foo"), "key1", {"data": "value1"})
    results = store.batch([
        GetOp(("test", "foo"), "key1"),
        PutOp(("test", "bar"), "key2", {"data": "value2"}),
        SearchOp(("test",), filter={"data": "value1"}),
        ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
        GetOp(("test", "bar"), "key2"),  # the put in this batch is not visible yet
        PutOp(("test", "foo"), "key1", None),
        PutOp(("test", "foo"), "key1", {"data": "last write wins"}),
    ])
    assert results[0].value == {"data": "value1"} and results[1] is None
    assert [i.key for i in results[2]] == ["key1"] and results[2][0].score is None
    assert results[3] == [("test", "foo")] and results[4] is None
    assert results[5] is None and results[6] is None
    assert store.get(("test", "bar"), "key2").value == {"data": "value2"}
    assert store.get(("test", "foo"), "key1").value == {"data": "last write wins"}


@pytest.mark.parametrize("namespace", [(), ("a", "b.c"), ("a", ""), ("langgraph", "x"), ("a", "nul\x00")])
def test_invalid_namespaces_are_refused_and_store_nothing(store, namespace):
    with pytest.raises(InvalidNamespaceError):
        store.put(namespace, "k", {"v": 1})
    assert store.list_namespaces() == []


def test_langgraph_root_allowed_past_the_public_api_and_as_inner_label(store):
    store.batch([PutOp(("langgraph", "foo"), "bar", {"v": 1})])
    assert store.get(("langgraph", "foo"), "bar").value == {"v": 1}
    store.put(("foo", "langgraph"), "bar", {"v": 2})
    assert store.search(("foo", "langgraph"))[0].value == {"v": 2}


def test_bad_values_and_ops_raise_tiermem_errors_naming_the_argument(store):
    with pytest.raises(InvalidInput, match="JSON"):
        store.put(("a",), "k", {"when": datetime.now(UTC)})
    with pytest.raises(InvalidInput, match="ttl"):
        store.put(("a",), "k", {"v": 1}, ttl=-1)
    with pytest.raises(InvalidInput, match="limit"):
        store.search(("a",), limit=-1)
    with pytest.raises(InvalidInput, match="index"):
        store.put(("a",), "k", {"v": 1}, index="v")
    assert store.get(("a",), "k") is None


# -- list_namespaces ---------------------------------------------------------------------------
NAMESPACES = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f"),
              ("b", "a", "f"), ("users", "123"), ("users", "456", "settings"), ("admin", "users", "789")]


@pytest.fixture
def spaces(store):
    for i, ns in enumerate(NAMESPACES):
        store.put(ns, f"id_{i}", {"i": i})
    return store


def test_list_namespaces_prefix_suffix_wildcards_depth_and_pages(spaces):
    s = spaces
    assert s.list_namespaces(prefix=("a", "b")) == [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f")]
    assert s.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert s.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert s.list_namespaces(prefix=("a", "b"), max_depth=3) == [("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert s.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert s.list_namespaces(suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert s.list_namespaces(prefix=("a", "b"), limit=2) == [("a", "b", "c"), ("a", "b", "d", "e")]
    assert s.list_namespaces(prefix=("a", "b"), offset=2) == [("a", "b", "d", "i"), ("a", "b", "f")]
    assert s.list_namespaces(max_depth=1) == [("a",), ("admin",), ("b",), ("users",)]
    assert s.list_namespaces(prefix=("nonexistent",)) == []
    assert s.list_namespaces(prefix=("users", "123")) == [("users", "123")]
    assert len(s.list_namespaces(limit=100)) == len(NAMESPACES)


def test_labels_match_whole_and_literally(store):
    for ns in [("foo",), ("foo", "child"), ("foobar",), ("user_1",), ("userX1",), ("a%b",), ("axxb",), ("star*",),
               ("starX",), ("Foo",), ("users", "alice"), ("users", "alice\n"), ("uid", "users", "malice")]:
        store.put(ns, "k", {"v": 1})
    assert set(store.list_namespaces(prefix=["foo"], limit=100)) == {("foo",), ("foo", "child")}
    assert {i.namespace for i in store.search(("foo",), limit=100)} == {("foo",), ("foo", "child")}
    assert {i.namespace for i in store.search(("fo",), limit=100)} == set()
    assert {i.namespace for i in store.search(("user_1",), limit=100)} == {("user_1",)}
    assert {i.namespace for i in store.search(("a%b",), limit=100)} == {("a%b",)}
    assert {i.namespace for i in store.search(("star*",), limit=100)} == {("star*",)}
    assert {i.namespace for i in store.search(("Foo",), limit=100)} == {("Foo",)}
    assert set(store.list_namespaces(suffix=["alice"], limit=100)) == {("users", "alice")}
    assert len(store.search((), limit=100)) == 13


# -- search without a query -------------------------------------------------------------------
def test_search_newest_first_with_disjoint_pages(store):
    for i in range(7):
        store.put(("s", f"n{i % 2}"), f"k{i}", {"i": i})
    page1, page2 = store.search(("s",), limit=4), store.search(("s",), limit=4, offset=4)
    assert [i.value["i"] for i in page1] == [6, 5, 4, 3] and [i.value["i"] for i in page2] == [2, 1, 0]
    assert store.search(("s", "n1")) and all(i.namespace == ("s", "n1") for i in store.search(("s", "n1")))


@pytest.fixture
def filtered(store):
    rows = {
        "a": {"price": 10, "tag": "x", "active": True, "user": {"access-level": "nested", "123abc": "ok2"}, "tags": ["draft"]},
        "b": {"price": 20.5, "tag": "y", "active": False, "access-level": "public", "tags": ["draft", "final"]},
        "c": {"price": "30", "tag": "x", "active": 1, "123abc": "ok", "note": None},
        "d": {"price": -10, "when": "2024-05-02", "tags": ["final"]},
    }
    for key, value in rows.items():
        store.put(("f",), key, value)
    return store


@pytest.mark.parametrize("flt, keys", [
    ({"tag": "x"}, {"a", "c"}),
    ({"price": {"$gt": 15}}, {"b"}),  # "30" is a string: not compared with a number
    ({"price": {"$gte": 10, "$lt": 21}}, {"a", "b"}),
    ({"price": {"$lt": 0}}, {"d"}),
    ({"price": {"$lt": float("inf")}}, {"a", "b", "d"}),
    ({"price": {"$eq": float("nan")}}, set()),
    ({"price": 10.0}, {"a"}),
    ({"active": True}, {"a"}),  # not the 1 of "c"
    ({"active": 1}, {"c"}),
    ({"tag": {"$ne": "x"}}, {"b"}),  # a missing key never matches $ne (as in SQL)
    ({"note": None}, {"a", "b", "c", "d"}),  # missing or null
    ({"note": {"$ne": None}}, set()),
    ({"user.access-level": "nested"}, {"a"}),
    ({"access-level": "public"}, {"b"}),
    ({"123abc": "ok"}, {"c"}),
    ({"user.123abc": "ok2"}, {"a"}),
    ({"tags": ["draft"]}, {"a"}),
    ({"tags.0": "final"}, {"d"}),
    ({"user": {"access-level": "nested"}}, {"a"}),
    ({"when": {"$gte": "2024-01-01"}}, {"d"}),
    ({"price": "public' OR '1'='1"}, set()),
])
def test_filters_compare_by_json_type(filtered, flt, keys):
    assert {i.key for i in filtered.search(("f",), filter=flt)} == keys


@pytest.mark.parametrize("flt", [{"access') = 'public' OR '1'='1": 1}, {"a b": 1}, {"x": {"$regex": "a"}},
                                 {"x": {"$gt": [1]}}, {"x": {"$gt": 1, "y": 2}}])
def test_bad_filters_raise_value_errors(filtered, flt):
    with pytest.raises(ValueError):
        filtered.search(("f",), filter=flt)


def test_filter_paginates_after_filtering(store):
    for i in range(30):
        store.put(("p",), f"k{i:02d}", {"even": i % 2 == 0, "i": i})
    seen = [i.value["i"] for offset in (0, 5, 10) for i in store.search(("p",), filter={"even": True}, limit=5, offset=offset)]
    assert seen == list(range(28, -1, -2))


# -- semantic search ---------------------------------------------------------------------------
def test_score_is_the_cosine_of_the_best_field(vstore, embeddings):
    vstore.put(("t",), "doc", {"key0": "aaa", "key1": "zzz qq"}, index=["key0", "key1"])
    for query in ["aaa", "bbb", "abcd", "poisson", "zz q"]:
        [hit] = vstore.search((), query=query)
        expected = max(cosine(embeddings.embed_query(query), embeddings.embed_query(t)) for t in ("aaa", "zzz qq"))
        assert hit.score == pytest.approx(expected, abs=1e-5)


def test_query_ranks_closest_first_and_pages_disjointly(vstore):
    for i, text in enumerate(["red apple", "red car", "green apple", "blue car", "yellow banana", "apple pie"]):
        vstore.put(("t",), f"doc{i}", {"text": text, "n": i})
    results = vstore.search(("t",), query="apple")
    assert [r.score for r in results] == sorted([r.score for r in results], reverse=True)
    assert len(results) == 6 and results[0].value["text"] in ("red apple", "green apple", "apple pie")
    page1, page2 = vstore.search(("t",), query="apple", limit=3), vstore.search(("t",), query="apple", limit=3, offset=3)
    assert [r.key for r in page1 + page2] == [r.key for r in results]
    assert vstore.search(("t",), query="red", filter={"n": {"$gte": 2}})[0].key != "doc0"


def test_query_with_a_rare_filter_searches_past_the_first_candidates(vstore):
    for i in range(150):
        vstore.put(("many",), f"k{i}", {"text": f"common words number {i}", "rare": i in (3, 149)})
    hits = vstore.search(("many",), query="common words", filter={"rare": True}, limit=5)
    assert sorted(h.key for h in hits) == ["k149", "k3"]


def test_default_fields_embed_the_whole_value_and_paths_select_fields(open_store, embeddings):
    whole = open_store(index={"dims": embeddings.dims, "embed": embeddings})
    whole.put(("w",), "k", {"b": "xyz", "a": 1})
    [hit] = whole.search(("w",), query=json.dumps({"a": 1, "b": "xyz"}, sort_keys=True))
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_index_false_and_field_lists(vstore):
    vstore.put(("t",), "doc1", {"text": "zany zebra Xerxes"})
    vstore.put(("t",), "doc2", {"text": "something about dogs"})
    first = vstore.search(("t",), query="zany zebra Xerxes")[0]
    assert first.key == "doc1"
    vstore.put(("t",), "doc1", {"text": "new text about dogs"})  # its vectors are replaced
    after = next(r.score for r in vstore.search(("t",), query="zany zebra Xerxes") if r.key == "doc1")
    assert after < first.score
    vstore.put(("t",), "doc3", {"text": "zany zebra Xerxes"}, index=False)
    assert "doc3" not in [r.key for r in vstore.search(("t",), query="zany zebra Xerxes")]
    assert "doc3" in [r.key for r in vstore.search(("t",))]
    vstore.put(("t",), "doc4", {"title": "qqq", "body": ["www", "zany zebra Xerxes"]}, index=["body[*]"])
    assert vstore.search(("t",), query="zany zebra Xerxes")[0].key == "doc4"
    vstore.put(("t",), "doc4", {"title": "qqq"}, index=False)  # re-put unindexed: old vectors go
    assert "doc4" not in [r.key for r in vstore.search(("t",), query="zany zebra Xerxes")]


def test_a_search_never_reads_another_namespace(vstore):
    vstore.put(("users", "bob"), "m", {"text": "Bob's secret code is 4711"})
    vstore.put(("users", "ana"), "m", {"text": "Ana likes tea"})
    hits = vstore.search(("users", "ana"), query="Bob's secret code is 4711")
    assert [h.namespace for h in hits] == [("users", "ana")]
    assert {h.namespace for h in vstore.search(("users",), query="code")} == {("users", "ana"), ("users", "bob")}


@pytest.mark.parametrize("distance, expected", [
    ("cosine", [("a", 1.0), ("b", 2.0 / math.sqrt(4.01)), ("c", 0.0)]),
    ("l2", [("a", 0.0), ("b", -math.sqrt(1.01)), ("c", -math.sqrt(2.0))]),
    ("inner_product", [("b", 2.0), ("a", 1.0), ("c", 0.0)]),
])
def test_distance_types_rank_higher_scores_first(open_store, distance, expected):
    vectors = {"a": [1.0, 0.0, 0.0], "b": [2.0, 0.1, 0.0], "c": [0.0, 0.0, 1.0]}
    store = open_store(index={"dims": 3, "embed": lambda texts: [vectors[t] for t in texts], "fields": ["text"],
                              "distance_type": distance})
    for key in vectors:
        store.put(("docs",), key, {"text": key})
    results = store.search(("docs",), query="a")
    assert [(r.key, round(r.score, 4)) for r in results] == [(k, round(s, 4)) for k, s in expected]


def test_hybrid_ranking_lifts_exact_keyword_matches(open_store):
    embeddings = CharFrequencyEmbeddings(dims=32)
    store = open_store(index={"dims": 32, "embed": embeddings, "fields": ["text"]}, ranking="hybrid")
    texts = {"code": "order 7731 shipped to the warehouse yesterday",
             **{f"n{i}": f"{1771 + i} 3737 {7137 + i}" for i in range(12)}}  # the same digits, other numbers
    for key, text in texts.items():
        store.put(("t",), key, {"text": text})
    cosine_order = sorted(texts, key=lambda k: -cosine(embeddings.embed_query("7731"), embeddings.embed_query(texts[k])))
    hits = store.search(("t",), query="7731")
    assert hits[0].key == "code" and cosine_order.index("code") > 0  # BM25 moved it up


def test_embedding_without_embed_uses_the_memory_embedder(open_store):
    store = open_store(index={"fields": ["text"]})
    store.put(("t",), "a", {"text": "Ana is allergic to peanuts"})
    store.put(("t",), "b", {"text": "The weather in Lisbon"})
    assert store.search(("t",), query="peanut allergy")[0].key == "a"
    with pytest.raises(EmbeddingMismatch, match="dims"):
        TiermemStore(store.memory, index={"dims": 12})


def test_empty_or_missing_query_is_a_plain_search(vstore):
    vstore.put(("t",), "doc1", {"text": "test document"})
    for query in ("", None, "test " * 100, "test!@#$%^&*()"):
        assert len(vstore.search(("t",), query=query)) == 1


def test_non_ascii_text(vstore):
    texts = ["这是中文", "これは日本語です", "이건 한국어야", "Это русский", "यह रूसी है"]
    for i, text in enumerate(texts):
        vstore.put(("user_123", "memories"), str(i), {"text": text})
    for i, text in enumerate(texts):
        assert vstore.search(("user_123", "memories"), query=text)[0].key == str(i)


# -- TTL ---------------------------------------------------------------------------------------
def test_ttl_expiry_sweep_and_refresh(open_store):
    store = open_store(ttl={"default_ttl": 1 / 60, "refresh_on_read": True})
    store.put(("t",), "short", {"v": 1})
    store.put(("t",), "forever", {"v": 2}, ttl=None)
    store.put(("t",), "long", {"v": 3}, ttl=10)
    assert store.sweep_ttl() == 0
    time.sleep(0.6)
    assert store.get(("t",), "short") is not None  # refreshed: one more second from now
    time.sleep(0.6)
    assert store.sweep_ttl() == 0
    time.sleep(1.1)
    assert store.sweep_ttl() == 1
    assert store.get(("t",), "short") is None
    assert {i.key for i in store.search(("t",))} == {"forever", "long"}


def test_refresh_ttl_false_leaves_the_clock_running(open_store):
    store = open_store(ttl={"default_ttl": 1 / 60})
    store.put(("t",), "k", {"v": 1})
    time.sleep(0.6)
    store.get(("t",), "k", refresh_ttl=False)
    store.search(("t",), refresh_ttl=False)
    time.sleep(0.6)
    assert store.sweep_ttl() == 1


def vectors(store: TiermemStore):
    """The item tier's collection the store's items are indexed in (the core's, reached for the test)."""
    return store.memory.item_tier._index(store._spec)


def test_omit_expired_hides_unswept_items(open_store):
    store = open_store(ttl={"default_ttl": 1 / 120, "omit_expired": True})
    store.put(("omit", "expired"), "e", {"v": 1})
    store.put(("omit", "control"), "c", {"v": 2}, ttl=None)
    time.sleep(0.7)
    assert store.get(("omit", "expired"), "e") is None
    assert store.search(("omit", "expired")) == []
    assert store.list_namespaces(prefix=("omit",)) == [("omit", "control")]
    assert store.memory.session.store_count() == 2  # still on disk until swept


def test_sweeper_thread_removes_expired_items(open_store):
    store = open_store(ttl={"default_ttl": 0.5 / 60, "sweep_interval_minutes": 0.25 / 60})  # open() starts it
    store.put(("t",), "k", {"v": 1})
    deadline = time.monotonic() + 5
    while store.memory.session.store_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.memory.session.store_count() == 0
    assert store.stop_ttl_sweeper(timeout=2)


def test_expired_items_lose_their_vectors_too(open_store, embeddings):
    store = open_store(index={"dims": embeddings.dims, "embed": embeddings}, ttl={"default_ttl": 0.3 / 60})
    store.put(("t",), "k", {"text": "short lived"})
    assert vectors(store).count() == 1
    time.sleep(0.5)
    assert store.sweep_ttl() == 1 and vectors(store).count() == 0


# -- async -------------------------------------------------------------------------------------
async def test_async_api_with_an_async_embed_function(open_store):
    base = CharFrequencyEmbeddings(dims=48)

    async def aembed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return base.embed_documents(texts)

    store = open_store(index={"dims": 48, "embed": aembed, "fields": ["text"]})
    await asyncio.gather(*(store.aput(("a",), f"k{i}", {"text": t}) for i, t in enumerate(["red apple", "blue car", "green apple"])))
    hits = await store.asearch(("a",), query="blue car")
    assert hits[0].key == "k1" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert (await store.aget(("a",), "k0")).value == {"text": "red apple"}
    assert await store.alist_namespaces() == [("a",)]
    await store.adelete(("a",), "k0")
    assert await store.aget(("a",), "k0") is None


# -- durability --------------------------------------------------------------------------------
def test_items_and_vectors_survive_a_reopen(home, embeddings):
    index = {"dims": embeddings.dims, "embed": embeddings, "fields": ["text"]}
    with TiermemStore.open(home, index=index, embedder=HashEmbedder(64)) as store:
        store.put(("u", "ana"), "k", {"text": "green tea"})
    with TiermemStore.open(home, index=index, embedder=HashEmbedder(64)) as store:
        assert store.get(("u", "ana"), "k").value == {"text": "green tea"}
        assert store.search(("u",), query="green tea")[0].score == pytest.approx(1.0, abs=1e-5)


def test_items_whose_vectors_never_reached_the_index_are_embedded_on_open(home, embeddings):
    index = {"dims": embeddings.dims, "embed": embeddings, "fields": ["text"]}
    with TiermemStore.open(home, index=index, embedder=HashEmbedder(64)) as store:
        store.put(("u",), "k", {"text": "green tea"})
        vectors(store).delete_items(["u\x00k"])  # as if the process died between the two writes
        with store.memory.session.writing() as conn:
            conn.exec_driver_sql("UPDATE tm_store_items SET embedded = 0")
        assert store.search(("u",), query="green tea") == []
    with TiermemStore.open(home, index=index, embedder=HashEmbedder(64)) as store:
        assert [h.key for h in store.search(("u",), query="green tea")] == ["k"]


def test_a_failing_embed_stores_nothing(open_store):
    def broken(texts):
        raise RuntimeError("embedding service down")

    store = open_store(index={"dims": 4, "embed": broken})
    with pytest.raises(RuntimeError):
        store.put(("t",), "k", {"text": "x"})
    assert store.get(("t",), "k") is None


def test_store_on_a_qdrant_client_collection(tmp_path, embeddings):
    from qdrant_client import QdrantClient

    from tiermem.index import QdrantFactIndex
    from tiermem.session import SessionStore

    memory = Memory(session=SessionStore(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                    index=QdrantFactIndex(QdrantClient(path=str(tmp_path / "q")), 64), embedder=HashEmbedder(64))
    store = TiermemStore(memory, index={"dims": embeddings.dims, "embed": embeddings, "fields": ["text"]})
    try:
        store.put(("users", "ana"), "k", {"text": "Ana likes tea"})
        store.put(("users", "bob"), "k", {"text": "Ana likes tea"})
        hits = store.search(("users", "ana"), query="Ana likes tea")
        assert [(h.namespace, round(h.score, 4)) for h in hits] == [(("users", "ana"), 1.0)]
        store.delete(("users", "ana"), "k")
        assert vectors(store).count() == 1
    finally:
        store.close()
        memory.close()


def test_store_on_postgresql(tmp_path, embeddings, clean_postgres):
    url = clean_postgres
    with TiermemStore.open(tmp_path / "h", database_url=url, embedder=HashEmbedder(64),
                           index={"dims": embeddings.dims, "embed": embeddings, "fields": ["text"]},
                           ttl={"default_ttl": 0.3 / 60, "refresh_on_read": True}) as store:
        store.put(("pg", "ana"), "k", {"text": "tea", "n": 2})
        store.put(("pg", "bob"), "k", {"text": "coffee", "n": 3}, ttl=None)
        assert store.memory.session.store_unembedded() == []  # the updated_at match of mark-embedded holds on PG
        before = store.memory.session.store_get([("pg.ana", "k")])[("pg.ana", "k")].expires_at
        time.sleep(0.05)
        store.get(("pg", "ana"), "k")
        assert store.memory.session.store_get([("pg.ana", "k")])[("pg.ana", "k")].expires_at > before
        assert store.search(("pg",), filter={"n": {"$gt": 2}})[0].namespace == ("pg", "bob")
        assert store.search(("pg", "ana"), query="tea")[0].score == pytest.approx(1.0, abs=1e-5)
        time.sleep(0.5)
        assert store.sweep_ttl() == 1
        assert store.list_namespaces(prefix=("pg",)) == [("pg", "bob")]


def test_closed_store_refuses_calls(open_store):
    store = open_store()
    store.close()
    with pytest.raises(InvalidInput, match="closed"):
        store.put(("a",), "k", {"v": 1})


def test_datetimes_are_utc(store):
    store.put(("a",), "k", {"v": 1})
    item = store.get(("a",), "k")
    assert abs(item.updated_at - datetime.now(UTC)) < timedelta(seconds=5)


def test_memory_home_is_scratch_and_gone_after_close(embeddings):
    first = TiermemStore.open(":memory:", embedder=HashEmbedder(64), index={"dims": embeddings.dims, "embed": embeddings})
    first.put(("a",), "k", {"text": "x"})
    second = TiermemStore.open(":memory:", embedder=HashEmbedder(64))
    assert second.list_namespaces() == []  # every ":memory:" store is its own
    folder = first._scratch
    first.close()
    second.close()
    assert folder and not os.path.exists(folder)


def test_reads_refresh_ttls_only_when_the_config_says_so(open_store):
    store = open_store(ttl={"default_ttl": 1 / 60})  # no refresh_on_read: the TTL runs from the write
    store.put(("t",), "k", {"v": 1})
    time.sleep(0.6)
    assert store.get(("t",), "k") is not None  # refresh_ttl defaults to True, but the store does not refresh
    assert store.search(("t",))
    time.sleep(0.6)
    assert store.sweep_ttl() == 1


def test_a_deleted_item_leaves_no_file(home, embeddings):
    """Erasure through this door too: the item's text leaves the database and index files."""
    from tiermem._erasure import find_leftovers

    with TiermemStore.open(home, index={"dims": embeddings.dims, "embed": embeddings, "fields": ["text"]},
                           embedder=HashEmbedder(64)) as store:
        store.put(("users", "ana"), "secret", {"text": "my locker code is qzlocker81"})
        store.put(("users", "ana"), "other", {"text": "green tea"})
        store.delete(("users", "ana"), "secret")
        checked, leftovers = find_leftovers(["qzlocker81"], [home])
        assert checked and not leftovers
        assert store.search(("users",), query="green tea")[0].key == "other"


def test_forget_user_erases_the_items_declared_the_users_and_no_others(open_store) -> None:
    """Q4: an item belongs to the user at the store's declared namespace position; a label that
    equals another id never makes it that user's."""
    store = open_store()
    store.put(("memories", "alice"), "k1", {"text": "qzAliceItem"})
    store.put(("memories", "bob"), "k1", {"text": "qzBobItem"})
    store.put(("users", "42", "threads", "7"), "summary", {"text": "qzUser42Thread7"})
    store.put(("users", "7"), "diet", {"text": "qzUser7Diet"})
    memory = store.memory
    memory.add([{"role": "user", "content": "I live in Oslo."}], user_id="7")
    receipt = memory.forget_user("7")
    assert receipt.removed["items"] == 1 and store.get(("users", "7"), "diet") is None
    assert store.get(("users", "42", "threads", "7"), "summary").value == {"text": "qzUser42Thread7"}
    from tiermem import UnknownUser

    with pytest.raises(UnknownUser):
        memory.forget_user("memories")  # a label is no user: nothing is erased
    assert store.get(("memories", "alice"), "k1") is not None and store.get(("memories", "bob"), "k1") is not None
    assert memory.forget_user("alice").removed["items"] == 1 and store.get(("memories", "alice"), "k1") is None
    assert store.get(("memories", "bob"), "k1") is not None


def test_user_label_declares_where_the_user_is(open_store) -> None:
    from tiermem import InvalidInput

    store = open_store(user_label=0)
    store.put(("ana", "memories"), "k", {"text": "qzAnaFirst"})
    store.put(("users", "ana"), "k", {"text": "qzNotAnas"})
    assert store.memory.forget_user("ana").removed["items"] == 1
    assert store.get(("ana", "memories"), "k") is None and store.get(("users", "ana"), "k") is not None
    with pytest.raises(InvalidInput, match="user_label"):
        TiermemStore(store.memory, user_label=-1)
