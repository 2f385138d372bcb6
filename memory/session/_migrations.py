"""Schema migrations: an ordered list of functions and a version table.

Append a function to MIGRATIONS for every schema change; never edit one that has shipped.
Each migration creates the tables of its own version from its own definitions (not from the
current models in `_tables.py`, which always describe the latest schema).

Several processes may open a fresh database at once (web workers starting together): the
whole check-and-migrate runs in one transaction that first takes the database's write lock
(SQLite: BEGIN IMMEDIATE) or an advisory lock (PostgreSQL), so exactly one of them migrates
and the others see the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from .._errors import ConfigError
from .._quickread import SCHEMA_VERSION
from ._tables import SchemaVersion, table_of

_MIGRATION_LOCK = 7_310_422_001  # PostgreSQL advisory lock key: any constant of our own


def _v1_initial(conn: Connection) -> None:
    md = MetaData()
    Table("tm_meta", md, Column("key", String(200), primary_key=True), Column("value", Text, nullable=False))
    Table(
        "tm_turns", md,
        Column("id", String(64), primary_key=True),
        Column("user_id", String(256), nullable=False, index=True),
        Column("session_id", String(256), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("role", String(16), nullable=False),
        Column("name", String(256)),
        Column("content", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("token_count", Integer, nullable=False),
        Column("external_id", String(256)),
        UniqueConstraint("user_id", "session_id", "seq", name="uq_turn_seq"),
        Index("ix_turn_session", "user_id", "session_id", "seq"),
    )
    Table(
        "tm_facts", md,
        Column("id", String(64), primary_key=True),
        Column("user_id", String(256), nullable=False, index=True),
        Column("kind", String(16), nullable=False),
        Column("subject", String(256), nullable=False),
        Column("attribute", String(256)),
        Column("norm_hash", String(64), nullable=False),
        Column("valid", Boolean, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("access_count", Integer, nullable=False),
        Column("last_accessed_at", DateTime),
        Column("data", Text, nullable=False),
        Index("ix_fact_key", "user_id", "subject", "attribute"),
        Index("ix_fact_hash", "user_id", "norm_hash"),
    )
    Table(
        "tm_fact_events", md,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("user_id", String(256), nullable=False, index=True),
        Column("fact_id", String(64), nullable=False, index=True),
        Column("op", String(16), nullable=False),
        Column("at", DateTime, nullable=False),
        Column("data", Text, nullable=False),
    )
    Table(
        "tm_summaries", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("user_id", String(256), nullable=False),
        Column("session_id", String(256), nullable=False),
        Column("covers_seq", Integer, nullable=False),
        Column("text", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Index("ix_summary_session", "user_id", "session_id", "covers_seq"),
    )
    Table(
        "tm_profiles", md,
        Column("user_id", String(256), primary_key=True),
        Column("epoch", Integer, nullable=False),
        Column("text", Text, nullable=False),
        Column("fact_ids", Text, nullable=False),
        Column("baked_at", DateTime, nullable=False),
        Column("changes_since", Integer, nullable=False),
        Column("stale", Boolean, nullable=False),
    )
    md.create_all(conn)


def _v2_two_phase_add(conn: Connection) -> None:
    """Two-phase add(): pending turns, their metadata, failed batches; per-session turn
    counters (atomic seq allocation for concurrent writers)."""
    conn.execute(text("ALTER TABLE tm_turns ADD COLUMN meta TEXT"))
    # Existing turns were extracted inline before this version existed.
    conn.execute(text("ALTER TABLE tm_turns ADD COLUMN extracted BOOLEAN NOT NULL DEFAULT TRUE"))
    conn.execute(text("CREATE INDEX ix_turn_pending ON tm_turns (user_id) WHERE NOT extracted"))
    md = MetaData()
    Table(
        "tm_session_seq", md,
        Column("user_id", String(256), primary_key=True),
        Column("session_id", String(256), primary_key=True),
        Column("last_seq", Integer, nullable=False),
    )
    Table(
        "tm_extraction_failures", md,
        Column("batch_key", String(64), primary_key=True),
        Column("user_id", String(256), nullable=False, index=True),
        Column("turn_ids", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )
    md.create_all(conn)
    conn.execute(text(
        "INSERT INTO tm_session_seq (user_id, session_id, last_seq) "
        "SELECT user_id, session_id, MAX(seq) FROM tm_turns GROUP BY user_id, session_id"
    ))
    if conn.dialect.name == "sqlite":
        _journal_seq_never_reused(conn)


def _journal_seq_never_reused(conn: Connection) -> None:
    """SQLite reuses the largest rowid once its row is deleted, and erasure deletes journal
    rows: a new entry could then get a seq the index watermark has already passed. With
    AUTOINCREMENT a seq is never handed out twice (PostgreSQL sequences never are)."""
    conn.execute(text(
        "CREATE TABLE tm_fact_events_v2 (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id VARCHAR(256) NOT NULL, "
        "fact_id VARCHAR(64) NOT NULL, op VARCHAR(16) NOT NULL, at DATETIME NOT NULL, data TEXT NOT NULL)"
    ))
    conn.execute(text("INSERT INTO tm_fact_events_v2 SELECT seq, user_id, fact_id, op, at, data FROM tm_fact_events"))
    conn.execute(text("DROP TABLE tm_fact_events"))
    conn.execute(text("ALTER TABLE tm_fact_events_v2 RENAME TO tm_fact_events"))
    conn.execute(text("CREATE INDEX ix_tm_fact_events_user_id ON tm_fact_events (user_id)"))
    conn.execute(text("CREATE INDEX ix_tm_fact_events_fact_id ON tm_fact_events (fact_id)"))
    # Start above every seq an index may already have applied, deleted rows included.
    high = conn.execute(text(
        "SELECT MAX(v) FROM (SELECT MAX(seq) AS v FROM tm_fact_events UNION ALL "
        "SELECT CAST(value AS INTEGER) FROM tm_meta WHERE key LIKE 'index_seq:%')"
    )).scalar()
    conn.execute(text("DELETE FROM sqlite_sequence WHERE name = 'tm_fact_events'"))
    conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES ('tm_fact_events', :high)"), {"high": int(high or 0)})


def _v3_turn_kinds(conn: Connection) -> None:
    """Tool calls and tool results are turns too (stored as text, marked by kind)."""
    conn.execute(text("ALTER TABLE tm_turns ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'text'"))


def _v4_turn_utc_offset(conn: Connection) -> None:
    """The caller's UTC offset when `at` was aware: relative dates resolve in their time zone."""
    conn.execute(text("ALTER TABLE tm_turns ADD COLUMN utc_offset INTEGER"))


