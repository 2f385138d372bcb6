"""The same calls through Memory against every index backend give the same answers."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory, QdrantFactIndex, SessionStore

SCRIPT = [
    ("I live in Lisbon. I love hiking in the mountains.", 0),
    ("I went to Porto last weekend for a food festival.", 10),
    ("I moved to Berlin last week. I love hiking in the mountains!", 40),
    ("My favorite cuisine is Japanese and I'm vegetarian.", 41),
]
QUERIES = ["where does Ana live", "hiking", "food festival Porto", "what does she eat"]


def run(mem: Memory) -> list:
    from datetime import timedelta

    ops = []
    for i, (text, day) in enumerate(SCRIPT):
        res = mem.add([say(text, id=f"m-{i}")], user_id="ana", at=T0 + timedelta(days=day))
        ops.append([(e.op, e.fact.text if e.fact else None) for e in res.events])
    found = [[(h.fact.text, round(h.score, 6)) for h in mem.search(q, user_id="ana", limit=5)] for q in QUERIES]
    ctx = mem.context("where should I eat in Berlin?", user_id="ana", system="s")
    return [ops, found, ctx.system, ctx.messages]


def test_edge_and_qdrant_client_agree(tmp_path: Path) -> None:
    embedder = HashEmbedder(64)
    with Memory.open(tmp_path / "edge", embedder=embedder) as edge:
        edge_result = run(edge)
    session = SessionStore(f"sqlite:///{tmp_path / 'q.db'}")
    index = QdrantFactIndex(QdrantClient(path=str(tmp_path / "qdrant")), embedder.dims)
    with Memory(session=session, index=index, embedder=embedder) as server_like:
        server_result = run(server_like)
    assert edge_result[0] == server_result[0]  # the same add/update/invalidate decisions
    assert [[t for t, _ in q] for q in edge_result[1]] == [[t for t, _ in q] for q in server_result[1]]
    assert edge_result[2:] == server_result[2:]


def test_edge_and_pgvector_agree(tmp_path: Path, clean_postgres: str) -> None:
    embedder = HashEmbedder(64)
    with Memory.open(tmp_path / "edge", embedder=embedder, share=False) as edge:
        edge_result = run(edge)
    with Memory.open(database_url=clean_postgres, index_url=clean_postgres, embedder=embedder) as pg:
        pg_result = run(pg)
    assert edge_result[0] == pg_result[0]
    assert [[t for t, _ in q] for q in edge_result[1]] == [[t for t, _ in q] for q in pg_result[1]]
    assert edge_result[2:] == pg_result[2:]
