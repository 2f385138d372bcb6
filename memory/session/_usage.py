"""The usage table: one row per model call (mixed into `SessionStore`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlmodel import Session, col, select

from .._models import as_utc
from ._tables import UsageRow, table_of

# What a row takes from a call's usage: every column but the row id and the time.
USAGE_FIELDS = tuple(c for c in table_of(UsageRow).columns.keys() if c not in ("id", "at"))


class _Store(Protocol):
    engine: Any

    def writing(self) -> AbstractContextManager[Any]: ...


class UsageLog:
    def record_usage(self: _Store, usage: Any) -> None:
        """Append one call's usage (any object with the CallUsage fields)."""
        row = {name: getattr(usage, name) for name in USAGE_FIELDS}
        row["at"] = as_utc(usage.at)
        for name in ("outcome", "service_tier", "request_id"):
            if isinstance(row[name], str):
                row[name] = row[name][:64 if name == "outcome" else 128]
        with self.writing() as conn:
            conn.execute(insert(table_of(UsageRow)), [row])

    def usage_rows(self: _Store, user_id: str | None = None, session_id: str | None = None,
                   since: datetime | None = None) -> Iterator[UsageRow]:
        query = select(UsageRow).order_by(col(UsageRow.id))
        if user_id is not None:
            query = query.where(UsageRow.user_id == user_id)
        if session_id is not None:
            query = query.where(UsageRow.session_id == session_id)
        if since is not None:
            query = query.where(col(UsageRow.at) >= as_utc(since))
        with Session(self.engine) as s:
            yield from s.exec(query).all()
