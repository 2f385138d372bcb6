"""PostgreSQL: when a tenant should get its own HNSW index.

    python -m bench.pg_hnsw                      # tenants of 5k, 20k and 50k facts
    python -m bench.pg_hnsw --sizes 20000 100000

One PostgreSQL with pgvector ($TIERMEM_BENCH_POSTGRES_URL, else one started here), every
tier on it; one tenant per size loaded through `Memory.add()` (real MiniLM query vectors,
pooled document vectors: `bench.scale.PooledEmbedder`). For each tenant, 100 queries are
searched exactly (no vector index: the tenant's b-tree, then the distance over its rows),
then `optimize()` builds the tenant's own HNSW indexes and the same queries are searched
again: search p50/p95 both ways, the build time, and recall@10 of the HNSW results against
the exact ones (the facts each returns).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._common import environment, percentile, progress, write_results
from bench.scale import NAMES, QUERIES, PooledEmbedder, postgres_url, sentence
from tiermem import Memory, MiniLMEmbedder


def _search_all(mem: Memory, user: str, queries: list[str]) -> tuple[list[list[str]], list[float]]:
    ids, times = [], []
    for q in queries:
        started = time.perf_counter()
        hits = mem.search(q, user_id=user, limit=10)
        times.append((time.perf_counter() - started) * 1000)
        ids.append([h.fact.id for h in hits])
    return ids, times


def run(sizes: Sequence[int], folder: Path) -> list[dict[str, Any]]:
    url = postgres_url(folder)
    embedder = PooledEmbedder(MiniLMEmbedder())
    rows = []
    with Memory.open(database_url=url, index_url=url, embedder=embedder) as mem:  # type: ignore[arg-type]
        points = mem.index.points  # type: ignore[attr-defined]
        points.hnsw_min_points = 10**12  # nothing indexed while loading
        for size in sizes:
            rng = random.Random(size)
            for offset in progress(range(0, size, 500), desc=f"loading {size:,} facts"):
                mem.add([{"role": "user", "name": "Ana", "content": sentence(rng, offset + j)}
                         for j in range(min(500, size - offset))], user_id=f"size-{size}", session_id="load")
        # Largest first: optimize() indexes every tenant at or over the size, so a smaller
        # tenant measured later has not been indexed yet when it is searched exactly.
        for size in sorted(sizes, reverse=True):
            user = f"size-{size}"
            queries = [QUERIES[i % len(QUERIES)].format(n=NAMES[(i // 7) % len(NAMES)]) + f" ({i})" for i in range(100)]
            _search_all(mem, user, queries[:10])  # warm
            exact, exact_ms = _search_all(mem, user, queries)
            points.hnsw_min_points = size
            started = time.perf_counter()
            mem.optimize()
            build_s = time.perf_counter() - started
            _search_all(mem, user, queries[:10])
            approx, hnsw_ms = _search_all(mem, user, queries)
            recall = sum(len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(approx, exact, strict=True)) / len(exact)
            row = {"facts": size, "exact_p50_ms": round(percentile(exact_ms, 0.5), 1),
                   "exact_p95_ms": round(percentile(exact_ms, 0.95), 1), "hnsw_p50_ms": round(percentile(hnsw_ms, 0.5), 1),
                   "hnsw_p95_ms": round(percentile(hnsw_ms, 0.95), 1), "build_s": round(build_s, 1),
                   "recall_at_10": round(recall, 3)}
            print(row, flush=True)
            rows.append(row)
            points.hnsw_min_points = 10**12
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = run(args.sizes, args.folder or Path(tempfile.mkdtemp(prefix="tiermem-pg-")))
    print("written to", write_results("pg_hnsw", {"rows": rows, "environment": environment()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
