"""Engines for the session tier: URL checks, SQLite pragmas, and the upsert both dialects share."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from .._errors import ConfigError, MissingDependency


def engine_for(url: str, *, read_only: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database_url {url!r} is not a database URL; use sqlite:///path/to/file.db or "
            "postgresql://user:pass@host/db"
        ) from exc
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("PostgreSQL needs a driver: pip install 'tiermem[postgres]'") from exc
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"database_url backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Each connection of the pool (each thread) would get its own empty database.
        raise ConfigError("an in-memory SQLite database cannot be shared by tiermem's threads; "
                          "use a file (sqlite:///path/to/memory.db) or a temporary folder as home")
    if read_only and parsed.get_backend_name() == "sqlite":
        # Read-only: SQLite's own flag, and 'immutable' so that no -shm file has to be made
        # in a folder this user cannot write (a WAL database needs one otherwise).
        parsed = parsed.set(database=f"file:{quote(parsed.database or '', safe='/')}",
                            query={**parsed.query, "mode": "ro", "immutable": "1", "uri": "true"})
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except (ImportError, ModuleNotFoundError) as exc:
        raise MissingDependency(f"no driver for {parsed.drivername}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # The busy timeout first: switching a fresh file to WAL needs a lock that a
            # concurrent first opener may hold.
            cursor.execute("PRAGMA busy_timeout=30000")
            if read_only:
                cursor.close()
                return
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
            cursor.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
            cursor.close()

    return engine


def _switch_to_wal(cursor: Any, patience: float = 30.0) -> None:
    """PRAGMA journal_mode=WAL, tried again while another process holds the lock it needs:
    on a fresh file that a first opener is still migrating SQLite can answer "database is
    locked" at once, without its busy handler (seen in CI with two processes opening one
    file together)."""
    import sqlite3
    import time

    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (None for any other database)."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def insert_for(conn: Any, table: Any) -> Any:
    """INSERT for the connection's dialect: the one with ON CONFLICT clauses (SQLite and
    PostgreSQL spell them the same way in SQLAlchemy, from different modules)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(table)


def upsert(conn: Any, table: Any, keys: list[str], rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE with the new values (SQLite and PostgreSQL)."""
    statement = insert_for(conn, table)
    columns = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    statement = statement.on_conflict_do_update(index_elements=keys, set_=columns)
    return conn.execute(statement, rows)
