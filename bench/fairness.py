"""Fair service: while one tenant's large add() runs through `tiermem serve`, how long does
another tenant's search() wait? And does add() time grow linearly with the message's size?

    python -m bench.fairness                       # messages of 500, 1000, 2000 and 3000 sentences, MiniLM
    python -m bench.fairness --sentences 4000      # one size
    python -m bench.fairness --smoke               # 200 sentences, hash embedder: CI checks the output shape

For each size a fresh home is served on 127.0.0.1; one client sends a single user message of
that many distinct sentences (about 49 characters each) for tenant A, while a second client
searches tenant B's memory every 100 ms until the add returns. Reported: the add's seconds
and milliseconds per sentence (flat = linear), and the reader's latencies (max, p95).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder
from tiermem.serve import MemoryServer, RemoteMemory

from ._common import percentile, write_results

NAMES = ["Ana", "Bo", "Cyril", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo"]
HOBBIES = ["piano", "chess", "kayaking", "gardening", "violin", "baking", "poetry", "cycling", "pottery", "judo"]
CITIES = ["Lyon", "Bern", "Oslo", "Porto", "Riga", "Kyiv", "Turin", "Ghent", "Cork", "Brno"]


def message(sentences: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return " ".join(f"My friend {rng.choice(NAMES)}{i} took up {rng.choice(HOBBIES)} in {rng.choice(CITIES)} in "
                    f"{1990 + i % 30}." for i in range(sentences))


def one_size(sentences: int, embedder: Embedder) -> dict[str, Any]:
    text = message(sentences)
    with tempfile.TemporaryDirectory(prefix="tiermem-fair-") as folder, \
            Memory.open(Path(folder), embedder=embedder, share=False) as mem:
        mem.remember("Bo likes jazz", user_id="bo")
        server = MemoryServer(mem, port=0).start()
        latencies: list[float] = []
        done = threading.Event()

        def reader() -> None:
            client = RemoteMemory(server.url, timeout=300)
            while not done.is_set():
                started = time.perf_counter()
                client.search("what music does Bo like", user_id="bo")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.1)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            started = time.perf_counter()
            added = RemoteMemory(server.url, timeout=900).add([{"role": "user", "content": text}], user_id="ana")
            took = time.perf_counter() - started
        finally:
            done.set()
            thread.join()
            server.stop()
    return {"sentences": sentences, "chars": len(text), "add_s": round(took, 2),
            "add_ms_per_sentence": round(1000 * took / sentences, 2), "facts": len(added.events),
            "reads": len(latencies), "read_max_s": round(max(latencies, default=0.0), 3),
            "read_p95_s": round(percentile(latencies, 0.95), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, nargs="*", default=[500, 1000, 2000, 3000])
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--smoke", action="store_true", help="200 sentences, hash embedder; nothing saved")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sentences, args.embedder = [200], "hash"
    embedder: Embedder = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder(64)
    rows = []
    for n in args.sentences:
        print(f"{n} sentences ...", file=sys.stderr, flush=True)
        rows.append(one_size(n, embedder))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    result = {"embedder": args.embedder, "rows": rows}
    print(json.dumps(result, indent=2))
    if not args.smoke:
        print(f"saved {write_results('fairness', result, None)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
