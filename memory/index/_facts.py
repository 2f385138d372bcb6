"""FactIndex: the long-term tier, facts as points in one collection of any engine, every
read scoped to one tenant by the store's own filter."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._base import (
    INDEX_FORMAT,
    TENANT_KEY,
    Delete,
    DeleteUser,
    IndexHit,
    IndexOp,
    IndexQuery,
    QueryResult,
    SetPayload,
    Upsert,
    conditions,
    to_payload,
)
from ._points import Condition, Point, PointHit, PointStore, Schema, Search, point_id

if TYPE_CHECKING:
    from .._models import Fact
    from ._pgvector import PgVectorPoints
    from ._sealing import KeyStore, PayloadSeal

FACTS = Schema(tenant=TENANT_KEY, keywords=("kind",), floats=("valid_from_ts", "invalid_at_ts"), context=True)
IDENTITY_FILE = "tiermem-index.json"  # an embedded index's own id: its watermark survives a move
STAMP = "tiermem-journal.json"  # in an embedded index folder: the id of the journal it follows


def _fact_hits(hits: list[PointHit]) -> list[IndexHit]:
    return [IndexHit(h.payload, h.score, h.vector) for h in hits]


class FactIndex:
    """Facts in a `PointStore`.

    Args:
        points: the collection (an embedded shard, a Qdrant collection, a PostgreSQL table).
        identity: a name for this index that stays the same wherever it is opened from
            (what the journal watermark is keyed by).
    """

    seal: PayloadSeal | None = None  # the embedded index's sealed payloads (see `_sealing`)
    db_system = "qdrant"  # the engine, as OpenTelemetry's `db.system.name` names it
    format = INDEX_FORMAT  # the format its points are written in (`tiermem.index._base.INDEX_FORMATS`)

    def __init__(self, points: PointStore, identity: str | None = None):
        self.points = points
        self.dims = points.dims
        self.location = points.location
        self.identity = identity or points.location

    def attach_keys(self, keys: KeyStore) -> None:
        """The session tier's per-user keys, for an index that seals its payloads (the
        embedded one); other backends erase by rewriting their storage and ignore them."""

    def _tenant(self, user_id: str) -> str:
        return self.seal.tenant(user_id) if self.seal else user_id

    def _words(self, user_id: str, sparse: Any, create: bool) -> Any:
        """The keyword vector as the index stores it: on a sealing index, word ids derived
        with the user's key (see `_sealing`)."""
        return self.seal.words(user_id, sparse, create=create) if self.seal and sparse else sparse

    def _payload(self, fact: Fact) -> dict[str, Any]:
        payload = to_payload(fact)
        return self.seal.seal(payload) if self.seal else payload

    def _hits(self, hits: list[PointHit], user_id: str) -> list[IndexHit]:
        if self.seal is None:
            return _fact_hits(hits)
        return [IndexHit(self.seal.open_later(h.payload, user_id), h.score, h.vector) for h in hits]

    # -- writes -----------------------------------------------------------------------------
    def apply(self, ops: Sequence[IndexOp]) -> None:
        for op in ops:
            if isinstance(op, Upsert):
                if self.seal is not None:
                    for user in {p.fact.user_id for p in op.points}:
                        self.seal.confirm(user)
                self.points.upsert([Point(point_id(p.fact.id), p.vector, self._words(p.fact.user_id, p.sparse, True),
                                          self._payload(p.fact), p.context) for p in op.points])
            elif isinstance(op, SetPayload):
                for fact in op.facts:
                    self.points.set_payload(point_id(fact.id), self._payload(fact))
            elif isinstance(op, Delete):
                self.points.delete([point_id(i) for i in op.fact_ids])
            elif isinstance(op, DeleteUser):
                self.points.delete_where([Condition(TENANT_KEY, "eq", self._tenant(op.user_id))])
            else:
                raise TypeError(f"unknown index op {op!r}; expected Upsert, SetPayload, Delete or DeleteUser")

    # -- reads ------------------------------------------------------------------------------
    def query(self, query: IndexQuery) -> QueryResult:
        where = conditions(self._tenant(query.user_id), query.as_of, query.kinds)
        searches = [Search(query.dense, where, query.limit, with_vectors=query.with_vectors),
                    Search(query.dense, where, query.limit, with_vectors=query.with_vectors, context=True)]
        sparse = self._words(query.user_id, query.sparse, False)
        if sparse and sparse[0]:
            searches.append(Search(sparse, where, query.limit, sparse=True, with_vectors=query.with_vectors))
        results = self.points.search(searches)
        user = query.user_id
        return QueryResult(self._hits(results[0], user), self._hits(results[2], user) if len(results) > 2 else [],
                           self._hits(results[1], user))

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        """Nearest valid facts of one user for each vector (the dedup step)."""
        where = conditions(self._tenant(user_id))
        return [self._hits(h, user_id) for h in self.points.search([Search(v, where, limit) for v in vectors])]

    def count(self, user_id: str | None = None) -> int:
        return self.points.count([Condition(TENANT_KEY, "eq", self._tenant(user_id))] if user_id is not None else [])

    def ids(self, user_id: str | None = None) -> set[str]:
        where = [Condition(TENANT_KEY, "eq", self._tenant(user_id))] if user_id is not None else []
        return {str(p["id"]) for p in self.points.scan(where, fields=["id"])}

    def sibling(self, name: str, dims: int, schema: Schema) -> PointStore:
        """Another collection of the same engine, beside this one (the item tier's)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no other collections")

    # -- maintenance --------------------------------------------------------------------------
    def flush(self) -> None:
        self.points.flush()

    def optimize(self) -> bool:
        return self.points.optimize()

    def compact(self, *, patient: bool = False) -> bool:
        """Rewrite the storage without deleted points. `patient`: an operator's off-peak run
        that may wait for other sessions (PostgreSQL; an erasure's own attempt does not)."""
        return self.points.compact()

    def user_erased(self, user_id: str) -> str:
        """After a user's points were deleted: make sure nothing of theirs is left readable in
        the index's files. Returns how: "compacted" (storage rewritten), "sealed" (their
        payloads' key destroyed with the user's rows: the cost of the user, not the index),
        or "deleted" (a server's storage, which its optimizer rewrites later)."""
        return "compacted" if self.compact() else "deleted"

    def close(self) -> None:
        self.points.close()


# What the session tier's meta table records of an index, keyed by the index's identity
# (IndexSync writes them; `tiermem doctor` and the quick search read them).
def watermark_key(identity: str) -> str:
    """The last journal seq the index applied."""
    return f"index_seq:{identity}"


def format_key(identity: str) -> str:
    """The format its points were written in."""
    return f"index_format:{identity}"


def rebuilding_key(identity: str) -> str:
    """Set while a rebuild of the index is under way."""
    return f"index_rebuild:{identity}"


def recorded_journal(folder: Path) -> str | None:
    """The journal id an embedded index folder was built from (None: not stamped yet)."""
    stamp = folder / STAMP
    return json.loads(stamp.read_text()).get("journal_id") if stamp.exists() else None


def applied_seq(folder: Path) -> int | None:
    """The last journal seq an embedded index folder applied (None: not recorded)."""
    stamp = folder / STAMP
    try:
        value = json.loads(stamp.read_text()).get("applied_seq") if stamp.exists() else None
    except ValueError:
        return None
    return int(value) if isinstance(value, int) else None


def folder_identity(folder: Path) -> str:
    """The id an embedded index folder keeps of itself (made on first use)."""
    stamp = folder / IDENTITY_FILE
    try:
        return str(json.loads(stamp.read_text())["index_id"])
    except (OSError, ValueError, KeyError):
        index_id = uuid.uuid4().hex
        stamp.write_text(json.dumps({"index_id": index_id}))
        return index_id


def edge_identity(folder: Path) -> str:
    """An embedded index's identity, as its meta keys name it."""
    return f"embedded:{folder_identity(folder)}"


class SealedFactIndex(FactIndex):
    """An index that seals payloads and keyword ids with per-user keys (`_sealing`): an
    erasure deletes the user's points and their key, and what the engine's files (its WAL
    and backups too) keep of them is ciphertext and ids no dictionary maps back to words,
    without rewriting storage every tenant uses."""

    def attach_keys(self, keys: KeyStore) -> None:
        from ._sealing import PayloadSeal

        self.seal = PayloadSeal(keys)

    def user_erased(self, user_id: str) -> str:
        if self.seal is None:
            return super().user_erased(user_id)
        self.seal.forget(user_id)
        return "sealed"


class EdgeFactIndex(SealedFactIndex):
    """Facts in an embedded qdrant-edge shard folder (the default).

    Raises:
        IndexLocked: another process has the folder open.
        EmbeddingMismatch: the shard was built with vectors of another size.
    """

    def __init__(self, path: str | os.PathLike[str], dims: int):
        from ._edge import EdgePoints

        points = EdgePoints(path, dims, FACTS)
        self.path = points.path
        super().__init__(points, edge_identity(points.path))

    def sibling(self, name: str, dims: int, schema: Schema) -> PointStore:
        from ._edge import EdgePoints

        return EdgePoints(self.path.parent / "store_index" / name, dims, schema)


class QdrantFactIndex(FactIndex):
    """Facts in one collection of a Qdrant server (or qdrant-client's local mode).

    Args:
        client: a ready ``qdrant_client.QdrantClient``.
        dims: the embedder's vector size; checked against an existing collection.
        collection: the collection name.
    """

    def __init__(self, client: Any, dims: int, collection: str = "tiermem_facts"):
        from ._qdrant import QdrantPoints

        self.client = client
        self.collection = collection
        super().__init__(QdrantPoints(client, collection, dims, FACTS), f"qdrant:{collection}")

    def sibling(self, name: str, dims: int, schema: Schema) -> PointStore:
        from ._qdrant import QdrantPoints

        return QdrantPoints(self.client, f"{self.collection}_store_{name.replace('-', '_')}", dims, schema, owns_client=False)

    @classmethod
    def from_url(cls, url: str, dims: int, *, api_key: str | None = None, collection: str = "tiermem_facts") -> QdrantFactIndex:
        from ._qdrant import client_for

        index = cls(client_for(url, api_key), dims, collection)
        index.identity = f"qdrant:{url.rstrip('/')}/{collection}"
        return index



class PgVectorFactIndex(SealedFactIndex):
    """Facts in a PostgreSQL table with pgvector (`index_url="postgresql://..."`): one
    database can hold every tier, shared by any number of processes with no owner.

    Args:
        url: the PostgreSQL URL (the extension is created if missing and allowed).
        dims: the embedder's vector size; checked against an existing table.
        collection: the table name.
    """

    db_system = "postgresql"
    format = "6"  # payloads and keyword ids sealed with the user's key

    def __init__(self, url: str, dims: int, collection: str = "tiermem_facts"):
        from ._pgvector import PgVectorPoints, pg_engine

        self.engine = pg_engine(url)
        self.collection = collection
        try:
            points = PgVectorPoints(self.engine, collection, dims, FACTS)
        except BaseException:
            self.engine.dispose()
            raise
        where = self.engine.url.render_as_string(hide_password=True).split("@")[-1]
        super().__init__(points, f"pgvector:{where}/{collection}")

    def compact(self, *, patient: bool = False) -> bool:
        return self._pg.compact(lock_timeout=None if patient else 0.2)

    def user_erased(self, user_id: str) -> str:
        how = super().user_erased(user_id)
        self._pg.drop_unused_indexes(lock_timeout=0.2)  # a large tenant's own HNSW index holds its vectors
        return how

    @property
    def _pg(self) -> PgVectorPoints:
        from ._pgvector import PgVectorPoints

        return cast(PgVectorPoints, self.points)

    def sibling(self, name: str, dims: int, schema: Schema) -> PointStore:
        from ._pgvector import PgVectorPoints

        return PgVectorPoints(self.engine, f"{self.collection}_store_{name.replace('-', '_')}", dims, schema,
                              owns_engine=False)
