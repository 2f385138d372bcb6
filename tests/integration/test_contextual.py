"""Contextual vectors: each fact is also indexed as read with the turns it came from, so a
fact whose own words lost its topic ("It taught me self-acceptance", the book named the
turn before) is still found by that topic, on every backend."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory, SessionStore
from tiermem.index._base import INDEX_FORMAT
from tiermem.index._edge import EdgePoints
from tiermem.index._facts import FACTS


def _tell(mem: Memory, lines: list[str], user_id: str = "ana") -> None:
    for i, line in enumerate(lines):
        mem.add([say(line, id=f"t{i}")], user_id=user_id, session_id="s1", at=T0 + timedelta(minutes=i))


def _hit(mem: Memory, query: str, words: str, user_id: str = "ana"):
    hits = mem.search(query, user_id=user_id, limit=20)
    return next(h for h in hits if words in h.fact.text)


BOOK = ["I read Becoming Nicole by Amy Ellis Nutt last month.", "It taught me self-acceptance."]


def test_a_fact_that_lost_its_topic_is_found_by_the_turn_before(mem: Memory) -> None:
    _tell(mem, BOOK)
    lesson = _hit(mem, "Becoming Nicole Amy Ellis Nutt", "self-acceptance")
    # Its own words share nothing with the query; read with the turn before, they do.
    assert lesson.explain["context"] > lesson.explain.get("dense", 0.0) + 0.2
    assert lesson.explain["context_rank"] <= 2


def test_forgetting_a_turn_takes_it_out_of_the_other_facts_context_vectors(mem: Memory) -> None:
    _tell(mem, BOOK)
    before = _hit(mem, "Becoming Nicole Amy Ellis Nutt", "self-acceptance").explain["context"]
    book = next(f for f in mem.facts(user_id="ana") if "Nicole" in f.text)
    mem.forget(book.id, user_id="ana", redact_turns=True)
    after = _hit(mem, "Becoming Nicole Amy Ellis Nutt", "self-acceptance").explain["context"]
    assert after < before - 0.2  # re-embedded from the turns that are left


def test_a_fact_told_without_turns_is_its_own_context(mem: Memory) -> None:
    mem.remember("Ana keeps bees on her roof.", user_id="ana")
    [hit] = mem.search("bees on the roof", user_id="ana")
    assert abs(hit.explain["context"] - hit.explain["dense"]) < 1e-3


def test_an_index_made_before_contextual_vectors_is_rebuilt_once(home: Path, embedder: HashEmbedder) -> None:
    with Memory.open(home, embedder=embedder) as mem:
        _tell(mem, BOOK)
    # An index of the previous format: no contextual vector in its shard, format 3 recorded.
    folder = home / "facts"
    for entry in folder.iterdir():
        if not entry.name.startswith((".tiermem", "tiermem-")):
            entry.unlink() if entry.is_file() else shutil.rmtree(entry)
    EdgePoints(folder, embedder.dims, FACTS._replace(context=False)).close()
    assert "context" not in json.loads((folder / "edge_config.json").read_text())["vectors"]
    with Memory.open(home, embedder=embedder) as mem:
        identity = mem.sync._format_key
        mem.session.set_meta(identity, "3")
    with Memory.open(home, embedder=embedder) as mem:
        assert "context" in json.loads((folder / "edge_config.json").read_text())["vectors"]
        assert mem.session.get_meta(mem.sync._format_key) == INDEX_FORMAT
        assert _hit(mem, "Becoming Nicole Amy Ellis Nutt", "self-acceptance").explain["context_rank"] <= 2


@pytest.mark.parametrize("backend", ["qdrant-local", "pgvector"])
def test_every_backend_ranks_by_context(backend: str, home: Path, embedder: HashEmbedder, request) -> None:
    if backend == "pgvector":
        url = request.getfixturevalue("clean_postgres")
        mem = Memory.open(home, embedder=embedder, database_url=url, index_url=url)
    else:
        from qdrant_client import QdrantClient

        from tiermem.index import QdrantFactIndex

        mem = Memory(index=QdrantFactIndex(QdrantClient(location=":memory:"), embedder.dims), embedder=embedder,
                     session=SessionStore(f"sqlite:///{home.parent / 'q.db'}"))
    with mem:
        _tell(mem, BOOK)
        lesson = _hit(mem, "Becoming Nicole Amy Ellis Nutt", "self-acceptance")
        assert lesson.explain["context"] > lesson.explain.get("dense", 0.0) + 0.2
