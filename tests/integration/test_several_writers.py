"""Several processes on one database: no add() lost, one consistent turn order, and fresh
databases migrated once however many processes open them at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from sqlalchemy import text

from tiermem import HashEmbedder, Memory, SessionStore
from tiermem.session._engine import engine_for

ROOT = Path(__file__).parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from tiermem import HashEmbedder, Memory
    home, url, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    at = datetime(2024, 5, 2, tzinfo=timezone.utc)
    with Memory.open(home, database_url=url, embedder=HashEmbedder(64)) as mem:
        for i in range(n):
            mem.add([{"role": "user", "content": f"{tag} question {i}: I planted tree number {i}.", "id": f"{tag}-u{i}"},
                     {"role": "assistant", "content": f"{tag} answer {i}", "id": f"{tag}-a{i}"}],
                    user_id="shared", session_id="s", at=at)
    print("done", flush=True)
    """
)

OPENER = textwrap.dedent(
    """
    import sys
    from tiermem import SessionStore
    SessionStore(sys.argv[1]).close()
    print("opened", flush=True)
    """
)


def run_together(script: str, argvs: list[list[str]]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", script, *argv], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for argv in argvs]
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]


def check_turn_order(url: str, writers: list[str], n: int) -> None:
    store = SessionStore(url)
    try:
        turns = store.turns("shared", "s")
    finally:
        store.close()
    assert len(turns) == 2 * n * len(writers)  # no add() lost
    assert [t.seq for t in turns] == list(range(1, len(turns) + 1))  # one order, no gaps, no repeats
    by_ref = {t.external_id: t.seq for t in turns}
    for tag in writers:
        mine = [by_ref[f"{tag}-u{i}"] for i in range(n)]
        assert mine == sorted(mine)  # each writer's calls in its own order
        assert all(by_ref[f"{tag}-a{i}"] == by_ref[f"{tag}-u{i}"] + 1 for i in range(n))  # one add() stays together


def test_two_processes_append_to_one_session_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    n = 60
    run_together(WRITER, [[str(tmp_path / tag), url, tag, str(n)] for tag in ("A", "B")])
    check_turn_order(url, ["A", "B"], n)
    with Memory.open(tmp_path / "A", database_url=url, embedder=HashEmbedder(64)) as mem:
        assert mem.backlog()["pending_turns"] == 0  # every turn extracted once
        trees = [f for f in mem.facts(user_id="shared") if "planted tree" in f.text]
        assert len({s for f in trees for s in f.sources}) == 2 * n


def test_two_processes_append_to_one_session_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    url = fresh_postgres_database(postgres_url)
    n = 40
    run_together(WRITER, [[str(tmp_path / tag), url, tag, str(n)] for tag in ("A", "B")])
    check_turn_order(url, ["A", "B"], n)


def test_processes_opening_a_fresh_sqlite_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_together(OPENER, [[url]] * 4)
    assert_migrated_once(url)


def test_processes_opening_a_fresh_postgresql_database_at_once_migrate_it_once(postgres_url: str) -> None:
    url = fresh_postgres_database(postgres_url)
    run_together(OPENER, [[url]] * 4)
    assert_migrated_once(url)


def assert_migrated_once(url: str) -> None:
    from tiermem.session import SCHEMA_VERSION

    engine = engine_for(url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM tm_schema_version ORDER BY version")).scalars().all()
    engine.dispose()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def fresh_postgres_database(server: str) -> str:
    """A new, empty database on the test server (its role may create databases)."""
    from sqlalchemy.engine import make_url

    name = f"tiermem_t_{uuid.uuid4().hex[:10]}"
    admin = engine_for(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)