def _v5_model_usage(conn: Connection) -> None:
    """Every model call's tokens (input, cache writes by TTL, cache reads, output) per user."""
    md = MetaData()
    Table(
        "tm_usage", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime, nullable=False),
        Column("user_id", String(256)),
        Column("session_id", String(256)),
        Column("purpose", String(32), nullable=False),
        Column("model", String(128), nullable=False),
        Column("input_tokens", Integer, nullable=False),
        Column("cache_write_5m", Integer, nullable=False),
        Column("cache_write_1h", Integer, nullable=False),
        Column("cache_read", Integer, nullable=False),
        Column("output_tokens", Integer, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("outcome", String(64), nullable=False),
        Column("service_tier", String(32)),
        Column("request_id", String(128)),
        Index("ix_usage_user", "user_id", "session_id"),
    )
    md.create_all(conn)


def _v6_memory_files(conn: Connection) -> None:
    """Files of Claude's memory tool (/memories/...), per user; each one is also a fact."""
    md = MetaData()
    Table(
        "tm_memory_files", md,
        Column("user_id", String(256), primary_key=True),
        Column("path", String(1024), primary_key=True),
        Column("content", Text, nullable=False),
        Column("fact_id", String(64)),
        Column("updated_at", DateTime, nullable=False),
    )
    md.create_all(conn)


