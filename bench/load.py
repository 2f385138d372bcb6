"""Many processes on one home, the owner killed now and then: is every acknowledged write
stored exactly once, and does any call fail with anything but a tiermem error?

    python -m bench.load                         # 4 processes, 60 s, the owner SIGKILLed every 8 s
    python -m bench.load --processes 6 --seconds 120 --kill-every 5
    python -m bench.load --smoke                 # 3 processes, 12 s, 2 kills: CI checks the output shape

Each worker process opens the home with `Memory.open(home)` (the first becomes the owner and
serves it on 127.0.0.1; the others follow it, and one takes over when it dies) and runs a mix
of add, remember, search, facts and context calls for its own tenant, printing every write the
memory acknowledged. A write that raised `OutcomeUnknown` is resent with its key until it is
answered, as the error tells the caller to do. The parent kills whichever process owns the
home every `--kill-every` seconds and starts a new worker in its place.

At the end the home is opened once more and every acknowledged write is looked up:
lost = acknowledged and not stored; duplicated = stored more than once; raw errors = calls
that raised something other than a `TieredMemoryError` (or hung past their timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ._common import write_results

WORKER = r"""
import json, random, sys, time
from tiermem import HashEmbedder, Memory, OutcomeUnknown, TieredMemoryError

home, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = random.Random(name)
out = lambda record: print(json.dumps(record), flush=True)
mem = Memory.open(home, embedder=HashEmbedder(64))
user = f"tenant-{name}"
deadline = time.monotonic() + seconds
i = 0
while time.monotonic() < deadline:
    i += 1
    token = f"{name}x{i}"
    op = rng.choice(["add", "add", "remember", "search", "facts", "context"])
    try:
        if op == "add":
            call = lambda: mem.add([{"role": "user", "content": f"My locker code word is {token}."}], user_id=user,
                                   session_id="load")
        elif op == "remember":
            call = lambda: mem.remember(f"The parcel marked {token} went to Oslo.", user_id=user)
        elif op == "search":
            call = lambda: mem.search("locker code word", user_id=user, limit=5)
        elif op == "facts":
            call = lambda: mem.facts(user_id=user, limit=5)
        else:
            call = lambda: mem.context("what is my locker code word?", user_id=user, session_id="load", budget=1500)
        try:
            call()
        except OutcomeUnknown as unknown:  # the answer was lost: resend until the home answers
            for _ in range(30):
                try:
                    mem.resend(unknown.key) if hasattr(mem, "resend") else None
                    break
                except OutcomeUnknown:
                    time.sleep(0.5)
            else:
                raise
        if op in ("add", "remember"):
            out({"ack": op, "token": token, "user": user})
    except TieredMemoryError as exc:
        out({"tiermem_error": type(exc).__name__, "message": str(exc)[:300], "op": op})
    except Exception as exc:
        out({"raw_error": type(exc).__name__, "message": str(exc)[:300], "op": op})
mem.close()
out({"done": i})
"""


class Worker:
    def __init__(self, home: Path, name: str, seconds: float):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        self.name = name
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(home), name, str(seconds)], stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.killed = False
        self.records: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.records.append({"raw_error": "garbled output", "message": line[:200]})


def _owner_pid(home: Path) -> int | None:
    try:
        return int(json.loads((home / "serve.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def run(processes: int, seconds: float, kill_every: float, home: Path | None = None) -> dict[str, Any]:
    from tiermem import HashEmbedder, Memory

    home = home or Path(tempfile.mkdtemp(prefix="tiermem-load-"))
    workers = [Worker(home, f"w{n}", seconds) for n in range(processes)]
    started = time.monotonic()
    kills, spawned = 0, processes
    while time.monotonic() - started < seconds:
        time.sleep(kill_every)
        left = seconds - (time.monotonic() - started)
        pid = _owner_pid(home)
        victim = next((w for w in workers if w.proc.pid == pid and w.proc.poll() is None), None)
        if victim is None or left < 2 * kill_every / 3:
            continue
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.killed = True
        kills += 1
        workers.append(Worker(home, f"w{spawned}", left))  # the same number of processes keeps calling
        spawned += 1
    hung = 0
    for w in workers:
        try:
            w.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            hung += 1
        w.reader.join(10)
        if not w.killed and w.proc.returncode != 0:  # a worker that died on its own: a crash the caller saw
            w.stderr.seek(0)
            w.records.append({"raw_error": f"exit {w.proc.returncode}", "message": w.stderr.read()[-300:]})
    records = [r for w in workers for r in w.records]
    acked = [r for r in records if "ack" in r]
    raw = [r for r in records if "raw_error" in r]
    errors = Counter(r["tiermem_error"] for r in records if "tiermem_error" in r)
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        stored: Counter[str] = Counter()
        for user in {r["user"] for r in acked}:
            for turn in mem.session.turns(user):
                stored.update(w.rstrip(".") for w in turn.content.split() if "x" in w and w[0] == "w")
            for fact in mem.facts(user_id=user, limit=None):
                if fact.extractor == "caller":
                    stored.update(w for w in fact.text.split() if "x" in w and w[0] == "w")
    lost = [r["token"] for r in acked if stored[r["token"]] == 0]
    duplicated = [r["token"] for r in acked if stored[r["token"]] > 1]
    return {"processes": processes, "seconds": seconds, "kills": kills, "calls": sum(r.get("done", 0) for r in records),
            "acknowledged_writes": len(acked), "lost": len(lost), "duplicated": len(duplicated),
            "raw_errors": len(raw) + hung, "tiermem_errors": dict(errors), "examples": {
                "lost": lost[:5], "duplicated": duplicated[:5], "raw": raw[:5]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=8)
    parser.add_argument("--smoke", action="store_true", help="3 processes, 12 s, a kill every 5 s")
    args = parser.parse_args(argv)
    if args.smoke:
        args.processes, args.seconds, args.kill_every = 3, 12, 5
    print(f"{args.processes} processes for {args.seconds:g} s, the owner killed every {args.kill_every:g} s ...",
          file=sys.stderr)
    result = run(args.processes, args.seconds, args.kill_every)
    print(json.dumps(result, indent=2))
    if not args.smoke:
        print(f"saved {write_results('load', result, None)}", file=sys.stderr)
    return 0 if not (result["lost"] or result["duplicated"] or result["raw_errors"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
