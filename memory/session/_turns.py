"""Turns, their extraction state and the rolling summaries: the conversation half of the
session tier (mixed into `SessionStore`).

add() has two phases. Phase 1 (`append_turns`) commits the turns with `extracted=False`;
phase 2 (`commit_extraction`) commits the fact events and flips the turns to extracted in
ONE transaction, after claiming them: a batch whose turns another worker or process already
extracted commits nothing. Turns left pending by a crash are found by `pending_turns()`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, func, insert, literal, or_, update
from sqlalchemy import select as select_columns  # sqlmodel's select types at most 4 columns
from sqlmodel import Session, col, select

from .._models import ExtractionFailure, FactEvent, Summary, Turn, as_utc
from .._sentences import clause_spans
from .._text import content_tokens
from ._engine import insert_for, upsert
from ._tables import ExtractionFailureRow, SessionSeqRow, SummaryRow, TurnRow, table_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


PASSAGE_SOURCES = 3  # the source turns of a fact its contextual vector reads (a repeated fact has many)


class AlreadyExtracted(Exception):
    """Internal: another worker committed phase 2 for some of these turns first."""


class _AlreadyRun(Exception):
    """Internal: a served request's key was recorded before: its write rolls back."""


class TurnLog:
    engine: Engine
    # Writers of this process (callers, the background worker) queue on a lock of their own
    # rather than on SQLite's busy handler, which polls with sleeps of up to 100 ms.
    _write_gate: threading.RLock

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A write transaction (committed on exit), after this process's other writers."""
        with self._write_gate, self.engine.begin() as conn:
            yield conn

    def _insert_events(self, conn: Any, events: Sequence[FactEvent]) -> list[FactEvent]:
        raise NotImplementedError

    # -- phase 1 ----------------------------------------------------------------------------
    def append_turns(self, turns: Sequence[Turn], *, request_key: str | None = None) -> list[Turn] | None:
        """Commit turns, numbered in their session, waiting for phase 2. Returns them numbered.
        With `request_key` the key is recorded in the same transaction; None when it was
        there already (the request was run before: nothing is stored twice)."""
        try:
            with self.writing() as conn:
                stored = self._insert_turns(conn, turns, extracted=False)
                if request_key is not None and not self.claim_request(  # type: ignore[attr-defined]
                        conn, request_key, "add", stored[0].created_at, user_id=stored[0].user_id,
                        turn_ids=[t.id for t in stored]):
                    raise _AlreadyRun  # rolls the turns back: the request was run before
                return stored
        except _AlreadyRun:
            return None

    def get_turns(self, turn_ids: Sequence[str]) -> list[Turn]:
        if not turn_ids:
            return []
        with Session(self.engine) as s:
            rows = s.exec(select(TurnRow).where(col(TurnRow.id).in_(list(turn_ids)))).all()
        order = {turn_id: i for i, turn_id in enumerate(turn_ids)}
        return sorted((_turn(r) for r in rows), key=lambda t: order[t.id])

    def _insert_turns(self, conn: Any, turns: Sequence[Turn], *, extracted: bool) -> list[Turn]:
        if not turns:
            return []
        counts: dict[tuple[str, str], int] = {}
        for turn in turns:
            key = (turn.user_id, turn.session_id)
            counts[key] = counts.get(key, 0) + 1
        next_seq = {key: self._allocate(conn, key, n) for key, n in counts.items()}
        out: list[Turn] = []
        for turn in turns:
            key = (turn.user_id, turn.session_id)
            out.append(turn.model_copy(update={"seq": next_seq[key]}))
            next_seq[key] += 1
        conn.execute(insert(table_of(TurnRow)), [_turn_values(t, extracted) for t in out])
        return out

    def _allocate(self, conn: Any, key: tuple[str, str], n: int) -> int:
        """Reserve n turn numbers for a session; returns the first. One atomic upsert, so two
        writers never get the same numbers (it also takes the write lock first on SQLite)."""
        table = table_of(SessionSeqRow)
        statement = (
            insert_for(conn, table)
            .values(user_id=key[0], session_id=key[1], last_seq=n)
            .on_conflict_do_update(index_elements=["user_id", "session_id"], set_={"last_seq": table.c.last_seq + n})
            .returning(table.c.last_seq)
        )
        last = int(conn.execute(statement).scalar_one())
        return last - n + 1

    # -- phase 2 ----------------------------------------------------------------------------
    def commit_extraction(self, turn_ids: Sequence[str], events: Sequence[FactEvent]) -> list[FactEvent] | None:
        """Mark turns extracted and journal what extraction made of them, atomically.

        Returns the events with journal seqs, or None when some of the turns were already
        extracted (or erased) by someone else: then nothing is written.
        """
        table = table_of(TurnRow)
        try:
            with self.writing() as conn:
                # The claim is the first statement, so it takes the write lock before any read.
                claimed = conn.execute(
                    update(table).where(table.c.id.in_(list(turn_ids)), table.c.extracted.is_(False)).values(extracted=True)
                ).rowcount
                if claimed != len(set(turn_ids)):
                    raise AlreadyExtracted
                stored = self._insert_events(conn, events)
                conn.execute(delete(ExtractionFailureRow).where(col(ExtractionFailureRow.batch_key).in_(list(turn_ids))))
                return stored
        except AlreadyExtracted:
            return None

    def count_pending(self, user_id: str | None = None) -> int:
        query = select(func.count()).select_from(TurnRow).where(col(TurnRow.extracted).is_(False))
        if user_id is not None:
            query = query.where(TurnRow.user_id == user_id)
        with Session(self.engine) as s:
            return int(s.exec(query).one())

    def pending_turns(self, user_id: str | None = None, limit: int | None = None) -> list[Turn]:
        """Committed turns whose phase 2 has not committed, in the order they were said."""
        query = select(TurnRow).where(col(TurnRow.extracted).is_(False))
        if user_id is not None:
            query = query.where(TurnRow.user_id == user_id)
        query = query.order_by(col(TurnRow.user_id), col(TurnRow.created_at), col(TurnRow.session_id), col(TurnRow.seq))
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return [_turn(r) for r in s.exec(query).all()]

    def record_failure(self, user_id: str, turn_ids: Sequence[str], error: str, at: datetime) -> int:
        """Note that phase 2 failed for a batch; returns how many times it has failed."""
        key = turn_ids[0]
        with self.writing() as conn:
            before = conn.execute(
                select(ExtractionFailureRow.attempts).where(col(ExtractionFailureRow.batch_key) == key)
            ).scalar()
            attempts = int(before or 0) + 1
            row = {"batch_key": key, "user_id": user_id, "turn_ids": json.dumps(list(turn_ids)), "error": error[:2000],
                   "attempts": attempts, "updated_at": as_utc(at)}
            upsert(conn, table_of(ExtractionFailureRow), ["batch_key"], [row])
        return attempts

    def failures(self, user_id: str | None = None) -> list[ExtractionFailure]:
        query = select(ExtractionFailureRow).order_by(col(ExtractionFailureRow.updated_at))
        if user_id is not None:
            query = query.where(ExtractionFailureRow.user_id == user_id)
        with Session(self.engine) as s:
            rows = s.exec(query).all()
        return [ExtractionFailure(batch_key=r.batch_key, user_id=r.user_id, turn_ids=json.loads(r.turn_ids),
                                  error=r.error, attempts=r.attempts, updated_at=r.updated_at) for r in rows]

    # -- reading turns ----------------------------------------------------------------------
    def turns(
        self, user_id: str, session_id: str | None = None, *, after_seq: int = 0, limit: int | None = None,
        offset: int = 0, newest_first: bool = False,
    ) -> list[Turn]:
        """A session's turns in turn order (the order key of the summary's cursor), or all of
        a user's turns by time; `newest_first` reverses either order."""
        query = select(TurnRow).where(TurnRow.user_id == user_id)
        if session_id is not None:
            query = query.where(TurnRow.session_id == session_id, col(TurnRow.seq) > after_seq)
            order: list[Any] = [col(TurnRow.seq)]
        else:
            order = [col(TurnRow.created_at), col(TurnRow.session_id), col(TurnRow.seq)]
        query = query.order_by(*(c.desc() for c in order) if newest_first else order)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return [_turn(r) for r in s.exec(query).all()]

    def turns_by_ref(self, user_id: str, refs: Sequence[str]) -> list[Turn]:
        """A user's turns named by id or by the caller's message id (`Turn.ref`), in the order
        of `refs`; refs that name nothing are left out."""
        table = table_of(TurnRow)
        wanted = list(dict.fromkeys(refs))
        by_ref: dict[str, Turn] = {}
        with Session(self.engine) as s:
            for start in range(0, len(wanted), 400):
                part = wanted[start:start + 400]
                hit = _named_by(table, part)
                for row in s.exec(select(TurnRow).where(TurnRow.user_id == user_id, hit)).all():
                    turn = _turn(row)
                    by_ref[turn.ref] = turn
        return [by_ref[r] for r in wanted if r in by_ref]

    def assistant_turns(self, user_id: str, *, before: datetime | None = None, limit: int,
                        ends: int | None = None) -> list[Turn]:
        """A user's assistant text turns, newest first (at or before `before`), forgotten
        statements left out: what recall of "what you told me" reads. Only the columns it
        needs are read, and Turns are built without validation: this runs on a search.
        `ends`: of a longer answer only its first and last `ends` characters are read (one
        with statements forgotten in it is read whole, to cut them where they are)."""
        t = table_of(TurnRow)
        content: Any = t.c.content
        if ends is not None:
            whole = or_(func.length(t.c.content) <= 2 * ends, t.c.forgotten.is_not(None) & (t.c.forgotten != "[]"))
            content = case((whole, t.c.content), else_=func.substr(t.c.content, 1, ends) + literal(" \n\n")
                           + func.substr(t.c.content, func.length(t.c.content) - ends + 1, ends))
        query = (select_columns(t.c.id, t.c.external_id, t.c.session_id, t.c.seq, content, t.c.forgotten, t.c.created_at)
                 .where(t.c.user_id == user_id, t.c.role == "assistant", t.c.kind == "text")
                 .order_by(t.c.created_at.desc(), t.c.session_id.desc(), t.c.seq.desc()).limit(limit))
        if before is not None:
            query = query.where(t.c.created_at <= as_utc(before))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for turn_id, external_id, session_id, seq, content, forgotten, created_at in rows:
            turn = Turn.model_construct(id=turn_id, external_id=external_id, user_id=user_id, session_id=session_id,
                                        seq=seq, role="assistant", name=None, content=content, kind="text",
                                        created_at=as_utc(created_at), forgotten=json.loads(forgotten) if forgotten else [])
            out.append(turn.extractable if turn.forgotten else turn)
        return out

    def redact_turns(self, user_id: str, refs: Sequence[str]) -> list[str]:
        """Delete a user's turns by provenance ref (the caller's message id, else ours), and
        the summaries of their sessions (rebuilt without them on the write path). Returns
        the sessions touched."""
        table = table_of(TurnRow)
        refs = list(refs)
        if not refs:
            return []
        with self.writing() as conn:
            match = table.c.user_id == user_id
            hit = _named_by(table, refs)
            sessions = sorted({r[0] for r in conn.execute(select(table.c.session_id).where(match, hit))})
            conn.execute(delete(table).where(match, hit))
            if sessions:
                conn.execute(delete(SummaryRow).where(col(SummaryRow.user_id) == user_id,
                                                      col(SummaryRow.session_id).in_(sessions)))
        return sessions

    def forget_in_turns(self, user_id: str, refs: Sequence[str], fact_text: str) -> int:
        """Mark, in each of a user's turns named by provenance ref, the statement a forgotten
        fact came from (the clause sharing most words with it), so that no extraction ever
        sees it again; the turn itself stays. Returns how many turns were marked."""
        table = table_of(TurnRow)
        refs = list(refs)
        if not refs:
            return 0
        wanted = set(content_tokens(fact_text))
        marked = 0
        with self.writing() as conn:
            hit = _named_by(table, refs)
            rows = conn.execute(select(table.c.id, table.c.content, table.c.forgotten)
                                .where(table.c.user_id == user_id, hit)).all()
            for turn_id, content, forgotten in rows:
                clauses = clause_spans(content)
                scores = [len(wanted & set(content_tokens(content[a:b]))) for a, b in clauses]
                best = max(scores, default=0)
                if not best:
                    continue
                # A clause with the words that join it to the next ('I am allergic to peanuts and'),
                # or to the one before when it is the last: what is left still reads as a sentence.
                hits = [(a, clauses[i + 1][0]) if i + 1 < len(clauses) else (clauses[i - 1][1] if i else a, b)
                        for i, ((a, b), score) in enumerate(zip(clauses, scores, strict=True)) if score == best]
                spans = sorted({*map(tuple, json.loads(forgotten or "[]")), *hits})
                conn.execute(update(table).where(table.c.id == turn_id).values(forgotten=json.dumps(spans)))
                marked += 1
        return marked

    def forget_quotes(self, user_id: str, needles: Sequence[str], *, skip: Sequence[str] = (), cut: bool) -> list[str]:
        """Where a user's turns (an assistant's echo above all) quote what an erased fact
        said — `needles`, its values ('qzpass5512', '4417') — the clause that quotes it is
        cut out of the turn's text (`cut`: the text leaves the database) or marked forgotten
        (no extraction, recall or history reads it again). `skip`: the refs of turns already
        dealt with. Returns the sessions whose turns changed (their summaries are dropped,
        to be rebuilt)."""
        needles = [n for n in dict.fromkeys(needles) if len(n) >= 3]
        if not needles:
            return []
        table = table_of(TurnRow)
        skipped = set(skip)
        sessions: set[str] = set()
        with self.writing() as conn:
            quoting = or_(*(table.c.content.contains(n, autoescape=True) for n in needles))
            rows = conn.execute(select_columns(table.c.id, table.c.external_id, table.c.session_id, table.c.content,
                                               table.c.forgotten).where(table.c.user_id == user_id, quoting)).all()
            for turn_id, external_id, session_id, content, forgotten in rows:
                if (external_id or turn_id) in skipped:
                    continue
                spans = [(a, b) for a, b in clause_spans(content) if any(n in content[a:b] for n in needles)]
                marked = [tuple(s) for s in json.loads(forgotten or "[]")]
                if cut:
                    text, marked = _cut(content, marked, spans)
                    values: dict[str, Any] = {"content": text, "forgotten": json.dumps(marked)}
                else:
                    values = {"forgotten": json.dumps(sorted({*marked, *spans}))}
                conn.execute(update(table).where(table.c.id == turn_id).values(**values))
                sessions.add(session_id)
            if sessions and cut:
                conn.execute(delete(SummaryRow).where(col(SummaryRow.user_id) == user_id,
                                                      col(SummaryRow.session_id).in_(sorted(sessions))))
        return sorted(sessions)

    def source_passages(self, facts: Sequence[Any]) -> list[list[str]]:
        """What each fact's contextual vector reads besides the fact: the text of each of
        its first source turns and of the turn before it in its session ("speaker: text",
        forgotten statements left out). A fact with no stored source turn gets []."""
        table = table_of(TurnRow)
        wanted: dict[str, set[str]] = {}
        for fact in facts:
            wanted.setdefault(fact.user_id, set()).update(fact.sources[:PASSAGE_SOURCES])
        by_ref: dict[tuple[str, str], list[str]] = {}
        with Session(self.engine) as s:
            for user_id, all_refs in wanted.items():
                ordered = sorted(all_refs)
                for start in range(0, len(ordered), 400):
                    refs = ordered[start:start + 400]
                    hit = _named_by(table, refs)
                    rows = s.exec(select(TurnRow).where(TurnRow.user_id == user_id, hit)).all()
                    before = {(r.session_id, r.seq - 1) for r in rows}
                    earlier = {} if not before else {
                        (r.session_id, r.seq): r for r in s.exec(select(TurnRow).where(
                            TurnRow.user_id == user_id, col(TurnRow.session_id).in_({k[0] for k in before}),
                            col(TurnRow.seq).in_({k[1] for k in before}))).all()}
                    for row in rows:
                        texts = [_passage(row)]
                        previous = earlier.get((row.session_id, row.seq - 1))
                        if previous is not None:
                            texts.insert(0, _passage(previous))
                        by_ref[(user_id, row.external_id or row.id)] = [t for t in texts if t]
        return [list(dict.fromkeys(text for ref in fact.sources[:PASSAGE_SOURCES]
                                   for text in by_ref.get((fact.user_id, ref), [])))
                for fact in facts]

    def passage_refs(self, user_id: str, refs: Sequence[str]) -> set[str]:
        """The refs of the turns whose facts' contextual vectors read these turns: the turns
        themselves and the turn after each in its session."""
        table = table_of(TurnRow)
        refs = list(refs)
        if not refs:
            return set()
        with self.engine.connect() as conn:
            hit = _named_by(table, refs)
            rows = conn.execute(select(table.c.session_id, table.c.seq, table.c.id, table.c.external_id)
                                .where(table.c.user_id == user_id, hit)).all()
            after = {(r[0], r[1] + 1) for r in rows}
            following = [] if not after else conn.execute(
                select(table.c.session_id, table.c.seq, table.c.id, table.c.external_id).where(
                    table.c.user_id == user_id, table.c.session_id.in_({k[0] for k in after}),
                    table.c.seq.in_({k[1] for k in after}))).all()
        return {r[3] or r[2] for r in rows} | {r[3] or r[2] for r in following if (r[0], r[1]) in after}

    def window_tokens(self, user_id: str, session_id: str, after_seq: int) -> int:
        """The stored token counts of a session's turns after a seq, summed in SQL: enough to
        tell that a window has not reached its size without loading a turn."""
        table = table_of(TurnRow)
        with self.engine.connect() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(table.c.token_count), 0))
                .where(table.c.user_id == user_id, table.c.session_id == session_id, table.c.seq > after_seq)
            ).scalar()
        return int(total or 0)

    def sessions_of(self, turn_ids: Sequence[str]) -> list[tuple[str, str]]:
        with Session(self.engine) as s:
            rows = s.exec(select(TurnRow.user_id, TurnRow.session_id).where(col(TurnRow.id).in_(list(turn_ids)))).all()
        return sorted(set(rows))

    # -- summaries --------------------------------------------------------------------------
    def latest_summary(self, user_id: str, session_id: str) -> Summary | None:
        with Session(self.engine) as s:
            row = s.exec(
                select(SummaryRow)
                .where(SummaryRow.user_id == user_id, SummaryRow.session_id == session_id)
                .order_by(col(SummaryRow.covers_seq).desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Summary(user_id=row.user_id, session_id=row.session_id, covers_seq=row.covers_seq, text=row.text,
                       created_at=row.created_at)

    def save_summary(self, summary: Summary) -> None:
        with self._write_gate, Session(self.engine) as s:
            s.add(SummaryRow(**{**summary.model_dump(), "created_at": as_utc(summary.created_at)}))
            s.commit()


def _turn_values(turn: Turn, extracted: bool) -> dict[str, Any]:
    values = turn.model_dump(exclude={"metadata", "forgotten"})
    values["meta"] = json.dumps(turn.metadata) if turn.metadata else None
    values["forgotten"] = json.dumps(turn.forgotten) if turn.forgotten else None
    values["extracted"] = extracted
    return values


def _passage(row: TurnRow) -> str:
    turn = _turn(row).extractable
    return f"{turn.speaker}: {turn.content}" if turn.content.strip() else ""


def _turn(row: TurnRow) -> Turn:
    values = row.model_dump(exclude={"meta", "extracted", "forgotten"})
    values["metadata"] = json.loads(row.meta) if row.meta else {}
    values["forgotten"] = json.loads(row.forgotten) if row.forgotten else []
    return Turn.model_validate(values)


def _cut(content: str, marked: Sequence[tuple[int, ...]], cuts: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """`content` without the `cuts` spans, and the forgotten spans `marked` moved to match (a
    marked span that overlaps a cut is cut with it)."""
    cuts = sorted(cuts)
    kept, at = [], 0
    for a, b in cuts:
        kept.append(content[at:max(at, a)])
        at = max(at, b)
    kept.append(content[at:])
    text = "".join(kept)

    def moved(position: int) -> int:
        return position - sum(min(b, position) - a for a, b in cuts if a < position)

    spans = [(moved(a), moved(b)) for a, b, *_ in marked if not any(a < cb and ca < b for ca, cb in cuts)]
    return text, [(a, b) for a, b in spans if 0 <= a < b <= len(text)]


def _named_by(table: Any, refs: Sequence[str]) -> Any:
    """Turns a ref names: the caller's message id where one was given, else the turn's own id
    (`Turn.ref`, what provenance records)."""
    return table.c.external_id.in_(refs) | (table.c.external_id.is_(None) & table.c.id.in_(refs))
