"""`tiermem ui`: pages that show what an agent remembers, why a fact was paged in, and what a
request costs per tier, served on 127.0.0.1 over the public contract (a local home, a shared
one, or a `tiermem serve` by URL).

    app = create_app(Memory.open("./.tiermem"))       # any MemoryAPI; an ASGI app
    run(memory, port=8765, allow_changes=False)       # what `tiermem ui` does

Needs the `ui` extra: pip install 'tiermem[ui]'.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable
from typing import Any

from .._contract import MemoryAPI
from .._errors import ConfigError, MissingDependency


def create_app(memory: MemoryAPI, **options: Any) -> Any:
    """The UI's ASGI app over `memory` (see `tiermem.ui._app.create_app` for the options)."""
    try:
        from ._app import create_app as build
    except ImportError as exc:
        raise MissingDependency(f"tiermem ui needs the ui extra ({exc.name} is missing): "
                                "pip install 'tiermem[ui]'") from exc
    return build(memory, **options)


def loopback_hosts(host: str) -> list[str]:
    """The Host headers a loopback UI answers: its own address and the loopback names, so that
    a page on another site cannot reach it by pointing its own name at 127.0.0.1."""
    return [host, "127.0.0.1", "localhost", "[::1]", "::1"]


def run(memory: MemoryAPI, *, host: str = "127.0.0.1", port: int = 8765, allow_changes: bool = False,
        api_key: str | None = None, open_browser: bool = False, disk: Callable[[], dict[str, int]] | None = None,
        announce: Callable[[str], None] = print) -> None:
    """Serve the UI until interrupted. Off loopback an API key is required (as for `tiermem
    serve`); the address printed carries it once (`?key=`), then a cookie does."""
    from ..serve._server import is_loopback

    if not is_loopback(host) and not api_key:
        raise ConfigError(f"serving the UI on {host} (not loopback) needs an API key: $TIERMEM_API_KEY or --api-key-file")
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependency("tiermem ui needs the ui extra (uvicorn is missing): pip install 'tiermem[ui]'") from exc
    app = create_app(memory, allow_changes=allow_changes, api_key=api_key, disk=disk,
                     allowed_hosts=loopback_hosts(host) if is_loopback(host) else None)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
    server = uvicorn.Server(config)

    def started() -> None:
        # After the socket listens: the browser's first request must find it (and --port 0 has a port).
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
            url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}/"
            announce(f"tiermem ui at {url}" + (" (sign in with the API key)" if api_key else "")
                     + ("; changes allowed" if allow_changes else "; read-only") + "; Ctrl-C stops")
            if open_browser:
                webbrowser.open(url)

    threading.Thread(target=started, daemon=True, name="tiermem-ui-announce").start()
    server.run()
