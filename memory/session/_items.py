"""Items of the LangGraph store adapter in the session tier (mixed into `SessionStore`).

A namespace is stored as its labels joined with "." (LangGraph forbids "." inside a label,
so the join is unambiguous). A prefix matches whole labels only: ("foo",) covers "foo" and
"foo.child" but not "foobar", compared byte for byte (no LIKE: it is case-insensitive in
SQLite and treats "_" and "%" as wildcards).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, tuple_, update
from sqlmodel import Session, col, select

from .._models import as_utc
from ._engine import insert_for
from ._tables import StoreItemRow, table_of


def _under(prefix: str) -> Any:
    """Rows whose namespace is `prefix` or lies below it (whole labels only)."""
    if not prefix:
        return True
    below = prefix + "."
    return or_(col(StoreItemRow.namespace) == prefix,
               func.substr(col(StoreItemRow.namespace), 1, len(below)) == below)


def _alive(alive_at: datetime | None) -> Any:
    if alive_at is None:
        return True
    return or_(col(StoreItemRow.expires_at).is_(None), col(StoreItemRow.expires_at) > as_utc(alive_at))


def _pairs(pairs: Sequence[tuple[str, str]]) -> Any:
    return tuple_(col(StoreItemRow.namespace), col(StoreItemRow.key)).in_(list(pairs))


class StoreItemLog:
    engine: Any
    writing: Any

    def store_get(self, pairs: Sequence[tuple[str, str]], alive_at: datetime | None = None) -> dict[tuple[str, str], StoreItemRow]:
        """The items at these (namespace, key) pairs; with `alive_at`, only unexpired ones."""
        if not pairs:
            return {}
        out: dict[tuple[str, str], StoreItemRow] = {}
        with Session(self.engine) as s:
            for start in range(0, len(pairs), 400):  # bound the statement's parameters
                chunk = pairs[start:start + 400]
                for row in s.exec(select(StoreItemRow).where(_pairs(chunk), _alive(alive_at))).all():
                    out[(row.namespace, row.key)] = row
        return out

    def store_put(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace items; an existing item keeps its `created_at`."""
        if not rows:
            return
        rows = [{**r, **{k: as_utc(r[k]) for k in ("created_at", "updated_at", "expires_at") if r.get(k)}} for r in rows]
        with self.writing() as conn:
            statement = insert_for(conn, table_of(StoreItemRow))
            changed = {c: statement.excluded[c] for c in rows[0] if c not in ("namespace", "key", "created_at")}
            conn.execute(statement.on_conflict_do_update(index_elements=["namespace", "key"], set_=changed), rows)

    def store_mark_embedded(self, pairs: Sequence[tuple[str, str]], updated: dict[tuple[str, str], datetime]) -> None:
        """The vectors of these items reached the index (unless the item changed since)."""
        if not pairs:
            return
        table = table_of(StoreItemRow)
        statement = update(table).where(table.c.namespace == bindparam("ns"), table.c.key == bindparam("k"),
                                        table.c.updated_at == bindparam("at")).values(embedded=True)
        with self.writing() as conn:
            conn.execute(statement, [{"ns": ns, "k": key, "at": as_utc(updated[(ns, key)])} for ns, key in pairs])

    def store_unembedded(self, limit: int = 500) -> list[StoreItemRow]:
        with Session(self.engine) as s:
            return list(s.exec(select(StoreItemRow).where(col(StoreItemRow.embedded).is_(False)).limit(limit)).all())

    def store_delete(self, pairs: Sequence[tuple[str, str]]) -> int:
        if not pairs:
            return 0
        removed = 0
        with self.writing() as conn:
            for start in range(0, len(pairs), 400):
                removed += conn.execute(delete(StoreItemRow).where(_pairs(pairs[start:start + 400]))).rowcount or 0
        return removed

    def store_search(self, prefix: str, *, alive_at: datetime | None, limit: int | None, offset: int = 0) -> list[StoreItemRow]:
        """Items under a prefix, most recently updated first (ties by namespace and key)."""
        query = (select(StoreItemRow).where(_under(prefix), _alive(alive_at))
                 .order_by(col(StoreItemRow.updated_at).desc(), col(StoreItemRow.namespace), col(StoreItemRow.key))
                 .offset(offset))
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return list(s.exec(query).all())

    def store_scan(self, prefix: str, *, alive_at: datetime | None, page: int = 500) -> Iterator[StoreItemRow]:
        """`store_search` in pages, for filters evaluated in Python (the caller stops early)."""
        offset = 0
        while True:
            rows = self.store_search(prefix, alive_at=alive_at, limit=page, offset=offset)
            yield from rows
            if len(rows) < page:
                return
            offset += page

    def store_namespaces(self, alive_at: datetime | None = None) -> list[str]:
        with Session(self.engine) as s:
            return list(s.exec(select(StoreItemRow.namespace).where(_alive(alive_at)).distinct()).all())

    def store_refresh(self, pairs: Sequence[tuple[str, str]], now: datetime) -> None:
        """Restart the TTL of these items (those that have one and have not expired)."""
        rows = [r for r in self.store_get(pairs, alive_at=now).values() if r.ttl_minutes is not None]
        if not rows:
            return
        table = table_of(StoreItemRow)
        statement = update(table).where(table.c.namespace == bindparam("ns"), table.c.key == bindparam("k")).values(
            expires_at=bindparam("until"))
        with self.writing() as conn:
            conn.execute(statement, [{"ns": r.namespace, "k": r.key,
                                      "until": as_utc(now + timedelta(minutes=float(r.ttl_minutes)))}  # type: ignore[arg-type]
                                     for r in rows])

    def store_expired(self, now: datetime) -> list[tuple[str, str]]:
        with Session(self.engine) as s:
            rows = s.exec(select(StoreItemRow.namespace, StoreItemRow.key).where(
                col(StoreItemRow.expires_at).is_not(None), col(StoreItemRow.expires_at) <= as_utc(now))).all()
        return [(ns, key) for ns, key in rows]

    def store_keys(self, owner: str | None = None) -> list[tuple[str, str]]:
        """Every item's (namespace, key); with `owner`, only the items declared that user's."""
        query = select(StoreItemRow.namespace, StoreItemRow.key)
        if owner is not None:
            query = query.where(col(StoreItemRow.owner) == owner)
        with Session(self.engine) as s:
            return [(ns, key) for ns, key in s.exec(query).all()]

    def store_count(self) -> int:
        with Session(self.engine) as s:
            return int(s.exec(select(func.count()).select_from(StoreItemRow)).one())
