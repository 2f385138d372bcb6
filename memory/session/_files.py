"""Claude memory-tool files in the session tier (mixed into `SessionStore`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from .._models import as_utc
from ._engine import upsert
from ._tables import MemoryFileRow


class MemoryFileLog:
    engine: Any
    writing: Any

    def memory_files(self, user_id: str, prefix: str = "") -> list[MemoryFileRow]:
        query = select(MemoryFileRow).where(MemoryFileRow.user_id == user_id).order_by(col(MemoryFileRow.path))
        with Session(self.engine) as s:
            rows = s.exec(query).all()
        return [r for r in rows if r.path == prefix or r.path.startswith(prefix.rstrip("/") + "/")] if prefix else list(rows)

    def memory_file(self, user_id: str, path: str) -> MemoryFileRow | None:
        with Session(self.engine) as s:
            return s.get(MemoryFileRow, (user_id, path))

    def put_memory_file(self, user_id: str, path: str, content: str, fact_id: str | None, at: datetime) -> None:
        with self.writing() as conn:
            upsert(conn, MemoryFileRow.__table__, ["user_id", "path"],  # type: ignore[attr-defined]
                   [{"user_id": user_id, "path": path, "content": content, "fact_id": fact_id, "updated_at": as_utc(at)}])

    def delete_memory_files(self, user_id: str, paths: list[str]) -> None:
        with self.writing() as conn:
            conn.execute(delete(MemoryFileRow).where(col(MemoryFileRow.user_id) == user_id,
                                                     col(MemoryFileRow.path).in_(paths)))
