"""One PostgreSQL with pgvector holds every tier (`database_url` and `index_url` on one URL):
the public API gives what the embedded default gives, nothing is created in the home
folder, processes share it with no owner, and an erased user's text is in no table or
index file afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import T0
from tests.serve.test_serve import program
from tiermem import HashEmbedder, Memory
from tiermem.session._engine import engine_for


@pytest.fixture
def pg_env(clean_postgres: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TIERMEM_DATABASE_URL", clean_postgres)
    monkeypatch.setenv("TIERMEM_INDEX_URL", clean_postgres)
    return clean_postgres


def test_the_public_api_on_one_postgresql_gives_what_the_embedded_default_gives(tmp_path: Path, pg_env: str,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with Memory.open(tmp_path / "pg", embedder=HashEmbedder(64), clock=lambda: T0) as mem:
        assert type(mem) is Memory and "pgvector" in mem.location  # no owner to elect: the database is shared
        on_postgres = program(mem)
    assert not (tmp_path / "pg").exists()  # no SQLite file, no embedded index: nothing local
    monkeypatch.delenv("TIERMEM_DATABASE_URL")
    monkeypatch.delenv("TIERMEM_INDEX_URL")
    with Memory.open(tmp_path / "embedded", embedder=HashEmbedder(64), clock=lambda: T0, share=False) as mem:
        embedded = program(mem)
    assert on_postgres == embedded


WRITER = """
import sys
from tiermem import HashEmbedder, Memory
name = sys.argv[1]
with Memory.open(embedder=HashEmbedder(64)) as mem:
    for i in range(15):
        mem.remember(f"{name} planted tree number {i} in the orchard", user_id="shared")
        mem.remember(f"{name} keeps notebook {i}", user_id=name)
        assert mem.search(f"notebook {i}", user_id=name, limit=3)
    print(type(mem).__name__)
