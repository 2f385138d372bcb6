"""SQL tables of the session tier (tier 2). Migrations in `_migrations.py` create them.

Facts and journal rows keep the full pydantic value as JSON in `data`, with the columns
that queries filter on beside it, so adding a field to `Fact` needs no ALTER TABLE.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def table_of(row: type[SQLModel]) -> Table:
    """A row class's SQLAlchemy `Table`, for Core statements (SQLModel sets `__table__` when
    the class is made; its type stubs do not say so: the one ignore for it is here)."""
    return row.__table__  # type: ignore[attr-defined]


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "tm_schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime


class MetaRow(SQLModel, table=True):
    __tablename__ = "tm_meta"
    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_column=Column(Text, nullable=False))


class UserKeyRow(SQLModel, table=True):
    """A user's key for the payloads the embedded index keeps of them (sealed with it): it
    is deleted with the user's rows, which leaves those payloads unreadable wherever the
    index's files still hold them."""

    __tablename__ = "tm_user_keys"
    user_id: str = Field(primary_key=True, max_length=256)
    key: str = Field(max_length=64)  # 32 bytes, hex


class TurnRow(SQLModel, table=True):
    __tablename__ = "tm_turns"
    __table_args__ = (
        UniqueConstraint("user_id", "session_id", "seq", name="uq_turn_seq"),
        Index("ix_turn_session", "user_id", "session_id", "seq"),
    )
    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(index=True, max_length=256)
    session_id: str = Field(max_length=256)
    seq: int
    role: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=256)
    content: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="text", max_length=16)
    created_at: datetime
    utc_offset: int | None = None  # minutes east of UTC of the caller's `at`, when it was aware
    token_count: int = 0
    external_id: str | None = Field(default=None, max_length=256)
    # Caller metadata of add(), carried onto the facts extracted from the turn (JSON).
    meta: str | None = Field(default=None, sa_column=Column("meta", Text, nullable=True))
    # Spans of `content` whose facts were forgotten (JSON): extraction never sees them again.
    forgotten: str | None = Field(default=None, sa_column=Column("forgotten", Text, nullable=True))
    # Phase 2 of add() (extract, reconcile, index) has committed for this turn. Turns committed
    # by phase 1 wait here with False, so a crash between the phases loses nothing.
    extracted: bool = True


class SessionSeqRow(SQLModel, table=True):
    """The last turn number of each conversation. Allocating numbers is one atomic upsert,
    so concurrent writers (processes, threads) never collide on (user, session, seq)."""

    __tablename__ = "tm_session_seq"
    user_id: str = Field(primary_key=True, max_length=256)
    session_id: str = Field(primary_key=True, max_length=256)
    last_seq: int = 0


class ExtractionFailureRow(SQLModel, table=True):
    """A batch whose phase 2 failed: what went wrong and how often. Its turns stay pending
    (extracted=False) and are retried; the row goes when they are extracted."""

    __tablename__ = "tm_extraction_failures"
    batch_key: str = Field(primary_key=True, max_length=64)  # the id of the batch's first turn
    user_id: str = Field(index=True, max_length=256)
    turn_ids: str = Field(sa_column=Column(Text, nullable=False))
    error: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = 0
    updated_at: datetime


class FactRow(SQLModel, table=True):
    __tablename__ = "tm_facts"
    __table_args__ = (
        Index("ix_fact_key", "user_id", "subject", "attribute"),
        Index("ix_fact_hash", "user_id", "norm_hash"),
    )
    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(index=True, max_length=256)
    kind: str = Field(max_length=16)
    subject: str = Field(max_length=256)
    attribute: str | None = Field(default=None, max_length=256)
    norm_hash: str = Field(max_length=64)
    valid: bool = True
    created_at: datetime
    # Access stats change on every read that pages a fact in: columns, so that recording
    # them is one UPDATE rather than a JSON rewrite per fact.
    access_count: int = 0
    last_accessed_at: datetime | None = None
    data: str = Field(sa_column=Column(Text, nullable=False))


