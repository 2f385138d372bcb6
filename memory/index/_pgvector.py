"""PgVectorPoints: a collection of points in PostgreSQL with pgvector, so that one database
can hold every tier and any number of processes and machines share it with no owner.

Two tables per collection:

    <name>        id uuid, tenant text, payload jsonb, dense vector(dims)
                  (+ context vector(dims): the contextual vector, for a schema with one)
    <name>_terms  point uuid, tenant text, term int, weight real   (the BM25 postings)

Dense search is exact within the tenant (a b-tree on `tenant`, then pgvector's distance
operator over that tenant's rows): every read is a tenant's, so it touches that tenant's
rows alone and needs no approximate index. The sparse channel is an inverted index: the
postings of the query's terms, weighted by BM25's IDF computed over the tenant's points
(Qdrant computes it over the collection; with one tenant the two agree). Payload
conditions are evaluated on the jsonb payload, a keyword matching a value or any element
of a list, as Qdrant matches them.

Erasure: `compact()` runs VACUUM FULL on both tables, which writes them anew without the
deleted rows; the old files are removed, so no erased text is left in the table or index
files (the write-ahead log and backups are the server's, see the guide).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._errors import ConfigError, EmbeddingMismatch, MissingDependency, StoreUnavailable
from ._points import PLAIN, Condition, Point, PointHit, Schema, Search, context_of

logger = logging.getLogger("tiermem")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
_DISTANCE = {"cosine": ("<=>", "vector_cosine_ops"), "l2": ("<->", "vector_l2_ops"), "inner_product": ("<#>", "vector_ip_ops")}
NO_TENANT = ""  # the tenant column of a collection without one: IDF over the whole collection
HNSW_MIN_POINTS = 5_000  # a tenant this large gets HNSW indexes of its own from optimize(): at 5k facts exact search
# takes 50 ms p50 here and the tenant's HNSW 19 ms, recall@10 1.0 (python -m bench.pg_hnsw)
# An HNSW scan (a large tenant's own index) keeps going until the LIMIT is met after the
# other filters (validity, kind), and looks wider than pgvector's default of 40 candidates:
# searches ask for up to 60. Results come back nearly in distance order, and are re-sorted.
_HNSW_SETTINGS = "SET hnsw.ef_search = 200; SET hnsw.iterative_scan = 'relaxed_order'"


def pg_engine(url: str) -> Any:
    """An SQLAlchemy engine on a PostgreSQL URL with pgvector's types registered on every
    connection (the extension is created if the role may)."""
    try:
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise MissingDependency(f"the pgvector index needs the postgres extra: pip install 'tiermem[postgres]' ({exc})") from exc
    from sqlalchemy import event, text

    from ..session._engine import engine_for

    engine = engine_for(url)
    if engine.dialect.name != "postgresql":
        raise ConfigError(f"index_url {engine.url.render_as_string(hide_password=True)} is not PostgreSQL")
    try:
        with engine.begin() as conn:
            # IF NOT EXISTS is not safe against a concurrent CREATE (two processes opening a
            # fresh database at once: one fails on the catalog's unique index): one at a time.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tiermem:create extension vector'))"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except Exception as exc:  # noqa: BLE001 - unreachable, no such extension, no right to create it
        engine.dispose()
        raise StoreUnavailable(
            f"cannot use pgvector at {engine.url.render_as_string(hide_password=True)} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}); the server needs the pgvector extension (CREATE EXTENSION vector)") from exc

    @event.listens_for(engine, "connect")
    def _register(dbapi_conn: Any, _record: Any) -> None:
        register_vector(dbapi_conn)
        with dbapi_conn.cursor() as cursor:
            cursor.execute(_HNSW_SETTINGS)
        dbapi_conn.commit()

    engine.dispose()  # connections made before the listener have no vector type: make them anew
    return engine


class PgVectorPoints:
    """Points in two PostgreSQL tables.

    Args:
        engine: from `pg_engine` (pgvector's types registered).
        name: the collection's table name (lower case letters, digits, underscores).
        dims: the vector size; checked against an existing table.
        owns_engine: dispose of the engine with this collection.
    """

    def __init__(self, engine: Any, name: str, dims: int, schema: Schema = PLAIN, *, owns_engine: bool = True):
        if not _NAME.match(name):
            raise ConfigError(f"collection {name!r}: use lower case letters, digits and underscores (a table name)")
        self.engine = engine
        self.name = name
        self.terms = f"{name}_terms"
        self.dims = dims
        self.schema = schema
        self.owns_engine = owns_engine
        self.location = f"pgvector table {name!r} in {engine.url.render_as_string(hide_password=True)}"
        self._operator = _DISTANCE[schema.distance][0]
        self.hnsw_min_points = HNSW_MIN_POINTS
        self._closed = threading.Event()
        self._ensure()

    def _ensure(self) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            # Two processes creating the tables at once: the second waits, then finds them.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"tiermem:{self.name}"})
            stored = conn.execute(text(
                "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname = :name AND a.attname = 'dense' AND c.relnamespace = current_schema()::regnamespace"),
                {"name": self.name}).scalar()
            if stored is not None:
                if stored != self.dims:
                    raise EmbeddingMismatch(
                        f"{self.location} holds {stored}-dimensional vectors but the embedder makes {self.dims}; "
                        "use the embedder it was built with, or another collection")
                if self.schema.context:  # a table made before contextual vectors: the rebuild fills it
                    conn.execute(text(f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS context vector({self.dims})"))
                return
            context = f", context vector({self.dims})" if self.schema.context else ""
            conn.execute(text(
                f"CREATE TABLE {self.name} (id uuid PRIMARY KEY, tenant text NOT NULL, payload jsonb NOT NULL, "
                f"dense vector({self.dims}) NOT NULL{context})"))
            conn.execute(text(f"CREATE INDEX {self.name}_tenant ON {self.name} (tenant)"))
            conn.execute(text(
                f"CREATE TABLE {self.terms} (point uuid NOT NULL REFERENCES {self.name} (id) ON DELETE CASCADE, "
                "tenant text NOT NULL, term integer NOT NULL, weight real NOT NULL, PRIMARY KEY (point, term))"))
            conn.execute(text(f"CREATE INDEX {self.terms}_lookup ON {self.terms} (tenant, term)"))

    def _tenant(self, payload: dict[str, Any]) -> str:
        return str(payload.get(self.schema.tenant, NO_TENANT)) if self.schema.tenant else NO_TENANT

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        from sqlalchemy import text

        rows = [{"id": p.id, "tenant": self._tenant(p.payload), "payload": json.dumps(p.payload),
                 "dense": np.asarray(p.dense, dtype=np.float32), "context": np.asarray(context_of(p), dtype=np.float32)}
                for p in points]
        context, set_context = (", context", ", :context") if self.schema.context else ("", "")
        postings = [{"point": p.id, "tenant": self._tenant(p.payload), "term": int(t), "weight": float(w)}
                    for p in points for t, w in zip(p.sparse[0], p.sparse[1], strict=True)]
        with self.engine.begin() as conn:
            conn.execute(text(
                f"INSERT INTO {self.name} (id, tenant, payload, dense{context}) "
                f"VALUES (:id, :tenant, CAST(:payload AS jsonb), :dense{set_context}) "
                "ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, payload = excluded.payload, "
                f"dense = excluded.dense{', context = excluded.context' if context else ''}"), rows)
            conn.execute(text(f"DELETE FROM {self.terms} WHERE point = ANY(CAST(:ids AS uuid[]))"),
                         {"ids": [p.id for p in points]})
            if postings:
                conn.execute(text(f"INSERT INTO {self.terms} (point, tenant, term, weight) "
                                  "VALUES (:point, :tenant, :term, :weight)"), postings)

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {self.name} SET payload = CAST(:payload AS jsonb), tenant = :tenant WHERE id = :id"),
                         {"id": point_id, "payload": json.dumps(payload), "tenant": self._tenant(payload)})
            conn.execute(text(f"UPDATE {self.terms} SET tenant = :tenant WHERE point = :id"),
                         {"id": point_id, "tenant": self._tenant(payload)})

    def delete(self, point_ids: Sequence[str]) -> None:
        if not point_ids:
            return
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.name} WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": list(point_ids)})

    def delete_where(self, where: Sequence[Condition]) -> None:
        from sqlalchemy import text

        clause, params = self._where(where)
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {self.name} WHERE {clause}"), params)

    # -- reads ------------------------------------------------------------------------------
    def _where(self, where: Sequence[Condition], prefix: str = "w") -> tuple[str, dict[str, Any]]:
        """SQL for the conditions on the main table, and its parameters."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        for i, c in enumerate(where):
            key, value = f"{prefix}k{i}", f"{prefix}v{i}"
            if c.key == self.schema.tenant and c.op == "eq":
                parts.append(f"tenant = :{value}")
                params[value] = str(c.value)
                continue
            params[key] = c.key
            if c.op == "eq":  # a keyword: the value itself, or an element of a list
                parts.append(f"(payload->>:{key} = :{value} OR jsonb_exists(payload->:{key}, :{value}))")
                params[value] = str(c.value)
            elif c.op == "any":
                parts.append(f"(payload->>:{key} = ANY(:{value}) OR jsonb_exists_any(payload->:{key}, :{value}))")
                params[value] = [str(v) for v in c.value]
            elif c.op in ("gt", "lte"):
                sign = ">" if c.op == "gt" else "<="
                parts.append(f"CAST(payload->>:{key} AS double precision) {sign} :{value}")
                params[value] = float(c.value)
            else:
                raise ValueError(f"unknown condition {c.op!r}")
        return " AND ".join(parts) or "TRUE", params

    def search(self, searches: Sequence[Search]) -> list[list[PointHit]]:
        from sqlalchemy import text

        out: list[list[PointHit]] = []
        with self.engine.connect() as conn:
            for s in searches:
                clause, params = self._where(s.where)
                columns = "payload" + (", dense" if s.with_vectors else "")
                if s.sparse:
                    rows = conn.execute(text(self._sparse_sql(clause, columns)),
                                        {**params, **self._sparse_params(s)}).all()
                    hits = [(row[0], float(row[-1]), row[1] if s.with_vectors else None) for row in rows]
                else:
                    vector = "context" if s.context else "dense"
                    distance = f"{vector} {self._operator} :query"
                    rows = conn.execute(text(
                        f"SELECT {columns}, {distance} AS distance FROM {self.name} WHERE {clause} "
                        f"AND {vector} IS NOT NULL ORDER BY {distance} LIMIT :limit"),
                        {**params, "query": np.asarray(s.vector, dtype=np.float32), "limit": s.limit}).all()
                    hits = [(row[0], self._similarity(float(row[-1])), row[1] if s.with_vectors else None) for row in rows]
                    hits.sort(key=lambda h: -h[1])  # an HNSW scan's relaxed order
                out.append([PointHit(payload, score, _floats(vector) if vector is not None else None)
                            for payload, score, vector in hits])
        return out

    def _similarity(self, distance: float) -> float:
        return 1.0 - distance if self.schema.distance == "cosine" else -distance

    def _sparse_sql(self, clause: str, columns: str) -> str:
        """BM25 over the postings of the query's terms: IDF as Qdrant's modifier computes it,
        ln((N - n + 0.5) / (n + 0.5) + 1), over the points of the searched tenant."""
        tenant = "tenant = :sparse_tenant" if self.schema.tenant else "TRUE"
        posting = "t.tenant = :sparse_tenant" if self.schema.tenant else "TRUE"
        return (
            f"WITH q AS (SELECT unnest(CAST(:terms AS integer[])) AS term, unnest(CAST(:weights AS real[])) AS w), "
            f"n AS (SELECT count(*) AS n FROM {self.name} WHERE {tenant}), "
            f"df AS (SELECT t.term, count(*) AS df FROM {self.terms} t WHERE {posting} "
            "AND t.term = ANY(CAST(:terms AS integer[])) GROUP BY t.term), "
            f"scored AS (SELECT t.point, sum(q.w * ln((n.n - df.df + 0.5) / (df.df + 0.5) + 1) * t.weight) AS score "
            f"FROM {self.terms} t JOIN q ON q.term = t.term JOIN df ON df.term = t.term CROSS JOIN n "
            f"WHERE {posting} GROUP BY t.point) "
            f"SELECT {columns}, scored.score FROM scored JOIN {self.name} ON {self.name}.id = scored.point "
            f"WHERE {clause} ORDER BY scored.score DESC, {self.name}.id LIMIT :limit")

    def _sparse_params(self, s: Search) -> dict[str, Any]:
        indices, values = s.vector
        tenant = next((str(c.value) for c in s.where if c.key == self.schema.tenant and c.op == "eq"), None)
        if self.schema.tenant and tenant is None:
            raise ValueError(f"a sparse search of {self.name} must name its tenant ({self.schema.tenant})")
        return {"terms": [int(i) for i in indices], "weights": [float(v) for v in values],  # type: ignore[union-attr]
                "limit": s.limit,
                "sparse_tenant": tenant}

    def count(self, where: Sequence[Condition] = ()) -> int:
        from sqlalchemy import text

        clause, params = self._where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {self.name} WHERE {clause}"), params).scalar() or 0)

    def scan(self, where: Sequence[Condition] = (), fields: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        from sqlalchemy import text

        clause, params = self._where(where)
        after = "00000000-0000-0000-0000-000000000000"
        while True:  # pages by id: no cursor is held open between the caller's steps
            with self.engine.connect() as conn:
                rows = conn.execute(text(f"SELECT id, payload FROM {self.name} WHERE {clause} AND id > CAST(:after AS uuid) "
                                         "ORDER BY id LIMIT 1000"), {**params, "after": after}).all()
            for _, payload in rows:
                yield {k: payload[k] for k in fields if k in payload} if fields else payload
            if len(rows) < 1000:
                return
            after = str(rows[-1][0])

    # -- maintenance --------------------------------------------------------------------------
    def flush(self) -> None:
        """Every write is committed before it returns."""

    def optimize(self) -> bool:
        """Searches are exact within a tenant (a b-tree on the tenant, then the distance over
        its rows): linear in the tenant's size. A tenant of at least `hnsw_min_points` points
        gets HNSW indexes of its own (partial: `WHERE tenant = ...`, one per vector column),
        built without blocking writes (CONCURRENTLY); the planner uses them for that tenant's
        searches only, every other tenant stays exact. Indexes of tenants that have no
        points left are dropped. Returns whether anything changed."""
        from sqlalchemy import text

        if not self.schema.tenant:
            return False
        changed = False
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            large = conn.execute(text(f"SELECT tenant FROM {self.name} GROUP BY tenant HAVING count(*) >= :n"),
                                 {"n": self.hnsw_min_points}).scalars().all()
            have = set(self._tenant_indexes(conn))
            ops = _DISTANCE[self.schema.distance][1]
            for tenant in large:
                for column in self._vector_columns:
                    name = self._tenant_index(tenant, column)
                    if name not in have:
                        literal = tenant.replace("'", "''")
                        conn.execute(text(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {self.name} "
                                          f"USING hnsw ({column} {ops}) WHERE tenant = '{literal}'"))
                        changed = True
        return self.drop_unused_indexes() or changed

    def drop_unused_indexes(self, lock_timeout: float | None = None) -> bool:
        """Drop the HNSW indexes of tenants with no points left (an erased user's: their vectors
        leave the index pages with them). With `lock_timeout`, an index another transaction
        is using is left for the next call. Returns whether any was dropped."""
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        dropped = False
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            indexes = self._tenant_indexes(conn)
            if not indexes:
                return False
            alive = set(conn.execute(text(f"SELECT DISTINCT tenant FROM {self.name}")).scalars().all())
            wanted = {self._tenant_index(t, c) for t in alive for c in self._vector_columns}
            if lock_timeout is not None:
                conn.execute(text(f"SET lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'"))
            for name in indexes:
                if name in wanted:
                    continue
                try:
                    conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                    dropped = True
                except OperationalError as exc:
                    if getattr(exc.orig, "sqlstate", None) != "55P03":
                        raise
            if lock_timeout is not None:
                conn.execute(text("RESET lock_timeout"))
        return dropped

    @property
    def _vector_columns(self) -> tuple[str, ...]:
        return ("dense", "context") if self.schema.context else ("dense",)

    def _tenant_index(self, tenant: str, column: str) -> str:
        return "tm_hnsw_" + hashlib.sha256(f"{self.name}\x00{tenant}\x00{column}".encode()).hexdigest()[:24]

    def _tenant_indexes(self, conn: Any) -> list[str]:
        from sqlalchemy import text

        return list(conn.execute(text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :table "
            "AND starts_with(indexname, 'tm_hnsw_')"), {"table": self.name}).scalars().all())

    def compact(self, lock_timeout: float | None = 0.2) -> bool:
        """VACUUM FULL both tables: they are written anew without deleted rows, and the old
        files removed (an exclusive lock for the time it takes; it grows with the tables).
        Every other session's query on a table queues behind the rewrite and behind its wait
        for the lock, so the wait is bounded by `lock_timeout` seconds (None: wait): a table
        another transaction holds is left as it is, and False returned (`tiermem optimize
        --compact` does it later, waiting)."""
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if lock_timeout is not None:
                conn.execute(text(f"SET lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'"))
            try:
                conn.execute(text(f"VACUUM FULL {self.terms}"))
                conn.execute(text(f"VACUUM FULL {self.name}"))
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                logger.warning("tiermem: %s is in use by another transaction; not compacted now "
                               "(`tiermem optimize --compact` does it)", self.name)
                return False
            finally:
                if lock_timeout is not None:
                    conn.execute(text("RESET lock_timeout"))
        return True

    def close(self) -> None:
        if self.owns_engine and not self._closed.is_set():
            self._closed.set()
            self.engine.dispose()


def _floats(vector: Any) -> list[float]:
    """A vector as read back (pgvector's `Vector`, or a NumPy array) as a list of floats."""
    values = vector.to_list() if hasattr(vector, "to_list") else vector
    return [float(x) for x in values]
