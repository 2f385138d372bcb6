"""What a served call costs over the same call in process: `tiermem serve` (and every process
that follows a home's owner) on loopback TCP and on a Unix socket, interleaved with the
in-process call in one run.

    python -m bench.served                 # 500 facts for one user, MiniLM, 300 calls of each kind
    python -m bench.served --smoke         # hash embedder, 30 calls: CI checks the output shape

Reported per operation (search, context, facts): p50 and p95 in process, served over TCP and
over a Unix socket, and the added milliseconds at p50. Nagle's algorithm once added 40 ms to
every served answer (headers and body were two writes, the second waiting on the client's
delayed ACK); this keeps that from coming back unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder
from tiermem.serve import MemoryServer, RemoteMemory

from ._common import percentile, write_results

CITIES = ["Lyon", "Bern", "Oslo", "Porto", "Riga", "Kyiv", "Turin", "Ghent", "Cork", "Brno"]
HOBBIES = ["piano", "chess", "kayaking", "gardening", "violin", "baking", "poetry", "cycling", "pottery", "judo"]


def calls(memory: Any) -> dict[str, Callable[[int], Any]]:
    return {
        "search": lambda i: memory.search(f"who plays {HOBBIES[i % 10]} in {CITIES[i % 7]}?", user_id="ana", limit=10),
        "context": lambda i: memory.context(f"any {HOBBIES[i % 10]} plans?", user_id="ana", budget=4000),
        "facts": lambda i: memory.facts(user_id="ana", limit=50),
    }


def run(facts: int, n: int, embedder: Embedder) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tiermem-served-") as tmp, \
            Memory.open(Path(tmp) / "home", embedder=embedder, share=False) as mem:
        for i in range(facts):
            mem.remember(f"Ana's friend Kim{i} took up {HOBBIES[i % 10]} in {CITIES[i % 10]} in {1990 + i % 30}.",
                         user_id="ana")
        tcp = MemoryServer(mem, port=0).start()
        unix = MemoryServer(mem, socket=Path(tmp) / "serve.sock").start()
        try:
            ways = {"in-process": calls(mem), "tcp": calls(RemoteMemory(tcp.url)),
                    "unix": calls(RemoteMemory(f"unix://{Path(tmp) / 'serve.sock'}"))}
            times: dict[str, dict[str, list[float]]] = {way: {op: [] for op in ways[way]} for way in ways}
            for i in range(n + 5):
                for way, ops in ways.items():  # interleaved: the machine's noise falls on each alike
                    for op, call in ops.items():
                        t = time.perf_counter()
                        call(i)
                        if i >= 5:  # warm-up
                            times[way][op].append((time.perf_counter() - t) * 1e3)
        finally:
            tcp.stop()
            unix.stop()
    rows = {}
    for op in times["in-process"]:
        row: dict[str, float] = {}
        for way in times:
            row[f"{way}_p50_ms"] = round(percentile(times[way][op], 0.5), 3)
            row[f"{way}_p95_ms"] = round(percentile(times[way][op], 0.95), 3)
        for way in ("tcp", "unix"):
            row[f"{way}_added_p50_ms"] = round(row[f"{way}_p50_ms"] - row["in-process_p50_ms"], 3)
        rows[op] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.served", description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="hash embedder, 50 facts, 30 calls; nothing saved")
    args = parser.parse_args(argv)
    embedder: Embedder = HashEmbedder(64) if args.smoke else MiniLMEmbedder()
    if args.smoke:
        args.facts, args.calls = 50, 30
    result = {"facts": args.facts, "calls": args.calls, "embedder": embedder.name, "operations": run(args.facts, args.calls, embedder)}
    print(json.dumps(result, indent=2))
    if not args.smoke:
        print(f"saved {write_results('served', result, None)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
