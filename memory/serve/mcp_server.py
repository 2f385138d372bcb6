"""`tiermem mcp`: an MCP memory server on the official SDK (stdio, or streamable HTTP).

Tools: `remember`, `search`, `list_memories` (paged), `forget`, `get_context`. The user is
fixed by `--user` or passed per call (`user_id`), as configured. Memory is reached through
`SharedMemory`: several `tiermem mcp` processes (one per client window) share one home,
the first to need it serves it to the others, and the next takes over when it exits.
Nothing heavy is imported before the first tool call, so `initialize` answers at once.
"""

import argparse
import threading
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field

from .._errors import FactNotFound, TieredMemoryError, UnknownUser

# Each tool and the contract method it wraps (tests check that the method exists and takes
# the tool's arguments): the tools are a model-facing view of `MemoryAPI`, not a second API.
TOOLS = {"remember": "remember", "search": "search", "list_memories": "facts", "forget": "forget",
         "get_context": "context"}
TOOL_ARGUMENTS = {"id": "fact_id"}  # a tool argument named otherwise than the method's parameter

INSTRUCTIONS = ("Long-term memory of the user. Call `search` (or `get_context`) before answering questions that "
                "may depend on what the user told you before; call `remember` for durable facts the user states "
                "(preferences, people, plans, constraints); `forget` erases one memory by id.")


def build_server(memory: Any, *, user: str | None = None) -> Any:
    """An MCPServer over `memory` (a Memory, RemoteMemory or SharedMemory)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    server = MCPServer("tiermem", instructions=INSTRUCTIONS)
    UserArg = Annotated[str, Field(description="the user whose memory this is (a stable id, e.g. an email or account id)")]

    def who(user_id: str | None) -> str:
        if user is not None:
            return user
        if not user_id:
            raise ToolError("user_id: required (this server is not fixed to one user: pass the user's id)")
        return user_id

    def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UnknownUser:
            return None
        except FactNotFound as exc:
            raise ToolError(f"id: {exc}") from None
        except TieredMemoryError as exc:
            raise ToolError(str(exc)) from None

    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    def remember(text: Annotated[str, Field(description="one self-contained fact, e.g. 'Ana is allergic to peanuts'")],
                 user_id: str | None = None) -> dict[str, Any]:
        """Store a durable fact about the user. A fact that contradicts a stored one replaces it (the old one stays
        in its history); a fact already known is not stored twice."""
        result = run(memory.remember, text=text, user_id=who(user_id))
        event = result.events[0]
        return {"id": event.fact_id, "text": event.fact.text if event.fact else text, "op": event.op}

    def search(query: Annotated[str, Field(description="keywords or a question, e.g. 'what is Ana allergic to?'")],
               limit: Annotated[int, Field(ge=1, le=50, description="how many memories to return")] = 5,
               user_id: str | None = None) -> list[dict[str, Any]]:
        """Find the user's memories most relevant to a query (keyword and meaning), best first."""
        hits = run(memory.search, query=query, user_id=who(user_id), limit=limit) or []
        return [{"id": h.fact.id, "text": h.fact.text, "score": round(h.score, 4), "kind": h.fact.kind,
                 "since": h.fact.valid_from.isoformat()} for h in hits]

    def list_memories(limit: Annotated[int, Field(ge=1, le=200, description="page size")] = 20,
                      offset: Annotated[int, Field(ge=0, description="how many to skip (the previous page's next_offset)")] = 0,
                      user_id: str | None = None) -> dict[str, Any]:
        """List the user's current memories, oldest first, a page at a time."""
        facts = run(memory.facts, user_id=who(user_id), limit=limit + 1, offset=offset) or []
        page = facts[:limit]
        return {"memories": [{"id": f.id, "text": f.text, "kind": f.kind, "since": f.valid_from.isoformat()} for f in page],
                "next_offset": offset + limit if len(facts) > limit else None}

    def forget(id: Annotated[str, Field(description="the id of the memory to erase (from search or list_memories)")],
               user_id: str | None = None) -> dict[str, Any]:
        """Erase one memory for good (from every tier; it cannot be restored)."""
        event = run(memory.forget, fact_id=id, user_id=who(user_id))
        return {"id": id, "forgotten": event is not None}

    def get_context(message: Annotated[str, Field(description="the user's new message")],
                    budget: Annotated[int, Field(ge=256, le=200_000, description="token budget of the whole context")] = 4000,
                    user_id: str | None = None) -> dict[str, Any]:
        """What memory would page in for a message: the user's profile, the relevant memories, and a summary of earlier
        turns, as text to put in front of the model."""
        ctx = run(memory.context, message=message, user_id=who(user_id), budget=budget)
        if ctx is None:
            return {"context": "", "memories": []}
        parts = [b["text"] for b in ctx.system] + [b["text"] for b in ctx.messages[-1]["content"][:-1] if b.get("text")]
        return {"context": "\n\n".join(p for p in parts if p), "memories": [h.fact.text for h in ctx.facts]}

    tools = [
        (remember, ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)),
        (search, read_only),
        (list_memories, read_only),
        (forget, ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)),
        (get_context, read_only),
    ]
    for fn, annotations in tools:
        # Fixed user: the tools do not ask for one. Otherwise `user_id` is a required argument.
        exposed = _with_user_param(fn, None if user is not None else UserArg)
        server.tool(name=fn.__name__, annotations=annotations)(exposed)
    return server


