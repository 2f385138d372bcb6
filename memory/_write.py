"""Phase 2 of add() and the other fact writes: extract -> embed -> reconcile -> journal -> index.

Every write reads its neighbours, reconciles and commits under one lock, so two batches of
this process never reconcile against a stale view of each other. What is slow happens
before it (embedding, a model's extraction or judgement) or after it (a model's summary),
and reads never take it. What happens after the
journal commit (the index, the window roll, the profile bake) can fail without undoing or
failing the write: the journal is the source of truth, and each of those is redone later.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from . import telemetry
from ._claims import quoted_values
from ._erasure import INLINE_SCAN_BYTES, ErasureReceipt, allocated_bytes, find_leftovers, word_id_needles
from ._errors import FactNotFound, IndexCorrupted
from ._forgetting import RETRACTS, RETRACTS_PREVIOUS
from ._models import Candidate, Fact, FactEvent, Turn
from ._retriever import Retriever
from ._sync import IndexSync, Vectors
from ._text import norm_hash
from ._upkeep import SessionUpkeep
from .extract import Extractor
from .index import Delete, Upsert
from .reconcile import FORGOTTEN_ON_REQUEST, Neighbour, Reconciler, Verdicts
from .session import FACT_TABLES, ITEM_TABLES, SessionStore
from .session._engine import sqlite_file

logger = logging.getLogger("tiermem")
NEIGHBOURS = 5
PENDING_ERASURE = "erasing:"  # tm_meta keys of erasures whose steps after the fact's deletion are not all done
FORGET_NEIGHBOURS = 50  # stored facts a request to forget is compared with
KNOWN_FACTS = 200  # how many of the user's facts a model-backed extractor is shown


class WritePipeline:
    def __init__(
        self,
        session: SessionStore,
        retriever: Retriever,
        sync: IndexSync,
        upkeep: SessionUpkeep,
        extractor: Extractor,
        reconciler: Reconciler,
        lock: threading.RLock,
        clock: Callable[[], datetime],
        erase_items: Callable[[str], list[str]] = lambda user_id: [],
    ):
        self.session = session
        self.retriever = retriever
        self.sync = sync
        self.upkeep = upkeep
        self.extractor = extractor
        self.reconciler = reconciler
        self.lock = lock
        self.clock = clock
        self.erase_items = erase_items

    # -- phase 2 ------------------------------------------------------------------------------
    def extract(self, user_id: str, turns: Sequence[Turn]) -> list[FactEvent] | None:
        """Extract facts from committed turns and store what they change.

        Returns the events (noops included), or None when another worker or process had
        already extracted these turns (nothing is written twice).
        """
        known: Sequence[Fact] = ()
        if getattr(self.extractor, "uses_known", True):
            known = self.session.list_facts(user_id, limit=KNOWN_FACTS, newest_first=True)
        with telemetry.span("tiermem.extract", {"tiermem.extractor": getattr(self.extractor, "name", "custom"),
                                                "tiermem.turns": len(turns)}) as span:
            extracted = self.extractor.extract([t.extractable for t in turns], known=known)
            if span is not None:
                span.set_attribute("tiermem.candidates", len(extracted))
        candidates = self.prepare(extracted, turns, self.extractor)
        candidates = [self._previous_message(user_id, c, turns) for c in candidates]
        turn_ids = [t.id for t in turns]
        events = self._reconcile_and_commit(user_id, candidates, lambda evs: self.session.commit_extraction(turn_ids, evs))
        if events is not None:
            self._upkeep(user_id, {(t.user_id, t.session_id) for t in turns})
        return events

    def _previous_message(self, user_id: str, candidate: Candidate, turns: Sequence[Turn]) -> Candidate:
        """A 'scratch that' whose statement came in an earlier message: the ref of the
        speaker's message before the request, in the same session."""
        if candidate.metadata.get(RETRACTS) != RETRACTS_PREVIOUS:
            return candidate
        request = next((t for t in turns if t.ref in candidate.sources), None)
        if request is None:
            return candidate
        earlier = [t for t in self.session.turns(user_id, request.session_id)
                   if t.seq < request.seq and t.role == request.role and t.name == request.name and t.kind == "text"]
        ref = earlier[-1].ref if earlier else None
        return candidate.model_copy(update={"metadata": {**candidate.metadata, RETRACTS: ref}})

    @staticmethod
    def prepare(candidates: Sequence[Candidate], turns: Sequence[Turn], extractor: Extractor) -> list[Candidate]:
        """The caller's metadata from the source turns, and which extractor made each one."""
        label = getattr(extractor, "name", None)
        return [c if c.extractor or not label else c.model_copy(update={"extractor": label})
                for c in _with_turn_metadata(candidates, turns)]

    def replace_extracted(self, user_id: str, candidates: Sequence[Candidate]) -> tuple[list[FactEvent], int]:
        """Re-extraction's commit: every fact extracted from turns before (it has sources) is
        invalidated as "re-extracted" in the same transaction that stores the candidates.
        Facts a caller stored with remember() stay. Returns the events and how many facts
        were invalidated."""
        with self.lock:
            now = self.clock()
            old = [f for f in self.session.list_facts(user_id) if f.sources]
            retired = [FactEvent(op="invalidate", fact_id=f.id, user_id=user_id, previous=f, at=now, reason="re-extracted",
                                 fact=f.model_copy(update={"invalid_at": now, "expired_at": now})) for f in old]
            events = self._reconcile_and_commit(user_id, candidates, self.session.commit_events,
                                                exclude={f.id for f in old}, before=retired)
        assert events is not None
        self._upkeep(user_id, set())
        return events[len(retired):], len(retired)

    def remember(self, user_id: str, candidate: Candidate) -> list[FactEvent]:
        """Store one statement as given (no extraction), still deduplicated and reconciled."""
        events = self._reconcile_and_commit(user_id, [candidate], self.session.commit_events)
        assert events is not None  # commit_events never declines
        self._upkeep(user_id, set())
        return events

    def _reconcile_and_commit(
        self, user_id: str, candidates: Sequence[Candidate],
        commit: Callable[[list[FactEvent]], list[FactEvent] | None], exclude: set[str] = frozenset(),  # type: ignore[assignment]
        before: Sequence[FactEvent] = (),
    ) -> list[FactEvent] | None:
        """Reconcile candidates against their neighbours (less `exclude`) and commit the
        events, after `before` in the same transaction. Returns `before` and the events, as
        stored (noops included), or None when `commit` declined."""
        vectors = self.retriever.embed([c.index_text for c in candidates]) if candidates else []
        verdicts: Verdicts = {}
        if candidates and self.reconciler.uses_model:
            # A model's judgement is asked outside the lock (reads and other writes go on);
            # under it the neighbours are read again and the verdicts apply only to facts
            # that are still there as they were.
            with telemetry.span("tiermem.judge", {"tiermem.candidates": len(candidates)}):
                verdicts = self.reconciler.judge(user_id, candidates, vectors,
                                                 self._neighbours(user_id, candidates, vectors, exclude), now=self.clock())
        with self.lock, self.session.user_writer(user_id), \
                telemetry.span("tiermem.reconcile", {"tiermem.candidates": len(candidates)}) as span:
            neighbours = self._neighbours(user_id, candidates, vectors, exclude) if candidates else []
            events = (self.reconciler.reconcile(user_id, candidates, vectors, neighbours, now=self.clock(), verdicts=verdicts)
                      if candidates else [])
            if span is not None:
                for op in ("add", "update", "invalidate", "noop"):
                    span.set_attribute(f"tiermem.events.{op}", sum(e.op == op for e in events))
            found = dict(_vectors_of(candidates, vectors))
            # A fact reconcile indexed with more than its candidate's text (an ending, with what
            # it ended) gets its own vector; rare, so embedded here rather than ahead of time.
            unseen = sorted({e.fact.index_text for e in events if e.op == "add" and e.fact is not None
                             and e.fact.index_text not in found})
            if unseen:
                found.update(zip(unseen, self.retriever.embed(unseen), strict=True))
            stored = commit([*before, *(e for e in events if e.op != "noop")])
            if stored is None:
                return None
            self.sync.apply(stored, found)
            self._forget_sources(user_id, [e.fact for e in stored if e.reason == FORGOTTEN_ON_REQUEST and e.fact])
        seqs = iter(stored[len(before):])
        return stored[:len(before)] + [e if e.op == "noop" else next(seqs) for e in events]

    def _neighbours(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        exclude: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> list[list[Neighbour]]:
        """Stored facts each candidate may repeat or contradict: its nearest vectors, an exact
        text match, and facts on the same subject and attribute (found by key, not vector)."""
        found = self.retriever.nearest(user_id, vectors, NEIGHBOURS)
        asks = [i for i, c in enumerate(candidates) if c.operation == "forget"]
        retracted = {c.metadata.get(RETRACTS) for c in candidates if c.operation == "forget"} - {None, RETRACTS_PREVIOUS}
        said_before = [f for f in self.session.list_facts(user_id) if set(f.sources) & retracted] if retracted else []
        if asks:  # a request to forget names facts by their words: look further than for a duplicate
            for i, hits in zip(asks, self.retriever.nearest(user_id, [vectors[i] for i in asks], FORGET_NEIGHBOURS),
                               strict=True):
                found[i] = hits
        by_hash = self.session.facts_by_hash(user_id, (norm_hash(c.text) for c in candidates))
        by_key = self.session.facts_by_key(user_id, ((c.subject.lower(), c.attribute) for c in candidates if c.attribute))
        out = []
        for candidate, hits in zip(candidates, found, strict=True):
            near = [Neighbour(h.fact, h.score) for h in hits]
            if norm_hash(candidate.text) in by_hash:
                near.append(Neighbour(by_hash[norm_hash(candidate.text)], None))
            near += [Neighbour(f, None) for f in by_key.get((candidate.subject.lower(), candidate.attribute or ""), [])]
            if candidate.operation == "forget" and candidate.metadata.get(RETRACTS):
                near += [Neighbour(f, None) for f in said_before if candidate.metadata[RETRACTS] in f.sources]
            out.append([n for n in near if n.fact.id not in exclude])
        return out

    def _forget_sources(self, user_id: str, facts: Sequence[Fact]) -> None:
        """What facts forgotten at the user's request were said in is marked in its turns, so
        that no re-extraction and no recall of the turns brings them back."""
        if not facts:
            return
        read_by = {user_id: self.session.passage_refs(user_id, [s for f in facts for s in f.sources])}
        for fact in facts:
            self.session.forget_in_turns(user_id, fact.sources, fact.text)
            self.session.forget_quotes(user_id, quoted_values(fact.text, fact.subject), skip=fact.sources, cut=False)
        self._reread_passages(read_by)

    def _upkeep(self, user_id: str, sessions: set[tuple[str, str]]) -> None:
        """Roll windows and re-bake the profile. A summary (a model call with the Claude
        summarizer) is made outside the lock and stored under it only if nobody rolled the
        session meanwhile. A failure here is retried by the next write."""
        try:
            for user, session_id in sorted(sessions):
                roll = self.upkeep.plan_roll(user, session_id)
                if roll is not None:
                    text = self.upkeep.summarize(roll)
                    with self.lock:
                        self.upkeep.save_roll(roll, text)
            with self.lock:
                self.upkeep.rebake_profile(user_id)
        except Exception as exc:
            logger.warning("tiermem: session upkeep for %r failed (%r); the next write retries it", user_id, exc)

    # -- corrections and erasure ------------------------------------------------------------
    def correct(self, fact: Fact, text: str | None, metadata: dict[str, Any] | None = None) -> FactEvent:
        """A caller's correction of the text and/or metadata: the fact keeps its id, the old
        version stays in its history."""
        changes: dict[str, Any] = {} if metadata is None else {"metadata": metadata}
        if text is not None:
            value = _corrected_value(fact, text)
            changes.update(text=text, attribute=fact.attribute if value is not None else None, value=value)
        return self._change(fact, fact.model_copy(update=changes), "update", "corrected by the caller")

    def retract(self, fact: Fact, reason: str) -> FactEvent:
        """Invalidate a fact without erasing it: journaled, kept in history, reversible
        with `restore()` (until the fact or its user is erased)."""
        now = self.clock()
        return self._change(fact, fact.model_copy(update={"invalid_at": now, "expired_at": now}), "invalidate", reason, at=now)

    def restore(self, fact: Fact) -> FactEvent:
        """Undo a retraction: the fact is valid again, with the same id and text."""
        return self._change(fact, fact.model_copy(update={"invalid_at": None, "expired_at": None}), "update", "restored")

    def _change(self, old: Fact, new: Fact, op: str, reason: str, at: datetime | None = None) -> FactEvent:
        """Journal one caller-made change to a fact and bring the index in step: a new text
        is embedded and upserted, an unchanged one only has its payload rewritten."""
        changed = new.index_text != old.index_text
        vectors: Vectors = {new.index_text: self.retriever.embed([new.index_text])[0]} if changed else {}
        event = FactEvent(op=op, fact_id=old.id, user_id=old.user_id, fact=new, previous=old,  # type: ignore[arg-type]
                          at=self.clock() if at is None else at, reason=reason)
        with self.lock:
            [stored] = self.session.commit_events([event])
            self.sync.apply([stored], vectors)
        self._upkeep(old.user_id, set())
        return stored

    def forget(self, fact_id: str, user_id: str | None, redact_turns: bool = False) -> FactEvent:
        return self.forget_many([fact_id], user_id, redact_turns)[0]

    def forget_many(self, fact_ids: Sequence[str], user_id: str | None, redact_turns: bool = False) -> list[FactEvent]:
        """Erase facts from every tier, then rewrite what keeps deleted data on disk once
        for all of them (the index's files, SQLite's freed pages).

        The fact row goes in the same transaction as a record of the erasure's remaining
        steps (its source turns, the turns that quote it, the served answers); the record is
        dropped when they are done. An erasure a crash interrupted is finished on the next
        open, or when the same id is forgotten again: that returns the tombstone."""
        with self.lock:
            facts = [self.session.get_fact(i) for i in fact_ids]
            done: dict[str, FactEvent] = {}
            for fact_id, fact in zip(fact_ids, facts, strict=True):
                if fact is None:
                    tombstone = self._tombstone(fact_id, user_id)
                    if tombstone is None:
                        raise FactNotFound(f"no fact {fact_id!r} to forget")
                    done[fact_id] = tombstone
                elif user_id is not None and fact.user_id != user_id:
                    raise FactNotFound(f"no fact {fact_id!r} to forget")
            live = [f for f in facts if f is not None]
            for fact in live:
                pending = {"user_id": fact.user_id, "sources": fact.sources, "text": fact.text, "subject": fact.subject,
                           "redact": redact_turns}
                event = self.session.forget_fact(fact.id, self.clock(), pending=json.dumps(pending))
                if event is None:
                    raise FactNotFound(f"no fact {fact.id!r} to forget")
                done[fact.id] = event
            self.sync.apply([done[f.id] for f in live], {})
        self.finish_erasures()
        return [done[i] for i in fact_ids]

    def _tombstone(self, fact_id: str, user_id: str | None) -> FactEvent | None:
        """The journal's record that a fact was erased (for that user), if it was."""
        erased = [e for e in self.session.history(fact_id) if e.op == "forget"]
        if not erased or (user_id is not None and erased[-1].user_id != user_id):
            return None
        return erased[-1]

    def finish_erasures(self) -> int:
        """Do the steps left of every erasure recorded as under way (all of them right after
        a forget; after a crash, those it interrupted): the source turns redacted or their
        statement marked, the turns that quote its values cut or marked, the served answers
        dropped, the index compacted, summaries rebuilt, the database scrubbed. Each step is
        safe to repeat. Returns how many were finished."""
        pending = self.session.metas(PENDING_ERASURE)
        if not pending:
            return 0
        sessions: set[tuple[str, str]] = set()
        with self.lock:
            read_by: dict[str, set[str]] = {}  # per user: turns whose facts' contextual vectors read these
            for value in pending.values():
                step = json.loads(value)
                user, sources, redact = step["user_id"], step["sources"], step["redact"]
                read_by.setdefault(user, set()).update(self.session.passage_refs(user, sources))
                if redact:
                    sessions |= {(user, s) for s in self.session.redact_turns(user, sources)}
                else:  # the turns stay, but what the fact came from is never extracted again
                    self.session.forget_in_turns(user, sources, step["text"])
                # Another turn that repeats its values (the assistant's "Noted, your passport
                # number qzpass5512 ...") loses that clause too, or has it marked forgotten.
                quoted = self.session.forget_quotes(user, quoted_values(step["text"], step["subject"]), skip=sources,
                                                    cut=redact)
                sessions |= {(user, s) for s in quoted}
            self._reread_passages(read_by)
            self.retriever.index.compact()  # the facts' text must leave the index's files too
        # Summaries of the redacted sessions are rebuilt from the turns that are left; then
        # one scrub takes every deleted row (fact, journal, turns, old summaries, served
        # answers that quoted them, the erasure records) off disk.
        for owner in sorted(read_by):
            self.session.forget_requests(owner)
            self._upkeep(owner, {s for s in sessions if s[0] == owner})
        for key in pending:
            self.session.delete_meta(key)
        self.session.scrub(FACT_TABLES)
        return len(pending)

    def _reread_passages(self, read_by: dict[str, set[str]]) -> None:
        """The other facts whose contextual vectors read a turn that was just redacted or
        marked are embedded again from what the turns say now: no vector keeps a trace of
        the forgotten statement."""
        self.retriever.forget_turn_vectors()
        for user_id, refs in read_by.items():
            stale = [f for f in self.session.list_facts(user_id, include_invalid=True) if refs & set(f.sources)]
            if stale:
                self.retriever.index.apply([Upsert(self.retriever.indexed(stale))])

    def forget_session(self, user_id: str, session_id: str) -> dict[str, int]:
        """Erase a conversation: its turns, its summaries, and every fact that came from one
        of its turns (a fact told again in another session goes too: its text was said here)."""
        refs = {t.ref for t in self.session.turns(user_id, session_id)}
        facts = [f.id for f in self.session.list_facts(user_id, include_invalid=True) if set(f.sources) & refs]
        if facts:
            self.forget_many(facts, user_id, redact_turns=False)
        with self.lock:
            self.session.redact_turns(user_id, sorted(refs))
            self.retriever.forget_turn_vectors()
        self.session.forget_requests(user_id)
        self.session.scrub(FACT_TABLES)
        return {"turns": len(refs), "facts": len(facts)}

    def forget_user(self, user_id: str) -> ErasureReceipt:
        """Erase every row and point of a user, then rewrite what keeps deleted data on disk
        (SQLite's WAL, the embedded index) and check that none of the removed text is left."""
        with self.lock:
            texts = self.session.user_texts(user_id)
            ids = [f.id for f in self.session.list_facts(user_id, include_invalid=True)]
            try:
                points = self.retriever.index.count(user_id)
            except IndexCorrupted:  # a damaged sealing key: the points go by their ids below
                points = len(ids)
            with telemetry.span("delete tiermem.session", {"db.operation.name": "delete"}):
                item_texts = self.erase_items(user_id)
                texts += item_texts[:200]
                event, removed = self.session.forget_user(user_id, self.clock())
                self.retriever.forget_turn_vectors()
                removed["items"] = len(item_texts)
                # Only the tables that held the user's rows are rewritten (PostgreSQL), and
                # none is waited for long: one another transaction holds is left for later.
                deferred = self.session.scrub([*(t for t, n in removed.items() if n), "tm_fact_events",
                                               *(ITEM_TABLES if item_texts else ())])
            with telemetry.span("delete tiermem.facts", {"db.operation.name": "delete",
                                                         "db.system.name": getattr(self.retriever.index, "db_system", "qdrant")}):
                self.sync.apply([event], {})
                # By id too: points sealed under a key this process no longer matches (another
                # process re-created the user, a damaged key) are not found by the tenant token.
                self.retriever.index.apply([Delete(ids)])
                how = self.retriever.index.user_erased(user_id)
            # Every local file is read, the sealed index's too: for the texts, and there also for
            # the user's words as clear keyword ids (a sealed index keeps only keyed ones,
            # `index._sealing`), as long as that costs about what the user holds.
            roots = self.local_files()
            size = allocated_bytes(roots)
            notes = self._erasure_notes(deferred)
            checked, leftovers = 0, list[str]()
            if size > INLINE_SCAN_BYTES:
                notes.insert(0, f"the local files hold {size / 2**20:,.0f} MB: not scanned inline (the scan would cost time "
                                "in proportion to the whole store)" + ("; deleted rows are zeroed and the WAL truncated all "
                                                                       "the same" if sqlite_file(self.session.url) else ""))
            else:
                with telemetry.span("tiermem.erasure.verify", {"tiermem.bytes": size}):
                    checked, leftovers = find_leftovers([*texts, user_id], roots)
                    index = Path(self.retriever.index.location)
                    if how == "sealed" and index.is_dir():
                        leftovers += find_leftovers([], [index], raw=word_id_needles(texts))[1]
        removed["index_points"] = points
        return ErasureReceipt(user_id=user_id, removed=removed, index=how,
                              verified=(not leftovers) if checked else None, checked_files=checked, leftovers=leftovers,
                              event=event, note="; ".join(notes))

    def _erasure_notes(self, deferred: Sequence[str]) -> list[str]:
        """What the receipt says was done to the files, per backend (not scanned or not)."""
        dialect = self.session.engine.dialect.name
        if dialect != "postgresql":
            return []
        notes = ["PostgreSQL: the tables that held the user's rows were rewritten without them (VACUUM FULL)"]
        if deferred:
            notes.append(f"{', '.join(deferred)} could not be rewritten now (another transaction held them): the next "
                         "erasure or `tiermem optimize --compact` rewrites them")
        if getattr(self.retriever.index, "db_system", "") == "postgresql":
            notes.append("the index's rows were deleted; their payloads and keyword ids were sealed with the user's key, "
                         "now destroyed")
        notes.append("the server's write-ahead log (pg_wal), base backups and replicas still hold the session tier's "
                     "rows as they were written, until the server recycles them")
        return notes

    def local_files(self) -> list[Path]:
        """The files of the stores that live on this machine and this process can read:
        SQLite's, the embedded index's, a local PostgreSQL's table and index files."""
        roots: list[Path] = []
        db = sqlite_file(self.session.url)
        if db is not None:
            roots += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        elif (pg_files := self.session.data_files()) is not None:
            roots.append(pg_files)
        location = Path(self.retriever.index.location)
        if location.is_dir():
            roots.append(location)
            if (location.parent / "store_index").is_dir():  # the item tier's collections
                roots.append(location.parent / "store_index")
        return roots


def _with_turn_metadata(candidates: Sequence[Candidate], turns: Sequence[Turn]) -> list[Candidate]:
    """Carry the caller's add(metadata=...) from the source turns onto each candidate."""
    by_ref = {t.ref: t.metadata for t in turns if t.metadata}
    if not by_ref:
        return list(candidates)
    out = []
    for c in candidates:
        merged: dict = {}
        for source in c.sources:
            merged.update(by_ref.get(source, {}))
        out.append(c.model_copy(update={"metadata": {**merged, **c.metadata}}) if merged else c)
    return out


def _vectors_of(candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]]) -> Vectors:
    """Vectors by embedded text: a new fact copies its text from its candidate, so the sync
    finds the vector of every added fact without embedding it again."""
    return {c.index_text: v for c, v in zip(candidates, vectors, strict=True)}


def _corrected_value(fact: Fact, text: str) -> str | None:
    """The attribute value a correction states: the words that replaced the old value
    ('Ana lives in Berlin.' -> 'Ana lives in Hamburg.' gives 'Hamburg'), else None."""
    if not fact.attribute or not fact.value:
        return None
    old, new = fact.text.rstrip(" .").split(), text.rstrip(" .").split()
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    was, now = " ".join(old[head:len(old) - tail]), " ".join(new[head:len(new) - tail])
    return now if was == fact.value and now else None
