"""Memory-tool files in the session tier (mixed into `SessionStore`): one row per path, a
version per write, written together with the fact that makes the file searchable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from .._errors import WriteConflict
from .._models import FactEvent, MemoryFile, as_utc
from ._tables import MemoryFileRow, table_of


class MemoryFileLog:
    engine: Any
    writing: Any

    def _insert_events(self, conn: Any, events: Sequence[FactEvent]) -> list[FactEvent]:
        raise NotImplementedError

    def files(self, user_id: str, prefix: str = "") -> list[MemoryFile]:
        """A user's files by path; with `prefix`, the file at it and those under it."""
        query = select(MemoryFileRow).where(MemoryFileRow.user_id == user_id).order_by(col(MemoryFileRow.path))
        if prefix:
            folder = prefix.rstrip("/") + "/"
            query = query.where((col(MemoryFileRow.path) == prefix) | col(MemoryFileRow.path).startswith(folder, autoescape=True))
        with Session(self.engine) as s:
            return [_file(r) for r in s.exec(query).all()]

    def file(self, user_id: str, path: str) -> MemoryFile | None:
        with Session(self.engine) as s:
            row = s.get(MemoryFileRow, (user_id, path))
            return _file(row) if row is not None else None

    def commit_file(self, user_id: str, file: MemoryFile, event: FactEvent, over: int) -> FactEvent:
        """Write a file over version `over` (0: where there is none) and journal its fact's
        event, in one transaction: a compare-and-set, safe across processes.

        Raises:
            WriteConflict: the stored version is not `over`; nothing was written.
        """
        table = table_of(MemoryFileRow)
        values = {"content": file.content, "fact_id": file.fact_id, "updated_at": as_utc(file.updated_at),
                  "version": file.version}
        try:
            with self.writing() as conn:
                if over == 0:
                    conn.execute(insert(table).values(user_id=user_id, path=file.path, **values))
                elif not conn.execute(update(table).where(table.c.user_id == user_id, table.c.path == file.path,
                                                          table.c.version == over).values(**values)).rowcount:
                    raise WriteConflict(f"{file.path} changed since version {over}; read it again and retry")
                [stored] = self._insert_events(conn, [event])
        except IntegrityError:
            raise WriteConflict(f"{file.path} already exists") from None
        return stored

    def delete_files(self, user_id: str, paths: list[str]) -> int:
        with self.writing() as conn:
            return int(conn.execute(delete(MemoryFileRow).where(col(MemoryFileRow.user_id) == user_id,
                                                                col(MemoryFileRow.path).in_(paths))).rowcount)


def _file(row: MemoryFileRow) -> MemoryFile:
    return MemoryFile(path=row.path, content=row.content, version=row.version, fact_id=row.fact_id,
                      updated_at=row.updated_at)