def _v7_store_items(conn: Connection) -> None:
    """Items of the LangGraph store adapter: JSON documents by namespace and key, with TTL."""
    md = MetaData()
    Table(
        "tm_store_items", md,
        Column("namespace", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("value", Text, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("expires_at", DateTime),
        Column("ttl_minutes", Float),
        Column("index_fields", Text),
        Column("embedded", Boolean, nullable=False),
        Index("ix_store_items_updated", "updated_at"),
        Index("ix_store_items_expires", "expires_at"),
    )
    md.create_all(conn)


def _v8_forgotten_spans(conn: Connection) -> None:
    """Where in a turn a forgotten fact came from (JSON [[start, end], ...]): extraction skips it."""
    conn.execute(text("ALTER TABLE tm_turns ADD COLUMN forgotten TEXT"))


def _v9_file_versions(conn: Connection) -> None:
    """A version per memory-tool file: writes compare and set it, so concurrent edits never
    overwrite one another unseen."""
    conn.execute(text("ALTER TABLE tm_memory_files ADD COLUMN version INTEGER NOT NULL DEFAULT 1"))


def _v10_fact_updated_at(conn: Connection) -> None:
    """Facts carry `updated_at` (the time of their last change); facts stored before get it
    from the journal, once."""
    import json

    changed: dict[str, Any] = dict(conn.execute(text(
        "SELECT fact_id, MAX(at) FROM tm_fact_events WHERE op IN ('add', 'update', 'invalidate') GROUP BY fact_id")).all())
    for fact_id, data in conn.execute(text("SELECT id, data FROM tm_facts")).all():
        at = changed.get(fact_id)
        if at is None:
            continue
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))  # SQLite returns text
        value = json.loads(data)
        value["updated_at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
        conn.execute(text("UPDATE tm_facts SET data = :data WHERE id = :id"), {"data": json.dumps(value), "id": fact_id})


def _v11_requests(conn: Connection) -> None:
    """Served writes by idempotency key (a resent request gets the first answer)."""
    md = MetaData()
    Table(
        "tm_requests", md,
        Column("key", String(128), primary_key=True),
        Column("method", String(64), nullable=False),
        Column("user_id", String(256), index=True),
        Column("turn_ids", Text),
        Column("result", Text),
        Column("created_at", DateTime, nullable=False),
        Index("ix_requests_at", "created_at"),
    )
    md.create_all(conn)


def _v12_user_keys(conn: Connection) -> None:
    """Per-user keys of the embedded index's sealed payloads."""
    md = MetaData()
    Table(
        "tm_user_keys", md,
        Column("user_id", String(256), primary_key=True),
        Column("key", String(64), nullable=False),
    )
    md.create_all(conn)


def _v13_item_owners(conn: Connection) -> None:
    """Each store item's user, declared when it is written: `forget_user` erases a user's
    items by this column, never by a namespace label that happens to equal the id. Items
    written before have none (no label is taken for a user after the fact)."""
    conn.execute(text("ALTER TABLE tm_store_items ADD COLUMN owner TEXT"))
    conn.execute(text("CREATE INDEX ix_store_items_owner ON tm_store_items (owner)"))


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_two_phase_add, _v3_turn_kinds, _v4_turn_utc_offset, _v5_model_usage, _v6_memory_files,
    _v7_store_items, _v8_forgotten_spans, _v9_file_versions, _v10_fact_updated_at, _v11_requests,
    _v12_user_keys, _v13_item_owners,
]
LATEST = len(MIGRATIONS)
if LATEST != SCHEMA_VERSION:  # pragma: no cover - caught by any test run after adding a migration
    raise AssertionError(f"set SCHEMA_VERSION in _quickread.py to {LATEST}")


def _version(conn: Connection) -> int:
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return 0
    versions = conn.execute(select(SchemaVersion.version)).scalars().all()  # type: ignore[call-overload]
    return max(versions, default=0)


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return _version(conn)


def _take_migration_lock(conn: Connection) -> bool:
    """The lock migrations run under. False: SQLite's write lock is busy right now."""
    if conn.dialect.name == "sqlite":
        # The write lock now, before reading the version. A short wait only: another
        # process that migrated first may go on writing (its add() calls), and SQLite's busy
        # handler, polling every 100 ms, can lose the lock to it for longer than its timeout.
        # The caller re-reads the version between tries, which needs no lock in WAL mode.
        conn.exec_driver_sql(f"PRAGMA busy_timeout={_SQLITE_TRY_MS}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return True
        except OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            return False
        finally:
            conn.exec_driver_sql("PRAGMA busy_timeout=30000")
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    return True


_SQLITE_TRY_MS = 250
_MIGRATION_WAIT_S = 300.0  # how long an opener waits for another process's migration


def migrate(engine: Engine) -> int:
    """Bring the database to the latest schema; returns the version it is at."""
    deadline = time.monotonic() + _MIGRATION_WAIT_S
    while True:
        if current_version(engine) == LATEST:
            return LATEST  # the common case: no lock, so a read-only opener is not blocked
        with engine.connect() as conn:
            if _take_migration_lock(conn):
                return _migrate_locked(conn)
        if time.monotonic() > deadline:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked (waited for the migration lock)"))


def _migrate_locked(conn: Connection) -> int:
    """Run the missing migrations under the lock `conn` holds; returns the version."""
    version = _version(conn)
    if version > LATEST:
        raise ConfigError(
            f"database schema is version {version}, newer than this tiermem ({LATEST}); upgrade tiermem"
        )
    if version == 0:
        table_of(SchemaVersion).create(conn, checkfirst=True)
    for number in range(version + 1, LATEST + 1):
        MIGRATIONS[number - 1](conn)
        conn.execute(
            table_of(SchemaVersion).insert().values(
                version=number, applied_at=datetime.now(UTC)
            )
        )
    conn.commit()
    return LATEST
