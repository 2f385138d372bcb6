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
        have_turns = _existing(conn, TURNS.c.id, {r[1].id for r in records if r[0] == "turn"})
        fact_ids = {r[1].id for r in records if r[0] == "fact"}
        have_facts = _existing(conn, FACTS.c.id, fact_ids)
        turns: list[tuple[Turn, bool]] = []
        facts: list[Fact] = []
        events: list[FactEvent] = []
        for done, (kind, value, record) in enumerate(records):
            if kind == "turn":
                added = value.id not in have_turns
                if added:
                    have_turns.add(value.id)  # a file that repeats a turn stores it once
                    turns.append((value, bool(record.get("extracted", True))))
            elif kind == "summary":
                added = _import_summary(conn, value)
            elif kind == "fact":
                added = value.id not in have_facts
                if added:
                    facts.append(value)
            else:
                added = value.fact_id not in have_facts and value.fact_id in fact_ids
                if added:
                    events.append(value)
            plural = {"turn": "turns", "summary": "summaries", "fact": "facts", "event": "events"}[kind]
            counts[plural if added else f"{plural}_skipped"] += 1
            if progress is not None and (done % 200 == 0 or done + 1 == len(records)):
                progress(done + 1, len(records))
        _insert_turns(conn, turns)
        store._insert_events(conn, events)  # the journal, in its order, with new seqs
        # The journal upserts each fact as its last event left it; the exported snapshot is
        # the truth (access counts), so it is written last.
        if facts:
            upsert(conn, FACTS, ["id"], [_fact_row(f) for f in facts])
    return counts


def _existing(conn: Any, column: Any, ids: set[str]) -> set[str]:
    """Which of these ids the table already holds (in chunks: SQL caps bound parameters)."""
    found: set[str] = set()
    chunk = sorted(ids)
    for start in range(0, len(chunk), 5000):
        found.update(conn.execute(select(column).where(column.in_(chunk[start:start + 5000]))).scalars())
    return found


def _insert_turns(conn: Any, turns: list[tuple[Turn, bool]]) -> None:
    """Insert turns with their session numbers; a number the target already uses for another
    turn is replaced by the session's next one. The session counters are advanced past them."""
    from ._turns import _turn_values

    if not turns:
        return
    taken: dict[tuple[str, str], set[int]] = {}
    users = sorted({t.user_id for t, _ in turns})
    for start in range(0, len(users), 5000):
        rows = conn.execute(select(TURNS.c.user_id, TURNS.c.session_id, TURNS.c.seq)
                            .where(TURNS.c.user_id.in_(users[start:start + 5000])))
        for user_id, session_id, seq in rows:
            taken.setdefault((user_id, session_id), set()).add(seq)
    values = []
    touched: set[tuple[str, str]] = set()
    for turn, extracted in turns:
        touched.add((turn.user_id, turn.session_id))
        used = taken.setdefault((turn.user_id, turn.session_id), set())
        if turn.seq in used:
            turn = turn.model_copy(update={"seq": max(used) + 1})
        used.add(turn.seq)
        values.append(_turn_values(turn, extracted))
    conn.execute(TURNS.insert(), values)
    highest = func.max if conn.dialect.name == "sqlite" else func.greatest  # SQLite's max() of two values
    for user_id, session_id in touched:
        last = max(taken[(user_id, session_id)])
        conn.execute(insert_for(conn, SEQS).values(user_id=user_id, session_id=session_id, last_seq=last)
                     .on_conflict_do_update(index_elements=["user_id", "session_id"],
                                            set_={"last_seq": highest(SEQS.c.last_seq, last)}))


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