"""


def test_two_processes_add_and_search_at_once_with_no_owner(tmp_path: Path, pg_env: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_HOME": str(tmp_path / "unused")}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for name in ("kofi", "lena")]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["Memory", "Memory"]
    with Memory.open(embedder=HashEmbedder(64)) as mem:
        trees = [f.text for f in mem.facts(user_id="shared", limit=None)]
        assert len(trees) == 30 and len(set(trees)) == 30  # every write of both, none twice
        assert len(mem.search("orchard tree", user_id="shared", limit=50)) == 30
    assert not (tmp_path / "unused").exists()


def _data_files(url: str) -> Path:
    engine = engine_for(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))  # what the server holds in memory goes to the files now
        folder = Path(conn.execute(text("SHOW data_directory")).scalar()) / "base"
    engine.dispose()
    return folder


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_an_erased_users_text_is_in_no_table_or_index_file(tmp_path: Path, pg_env: str) -> None:
    secret = "Ana's locker code is zebra-quartz-7731"
    with Memory.open(embedder=HashEmbedder(64)) as mem:
        mem.add([{"role": "user", "name": "Ana", "content": f"My locker code is zebra-quartz-7731. {secret}."}],
                user_id="ana")
        mem.remember(secret, user_id="ana")
        mem.remember("Bo's bike is green", user_id="bo")
        assert _files_holding(_data_files(pg_env), b"zebra-quartz-7731")  # the check can see it
        receipt = mem.forget_user("ana")
        assert receipt.verified is True and receipt.checked_files > 0 and receipt.index == "sealed"
        assert "pg_wal" in receipt.note  # what the receipt does not claim
        assert not _files_holding(_data_files(pg_env), b"zebra-quartz-7731")
        assert [f.text for f in mem.facts(user_id="bo")] == ["Bo's bike is green"]  # the other tenant is intact


def test_an_erasure_waits_for_no_other_transaction_and_finishes_later(tmp_path: Path, pg_env: str) -> None:
    """A report holding a table (here: an open transaction that read tm_turns) does not make
    forget_user queue every other session behind its rewrite: the table is left for later,
    the receipt says so, and `optimize(compact=True)` rewrites it once the report is done."""
    import time

    with Memory.open(embedder=HashEmbedder(64)) as mem:
        mem.add([{"role": "user", "content": "My locker code is walrus-amber-5521."}], user_id="ana")
        mem.remember("Bo's bike is green", user_id="bo")
        reader = engine_for(pg_env)
        with reader.connect() as report:
            report.execute(text("BEGIN"))
            report.execute(text("SELECT count(*) FROM tm_turns")).scalar()  # holds ACCESS SHARE until it ends
            started = time.monotonic()
            receipt = mem.forget_user("ana")
            took = time.monotonic() - started
            mem.remember("Bo's bike has a bell", user_id="bo")  # another tenant writes meanwhile
            report.execute(text("ROLLBACK"))
        reader.dispose()
        assert took < 5  # not the report's duration: it would hold the rewrite forever
        assert "tm_turns" in receipt.note and "optimize --compact" in receipt.note
        assert _files_holding(_data_files(pg_env), b"walrus-amber-5521")  # the deferred table still has it
        mem.optimize(compact=True)
        assert not _files_holding(_data_files(pg_env), b"walrus-amber-5521")
        assert sorted(f.text for f in mem.facts(user_id="bo")) == ["Bo's bike has a bell", "Bo's bike is green"]


def test_dropped_connections_reach_the_caller_as_tiermem_errors(tmp_path: Path, pg_env: str) -> None:
    """Every backend of the database terminated again and again while a thread adds and
    searches: each call succeeds or raises a tiermem error that says what happened (a read is
    retried on a fresh connection; a write says its outcome is unknown), and no acknowledged
    add is lost."""
    import threading

    from tiermem import OutcomeUnknown, SessionStore, TieredMemoryError

    errors: list[BaseException] = []
    acknowledged: list[str] = []
    stop = threading.Event()
    with Memory.open(embedder=HashEmbedder(64)) as mem:
        def work() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    mem.add([{"role": "user", "content": f"I planted tree number {i} today.", "id": f"t{i}"}], user_id="ana")
                    acknowledged.append(f"t{i}")
                    mem.search("tree", user_id="ana")
                except Exception as exc:  # noqa: BLE001 - collected and checked below
                    errors.append(exc)

        worker = threading.Thread(target=work)
        worker.start()
        killer = engine_for(pg_env).execution_options(isolation_level="AUTOCOMMIT")
        try:
            for _ in range(12):
                time.sleep(0.15)
                with killer.connect() as conn:
                    conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        finally:
            stop.set()
            worker.join(60)
            killer.dispose()
        assert all(isinstance(e, TieredMemoryError) for e in errors), [repr(e)[:300] for e in errors]
        print(f"{len(errors)} calls failed, {len(acknowledged)} adds acknowledged")
        assert all(isinstance(e, OutcomeUnknown) for e in errors if "add" in str(e)[:10])
        store = SessionStore(pg_env)
        try:
            kept = {t.external_id for t in store.turns("ana", "default")}
        finally:
            store.close()
        assert len(acknowledged) > 5 and set(acknowledged) <= kept  # nothing a call returned is lost


def test_a_large_tenant_gets_its_own_hnsw_index_and_loses_it_with_its_erasure(tmp_path: Path, pg_env: str) -> None:
    """optimize() gives a tenant over the size its own partial HNSW indexes (the others stay
    exact); its searches find what they found before; erasing it drops them."""
    with Memory.open(embedder=HashEmbedder(64)) as mem:
        mem.add([{"role": "user", "content": f"I planted tree number {i} in the orchard."} for i in range(240)], user_id="big")
        mem.add([{"role": "user", "content": "I planted a lemon tree."}], user_id="small")
        before = [h.fact.id for h in mem.search("which tree did I plant in the orchard", user_id="big", limit=10)]
        points = mem.index.points
        points.hnsw_min_points = 200

        def indexes() -> list[str]:
            with points.engine.connect() as conn:
                return points._tenant_indexes(conn)

        assert mem.optimize() is True
        assert len(indexes()) == 2  # dense and contextual vectors of "big" only
        with points.engine.connect() as conn:
            plan = "\n".join(conn.execute(text(
                f"EXPLAIN SELECT id FROM {points.name} WHERE tenant = :t ORDER BY dense <=> :q LIMIT 10"),
                {"t": points._tenant(mem.index._payload(mem.get(before[0]))),
                 "q": str([0.1] * 64)}).scalars().all())
        assert "tm_hnsw_" in plan  # the planner uses the tenant's own index
        after = [h.fact.id for h in mem.search("which tree did I plant in the orchard", user_id="big", limit=10)]
        assert set(after) == set(before)
        assert mem.search("lemon tree", user_id="small")  # a small tenant is searched exactly, as before
        mem.forget_user("big")
        assert indexes() == []
