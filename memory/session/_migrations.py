"""Schema migrations: an ordered list of functions and a version table.

Append a function to MIGRATIONS for every schema change; never edit one that has shipped.
Each runs in its own transaction together with the version row that records it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, inspect, select

from ._tables import EventRow, FactRow, MetaRow, ProfileRow, SchemaVersion, SummaryRow, TurnRow


def _v1_initial(conn: Connection) -> None:
    for table in (MetaRow, TurnRow, FactRow, EventRow, SummaryRow, ProfileRow):
        table.__table__.create(conn)  # type: ignore[attr-defined,union-attr]


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial]
LATEST = len(MIGRATIONS)


def current_version(engine: Engine) -> int:
    if not inspect(engine).has_table(SchemaVersion.__tablename__):
        return 0
    with engine.connect() as conn:
        versions = conn.execute(select(SchemaVersion.version)).scalars().all()  # type: ignore[call-overload]
    return max(versions, default=0)


def migrate(engine: Engine) -> int:
    """Bring the database to the latest schema; returns the version it is at."""
    version = current_version(engine)
    if version > LATEST:
        from .._errors import ConfigError

        raise ConfigError(
            f"database schema is version {version}, newer than this tiermem ({LATEST}); upgrade tiermem"
        )
    if version == 0:
        with engine.begin() as conn:
            SchemaVersion.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    for number in range(version + 1, LATEST + 1):
        with engine.begin() as conn:
            MIGRATIONS[number - 1](conn)
            conn.execute(
                SchemaVersion.__table__.insert().values(  # type: ignore[attr-defined]
                    version=number, applied_at=datetime.now(timezone.utc)
                )
            )
    return LATEST
