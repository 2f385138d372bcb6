"""The portable export: a home's users as JSON lines, and their import into another home.

Format (version 1), one JSON object per line:

    {"type": "header", "format": "tiermem-export", "version": 1, "exported_at": ISO, "tiermem": VERSION,
     "users": [user ids]}
    {"type": "turn", "data": Turn, "extracted": bool}        every turn, in each session's order
    {"type": "summary", "data": Summary}                     every rolling summary
    {"type": "fact", "data": Fact}                           every fact as it is now, valid or not
    {"type": "event", "data": FactEvent}                     the journal, oldest first (no seq)

Records are grouped by user. Ids are preserved (turns, facts; a turn keeps its number in
its session unless the target already holds another turn there). Import is idempotent:
turns and facts already present (by id) and summaries already present are skipped, with
their journal rows. Everything of one import is written in one transaction, after every
line has been validated, so a bad file changes nothing. The long-term index is not in the
file: it is rebuilt from the journal when the target home is next opened with an embedder.
Not included: the LangGraph store's items, Claude memory-tool files and model usage rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from .._errors import InvalidInput
from .._models import Fact, FactEvent, Summary, Turn, as_utc
from ._engine import insert_for, upsert
from ._tables import EventRow, FactRow, SessionSeqRow, SummaryRow, TurnRow

if TYPE_CHECKING:
    from ._store import SessionStore

TURNS: Any = TurnRow.__table__  # type: ignore[attr-defined]
SUMMARIES: Any = SummaryRow.__table__  # type: ignore[attr-defined]
FACTS: Any = FactRow.__table__  # type: ignore[attr-defined]
EVENTS: Any = EventRow.__table__  # type: ignore[attr-defined]
SEQS: Any = SessionSeqRow.__table__  # type: ignore[attr-defined]

FORMAT = "tiermem-export"
VERSION = 1
Progress = Callable[[int, int], None]


def export_records(store: SessionStore, user_ids: Iterable[str], *, tiermem_version: str = "",
                   progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """The export of these users, header first (see the module docstring)."""
    from ._store import _event, _fact
    from ._turns import _turn

    users = list(user_ids)
    yield {"type": "header", "format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
           "tiermem": tiermem_version, "users": users}
    with store.engine.connect() as conn:
        for done, user in enumerate(users):
            for row in conn.execute(select(TURNS).where(TURNS.c.user_id == user)
                                    .order_by(TURNS.c.session_id, TURNS.c.seq)).all():
                turn = _turn(TurnRow.model_validate(row._mapping))
                yield {"type": "turn", "data": turn.model_dump(mode="json"), "extracted": bool(row.extracted)}
            for row in conn.execute(select(SUMMARIES).where(SUMMARIES.c.user_id == user)
                                    .order_by(SUMMARIES.c.session_id, SUMMARIES.c.covers_seq, SUMMARIES.c.id)).all():
                summary = Summary(user_id=row.user_id, session_id=row.session_id, covers_seq=row.covers_seq, text=row.text,
                                  created_at=row.created_at)
                yield {"type": "summary", "data": summary.model_dump(mode="json")}
            for row in conn.execute(select(FACTS).where(FACTS.c.user_id == user)
                                    .order_by(FACTS.c.created_at, FACTS.c.id)).all():
                yield {"type": "fact", "data": _fact(FactRow.model_validate(row._mapping)).model_dump(mode="json")}
            for row in conn.execute(select(EVENTS).where(EVENTS.c.user_id == user).order_by(EVENTS.c.seq)).all():
                if row.op in ("forget", "forget_user"):
                    continue  # tombstones of erased data: nothing to carry over
                event = _event(EventRow.model_validate(row._mapping))
                yield {"type": "event", "data": event.model_dump(mode="json", exclude={"seq"})}
            if progress is not None:
                progress(done + 1, len(users))


def read_export(lines: Iterable[str]) -> list[tuple[str, Any, dict[str, Any]]]:
    """Parse and validate an export: (type, model, record) per line after the header.

    Raises:
        InvalidInput: not an export, a newer version, or a malformed line (its number named).
    """
    models: dict[str, Any] = {"turn": Turn, "summary": Summary, "fact": Fact, "event": FactEvent}
    out: list[tuple[str, Any, dict[str, Any]]] = []
    header = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if header is None:
                raise InvalidInput("not a tiermem export: its first line is not JSON (make one with `tiermem export`)") from None
            raise InvalidInput(f"line {number} is not JSON: {exc}") from None
        if header is None:
            if not isinstance(record, dict) or record.get("type") != "header" or record.get("format") != FORMAT:
                raise InvalidInput("not a tiermem export: the first line must be its header "
                                   f"(make one with `tiermem export`); got {line[:80]!r}")
            if not isinstance(record.get("version"), int) or record["version"] > VERSION:
                raise InvalidInput(f"export format version {record.get('version')!r} is newer than this tiermem reads "
                                   f"({VERSION}); upgrade tiermem")
            header = record
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        if kind not in models:
            raise InvalidInput(f"line {number}: unknown record type {kind!r} (expected turn, summary, fact or event)")
        try:
            value = models[kind].model_validate(record.get("data"))
        except ValueError as exc:
            raise InvalidInput(f"line {number}: invalid {kind}: {exc}") from None
        out.append((kind, value, record))
    if header is None:
        raise InvalidInput("the file is empty: not a tiermem export")
    return out


def import_records(store: SessionStore, records: list[tuple[str, Any, dict[str, Any]]],
                   progress: Progress | None = None) -> dict[str, int]:
    """Write validated records (see `read_export`) in one transaction; returns what was
    added and what was already there, per type."""
    counts = {f"{k}{s}": 0 for k in ("turns", "summaries", "facts", "events") for s in ("", "_skipped")}
    with store.writing() as conn:
        turn_ids = {r[1].id for r in records if r[0] == "turn"}
        have_turns = set(conn.execute(select(TURNS.c.id).where(TURNS.c.id.in_(turn_ids))).scalars()) if turn_ids else set()
        fact_ids = {r[1].id for r in records if r[0] == "fact"}
        have_facts = set(conn.execute(select(FACTS.c.id).where(FACTS.c.id.in_(fact_ids))).scalars()) if fact_ids else set()
        events: list[FactEvent] = []
        for done, (kind, value, record) in enumerate(records):
            if kind == "turn":
                added = _import_turn(conn, value, bool(record.get("extracted", True)), have_turns)
            elif kind == "summary":
                added = _import_summary(conn, value)
            elif kind == "fact":
                added = value.id not in have_facts
                if added:
                    row = _fact_row(value)
                    upsert(conn, FACTS, ["id"], [row])
            else:
                added = value.fact_id not in have_facts and value.fact_id in fact_ids
                if added:
                    events.append(value)
            plural = {"turn": "turns", "summary": "summaries", "fact": "facts", "event": "events"}[kind]
            counts[plural if added else f"{plural}_skipped"] += 1
            if progress is not None and (done % 200 == 0 or done + 1 == len(records)):
                progress(done + 1, len(records))
        store._insert_events(conn, events)  # the journal, in its order, with new seqs
        # The journal's fact rows were upserted from each event; the exported snapshot is the
        # truth for the rest (access counts, the order of ties).
        snapshot = [_fact_row(r[1]) for r in records if r[0] == "fact" and r[1].id not in have_facts]
        if snapshot:
            upsert(conn, FACTS, ["id"], snapshot)
    return counts


def _import_turn(conn: Any, turn: Turn, extracted: bool, have: set[str]) -> bool:
    from ._turns import _turn_values

    if turn.id in have:
        return False
    taken = conn.execute(select(TURNS.c.id).where(TURNS.c.user_id == turn.user_id, TURNS.c.session_id == turn.session_id,
                                                  TURNS.c.seq == turn.seq)).first()
    if taken is not None:  # the target holds another turn at this number: append instead
        last = conn.execute(select(func.max(TURNS.c.seq)).where(TURNS.c.user_id == turn.user_id,
                                                                TURNS.c.session_id == turn.session_id)).scalar()
        turn = turn.model_copy(update={"seq": int(last or 0) + 1})
    conn.execute(TURNS.insert(), [_turn_values(turn, extracted)])
    table = SEQS
    conn.execute(insert_for(conn, table).values(user_id=turn.user_id, session_id=turn.session_id, last_seq=turn.seq)
                 .on_conflict_do_update(index_elements=["user_id", "session_id"],
                                        set_={"last_seq": func.max(table.c.last_seq, turn.seq)}
                                        if conn.dialect.name == "sqlite" else
                                        {"last_seq": func.greatest(table.c.last_seq, turn.seq)}))
    have.add(turn.id)
    return True


def _import_summary(conn: Any, summary: Summary) -> bool:
    exists = conn.execute(select(SUMMARIES.c.id).where(SUMMARIES.c.user_id == summary.user_id,
                                                      SUMMARIES.c.session_id == summary.session_id,
                                                      SUMMARIES.c.covers_seq == summary.covers_seq,
                                                      SUMMARIES.c.text == summary.text)).first()
    if exists is not None:
        return False
    conn.execute(SUMMARIES.insert(), [{**summary.model_dump(), "created_at": as_utc(summary.created_at)}])
    return True


def _fact_row(fact: Fact) -> dict[str, Any]:
    from ._store import _fact_values

    return {**_fact_values(fact), "access_count": fact.access_count,
            "last_accessed_at": as_utc(fact.last_accessed_at) if fact.last_accessed_at else None}