class EventRow(SQLModel, table=True):
    __tablename__ = "tm_fact_events"
    __table_args__ = {"sqlite_autoincrement": True}  # a journal seq is never reused (erasure deletes rows)
    seq: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True, max_length=256)
    fact_id: str = Field(index=True, max_length=64)
    op: str = Field(max_length=16)
    at: datetime
    data: str = Field(sa_column=Column(Text, nullable=False))


class SummaryRow(SQLModel, table=True):
    __tablename__ = "tm_summaries"
    __table_args__ = (Index("ix_summary_session", "user_id", "session_id", "covers_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=256)
    session_id: str = Field(max_length=256)
    covers_seq: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class ProfileRow(SQLModel, table=True):
    __tablename__ = "tm_profiles"
    user_id: str = Field(primary_key=True, max_length=256)
    epoch: int = 0
    text: str = Field(sa_column=Column(Text, nullable=False))
    fact_ids: str = Field(sa_column=Column(Text, nullable=False))
    baked_at: datetime
    changes_since: int = 0
    stale: bool = False


class UsageRow(SQLModel, table=True):
    """One model call: its tokens as the API reported them (input is the uncached part),
    the cache split, who it was for and how it ended. Priced when read, from the model table."""

    __tablename__ = "tm_usage"
    __table_args__ = (Index("ix_usage_user", "user_id", "session_id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    user_id: str | None = Field(default=None, max_length=256)
    session_id: str | None = Field(default=None, max_length=256)
    purpose: str = Field(max_length=32)
    model: str = Field(max_length=128)
    input_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    output_tokens: int = 0
    attempts: int = 1
    outcome: str = Field(default="ok", max_length=64)
    service_tier: str | None = Field(default=None, max_length=32)
    request_id: str | None = Field(default=None, max_length=128)


class MemoryFileRow(SQLModel, table=True):
    """A file of Claude's memory tool: its path under /memories, its text, and the fact that
    makes it searchable."""

    __tablename__ = "tm_memory_files"
    user_id: str = Field(primary_key=True, max_length=256)
    path: str = Field(primary_key=True, max_length=1024)
    content: str = Field(sa_column=Column(Text, nullable=False))
    fact_id: str | None = Field(default=None, max_length=64)
    updated_at: datetime
    version: int = 1


class StoreItemRow(SQLModel, table=True):
    """An item of a LangGraph store (`tiermem.adapters.langgraph`): a JSON document under a
    namespace (labels joined with "."; a label cannot contain one) and a key.

    `index_fields` are the field paths embedded for it (JSON list; NULL: not indexed) and
    `embedded` says whether its vectors reached the index: an item written but not yet
    embedded (a crash between the two) is embedded again when the store opens. `owner` is the
    user the writer declared it belongs to (NULL: nobody's): what `forget_user` erases.
    """

    __tablename__ = "tm_store_items"
    __table_args__ = (Index("ix_store_items_updated", "updated_at"), Index("ix_store_items_expires", "expires_at"))
    namespace: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    ttl_minutes: float | None = None
    index_fields: str | None = Field(default=None, sa_column=Column(Text))
    embedded: bool = True
    owner: str | None = Field(default=None, sa_column=Column(Text))  # the user it belongs to (forget_user); indexed by _v13


class RequestRow(SQLModel, table=True):
    """A served write by its idempotency key: a resent request (a client that lost the
    answer, a new owner after failover) gets the first answer instead of a second write.
    `result` is the answer as JSON (None while the write is under way, or if its owner died
    before answering: the turns it stored are found by `turn_ids`)."""

    __tablename__ = "tm_requests"
    __table_args__ = (Index("ix_requests_at", "created_at"),)
    key: str = Field(primary_key=True, max_length=128)
    method: str = Field(max_length=64)
    user_id: str | None = Field(default=None, index=True, max_length=256)  # erased with the user's data
    turn_ids: str | None = Field(default=None, sa_column=Column(Text))
    result: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
