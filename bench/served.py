"""What a served call costs over the same call in process: `tiermem serve` (and every process
that follows a home's owner) on loopback TCP and on a Unix socket, interleaved with the
in-process call in one run.

    python -m bench.served                 # 500 facts for one user, MiniLM, 300 calls of each kind
    python -m bench.served --smoke         # hash embedder, 30 calls: CI checks the output shape

Reported per operation (search, context, facts): p50 and p95 in process, served over TCP, over a
Unix socket, and by the same API on Starlette + uvicorn (the UI's stack), and the added milliseconds
at p50. `--nagle` serves without TCP_NODELAY, as before round 4. Nagle's algorithm once added 40 ms to
every served answer (headers and body were two writes, the second waiting on the client's
delayed ACK); this keeps that from coming back unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
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


class _AsgiServer:
    """The same served API (`tiermem.serve._api`) on Starlette and uvicorn: what moving `tiermem
    serve` to the UI's stack would cost per call (the UI's extra is needed)."""

    def __init__(self, memory: Any):
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        from tiermem.serve._api import decode_args, dump_result

        def call(request: Request, body: Any) -> JSONResponse:
            name = request.path_params["name"]
            return JSONResponse({"result": dump_result(name, getattr(memory, name)(**decode_args(name, body)))})

        async def endpoint(request: Request) -> JSONResponse:
            import anyio

            body = await request.json()
            return await anyio.to_thread.run_sync(call, request, body)  # the stores block, as in the stdlib server

        app = Starlette(routes=[Route("/v1/{name}", endpoint, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> _AsgiServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def run(facts: int, n: int, embedder: Embedder) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tiermem-served-") as tmp, \
            Memory.open(Path(tmp) / "home", embedder=embedder, share=False) as mem:
        for i in range(facts):
            mem.remember(f"Ana's friend Kim{i} took up {HOBBIES[i % 10]} in {CITIES[i % 10]} in {1990 + i % 30}.",
                         user_id="ana")
        tcp = MemoryServer(mem, port=0).start()
        unix = MemoryServer(mem, socket=Path(tmp) / "serve.sock").start()
        asgi = _AsgiServer(mem).start()
        try:
            ways = {"in-process": calls(mem), "tcp": calls(RemoteMemory(tcp.url)),
                    "unix": calls(RemoteMemory(f"unix://{Path(tmp) / 'serve.sock'}")),
                    "starlette": calls(RemoteMemory(asgi.url))}
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
            asgi.stop()
    rows = {}
    for op in times["in-process"]:
        row: dict[str, float] = {}
        for way in times:
            row[f"{way}_p50_ms"] = round(percentile(times[way][op], 0.5), 3)
            row[f"{way}_p95_ms"] = round(percentile(times[way][op], 0.95), 3)
        for way in ("tcp", "unix", "starlette"):
            row[f"{way}_added_p50_ms"] = round(row[f"{way}_p50_ms"] - row["in-process_p50_ms"], 3)
        rows[op] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.served", description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="hash embedder, 50 facts, 30 calls; nothing saved")
    parser.add_argument("--nagle", action="store_true", help="serve without TCP_NODELAY, as before round 4 "
                        "(how the 40 ms per call was measured)")
    args = parser.parse_args(argv)
    if args.nagle:
        import socketserver

        from tiermem.serve import _server

        _server._Handler.setup = socketserver.StreamRequestHandler.setup  # type: ignore[method-assign]
    embedder: Embedder = HashEmbedder(64) if args.smoke else MiniLMEmbedder()
    if args.smoke:
        args.facts, args.calls = 50, 30
    result = {"facts": args.facts, "calls": args.calls, "embedder": embedder.name, "operations": run(args.facts, args.calls, embedder)}
    print(json.dumps(result, indent=2))
    if not args.smoke:
        print(f"saved {write_results('served-nagle' if args.nagle else 'served', result, None)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
