"""Shared fixtures: real SQLite files and real Qdrant engines under tmp_path, a
deterministic hash embedder for speed, and the real MiniLM where a test says so."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# mem0ai (the comparison tests, `tiermem import mem0`) phones home unless told not to, and
# writes ~/.mem0 on import: neither may happen in a test run.
os.environ["MEM0_TELEMETRY"] = "False"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="tiermem-tests-mem0-"))

from tiermem import HashEmbedder, Memory  # noqa: E402

T0 = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Isolate every test from the caller's environment, the way simonw/llm does.
    for var in ("TIERMEM_HOME", "TIERMEM_DATABASE_URL", "TIERMEM_QDRANT_URL", "TIERMEM_QDRANT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "home"
    monkeypatch.setenv("TIERMEM_HOME", str(path))
    return path


@pytest.fixture
def mem(home: Path, embedder: HashEmbedder) -> Iterator[Memory]:
    memory = Memory.open(home, embedder=embedder)
    yield memory
    memory.close()


@pytest.fixture(scope="session")
def minilm():
    from tiermem import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    return embedder


def say(text: str, name: str = "Ana", id: str | None = None, role: str = "user") -> dict:
    message = {"role": role, "content": text, "name": name}
    if id is not None:
        message["id"] = id
    return message


@pytest.fixture
def clean_postgres() -> str:
    """The test PostgreSQL server's URL, its tiermem tables emptied (skips without one:
    .ci/run starts a server and sets TIERMEM_TEST_POSTGRES_URL)."""
    url = os.environ.get("TIERMEM_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set TIERMEM_TEST_POSTGRES_URL to run against PostgreSQL (.ci/run does)")
    from sqlalchemy import text

    from tiermem import SessionStore

    store = SessionStore(url)
    with store.engine.begin() as conn:
        for table in ("tm_fact_events", "tm_facts", "tm_turns", "tm_summaries", "tm_profiles", "tm_session_seq", "tm_meta"):
            conn.execute(text(f"DELETE FROM {table}"))
    store.close()
    return url
