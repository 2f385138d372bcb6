"""EdgeFactIndex: the embedded default, a qdrant-edge-py shard in a folder.

qdrant-edge has no background optimizer, and this backend never optimizes on its own:
every read is filtered to one tenant through the payload index, and measured at 100k facts
over 100 users, building HNSW took 125 s (inside whichever add() triggered it) and made
filtered search 2x slower (3.1 -> 5.9 ms p50). `optimize()` is there for deployments with a
few very large tenants, run as maintenance (`tiermem optimize`). One process may open a
folder at a time; a lock file with our pid turns the engine's bare WAL error into an
`IndexLocked` that says who holds it.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import portalocker

from .._errors import EmbeddingMismatch, IndexCorrupted, IndexLocked
from .._models import Fact
from ._base import (
    DENSE,
    SPARSE,
    TENANT_KEY,
    Condition,
    IndexedFact,
    IndexHit,
    IndexQuery,
    OpDispatch,
    QueryResult,
    conditions,
    hit_from,
    point_id,
    to_payload,
)

LOCK_NAME = ".tiermem.lock"
OUR_FILES = (".tiermem", "tiermem-")  # files tiermem keeps in the folder beside the shard's
COMPACTING = ".compacting"  # sibling folder suffixes of an erasure's rewrite
ERASED = ".erased"


def _create_shard(qe: Any, path: Path, dims: int) -> Any:
    shard = qe.EdgeShard.create(
        str(path),
        qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dims, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        ),
    )
    shard.update(qe.UpdateOperation.create_field_index(TENANT_KEY, qe.KeywordIndexParams(is_tenant=True)))
    shard.update(qe.UpdateOperation.create_field_index("kind", qe.PayloadSchemaType.Keyword))
    for key in ("valid_from_ts", "invalid_at_ts"):
        shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Float))
    return shard


def _remove_leftovers(path: Path) -> None:
    """An erasure's rewrite that a crash interrupted: the half-built copy is useless, and
    the old contents hold erased data. Either way they go; if the folder itself was left
    without a shard, the journal rebuilds it (Memory opens an empty index and replays)."""
    for suffix in (COMPACTING, ERASED):
        shutil.rmtree(path.with_name(path.name + suffix), ignore_errors=True)


def close_locked(shard: Any, lock: _FolderLock) -> None:
    """Flush and close a shard, then release its folder lock (also when closing fails)."""
    try:
        shard.flush()
        shard.close()
    finally:
        lock.release()


class _FolderLock:
    """An exclusive lock on the index folder, held while it is open (portalocker: flock on
    POSIX, LockFileEx on Windows). The holder's pid is written into the lock file so a
    second opener can say who has it."""

    _held: set[str] = set()  # folders this process holds: flock would see its own pid as "another process"
    _held_lock = threading.Lock()

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        key = str(folder.resolve())
        with self._held_lock:
            if key in self._held:
                raise IndexLocked(
                    f"memory index at {folder} is already open in this process; share that Memory (it is "
                    "thread-safe) or close it before opening the home again"
                )
            self._held.add(key)
        self._key = key
        try:
            self._acquire(folder)
        except BaseException:
            with self._held_lock:
                self._held.discard(key)
            raise

    def _acquire(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._file: Any = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            portalocker.lock(self._file, portalocker.LOCK_EX | portalocker.LOCK_NB)
        except portalocker.LockException:
            try:
                self._file.seek(0)
                holder = self._file.read(32).strip() or "unknown"
            except OSError:  # Windows locks reads of a locked file too
                holder = "unknown"
            self._file.close()
            raise IndexLocked(
                f"memory index at {folder} is open in another process (pid {holder}); stop it, "
                "or point this process at a Qdrant server with TIERMEM_QDRANT_URL / qdrant_url=. "
                "Read-only commands (tiermem facts list) work without the index."
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            portalocker.unlock(self._file)
            self._file.close()
            self._file = None
            with self._held_lock:
                self._held.discard(self._key)


class EdgeFactIndex(OpDispatch):
    """Facts in an embedded qdrant-edge shard.

    Args:
        path: the shard folder (created if missing).
        dims: the embedder's vector size; checked against an existing shard.

    Raises:
        IndexLocked: another process has the folder open.
        EmbeddingMismatch: the shard was built with vectors of another size.
    """

    def __init__(self, path: str | os.PathLike[str], dims: int):
        import qdrant_edge as qe

        self._qe = qe
        self.path = Path(path)
        self.location = str(self.path.resolve())  # one watermark key however the folder is named
        self.dims = dims
        self._lock = _FolderLock(self.path)
        try:
            _remove_leftovers(self.path)
            self._shard = self._open_shard()
        except EmbeddingMismatch:
            self._lock.release()
            raise
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise IndexCorrupted(
                f"the memory index at {self.path} cannot be opened ({type(exc).__name__}: {str(exc)[:200]}); "
                "run `tiermem doctor --repair`: it moves the folder aside and rebuilds the index from the "
                "journal (nothing in the journal is lost)"
            ) from exc

    def _open_shard(self) -> Any:
        qe = self._qe
        config_file = self.path / "edge_config.json"
        if config_file.exists():
            stored = json.loads(config_file.read_text())["vectors"][DENSE]["size"]
            if stored != self.dims:
                raise EmbeddingMismatch(
                    f"memory index at {self.path} holds {stored}-dimensional vectors but the embedder "
                    f"makes {self.dims}; open it with the embedder it was built with, or rebuild it "
                    "with `tiermem reindex` after changing embedders"
                )
            return qe.EdgeShard.load(str(self.path))
        return _create_shard(qe, self.path, self.dims)

    # -- writes -----------------------------------------------------------------------------
    def _upsert(self, points: Sequence[IndexedFact]) -> None:
        qe = self._qe
        self._shard.update(qe.UpdateOperation.upsert_points([
            qe.Point(
                id=point_id(p.fact.id),
                vector={DENSE: list(p.vector), SPARSE: qe.SparseVector(indices=p.sparse[0], values=p.sparse[1])},
                payload=to_payload(p.fact),
            )
            for p in points
        ]))

    def _set_payload(self, fact: Fact) -> None:
        self._shard.update(self._qe.UpdateOperation.overwrite_payload([point_id(fact.id)], to_payload(fact)))

    def _delete(self, fact_ids: Sequence[str]) -> None:
        self._shard.update(self._qe.UpdateOperation.delete_points([point_id(i) for i in fact_ids]))

    def _delete_user(self, user_id: str) -> None:
        self._shard.update(self._qe.UpdateOperation.delete_points_by_filter(self._filter(conditions(user_id)[:1])))

    def optimize(self) -> bool:
        """Build HNSW graphs and merge segments now (blocking). Returns whether anything changed."""
        return bool(self._shard.optimize())

    def compact(self) -> bool:
        """Rewrite the shard with only the points it holds now, so that deleted points leave
        nothing on disk: qdrant-edge keeps them in its write-ahead log and in segment pages
        after a delete (and after optimize()). Points are copied with their vectors (no
        re-embedding); the folder lock is held throughout. Returns True.

        Cost: one pass over every point (`python -m bench.scale --part index`: 8,000-8,900
        points/s at 10k-50k points here), so erasing one user costs in proportion to the whole index.
        """
        qe = self._qe
        fresh_path = self.path.with_name(self.path.name + COMPACTING)
        shutil.rmtree(fresh_path, ignore_errors=True)
        fresh = _create_shard(qe, fresh_path, self.dims)
        offset = None
        while True:
            records, offset = self._shard.scroll(qe.ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True))
            if records:
                fresh.update(qe.UpdateOperation.upsert_points([
                    qe.Point(id=r.id, vector=r.vector, payload=r.payload) for r in records
                ]))
            if offset is None:
                break
        fresh.flush()
        fresh.close()
        self._shard.flush()
        self._shard.close()
        self._shard = None
        # Swap the contents, not the folder: the lock file inside it stays held.
        erased = self.path.with_name(self.path.name + ERASED)
        erased.mkdir(exist_ok=True)
        for entry in list(self.path.iterdir()):
            if not entry.name.startswith(OUR_FILES):  # the lock and the journal stamp stay
                os.replace(entry, erased / entry.name)
        for entry in list(fresh_path.iterdir()):
            os.replace(entry, self.path / entry.name)
        shutil.rmtree(erased)
        shutil.rmtree(fresh_path, ignore_errors=True)
        self._shard = self._open_shard()
        return True

    # -- reads ------------------------------------------------------------------------------
    def _filter(self, conds: Sequence[Condition]) -> Any:
        qe = self._qe
        must = []
        for c in conds:
            if c.op == "eq":
                must.append(qe.FieldCondition(key=c.key, match=qe.MatchValue(c.value)))
            elif c.op == "any":
                must.append(qe.FieldCondition(key=c.key, match=qe.MatchAny(c.value)))
            elif c.op == "gt":
                must.append(qe.FieldCondition(key=c.key, range=qe.RangeFloat(gt=c.value)))
            else:
                must.append(qe.FieldCondition(key=c.key, range=qe.RangeFloat(lte=c.value)))
        return qe.Filter(must=must)

    def query(self, query: IndexQuery) -> QueryResult:
        qe = self._qe
        flt = self._filter(conditions(query.user_id, query.as_of, query.kinds))
        requests = [
            qe.QueryRequest(
                limit=query.limit, query=qe.Query.Nearest(list(query.dense), using=DENSE),
                filter=flt, with_payload=True, with_vector=[DENSE] if query.with_vectors else False,
            )
        ]
        if query.sparse and query.sparse[0]:
            sparse = qe.SparseVector(indices=query.sparse[0], values=query.sparse[1])
            requests.append(
                qe.QueryRequest(
                    limit=query.limit, query=qe.Query.Nearest(sparse, using=SPARSE),
                    filter=flt, with_payload=True, with_vector=[DENSE] if query.with_vectors else False,
                )
            )
        results = self._shard.query_batch(qe.QueryBatchRequest(requests))
        dense = [hit_from(p) for p in results[0]]
        sparse_hits = [hit_from(p) for p in results[1]] if len(results) > 1 else []
        return QueryResult(dense, sparse_hits)

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        if not vectors:
            return []
        qe = self._qe
        flt = self._filter(conditions(user_id))
        requests = [
            qe.QueryRequest(limit=limit, query=qe.Query.Nearest(list(v), using=DENSE), filter=flt, with_payload=True)
            for v in vectors
        ]
        return [[hit_from(p) for p in points] for points in self._shard.query_batch(qe.QueryBatchRequest(requests))]

    def count(self, user_id: str | None = None) -> int:
        qe = self._qe
        flt = self._filter(conditions(user_id)[:1]) if user_id is not None else None
        return int(self._shard.count(qe.CountRequest(filter=flt, exact=True)))

    def ids(self, user_id: str | None = None) -> set[str]:
        qe = self._qe
        flt = self._filter(conditions(user_id)[:1]) if user_id is not None else None
        out: set[str] = set()
        offset = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1000, filter=flt, with_payload=["id"], with_vector=False)
            )
            out.update(r.payload["id"] for r in records)
            if offset is None:
                return out

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        if self._shard is None:
            return
        shard, self._shard = self._shard, None
        close_locked(shard, self._lock)

