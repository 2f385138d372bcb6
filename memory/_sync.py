"""Keeping the long-term index in step with the journal (the source of truth).

Every fact change is journaled first; the index follows by journal sequence number. A
watermark (per index location, in the session tier) records the last journal entry the
index has applied, so entries it missed (a crash, an index write that failed, another
process writing to the same database) are replayed in order.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ._errors import IndexCorrupted
from ._models import Fact, FactEvent
from ._retriever import Retriever
from .index import Delete, DeleteUser, IndexedFact, IndexOp, SetPayload, Upsert
from .index._base import INDEX_FORMAT, INDEX_FORMATS
from .index._facts import STAMP, applied_seq, format_key, rebuilding_key, recorded_journal, watermark_key
from .session import SessionStore

logger = logging.getLogger("tiermem")

Vectors = Mapping[str, Sequence[float]]  # embedded text (Fact.index_text) -> its vector


class IndexSync:
    """Args:
        lock: the memory's write lock: applying, replaying and rebuilding run under it, so
            they never interleave with a write (reads never take it)."""

    def __init__(self, session: SessionStore, retriever: Retriever, lock: threading.RLock):
        self.session = session
        self.retriever = retriever
        self.index = retriever.index
        self.lock = lock
        identity = getattr(self.index, "identity", self.index.location)
        self._key = watermark_key(identity)
        self._rebuilding_key = rebuilding_key(identity)
        self._format_key = format_key(identity)
        # The format this backend's points are written in (each engine's own latest).
        self.format = getattr(self.index, "format", INDEX_FORMAT)
        self._adopt_legacy_keys()
        self._watermark = int(session.get_meta(self._key) or 0)
        self.behind = False  # an index write failed: catch_up() is owed
        self._check_stamp()

    def _adopt_legacy_keys(self) -> None:
        """Homes made before index ids keyed the watermark by the folder's absolute path: the
        index that is in that folder now carries it on (no replay, no rebuild)."""
        folder = Path(self.index.location)
        if not folder.is_dir() or self.session.get_meta(self._key) is not None:
            return
        legacy = str(folder.resolve())
        for new, old in ((self._key, watermark_key(legacy)), (self._format_key, format_key(legacy)),
                         (self._rebuilding_key, rebuilding_key(legacy))):
            value = self.session.get_meta(old)
            if value is not None:
                self.session.set_meta(new, value)
                self.session.delete_meta(old)

    def _check_stamp(self) -> None:
        """An index belongs to one journal. An embedded index folder records the journal's
        id; opened with another database (its own was deleted, or a URL points elsewhere) it
        would serve facts that journal does not have, which nobody could list or erase."""
        folder = Path(self.index.location)
        if not folder.is_dir():
            return  # a server collection: shared by design, nothing to stamp
        journal = self.session.journal_id()
        recorded = recorded_journal(folder)
        orphan = recorded is None and self._watermark == 0 and self.index.count() > 0 \
            and self.session.count_facts(include_invalid=True) == 0
        if (recorded is not None and recorded != journal) or orphan:
            raise IndexCorrupted(
                f"the memory index at {folder} was built from another database than {self.session.url_for_humans} "
                "(deleted, or another URL): serving it would return facts this journal cannot list or erase. "
                "Run `tiermem doctor --repair` to move it aside and rebuild it from this database's journal."
            )
        if recorded is None:
            (folder / STAMP).write_text(json.dumps({"journal_id": journal}))
        self._journal = journal

    def _stamp_applied(self, seq: int) -> None:
        """Record in the index folder the last journal seq it applied: a database restored
        from an older copy has a journal that ends before it (R2 / Q5), whatever the counts."""
        folder = Path(self.index.location)
        journal = getattr(self, "_journal", None)
        if journal is None or not folder.is_dir():
            return
        stamp = folder / STAMP
        partial = stamp.with_name(STAMP + ".tmp")
        partial.write_text(json.dumps({"journal_id": journal, "applied_seq": seq}))
        os.replace(partial, stamp)

    @property
    def watermark(self) -> int:
        return self._watermark

    def _advance(self, seq: int) -> None:
        self._watermark = seq
        self.session.set_meta(self._key, str(seq))
        self._stamp_applied(seq)

    def apply(self, events: Sequence[FactEvent], vectors: Vectors) -> None:
        """Bring the index up to (at least) these just-journaled events.

        When nothing was journaled since the watermark but these events, they are applied
        directly with the vectors just computed; otherwise (another writer, an earlier
        failure) the journal is replayed from the watermark. A failure leaves the index
        behind, to be caught up later: the events are safe in the journal either way.
        """
        stored = [e for e in events if e.seq is not None]
        if not stored:
            return
        with self.lock:
            try:
                seqs = [e.seq for e in stored]
                if not self.behind and seqs == list(range(self._watermark + 1, self._watermark + 1 + len(seqs))):
                    self.index.apply(self._ops(stored, vectors))
                    self._advance(seqs[-1])  # type: ignore[arg-type]
                else:
                    self.catch_up(vectors)
            except Exception as exc:  # the journal has the events; the index is repaired later
                self.behind = True
                logger.warning("tiermem: index update failed (%r); the journal has it and the index will catch up", exc)

    def _ops(self, events: Sequence[FactEvent], vectors: Vectors) -> list[IndexOp]:
        """One write per kind for a batch: each fact's last version, upserted where it is new
        or its text changed (a vector was made for it), else only its payload rewritten."""
        latest: dict[str, Fact] = {}
        upserts: set[str] = set()
        removed: list[IndexOp] = []
        for e in events:
            if e.op in ("add", "update", "invalidate") and e.fact is not None:
                latest[e.fact_id] = e.fact
                if e.op == "add" or e.fact.index_text in vectors:
                    upserts.add(e.fact_id)
            elif e.op == "forget":
                removed.append(Delete([e.fact_id]))
            elif e.op == "forget_user":
                removed.append(DeleteUser(e.user_id))
        new = [f for i, f in latest.items() if i in upserts]
        ops: list[IndexOp] = [
            Upsert(self._points(new, vectors)),
            SetPayload([f for i, f in latest.items() if i not in upserts]),
        ]
        return ops + removed

    def catch_up(self, vectors: Vectors | None = None) -> int:
        """Replay journal entries the index has not applied; returns how many. A rebuild that
        was interrupted (Ctrl-C of `tiermem reindex`, a crash) is done again first."""
        vectors = vectors or {}
        applied = 0
        with self.lock:
            if self.session.get_meta(self._rebuilding_key):
                logger.warning("tiermem: an index rebuild was interrupted; rebuilding it from the journal")
                return self.reindex()
            old_format = self.session.get_meta(self._format_key)
            if old_format != self.format:
                if self.index.count() > 0:
                    brought = [why for fmt, why in INDEX_FORMATS.items() if int(old_format or 1) < int(fmt) <= int(self.format)]
                    logger.warning("tiermem: rebuilding the index once in its new format (%s)", "; ".join(brought))
                    self.reindex()
                self.session.set_meta(self._format_key, self.format)
            last = self.session.last_event_seq()
            if self._watermark > 0 and self.index.count() == 0 and self.session.count_facts(include_invalid=True) > 0:
                self.reindex()  # the index folder was lost: rebuild it whole
                self.behind = False
                return last
            while self._watermark < last:
                events = self.session.events_after(self._watermark)
                if not events:
                    break
                touched = list(dict.fromkeys(e.fact_id for e in events if e.op != "forget_user"))
                current = {f.id: f for f in self.session.get_facts(touched)}
                ops: list[IndexOp] = [Delete([i for i in touched if i not in current]),
                                      Upsert(self._points(list(current.values()), vectors))]
                if any(e.op == "forget_user" for e in events):
                    # Another process erased a user: a key this process cached for them is gone.
                    seal = getattr(self.index, "seal", None)
                    if seal is not None:
                        seal.forget_all()
                    # A tombstone names only a hash of the erased id: drop every point the
                    # journal no longer has, whoever it belonged to.
                    ops.append(Delete(sorted(self.index.ids() - self.session.fact_ids())))
                self.index.apply(ops)
                applied += len(events)
                self._advance(events[-1].seq or self._watermark)
            self.index.flush()
            self.behind = False
        return applied

    def repair_drift(self) -> dict[str, int]:
        """Make the index hold exactly the journal's facts, when the two disagree on how many
        there are: an older copy of the database restored beside a newer index (the index
        would serve facts the journal cannot list or erase), or an index that lost points.
        Checked on open (two counts; the ids are compared only when those differ). Returns
        how many points were removed and added."""
        with self.lock:
            last = self.session.last_event_seq()
            applied = applied_seq(Path(self.index.location)) if Path(self.index.location).is_dir() else None
            older = applied is not None and applied > last  # the journal ends before what the index applied
            if not older and self.index.count() == self.session.count_facts(include_invalid=True):
                return {"removed": 0, "added": 0}
            journal, indexed = self.session.fact_ids(), self.index.ids()
            extra, missing = sorted(indexed - journal), sorted(journal - indexed)
            if extra:
                logger.warning("tiermem: the index held %d facts the database does not (was an older copy of the database "
                               "restored?); they were removed from the index, which now follows the database", len(extra))
            ops: list[IndexOp] = [Delete(extra)]
            for start in range(0, len(missing), 512):
                ops.append(Upsert(self._points(self.session.get_facts(missing[start:start + 512]), {})))
            self.index.apply(ops)
            self.index.flush()
        if older:
            logger.warning("tiermem: the database's journal ends before what the index applied (was an older copy of "
                           "the database restored?); the index was compared with it fact by fact")
            self._stamp_applied(last)
        return {"removed": len(extra), "added": len(missing)}

    def _points(self, facts: Sequence[Fact], vectors: Vectors) -> list[IndexedFact]:
        known = [f for f in facts if f.index_text in vectors]
        unknown = [f for f in facts if f.index_text not in vectors]
        return self.retriever.indexed(known, [vectors[f.index_text] for f in known]) + self.retriever.indexed(unknown)

    def reindex(self, *, batch_size: int = 512, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from the journal (all facts, valid or not, so `as_of` works)."""
        with self.lock:
            # Until the flag is cleared, the next open rebuilds again: a half-built index
            # must never pass for a whole one (the watermark alone would say it is current).
            self.session.set_meta(self._rebuilding_key, "1")
            # Every point goes, not just those of users still in the journal: a user erased
            # while the index was unreachable must not survive a rebuild.
            self.index.apply([Delete(sorted(self.index.ids()))])
            total = self.session.count_facts(include_invalid=True)
            done = 0
            last = self.session.last_event_seq()
            while done < total:
                facts = self.session.list_facts(include_invalid=True, limit=batch_size, offset=done)
                if not facts:
                    break
                self.index.apply([Upsert(self.retriever.indexed(facts))])
                done += len(facts)
                if progress:
                    progress(done, total)
            self.index.flush()
            self._advance(last)
            self.session.delete_meta(self._rebuilding_key)
            self.session.set_meta(self._format_key, self.format)
            self.behind = False
        return done

    def verify(self) -> dict[str, set[str]]:
        """Ids missing from, or extra in, the index compared with the journal."""
        # Both read under the write lock: a write commits to the journal and then the index
        # under it, so reading the journal outside it can miss a fact the index already has.
        with self.lock:
            journal = self.session.fact_ids()
            indexed = self.index.ids()
        return {"missing": journal - indexed, "extra": indexed - journal}
