"""The portable export: a home's users as JSON lines, and their import into another home.

Format (version 2), one JSON object per line:

    {"type": "header", "format": "tiermem-export", "version": 2, "exported_at": ISO, "tiermem": VERSION,
     "users": [user ids]}
    {"type": "turn", "data": Turn, "extracted": bool}        every turn, in each session's order
    {"type": "summary", "data": Summary}                     every rolling summary
    {"type": "fact", "data": Fact}                           every fact as it is now, valid or not
    {"type": "event", "data": FactEvent}                     the journal, oldest first (no seq)
    {"type": "file", "user_id": str, "data": MemoryFile}     memory-tool files
    {"type": "item", "data": {...}}                          item-tier documents (a LangGraph store's)
    {"type": "end", "records": N, "counts": {type: n}, "sha256": HEX}

The last line says how many records came before it, of which types, and the SHA-256 of
every line before it (header included, each with its newline): an export cut short (a
killed `tiermem export -o`) has no such line, or one that does not match, and is refused
whole. Version 1 files (no trailer) still import, with a warning that nothing can tell
whether they are complete.

Records are grouped by user. Ids are preserved (turns, facts; a turn keeps its number in
its session unless the target already holds another turn there). Import is idempotent:
turns, facts, files and items already present (by id, path, namespace and key) and
summaries already present are skipped, with their journal rows. Everything of one import
is written in one transaction, after every line has been validated, so a bad file changes
nothing. The long-term index is not in the file: it is rebuilt from the journal when the
target home is next opened with an embedder (items are embedded again by their store).
An item belongs to the user it was written for (its `owner`); a whole-home export carries
every item. Not included: model usage rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from .._errors import InvalidInput
from .._models import Fact, FactEvent, MemoryFile, Summary, Turn, as_utc
from .._text import norm_hash
from ._engine import insert_for, upsert
from ._tables import EventRow, FactRow, MemoryFileRow, SessionSeqRow, StoreItemRow, SummaryRow, TurnRow, table_of

if TYPE_CHECKING:
    from ._store import SessionStore

TURNS: Any = table_of(TurnRow)
SUMMARIES: Any = table_of(SummaryRow)
FACTS: Any = table_of(FactRow)
EVENTS: Any = table_of(EventRow)
SEQS: Any = table_of(SessionSeqRow)
FILES: Any = table_of(MemoryFileRow)
ITEMS: Any = table_of(StoreItemRow)
logger = logging.getLogger("tiermem")


class StoredItem(BaseModel):
    """An item-tier document as the export carries it."""

    model_config = ConfigDict(extra="forbid")
    namespace: str
    key: str
    value: str  # the JSON document, as stored
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    ttl_minutes: float | None = None
    index_fields: str | None = None
    embedded: bool = False
    owner: str | None = None  # the user it belongs to (absent in exports of earlier versions)

FORMAT = "tiermem-export"
VERSION = 2
Progress = Callable[[int, int], None]


def export_lines(store: SessionStore, user_ids: Iterable[str], *, tiermem_version: str = "", every_item: bool = False,
                 progress: Progress | None = None) -> Iterator[str]:
    """The export of these users as lines (each ending in a newline), header first and the
    trailer last; `every_item`: all items, not only those of these users."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    for record in export_records(store, user_ids, tiermem_version=tiermem_version, every_item=every_item,
                                 progress=progress):
        line = json.dumps(record, ensure_ascii=False) + "\n"
        digest.update(line.encode("utf-8"))
        if record["type"] != "header":
            counts[record["type"]] = counts.get(record["type"], 0) + 1
        yield line
    yield json.dumps({"type": "end", "records": sum(counts.values()), "counts": counts, "sha256": digest.hexdigest()}) + "\n"


