"""LangGraph stores side by side: TiermemStore, InMemoryStore and SqliteStore (sqlite-vec).

    python -m bench.langgraph_store                 # 1k and 10k items, MiniLM vectors
    python -m bench.langgraph_store --smoke         # tiny, hash vectors: CI checks the output shape

Every store runs in this process on the same items and queries with the same embedder.
The vectors are computed once, before any store is timed, and every store's `embed` reads
them from the same table: embedding costs the same whatever the store (MiniLM on this
machine: `python -m bench.scale --part embedders`), so the timings are the stores' own work.

Measured per store and size: put throughput (batches of 100 PutOps, one namespace), get
latency, query-search latency (limit 10), and query search with a filter (10% of items).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from bench._common import percentile, progress, save

SUBJECTS = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jon"]
VERBS = ["likes", "visited", "is learning", "bought", "wrote about", "is allergic to", "repaired", "recommended"]
OBJECTS = ["green tea", "the Lisbon museum", "Portuguese", "a road bike", "sourdough bread", "peanuts", "an old piano",
           "a sci-fi novel", "the jazz festival", "a hiking trail", "vintage cameras", "the chess club"]
WHEN = ["last week", "in May", "yesterday", "every Sunday", "since 2019", "on holiday", "after work", "twice"]


def make_items(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"text": f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(WHEN)} (note {i})",
             "bucket": i % 10, "n": i} for i in range(n)]


def make_queries(k: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [f"what does {rng.choice(SUBJECTS)} think of {rng.choice(OBJECTS)}?" for _ in range(k)]


class TableEmbeddings(Embeddings):
    """LangChain's Embeddings shape over precomputed vectors (the same for every store)."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


def open_stores(folder: Path, index: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    from langgraph.store.memory import InMemoryStore

    def tiermem() -> Any:
        from tiermem import HashEmbedder
        from tiermem.adapters.langgraph import TiermemStore

        return TiermemStore.open(folder / "tiermem", index=index, embedder=HashEmbedder(64))

    def sqlite() -> Any:
        # The stdlib sqlite3 here is built without loadable extensions, which sqlite-vec
        # needs: the store gets a pysqlite3 connection (same SQLite API, same SQL).
        import pysqlite3.dbapi2 as sqlite3
        from langgraph.store.sqlite import SqliteStore

        conn = sqlite3.connect(str(folder / "langgraph.sqlite"), check_same_thread=False, isolation_level=None)
        store = SqliteStore(conn, index={**index, "text_fields": index["fields"]})  # type: ignore[typeddict-item]
        store.setup()
        store._bench_conn = conn
        return store

    return {"tiermem": tiermem, "InMemoryStore": lambda: InMemoryStore(index=index), "SqliteStore": sqlite}  # type: ignore[typeddict-item]


def close(store: Any) -> None:
    if hasattr(store, "_bench_conn"):
        store._bench_conn.close()
    elif hasattr(store, "close"):
        store.close()


def run_one(make: Callable[[], Any], items: Sequence[dict[str, Any]], queries: Sequence[str]) -> dict[str, Any]:
    from langgraph.store.base import PutOp

    store = make()
    try:
        ns = ("bench", "users")
        start = time.perf_counter()
        for lo in range(0, len(items), 100):
            store.batch([PutOp(ns, f"k{i}", items[i]) for i in range(lo, min(lo + 100, len(items)))])
        put_s = time.perf_counter() - start
        gets, searches, filtered = [], [], []
        rng = random.Random(3)
        for q in queries:
            t = time.perf_counter()
            store.get(ns, f"k{rng.randrange(len(items))}")
            gets.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            hits = store.search(ns, query=q, limit=10)
            searches.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.search(ns, query=q, limit=10, filter={"bucket": 3})
            filtered.append((time.perf_counter() - t) * 1000)
        top = [h.key for h in hits]
    finally:
        close(store)
    return {"put_items_per_s": round(len(items) / put_s, 1), "put_s": round(put_s, 3),
            "get_p50_ms": round(percentile(gets, 0.5), 3),
            "search_p50_ms": round(percentile(searches, 0.5), 3), "search_p95_ms": round(percentile(searches, 0.95), 3),
            "filtered_p50_ms": round(percentile(filtered, 0.5), 3), "filtered_p95_ms": round(percentile(filtered, 0.95), 3),
            "last_top10": top}


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = payload["rows"]
    stores = sorted({r["store"] for r in rows})
    sizes = sorted({r["items"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for store in stores:
        mine = [next(r for r in rows if r["store"] == store and r["items"] == n) for n in sizes]
        axes[0].plot(sizes, [r["put_items_per_s"] for r in mine], marker="o", label=store)
        axes[1].plot(sizes, [r["search_p50_ms"] for r in mine], marker="o", label=store)
    axes[0].set(title="put throughput (items/s, batches of 100)", xscale="log", yscale="log", xlabel="items")
    axes[1].set(title="query search p50 (ms, limit 10)", xscale="log", yscale="log", xlabel="items")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and hash vectors (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--name", default="langgraph-store")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([60] if args.smoke else [1_000, 10_000])
    queries = make_queries(10 if args.smoke else args.queries)
    if args.smoke:
        from tiermem import HashEmbedder

        embedder: Any = HashEmbedder(64)
    else:
        from tiermem import MiniLMEmbedder

        embedder = MiniLMEmbedder()
    items = make_items(max(sizes))
    texts = [it["text"] for it in items] + queries
    table: dict[str, list[float]] = {}
    for lo in progress(range(0, len(texts), 256), total=(len(texts) + 255) // 256, desc="embedding once"):
        batch = texts[lo:lo + 256]
        table.update(zip(batch, embedder.embed(batch), strict=True))
    index = {"dims": embedder.dims, "embed": TableEmbeddings(table), "fields": ["text"]}
    rows = []
    for n in sizes:
        for name in ("tiermem", "InMemoryStore", "SqliteStore"):
            folder = Path(tempfile.mkdtemp(prefix="tiermem-lgbench-"))
            try:
                result = run_one(open_stores(folder, index)[name], items[:n], queries)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            rows.append({"store": name, "items": n, **result})
            print(f"{name:14s} n={n:>6}  put {result['put_items_per_s']:>9.1f}/s  get p50 {result['get_p50_ms']:.3f} ms  "
                  f"search p50 {result['search_p50_ms']:.2f} ms p95 {result['search_p95_ms']:.2f}  "
                  f"filtered p50 {result['filtered_p50_ms']:.2f} ms")
    save(args.name if not args.smoke else args.name + "-smoke", {"embedder": getattr(embedder, "name", "?"), "rows": rows,
                                                                  "queries": len(queries)}, args.out, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
