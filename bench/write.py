"""The write path: add() latency with extraction inline vs in the background, on the same load.

    python -m bench.write                  # 200 add() calls of a user and an assistant turn, 3 users, MiniLM
    python -m bench.write --adds 600       # a burst longer than the queue: add() waits (back-pressure)
    python -m bench.write --smoke          # tiny, hash embedder: CI checks the output shape

Both modes get a fresh home and the same messages. For each, every add() call is timed (in
background mode it returns once the turns are committed), then flush() waits for the facts;
ingest throughput is turns and facts over the whole time, calls and drain together. Modes
alternate in rounds so that noise on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder

from ._common import percentile, save
from .scale import NAMES, sentence

REPLIES = ["That sounds lovely!", "Tell me more about it.", "Nice, how did it go?", "Good to know."]


def messages_for(i: int, rng: random.Random, users: int) -> tuple[str, list[dict[str, Any]]]:
    user = i % users
    return f"user-{user}", [
        {"role": "user", "name": NAMES[user % len(NAMES)], "content": sentence(rng, i), "id": f"m-{i}"},
        {"role": "assistant", "content": rng.choice(REPLIES), "id": f"r-{i}"},
    ]


def run_mode(mode: str, embedder: Embedder, adds: int, users: int, queue_size: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"tiermem-write-{mode}-"))
    rng = random.Random(11)
    try:
        mem = Memory.open(home, embedder=embedder, extraction=mode, queue_size=queue_size)  # type: ignore[arg-type]
        add_ms: list[float] = []
        start = time.perf_counter()
        for i in range(adds):
            user_id, messages = messages_for(i, rng, users)
            t = time.perf_counter()
            mem.add(messages, user_id=user_id, session_id="chat")
            add_ms.append((time.perf_counter() - t) * 1000)
        calls_s = time.perf_counter() - start
        t = time.perf_counter()
        assert mem.flush(timeout=600), "background extraction did not finish"
        drain_s = time.perf_counter() - t
        facts = mem.session.count_facts(include_invalid=True)
        mem.close()
        total = calls_s + drain_s
        return {
            "mode": mode, "adds": adds, "users": users,
            "add_ms": {"p50": round(percentile(add_ms, 0.5), 2), "p95": round(percentile(add_ms, 0.95), 2), "n": len(add_ms)},
            "calls_s": round(calls_s, 2), "drain_s": round(drain_s, 2), "facts": facts,
            "turns_per_s": round(2 * adds / total, 1), "facts_per_s": round(facts / total, 1),
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["modes"]
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r["mode"] for r in rows]
    ax.bar([f"{n}\np50" for n in names], [r["add_ms"]["p50"] for r in rows], color="#8ab")
    ax.bar([f"{n}\np95" for n in names], [r["add_ms"]["p95"] for r in rows], color="#357")
    ax.set_ylabel("add() latency (ms)")
    ax.set_title(f"add() inline vs background ({result['parameters']['embedder']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adds", type=int, default=200, help="a burst of add() calls (beyond --queue-size, add() waits)")
    parser.add_argument("--queue-size", type=int, default=256, help="Memory(queue_size=): batches queued before add() waits")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="inline/background rounds (medians reported per mode)")
    parser.add_argument("--smoke", action="store_true", help="tiny, hash embedder (CI)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--name", default="write")
    args = parser.parse_args(argv)
    embedder: Embedder = HashEmbedder(64) if args.smoke else MiniLMEmbedder()
    adds = min(args.adds, 30) if args.smoke else args.adds
    rounds = 1 if args.smoke else args.rounds
    embedder.embed(["warm up the model before anything is timed"])
    runs: dict[str, list[dict[str, Any]]] = {"inline": [], "background": []}
    for _ in range(rounds):
        for mode in ("inline", "background"):
            runs[mode].append(run_mode(mode, embedder, adds, args.users, args.queue_size))
    modes = [sorted(rs, key=lambda r: r["add_ms"]["p95"])[len(rs) // 2] for rs in runs.values()]
    inline, background = modes
    result = {
        "parameters": {"adds": adds, "users": args.users, "rounds": rounds, "queue_size": args.queue_size,
                       "embedder": embedder.name},
        "modes": modes,
        "runs": runs,
        "background_p95_over_inline_p95": round(background["add_ms"]["p95"] / (inline["add_ms"]["p95"] or 1e-9), 3),
    }
    for r in modes:
        print(f"{r['mode']:>10}: add() p50 {r['add_ms']['p50']:.2f} ms, p95 {r['add_ms']['p95']:.2f} ms | calls "
              f"{r['calls_s']} s + drain {r['drain_s']} s | {r['turns_per_s']} turns/s, {r['facts_per_s']} facts/s", flush=True)
    print(f"background add() p95 / inline add() p95 = {result['background_p95_over_inline_p95']}")
    save(args.name, result, args.out, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
