"""One writer per user across processes.

Reconciliation reads a user's neighbouring facts, decides, and commits; two writers of one
user that interleave those steps each decide against a view without the other's news (two
"favourite numbers" valid at once, a statement stored twice). Within a process the write
pipeline's lock orders them. Processes that share a database with no owner (PostgreSQL:
every tier there) take PostgreSQL's advisory lock on the user for the same span, so any
number of processes give the result one process gives. A lock of the session (not of a
transaction) spans the index write too, which runs in other transactions, and the server
drops it with the connection if the process dies.

SQLite needs none: processes on one SQLite home meet through its owner (`SharedMemory`),
which runs every write.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

USER_LOCKS = 0x7E57  # the first key of tiermem's per-user advisory locks (the migration lock is a bigint of its own)


def lock_key(user_id: str) -> int:
    """The second key: a 32-bit hash of the user id (a collision only serializes two users)."""
    return zlib.crc32(user_id.encode("utf-8", "surrogatepass")) - 2**31


@contextlib.contextmanager
def user_writer(engine: Any, user_id: str) -> Iterator[None]:
    """Hold the user's cross-process writer lock (PostgreSQL), or nothing (other engines)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"), {"ns": USER_LOCKS, "key": lock_key(user_id)})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": USER_LOCKS, "key": lock_key(user_id)})