def export_records(store: SessionStore, user_ids: Iterable[str], *, tiermem_version: str = "", every_item: bool = False,
                   progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """The export's records (see the module docstring), without the trailer."""
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
            for file in store.files(user):
                yield {"type": "file", "user_id": user, "data": file.model_dump(mode="json")}
            if progress is not None:
                progress(done + 1, len(users))
        wanted = set(users)
        for row in conn.execute(select(ITEMS).order_by(ITEMS.c.namespace, ITEMS.c.key)).all():
            if every_item or row.owner in wanted:
                yield {"type": "item", "data": StoredItem.model_validate(dict(row._mapping)).model_dump(mode="json")}


def read_export(lines: Iterable[str]) -> list[tuple[str, Any, dict[str, Any]]]:
    """Parse and validate an export: (type, model, record) per line after the header.

    Raises:
        InvalidInput: not an export, a newer version, or a malformed line (its number named).
    """
    models: dict[str, Any] = {"turn": Turn, "summary": Summary, "fact": Fact, "event": FactEvent, "file": MemoryFile,
                              "item": StoredItem}
    out: list[tuple[str, Any, dict[str, Any]]] = []
    header = None
    trailer = None
    digest = hashlib.sha256()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if trailer is not None:
            raise InvalidInput(f"line {number} comes after the export's end record: two exports in one file?")
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
            digest.update(line.encode("utf-8") if line.endswith("\n") else (line + "\n").encode("utf-8"))
            continue
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "end" and header["version"] >= 2:
            trailer = record
            continue
        digest.update(line.encode("utf-8") if line.endswith("\n") else (line + "\n").encode("utf-8"))
        if kind not in models:
            raise InvalidInput(f"line {number}: unknown record type {kind!r} "
                               "(expected turn, summary, fact, event, file, item or end)")
        try:
            value = models[kind].model_validate(record.get("data"))
        except ValueError as exc:
            raise InvalidInput(f"line {number}: invalid {kind}: {exc}") from None
        out.append((kind, value, record))
    if header is None:
        raise InvalidInput("the file is empty: not a tiermem export")
    if header["version"] >= 2:
        _check_complete(trailer, out, digest.hexdigest())
    else:
        logger.warning("tiermem: a version 1 export has no end record: nothing tells whether it is complete")
    return out


def _check_complete(trailer: dict[str, Any] | None, records: list[tuple[str, Any, dict[str, Any]]], sha256: str) -> None:
    """A version 2 export ends with its end record, which must match what came before it."""
    if trailer is None:
        raise InvalidInput(f"the export is incomplete: it ends after {len(records)} records without its end record "
                           "(a cut file, e.g. a killed `tiermem export -o`); nothing was imported. Export it again.")
    counts: dict[str, int] = {}
    for kind, _, _ in records:
        counts[kind] = counts.get(kind, 0) + 1
    if trailer.get("records") != len(records) or trailer.get("counts") != counts or trailer.get("sha256") != sha256:
        raise InvalidInput(f"the export does not match its end record ({len(records)} records read, "
                           f"{trailer.get('records')} announced, checksum {'ok' if trailer.get('sha256') == sha256 else 'wrong'}):"
                           " it was changed or cut and pieced together; nothing was imported")


def import_records(store: SessionStore, records: list[tuple[str, Any, dict[str, Any]]],
                   progress: Progress | None = None) -> dict[str, int]:
    """Write validated records (see `read_export`) in one transaction; returns what was
    added and what was already there, per type."""
    counts = {f"{k}{s}": 0 for k in ("turns", "summaries", "facts", "events", "files", "items") for s in ("", "_skipped")}
    repeats = _repeats(store, [r[1] for r in records if r[0] == "fact"])
    counts["facts_repeated"] = len(repeats)
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
                added = value.id not in have_facts and value.id not in repeats
                if added:
                    facts.append(value)
            elif kind == "file":
                added = _import_file(conn, str(record.get("user_id")), value)
            elif kind == "item":
                added = _import_item(conn, value)
            else:
                added = value.fact_id not in have_facts and value.fact_id in fact_ids and value.fact_id not in repeats
                if added:
                    events.append(value)
            plural = {"turn": "turns", "summary": "summaries", "fact": "facts", "event": "events", "file": "files",
                      "item": "items"}[kind]
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


def _repeats(store: SessionStore, facts: list[Fact]) -> set[str]:
    """Imported valid facts whose user already has the same statement under another id (a
    user imported into a home that has them, Q12): kept once, as the target has it."""
    out: set[str] = set()
    by_user: dict[str, list[Fact]] = {}
    for fact in facts:
        if fact.is_valid:
            by_user.setdefault(fact.user_id, []).append(fact)
    for user_id, mine in by_user.items():
        have = store.facts_by_hash(user_id, (norm_hash(f.text) for f in mine))
        out |= {f.id for f in mine if norm_hash(f.text) in have and have[norm_hash(f.text)].id != f.id}
    return out


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


def _import_file(conn: Any, user_id: str, file: MemoryFile) -> bool:
    exists = conn.execute(select(FILES.c.path).where(FILES.c.user_id == user_id, FILES.c.path == file.path)).first()
    if exists is not None:
        return False
    conn.execute(FILES.insert(), [{"user_id": user_id, "path": file.path, "content": file.content, "fact_id": file.fact_id,
                                   "version": file.version, "updated_at": as_utc(file.updated_at)}])
    return True


def _import_item(conn: Any, item: StoredItem) -> bool:
    exists = conn.execute(select(ITEMS.c.key).where(ITEMS.c.namespace == item.namespace, ITEMS.c.key == item.key)).first()
    if exists is not None:
        return False
    values = {**item.model_dump(), "embedded": not item.index_fields}  # its vectors are made again by its store
    for key in ("created_at", "updated_at", "expires_at"):
        values[key] = as_utc(values[key]) if values[key] is not None else None
    conn.execute(ITEMS.insert(), [values])
    return True


def _fact_row(fact: Fact) -> dict[str, Any]:
    from ._store import _fact_values

    return {**_fact_values(fact), "access_count": fact.access_count,
            "last_accessed_at": as_utc(fact.last_accessed_at) if fact.last_accessed_at else None}
