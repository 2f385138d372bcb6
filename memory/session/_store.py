"""SessionStore: the session tier (turns, summaries, profiles) and the fact journal.

This is tiermem's source of truth. Every fact change is a journal row written in the same
transaction as the turns it came from; the long-term index is rebuilt from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from .._errors import IndexCorrupted, StoreUnavailable
from .._models import Fact, FactEvent, Profile, Turn, as_utc
from .._text import norm_hash
from ._engine import engine_for, insert_for, sqlite_file, upsert
from ._files import MemoryFileLog
from ._items import StoreItemLog
from ._locks import user_writer
from ._migrations import LATEST as SCHEMA_LATEST
from ._migrations import current_version, migrate
from ._requests import RequestLog
from ._tables import (
    EventRow,
    ExtractionFailureRow,
    FactRow,
    MemoryFileRow,
    MetaRow,
    ProfileRow,
    RequestRow,
    SessionSeqRow,
    SummaryRow,
    TurnRow,
    UsageRow,
    UserKeyRow,
    table_of,
)
from ._turns import TurnLog
from ._usage import UsageLog

CRITICAL_IMPORTANCE = 0.95  # allergies, conditions, dietary and accessibility needs (RuleExtractor)


COMPACT_LOCK_TIMEOUT = 0.1  # seconds an erasure's table rewrite may wait for its lock (others queue behind the wait)
COMPACT_PENDING = "compact_pending"  # tm_meta: tables an erasure could not rewrite yet (PostgreSQL)
# What forgetting facts or a session deletes rows from (the erasure records in tm_meta name the text too).
FACT_TABLES = ("tm_facts", "tm_fact_events", "tm_turns", "tm_summaries", "tm_profiles", "tm_requests", "tm_meta")
ITEM_TABLES = ("tm_store_items",)


def _vacuum_full(conn: Any, table: str) -> bool:
    """Rewrite one table; False when its lock was not had within the connection's lock_timeout."""
    try:
        conn.exec_driver_sql(f'VACUUM FULL "{table}"')
        return True
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return False
        raise


