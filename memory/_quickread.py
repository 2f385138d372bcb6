"""Quick reads of a local SQLite home with the standard library alone (no SQLAlchemy, no
pydantic): what `tiermem users` and `tiermem facts list` need to start as fast as
sqlite-utils does. Anything else (PostgreSQL, a database at another schema version) is
left to `SessionStore`: `QuickReader.open` returns None for it.

The facts come back as the JSON objects `Fact.model_dump_json()` writes, because the rows
store exactly that (`tm_facts.data`) and only the access columns are laid over it; a test
compares both paths on the same database.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCHEMA_VERSION = 13  # the number of migrations in _migrations.py (checked there)


class QuickReader:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> QuickReader | None:
        """A read-only connection, or None when this reader cannot serve the file (missing,
        unreadable, or not at this version's schema)."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=5.0)
            version = conn.execute("SELECT max(version) FROM tm_schema_version").fetchone()[0]
        except sqlite3.Error:
            return None
        if version != SCHEMA_VERSION:
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def users(self) -> list[tuple[str, int, int]]:
        """(user_id, valid facts, turns) for every user, by id."""
        facts = dict(self.conn.execute("SELECT user_id, count(*) FROM tm_facts WHERE valid GROUP BY user_id"))
        turns = dict(self.conn.execute("SELECT user_id, count(*) FROM tm_turns GROUP BY user_id"))
        return [(u, facts.get(u, 0), turns.get(u, 0)) for u in sorted(set(facts) | set(turns))]

    def facts(self, user_id: str, *, include_invalid: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """A user's facts as Fact JSON objects, oldest first (SessionStore.list_facts' order)."""
        sql = "SELECT data, access_count, last_accessed_at FROM tm_facts WHERE user_id = ?"
        if not include_invalid:
            sql += " AND valid"
        sql += " ORDER BY created_at, id" + (" LIMIT ?" if limit is not None else "")
        params: tuple[Any, ...] = (user_id, limit) if limit is not None else (user_id,)
        out = []
        for data, access_count, last_accessed_at in self.conn.execute(sql, params):
            fact = json.loads(data)
            if access_count:
                fact["access_count"] = access_count
                fact["last_accessed_at"] = _utc_json(last_accessed_at) if last_accessed_at else None
            out.append(fact)
        return out


    def meta(self) -> dict[str, str]:
        """The session tier's bookkeeping (journal id, embedder, index watermarks, markers)."""
        return dict(self.conn.execute("SELECT key, value FROM tm_meta"))

    def last_event_seq(self) -> int:
        return int(self.conn.execute("SELECT max(seq) FROM tm_fact_events").fetchone()[0] or 0)

    def user_key(self, user_id: str) -> bytes | None:
        """The user's sealing key for the embedded index (None: the user has none)."""
        row = self.conn.execute("SELECT key FROM tm_user_keys WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return None
        key = bytes.fromhex(row[0])
        if len(key) != 32:
            raise ValueError("a damaged key: the full path says what to do")
        return key


def fact_json(fact: dict[str, Any]) -> str:
    """One fact as `Fact.model_dump_json()` writes it (compact, UTF-8 kept)."""
    return json.dumps(fact, ensure_ascii=False, separators=(",", ":"))


def _utc_json(stored: str) -> str:
    """A naive UTC DateTime column as SQLAlchemy stores it on SQLite, in pydantic's JSON form."""
    value = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")
