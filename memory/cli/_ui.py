"""`tiermem ui`: the inspection pages (registered on the app by `tiermem.cli._app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .._errors import TieredMemoryError
from ._app import DbOpt, EmbedderOpt, HomeOpt, _fail, _memory, _where, app, console, err_console


@app.command(short_help="Look inside in a browser (127.0.0.1; read-only by default).")
def ui(
    home: HomeOpt = None,
    database_url: DbOpt = None,
    url: Annotated[str | None, typer.Option("--url", help="a `tiermem serve` to look into instead of a home")] = None,
    server_key_file: Annotated[Path | None, typer.Option("--server-key-file", help="with --url: that server's API key "
                                                         "(first line of the file)")] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on (anything but loopback needs a key)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one)")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="open the page in the default browser")] = False,
    allow_changes: Annotated[bool, typer.Option("--allow-changes", help="offer forgetting facts and users, and export "
                                                "(each behind a confirmation)")] = False,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TIERMEM_API_KEY", show_envvar=False,
                                                help="required of every browser (default $TIERMEM_API_KEY; "
                                                     "on the command line it shows in `ps`)")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="read the key from this file's first line")] = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Pages that show what an agent remembers: users, a user's facts on a timeline with what
    replaced what, search with each channel's share of a score, and a context preview with
    the tokens (and cost) of every tier. Served on 127.0.0.1 over the public API, so it works
    on a local home, beside an agent that owns it, or on a `tiermem serve` (--url)."""
    from .. import Memory
    from ..serve._server import read_api_key
    from ..ui import run
    from ._inspect import _disk

    try:
        key = read_api_key(api_key, api_key_file, warn=lambda text: err_console.print(f"warning: {text}", markup=False))
        if url is not None:
            if home is not None or database_url is not None:
                _fail("give either --url or --home/--database-url, not both")
            server_key = read_api_key(None, server_key_file) if server_key_file else None
            memory: Any = Memory.open(url=url, api_key=server_key)
            disk = None
        else:
            where = _where(home, database_url)
            memory = _memory(home, database_url, embedder)
            disk = (lambda: _disk(where)) if where.sqlite_file is not None else None
    except TieredMemoryError as exc:
        _fail(str(exc))
    try:
        run(memory, host=host, port=port, allow_changes=allow_changes, api_key=key, open_browser=open_browser,
            disk=disk, announce=lambda line: console.print(line, markup=False, soft_wrap=True))
    except TieredMemoryError as exc:
        _fail(str(exc))
    finally:
        memory.close()
