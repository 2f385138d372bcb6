"""EdgePoints: a collection in an embedded qdrant-edge shard (a folder), the default engine.

qdrant-edge has no background optimizer, and this backend never optimizes on its own:
every read is filtered through the payload index, and measured at 100k facts over 100
users, building HNSW took 125 s (inside whichever write triggered it) and made filtered
search 2x slower (3.1 -> 5.9 ms p50). `optimize()` is there for deployments with a few very
large tenants, run as maintenance (`tiermem optimize`). One process may open a folder at a
time; a lock file with our pid turns the engine's bare WAL error into an `IndexLocked` that
says who holds it. The shard is not safe for concurrent use: every call takes this
object's own lock, for the length of that call only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import portalocker

from .._errors import EmbeddingMismatch, IndexCorrupted, IndexLocked
from ._points import (
    CONTEXT,
    DENSE,
    PLAIN,
    SPARSE,
    Condition,
    Point,
    PointHit,
    Schema,
    Search,
    context_of,
    similarity,
    vector_name,
)

logger = logging.getLogger("tiermem")
LOCK_NAME = ".tiermem.lock"
OUR_FILES = (".tiermem", "tiermem-")  # files tiermem keeps in the folder beside the shard's
COMPACTING = ".compacting"  # sibling folder suffixes of an erasure's rewrite
ERASED = ".erased"
SCROLL = 1000


class FolderLock:
    """An exclusive lock on an index folder, held while it is open (portalocker: flock on
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
            raise IndexLocked(_locked_message(folder, holder)) from None
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


def _locked_message(folder: Path, holder: str) -> str:
    """Who holds an index folder, and how to reach the memory anyway."""
    served = None
    for candidate in (folder.parent, folder.parent.parent):  # the home: facts/ or store_index/<name>/
        try:
            served = json.loads((candidate / "serve.json").read_text()).get("url")
            break
        except (OSError, ValueError):
            continue
    if served:
        how = (f"it serves this home at {served}: call it with Memory.open(url={served!r}) (plain Memory.open(home) "
               "and the CLI do that on their own), or stop it")
    else:
        how = ("stop it, open the home with Memory.open(home) (share=True: it joins the process that owns the home), "
               "or keep the index on a server (TIERMEM_INDEX_URL)")
    return (f"memory index at {folder} is open in another process (pid {holder}); {how}. "
            "Reading commands (tiermem facts list) work without the index.")


def _remove_leftovers(path: Path) -> None:
    """An erasure's rewrite that a crash interrupted: the half-built copy is useless, and
    the old contents hold erased data. Either way they go; if the folder itself was left
    without a shard, the journal rebuilds it (the memory opens an empty index and replays)."""
    for suffix in (COMPACTING, ERASED):
        shutil.rmtree(path.with_name(path.name + suffix), ignore_errors=True)


class EdgePoints:
    """Points in a qdrant-edge shard folder.

    Args:
        path: the shard folder (created if missing).
        dims: the vector size; checked against an existing shard.
        schema: the payload keys to index and the distance.

    Raises:
        IndexLocked: another process has the folder open.
        EmbeddingMismatch: the shard was built with vectors of another size.
        IndexCorrupted: the shard cannot be opened (`tiermem doctor --repair` rebuilds it).
    """

    def __init__(self, path: str | os.PathLike[str], dims: int, schema: Schema = PLAIN):
        import qdrant_edge as qe

        self._qe = qe
        self.path = Path(path)
        self.location = str(self.path)
        self.dims = dims
        self.schema = schema
        self._guard = threading.RLock()
        self._folder = FolderLock(self.path)
        try:
            _remove_leftovers(self.path)
            self._shard: Any = self._open()
        except EmbeddingMismatch:
            self._folder.release()
            raise
        except BaseException as exc:
            self._folder.release()
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise IndexCorrupted(
                f"the memory index at {self.path} cannot be opened ({type(exc).__name__}: {str(exc)[:200]}); "
                "run `tiermem doctor --repair`: it moves the folder aside and rebuilds the index from the "
                "journal (nothing in the journal is lost)"
            ) from exc

    def _open(self) -> Any:
        config_file = self.path / "edge_config.json"
        if config_file.exists():
            vectors = json.loads(config_file.read_text())["vectors"]
            stored = vectors[DENSE]["size"]
            if stored != self.dims:
                raise EmbeddingMismatch(
                    f"memory index at {self.path} holds {stored}-dimensional vectors but the embedder "
                    f"makes {self.dims}; open it with the embedder it was built with, or rebuild it "
                    "with `tiermem reindex` after changing embedders"
                )
            if not self.schema.context or CONTEXT in vectors:
                return self._qe.EdgeShard.load(str(self.path))
            # Made before contextual vectors: its points are derived from the journal, which
            # rebuilds them (an empty index with facts in the journal is rebuilt on open).
            logger.warning("tiermem: the index at %s predates contextual vectors; it is made anew and rebuilt "
                           "from the journal", self.path)
            for entry in list(self.path.iterdir()):
                if not entry.name.startswith(OUR_FILES):
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return self._create(self.path)

    def _create(self, path: Path) -> Any:
        qe = self._qe
        metric = {"cosine": qe.Distance.Cosine, "l2": qe.Distance.Euclid, "inner_product": qe.Distance.Dot}
        shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(
            vectors={name: qe.EdgeVectorParams(size=self.dims, distance=metric[self.schema.distance])
                     for name in ((DENSE, CONTEXT) if self.schema.context else (DENSE,))},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        ))
        if self.schema.tenant:
            shard.update(qe.UpdateOperation.create_field_index(self.schema.tenant, qe.KeywordIndexParams(is_tenant=True)))
        for key in self.schema.keywords:
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        for key in self.schema.floats:
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Float))
        return shard

    # -- writes -----------------------------------------------------------------------------
    def _point(self, p: Point) -> Any:
        qe = self._qe
        vectors: dict[str, Any] = {DENSE: list(p.dense), SPARSE: qe.SparseVector(indices=p.sparse[0], values=p.sparse[1])}
        if self.schema.context:
            vectors[CONTEXT] = list(context_of(p))
        return qe.Point(id=p.id, vector=vectors, payload=p.payload)

    def upsert(self, points: Sequence[Point]) -> None:
        if points:
            with self._guard:
                self._shard.update(self._qe.UpdateOperation.upsert_points([self._point(p) for p in points]))

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        with self._guard:
            self._shard.update(self._qe.UpdateOperation.overwrite_payload([point_id], payload))

    def delete(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            with self._guard:
                self._shard.update(self._qe.UpdateOperation.delete_points(list(point_ids)))

    def delete_where(self, where: Sequence[Condition]) -> None:
        with self._guard:
            self._shard.update(self._qe.UpdateOperation.delete_points_by_filter(self._filter(where)))

    # -- reads ------------------------------------------------------------------------------
    def _filter(self, where: Sequence[Condition]) -> Any:
        qe = self._qe
        if not where:
            return None
        must = []
        for c in where:
            if c.op == "eq":
                must.append(qe.FieldCondition(key=c.key, match=qe.MatchValue(c.value)))
            elif c.op == "any":
                must.append(qe.FieldCondition(key=c.key, match=qe.MatchAny(list(c.value))))
            elif c.op == "gt":
                must.append(qe.FieldCondition(key=c.key, range=qe.RangeFloat(gt=c.value)))
            else:
                must.append(qe.FieldCondition(key=c.key, range=qe.RangeFloat(lte=c.value)))
        return qe.Filter(must=must)

    def search(self, searches: Sequence[Search]) -> list[list[PointHit]]:
        if not searches:
            return []
        qe = self._qe
        requests = []
        for s in searches:
            if s.sparse:
                vector = s.vector
                query = qe.Query.Nearest(qe.SparseVector(indices=vector[0], values=vector[1]), using=SPARSE)
            else:
                query = qe.Query.Nearest(list(s.vector), using=vector_name(s))
            requests.append(qe.QueryRequest(limit=s.limit, query=query, filter=self._filter(s.where), with_payload=True,
                                            with_vector=[DENSE] if s.with_vectors else False))
        with self._guard:
            results = self._shard.query_batch(qe.QueryBatchRequest(requests))
        return [[_hit(p, self.schema.distance if not s.sparse else "cosine") for p in points]
                for s, points in zip(searches, results, strict=True)]

    def count(self, where: Sequence[Condition] = ()) -> int:
        with self._guard:
            return int(self._shard.count(self._qe.CountRequest(filter=self._filter(where), exact=True)))

    def scan(self, where: Sequence[Condition] = (), fields: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        qe = self._qe
        offset = None
        while True:
            with self._guard:
                records, offset = self._shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=SCROLL, filter=self._filter(where), with_payload=list(fields) or True,
                    with_vector=False))
            for r in records:
                yield r.payload
            if offset is None:
                return

    def flush(self) -> None:
        with self._guard:
            self._shard.flush()

    def optimize(self) -> bool:
        """Build HNSW graphs and merge segments now (blocking). Returns whether anything changed."""
        with self._guard:
            return bool(self._shard.optimize())

    def compact(self) -> bool:
        """Rewrite the shard with only the points it holds now, so that deleted points leave
        nothing on disk: qdrant-edge keeps them in its write-ahead log and in segment pages
        after a delete (and after optimize()). Points are copied with their vectors (no
        re-embedding), a page at a time: reads go on against the old shard meanwhile, and
        only the swap at the end holds them up. The caller keeps writers out (the memory's
        write lock). Returns True.

        Cost: one pass over every point (`python -m bench.scale --part index`: 8,000-8,900
        points/s at 10k-50k points here), in proportion to the whole collection.
        """
        qe = self._qe
        fresh_path = self.path.with_name(self.path.name + COMPACTING)
        shutil.rmtree(fresh_path, ignore_errors=True)
        fresh = self._create(fresh_path)
        offset = None
        while True:
            with self._guard:
                records, offset = self._shard.scroll(qe.ScrollRequest(offset=offset, limit=SCROLL, with_payload=True,
                                                                      with_vector=True))
            if records:
                fresh.update(qe.UpdateOperation.upsert_points([qe.Point(id=r.id, vector=r.vector, payload=r.payload)
                                                               for r in records]))
            if offset is None:
                break
        fresh.flush()
        fresh.close()
        with self._guard:
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
            self._shard = self._open()
        return True

    def close(self) -> None:
        with self._guard:
            if self._shard is None:
                return
            shard, self._shard = self._shard, None
            try:
                shard.flush()
                shard.close()
            finally:
                self._folder.release()


def _hit(point: Any, distance: str) -> PointHit:
    vector = point.vector.get(DENSE) if isinstance(point.vector, dict) else None
    return PointHit(point.payload, similarity(float(point.score), distance), vector)
