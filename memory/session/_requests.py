"""Served writes by idempotency key (mixed into `SessionStore`): a request resent after a
lost answer or an owner's failover is answered once, with the first answer."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from .._models import as_utc
from ._tables import RequestRow, table_of

KEEP = timedelta(days=1)  # how long a key is remembered


class Seen(NamedTuple):
    method: str
    result: str | None  # the first answer as JSON; None if it never completed
    turn_ids: list[str]  # add(): the turns it stored


class RequestLog:
    engine: Any
    writing: Any

    def seen_request(self, key: str) -> Seen | None:
        with Session(self.engine) as s:
            row = s.get(RequestRow, key)
        if row is None:
            return None
        return Seen(row.method, row.result, json.loads(row.turn_ids or "[]"))

    def claim_request(self, conn: Any, key: str, method: str, at: datetime, *, user_id: str | None = None,
                      turn_ids: list[str] | None = None) -> bool:
        """Record a key inside the caller's transaction (so the write and its key commit
        together). False when the key was there already: the caller must not write again."""
        try:
            with conn.begin_nested():
                conn.execute(insert(table_of(RequestRow)), [{
                    "key": key, "method": method, "user_id": user_id, "created_at": as_utc(at),
                    "turn_ids": json.dumps(turn_ids) if turn_ids is not None else None}])
        except IntegrityError:
            return False
        return True

    def answer_request(self, key: str, method: str, result: str, at: datetime, *, user_id: str | None = None) -> None:
        """Keep the answer of a completed write (recording the key now if it was not yet)."""
        with self.writing() as conn:
            table = table_of(RequestRow)
            if not conn.execute(update(table).where(table.c.key == key).values(result=result)).rowcount:
                self.claim_request(conn, key, method, at, user_id=user_id)
                conn.execute(update(table).where(table.c.key == key).values(result=result))
            conn.execute(delete(RequestRow).where(col(RequestRow.created_at) < as_utc(at - KEEP)))

    def forget_requests(self, user_id: str) -> None:
        """A user's answers hold their text: any erasure of theirs drops them (a resend
        after it is then run again)."""
        with self.writing() as conn:
            conn.execute(delete(RequestRow).where(col(RequestRow.user_id) == user_id))