class SessionStore(TurnLog, UsageLog, MemoryFileLog, StoreItemLog, RequestLog):
    """Turns, summaries, profiles and the fact journal, in SQLite or PostgreSQL.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///.tiermem/tiermem.db``.

    Raises:
        ConfigError: the URL is malformed or names an unsupported backend.
        StoreUnavailable: the database cannot be reached.
    """

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = url
        self.read_only = read_only
        self._write_gate = threading.RLock()
        self.engine = engine_for(url, read_only=read_only)
        try:
            if read_only:
                if current_version(self.engine) != SCHEMA_LATEST:
                    raise StoreUnavailable(
                        f"{self.url_for_humans} needs a schema upgrade, which needs write access; open it once with "
                        "write access (any tiermem command that writes, or Memory.open())"
                    )
            else:
                migrate(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            raise StoreUnavailable(f"cannot open database {make_url(url).render_as_string(hide_password=True)}: {exc.orig}") from exc
        except StoreUnavailable:
            self.engine.dispose()
            raise

    @classmethod
    def for_reading(cls, url: str) -> SessionStore:
        """A store for inspection: read-write when it can be, read-only when the files are
        not writable by this user (a home shared read-only, a backup)."""
        try:
            return cls(url)
        except StoreUnavailable as exc:
            if make_url(url).get_backend_name() != "sqlite":
                raise
            try:
                return cls(url, read_only=True)
            except StoreUnavailable:
                raise exc from None

    def close(self) -> None:
        self.engine.dispose()

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with Session(self.engine) as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    def metas(self, prefix: str) -> dict[str, str]:
        """Every meta key that starts with `prefix`, with its value."""
        with Session(self.engine) as s:
            rows = s.exec(select(MetaRow).where(func.substr(col(MetaRow.key), 1, len(prefix)) == prefix)).all()
            return {r.key: r.value for r in rows}

    def delete_meta(self, key: str) -> None:
        with self.writing() as conn:
            conn.execute(delete(MetaRow).where(col(MetaRow.key) == key))

    def journal_id(self) -> str:
        """This database's identity, made on first use: what an index folder records."""
        existing = self.get_meta("journal_id")
        if existing:
            return existing
        with self.writing() as conn:  # first writer wins; everyone reads the winner's
            conn.execute(insert_for(conn, table_of(MetaRow)).values(key="journal_id", value=uuid.uuid4().hex)
                         .on_conflict_do_nothing(index_elements=["key"]))
        return self.get_meta("journal_id") or ""

    @property
    def url_for_humans(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def user_writer(self, user_id: str) -> contextlib.AbstractContextManager[None]:
        """The user's writer lock across processes (PostgreSQL's advisory lock; see `_locks`)."""
        return user_writer(self.engine, user_id)

    def user_key(self, user_id: str, create: bool = True) -> bytes | None:
        """The user's key for the embedded index's sealed payloads (made on first use;
        deleted by `forget_user`). None: the user has none and `create` is False."""
        with Session(self.engine) as s:
            row = s.get(UserKeyRow, user_id)
        if row is not None:
            return _key_bytes(user_id, row.key)
        if not create:
            return None
        with self.writing() as conn:  # two processes making the first key: one wins, both read it
            conn.execute(insert_for(conn, table_of(UserKeyRow)).on_conflict_do_nothing(),
                         [{"user_id": user_id, "key": os.urandom(32).hex()}])
        with Session(self.engine) as s:
            made = s.get(UserKeyRow, user_id)
        assert made is not None
        return _key_bytes(user_id, made.key)

    def drop_user_key(self, user_id: str) -> None:
        """Delete a user's sealing key (a damaged one: `tiermem doctor --repair` makes a new
        one and rebuilds the index from the journal)."""
        with self.writing() as conn:
            conn.execute(delete(UserKeyRow).where(col(UserKeyRow.user_id) == user_id))

    def set_meta(self, key: str, value: str) -> None:
        with self.writing() as conn:  # an upsert: two processes opening a fresh database both set keys
            upsert(conn, table_of(MetaRow), ["key"], [{"key": key, "value": value}])

    # -- the write path -------------------------------------------------------------------
    def commit(self, turns: Sequence[Turn], events: Sequence[FactEvent]) -> tuple[list[Turn], list[FactEvent]]:
        """Store turns and the fact changes they caused in one transaction (the turns count
        as extracted: the events are what extraction made of them).

        Returns the turns with their session sequence numbers and the events with journal seqs.
        """
        with self.writing() as conn:
            stored_turns = self._insert_turns(conn, turns, extracted=True)
            stored_events = self._insert_events(conn, events)
        return stored_turns, stored_events

    def commit_events(self, events: Sequence[FactEvent]) -> list[FactEvent]:
        """Journal fact changes that came from no turn (remember, update, forget)."""
        with self.writing() as conn:
            return self._insert_events(conn, events)

    def _insert_events(self, conn: Any, events: Sequence[FactEvent]) -> list[FactEvent]:
        if not events:
            return []
        # Each fact's version is stamped with the time of the change that made it.
        events = [e.model_copy(update={"fact": e.fact.model_copy(update={"updated_at": e.at})})
                  if e.op in ("add", "update", "invalidate") and e.fact is not None else e for e in events]
        latest = {e.fact.id: e.fact for e in events if e.op in ("add", "update", "invalidate") and e.fact is not None}
        if latest:
            upsert(conn, table_of(FactRow), ["id"], [_fact_values(f) for f in latest.values()])
        for user_id, (invalidated, critical) in _profile_changes(events).items():
            values: dict[str, Any] = {"changes_since": ProfileRow.changes_since + 1}
            baked = conn.execute(select(ProfileRow.fact_ids).where(col(ProfileRow.user_id) == user_id)).scalar()
            if critical or baked is not None and invalidated & set(json.loads(baked)):
                values["stale"] = True  # the cached prefix states something no longer true, or misses a must
            conn.execute(update(ProfileRow).where(col(ProfileRow.user_id) == user_id).values(**values))
        table = table_of(EventRow)
        rows = [{"user_id": e.user_id, "fact_id": e.fact_id, "op": e.op, "at": e.at, "data": e.model_dump_json()} for e in events]
        seqs = conn.execute(insert(table).returning(table.c.seq, sort_by_parameter_order=True), rows).scalars().all()
        return [e.model_copy(update={"seq": seq}) for e, seq in zip(events, seqs, strict=True)]

    # -- facts ----------------------------------------------------------------------------
    def get_fact(self, fact_id: str) -> Fact | None:
        with Session(self.engine) as s:
            row = s.get(FactRow, fact_id)
            return _fact(row) if row else None

    def get_facts(self, ids: Iterable[str]) -> list[Fact]:
        ids = list(ids)
        if not ids:
            return []
        with Session(self.engine) as s:
            rows = s.exec(select(FactRow).where(col(FactRow.id).in_(ids))).all()
        by_id = {r.id: _fact(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def list_facts(
        self,
        user_id: str | None = None,
        *,
        include_invalid: bool = False,
        kind: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Fact]:
        query = select(FactRow)
        if user_id is not None:
            query = query.where(FactRow.user_id == user_id)
        if not include_invalid:
            query = query.where(col(FactRow.valid).is_(True))
        if kind is not None:
            query = query.where(FactRow.kind == kind)
        if newest_first:
            query = query.order_by(col(FactRow.created_at).desc(), col(FactRow.id).desc()).offset(offset)
        else:
            query = query.order_by(col(FactRow.created_at), col(FactRow.id)).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return [_fact(r) for r in s.exec(query).all()]

    def fact_ids_starting(self, prefix: str, *, limit: int = 10) -> list[str]:
        """Fact ids that start with `prefix` (the CLI's short ids), at most `limit`."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = select(FactRow.id).where(col(FactRow.id).like(escaped + "%", escape="\\")).order_by(col(FactRow.id))
        with Session(self.engine) as s:
            return list(s.exec(query.limit(limit)).all())

    def fact_ids(self) -> set[str]:
        """Every fact id in the journal, valid or not (without parsing the facts)."""
        with Session(self.engine) as s:
            return set(s.exec(select(FactRow.id)).all())

    def count_facts(self, user_id: str | None = None, *, include_invalid: bool = False) -> int:
        query = select(func.count()).select_from(FactRow)
        if user_id is not None:
            query = query.where(FactRow.user_id == user_id)
        if not include_invalid:
            query = query.where(col(FactRow.valid).is_(True))
        with Session(self.engine) as s:
            return int(s.exec(query).one())

    def facts_by_hash(self, user_id: str, hashes: Iterable[str]) -> dict[str, Fact]:
        hashes = list(set(hashes))
        if not hashes:
            return {}
        with Session(self.engine) as s:
            rows = s.exec(
                select(FactRow).where(
                    FactRow.user_id == user_id, col(FactRow.valid).is_(True), col(FactRow.norm_hash).in_(hashes)
                )
            ).all()
        return {r.norm_hash: _fact(r) for r in rows}

    def facts_by_key(self, user_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Fact]]:
        out: dict[tuple[str, str], list[Fact]] = {}
        attributes = {a for _, a in keys}
        if not attributes:
            return out
        with Session(self.engine) as s:
            rows = s.exec(
                select(FactRow).where(
                    FactRow.user_id == user_id, col(FactRow.valid).is_(True), col(FactRow.attribute).in_(attributes)
                )
            ).all()
        for r in rows:
            out.setdefault((r.subject.lower(), r.attribute or ""), []).append(_fact(r))
        return out

    def history(self, fact_id: str) -> list[FactEvent]:
        with Session(self.engine) as s:
            rows = s.exec(select(EventRow).where(EventRow.fact_id == fact_id).order_by(col(EventRow.seq))).all()
        return [_event(r) for r in rows]

    def last_changed(self, fact_ids: Iterable[str]) -> dict[str, datetime]:
        """When each fact's text, metadata or validity last changed (add, update, invalidate;
        a re-mention is no change), for the facts that have journal rows."""
        ids = list(fact_ids)
        if not ids:
            return {}
        with Session(self.engine) as s:
            rows = s.exec(select(EventRow.fact_id, func.max(EventRow.at))
                          .where(col(EventRow.fact_id).in_(ids), col(EventRow.op).in_(["add", "update", "invalidate"]))
                          .group_by(EventRow.fact_id)).all()
        return {fact_id: as_utc(at) for fact_id, at in rows}

    def events_after(self, seq: int, limit: int = 10_000) -> list[FactEvent]:
        with Session(self.engine) as s:
            rows = s.exec(select(EventRow).where(col(EventRow.seq) > seq).order_by(col(EventRow.seq)).limit(limit)).all()
        return [_event(r) for r in rows]

    def last_event_seq(self) -> int:
        with Session(self.engine) as s:
            return int(s.exec(select(func.max(EventRow.seq))).one() or 0)

    def record_access(self, facts: Sequence[Fact], at: datetime) -> None:
        if not facts:
            return
        with self.writing() as conn:
            conn.execute(
                update(FactRow)
                .where(col(FactRow.id).in_([f.id for f in facts]))
                .values(access_count=FactRow.access_count + 1, last_accessed_at=as_utc(at))
            )

    # -- erasure --------------------------------------------------------------------------
    def forget_fact(self, fact_id: str, at: datetime, pending: str | None = None) -> FactEvent | None:
        """Erase a fact and its journal rows; leave a tombstone so the index follows, and
        `pending` (the erasure's remaining steps) under `erasing:<id>` in the same
        transaction. (Deleted rows leave the files at the next `scrub()`.)"""
        with self._write_gate, Session(self.engine) as s:
            row = s.get(FactRow, fact_id)
            if row is None:
                return None
            user_id = row.user_id
            if pending is not None:
                upsert(s.connection(), table_of(MetaRow), ["key"], [{"key": f"erasing:{fact_id}", "value": pending}])
            s.delete(row)
            s.exec(delete(EventRow).where(col(EventRow.fact_id) == fact_id))
            self._drop_from_profile(s, user_id, fact_id)
            self._insert_events(s.connection(), [FactEvent(op="forget", fact_id=fact_id, user_id=user_id, at=at)])
            s.commit()
        return self.history(fact_id)[-1]

    def forget_user(self, user_id: str, at: datetime) -> tuple[FactEvent, dict[str, int]]:
        """Delete every row of a user; journal a tombstone that names only a hash of the id.

        Returns the tombstone (with the real id, for the caller's index update) and the
        number of rows removed per table.
        """
        removed: dict[str, int] = {}
        with self._write_gate, Session(self.engine) as s:
            for table in (FactRow, EventRow, TurnRow, SummaryRow, ProfileRow, SessionSeqRow, ExtractionFailureRow, UsageRow,
                          RequestRow, MemoryFileRow, UserKeyRow):
                result = s.exec(delete(table).where(col(table.user_id) == user_id))
                removed[table.__tablename__] = result.rowcount
            tombstone = FactEvent(op="forget_user", fact_id="*", user_id=erased_id(user_id), at=at)
            [stored] = self._insert_events(s.connection(), [tombstone])
            s.commit()
        return stored.model_copy(update={"user_id": user_id}), removed

    def user_texts(self, user_id: str, limit: int = 200) -> list[str]:
        """What an erasure of this user removes from the session tier: turn, fact, summary
        and profile texts (for the receipt's check that none is left in the files)."""
        with Session(self.engine) as s:
            turns = s.exec(select(TurnRow.content).where(TurnRow.user_id == user_id).limit(limit)).all()
            facts = [Fact.model_validate_json(d).text for d in
                     s.exec(select(FactRow.data).where(FactRow.user_id == user_id).limit(limit)).all()]
            summaries = s.exec(select(SummaryRow.text).where(SummaryRow.user_id == user_id).limit(limit)).all()
        return [*turns, *facts, *summaries]

    def scrub(self, tables: Iterable[str] | None = None, *, lock_timeout: float = COMPACT_LOCK_TIMEOUT) -> list[str]:
        """Leave no deleted text in the database's files.

        SQLite: deleted cells are zeroed (secure_delete is on for every connection) and the
        WAL, which still holds the pages as they were written, is checkpointed into the
        database and truncated.

        PostgreSQL: VACUUM FULL writes `tables` (default: every tiermem table) anew without
        their deleted rows and removes the old files. Each rewrite holds an exclusive lock on
        its table, and every other session's query on it queues behind the rewrite and behind
        its wait for the lock; so the wait is bounded (`lock_timeout` seconds) and a table
        another transaction holds (an export, a report) is not waited for: it is recorded and
        rewritten by the next scrub or by `optimize(compact=True)`. The server's write-ahead
        log and backups are outside its reach (see the guide).

        Returns the tables left for later (PostgreSQL; [] otherwise).
        """
        if self.engine.dialect.name == "sqlite":
            with self._write_gate, self.engine.connect() as conn:
                for _ in range(20):
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                    if busy is None or not busy[0]:
                        return []
                    time.sleep(0.05)  # a reader still holds the WAL: wait for it
            return []
        if self.engine.dialect.name != "postgresql":
            return []
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            existing = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, 'tm_')"
            )).scalars().all())
            pending = set(filter(None, (self.get_meta(COMPACT_PENDING) or "").split(",")))
            wanted = (existing if tables is None else set(tables) & existing) | (pending & existing)
            conn.exec_driver_sql(f"SET lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'")
            deferred: list[str] = []
            for table in sorted(wanted):
                # One table held by another transaction means a reader holds the rest too (a
                # report, an export): each further wait would queue everyone again.
                if deferred or not _vacuum_full(conn, table):
                    deferred.append(table)
            conn.exec_driver_sql("RESET lock_timeout")
        if deferred or pending:
            self.set_meta(COMPACT_PENDING, ",".join(deferred))
        return deferred

    def data_files(self) -> Path | None:
        """Where the database keeps its table and index files, when this process can read
        them (SQLite: its file; PostgreSQL on this machine, to a role allowed to ask: the
        data directory's base/), so an erasure can check them for leftovers."""
        file = sqlite_file(self.url)
        if file is not None:
            return file
        try:
            with self.engine.connect() as conn:
                folder = Path(conn.exec_driver_sql("SHOW data_directory").scalar() or "") / "base"
        except Exception:  # noqa: BLE001 - not allowed to know: nothing local to check
            return None
        return folder if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK) else None

    def _drop_from_profile(self, s: Session, user_id: str, fact_id: str) -> None:
        profile = s.get(ProfileRow, user_id)
        if profile is not None and fact_id in json.loads(profile.fact_ids):
            s.delete(profile)  # erased facts must leave the cached prefix now, not at the next epoch

    # -- turns and summaries --------------------------------------------------------------
    def has_user(self, user_id: str) -> bool:
        with Session(self.engine) as s:
            return any(
                s.exec(select(table.id).where(table.user_id == user_id).limit(1)).first() is not None
                for table in (TurnRow, FactRow)
            )

    def users(self) -> list[tuple[str, int, int]]:
        """(user_id, valid facts, turns) for every user."""
        with Session(self.engine) as s:
            facts = dict(
                s.exec(
                    select(FactRow.user_id, func.count()).where(col(FactRow.valid).is_(True)).group_by(FactRow.user_id)
                ).all()
            )
            turns = dict(s.exec(select(TurnRow.user_id, func.count()).group_by(TurnRow.user_id)).all())
        return [(u, facts.get(u, 0), turns.get(u, 0)) for u in sorted(set(facts) | set(turns))]

    # -- the cached profile ----------------------------------------------------------------
    def get_profile(self, user_id: str) -> Profile | None:
        with Session(self.engine) as s:
            row = s.get(ProfileRow, user_id)
            return _profile(row) if row is not None else None

    def save_profile(self, user_id: str, text: str, fact_ids: list[str], at: datetime) -> Profile:
        """Store a newly baked profile (an upsert: two processes baking at once both succeed)."""
        with self.writing() as conn:
            old = conn.execute(select(ProfileRow.epoch, ProfileRow.text).where(col(ProfileRow.user_id) == user_id)).first()
            # A new epoch only when the bytes change: the provider's cache key is the text.
            epoch = 1 if old is None else old.epoch + (old.text != text)
            row = ProfileRow(user_id=user_id, epoch=epoch, text=text, fact_ids=json.dumps(fact_ids), baked_at=as_utc(at))
            upsert(conn, table_of(ProfileRow), ["user_id"], [row.model_dump()])
        return _profile(row)


def _fact_values(fact: Fact) -> dict[str, Any]:
    return {
        "id": fact.id,
        "user_id": fact.user_id,
        "kind": fact.kind,
        "subject": fact.subject.lower(),
        "attribute": fact.attribute,
        "norm_hash": norm_hash(fact.text),
        "valid": fact.is_valid,
        "created_at": as_utc(fact.created_at),
        "data": fact.model_dump_json(),
    }


def _profile_changes(events: Sequence[FactEvent]) -> dict[str, tuple[set[str], bool]]:
    """Users whose semantic facts changed: the ids of the facts that no longer say what the
    profile may say (invalidated, rewritten), and whether a critical fact arrived (an
    allergy must reach the cached profile now, not 50 changes later)."""
    out: dict[str, tuple[set[str], bool]] = {}
    for e in events:
        if e.fact is not None and e.fact.kind == "semantic" and e.op in ("add", "update", "invalidate"):
            ids, critical = out.get(e.user_id, (set(), False))
            rewritten = e.op == "update" and e.previous is not None and e.previous.text != e.fact.text
            if e.op == "invalidate" or rewritten:
                ids.add(e.fact_id)
            critical = critical or (e.op == "add" and e.fact.is_valid and e.fact.importance >= CRITICAL_IMPORTANCE)
            out[e.user_id] = (ids, critical)
    return out


def _fact(row: FactRow) -> Fact:
    fact = Fact.model_validate_json(row.data)
    if row.access_count:
        fact.access_count = row.access_count
        fact.last_accessed_at = as_utc(row.last_accessed_at) if row.last_accessed_at else None
    return fact


def erased_id(user_id: str) -> str:
    """What the journal keeps of an erased user: a hash, so the tombstone holds no personal text."""
    return "erased:" + hashlib.sha256(user_id.encode()).hexdigest()[:24]


def _profile(row: ProfileRow) -> Profile:
    return Profile(user_id=row.user_id, epoch=row.epoch, text=row.text, fact_ids=json.loads(row.fact_ids),
                   baked_at=row.baked_at, changes_since=row.changes_since, stale=row.stale)


def _event(row: EventRow) -> FactEvent:
    return FactEvent.model_validate_json(row.data).model_copy(update={"seq": row.seq})



def _key_bytes(user_id: str, stored: str) -> bytes:
    try:
        key = bytes.fromhex(stored)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise IndexCorrupted(f"the sealing key of user {user_id!r} is damaged (not 64 hex digits): their facts cannot be "
                             "read or sealed in the embedded index; run `tiermem doctor --repair` to make a new key and "
                             "rebuild the index from the journal")
    return key