def _with_user_param(fn: Any, annotation: Any) -> Any:
    """The same tool with `user_id` removed (annotation None) or made required."""
    import functools
    import inspect

    signature = inspect.signature(fn)
    params = [p for name, p in signature.parameters.items() if name != "user_id"]
    if annotation is not None:
        params.insert(0, inspect.Parameter("user_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation))

    @functools.wraps(fn)
    def tool(**kwargs: Any) -> Any:
        return fn(**{"user_id": None, **kwargs})

    tool.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    tool.__annotations__ = {**{p.name: p.annotation for p in params}, "return": signature.return_annotation}
    del tool.__wrapped__  # the SDK must read this signature, not the original's
    return tool


class LazySharedMemory:
    """The home's SharedMemory, made on the first tool call (the stores, numpy and the
    embedder are imported then, not while the client waits for `initialize`)."""

    def __init__(self, home: str | None, embedder: str):
        self.home, self.embedder = home, embedder
        self._shared: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._shared is None:
                from ..embed import embedder_named
                from ._shared import SharedMemory

                self._shared = SharedMemory(self.home, embedder=embedder_named(self.embedder))
            return self._shared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()


def run(home: str | None = None, *, user: str | None = None, http: bool = False, host: str = "127.0.0.1",
        port: int = 8766, embedder: str = "minilm", api_key_file: str | None = None) -> None:
    """Serve MCP on stdio (or streamable HTTP) until the client goes away. Over HTTP a key
    ($TIERMEM_API_KEY or `api_key_file`) is required of every request when set, and must be
    set for any address but loopback."""
    import os

    from .._messages import check_id
    from ..embed import EMBEDDER_NAMES
    from ._server import is_loopback, read_api_key

    if embedder not in EMBEDDER_NAMES:  # now, not at the first tool call
        raise TieredMemoryError(f"--embedder must be one of {', '.join(EMBEDDER_NAMES)}, got {embedder!r}")
    if user is not None:
        user = check_id(user, "--user")
    api_key = read_api_key(os.environ.get("TIERMEM_API_KEY") or None, api_key_file) if http else None
    if http and not api_key and not is_loopback(host):
        raise TieredMemoryError(f"serving MCP on {host} (not loopback) needs an API key: $TIERMEM_API_KEY or "
                                "--api-key-file")
    memory = LazySharedMemory(home, embedder)
    server = build_server(memory, user=user)
    try:
        if http:
            import uvicorn

            app = server.streamable_http_app(host=host)
            uvicorn.run(BearerKey(app, api_key) if api_key else app, host=host, port=port, log_level="warning")
        else:
            server.run("stdio")
    finally:
        memory.close()


class BearerKey:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <key>`, checked
    before the MCP app reads a byte of its body."""

    def __init__(self, app: Any, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.key):
                body = b'{"error": {"type": "Unauthorized", "message": "missing or wrong API key (Authorization: Bearer <key>)"}}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def main(argv: Sequence[str]) -> int:
    """`tiermem mcp ...` without loading the rest of the CLI (see `tiermem._entry`)."""
    import sys

    parser = argparse.ArgumentParser(prog="tiermem mcp", description="An MCP memory server (tools: remember, search, "
                                     "list_memories, forget, get_context).")
    parser.add_argument("--home", default=None, help="memory folder (default $TIERMEM_HOME, else ./.tiermem)")
    parser.add_argument("--user", default=None, help="fix every call to this user (else each call names one)")
    parser.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key-file", default=None, help="with --http: require the key on this file's first line "
                        "(default $TIERMEM_API_KEY); any --host but loopback needs one")
    parser.add_argument("--embedder", default="minilm", help="minilm (default), sentence-transformers, or hash (tests)")
    args = parser.parse_args(list(argv))
    try:
        run(args.home, user=args.user, http=args.http, host=args.host, port=args.port, embedder=args.embedder,
            api_key_file=args.api_key_file)
    except TieredMemoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
