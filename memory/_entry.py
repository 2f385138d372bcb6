"""The `tiermem` command's entry point. `tiermem mcp` is dispatched before the CLI (typer,
rich, the session store) is imported: an MCP client waits for `initialize` on every start;
`--version`, `users` and `facts list` take the quick path (`cli/_quick.py`) when they can."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "mcp" and not {"-h", "--help"} & set(sys.argv[2:]):
        from .serve.mcp_server import main as mcp_main

        raise SystemExit(mcp_main(sys.argv[2:]))
    from .cli._quick import run as quick

    done = quick(sys.argv[1:])
    if done is not None:
        raise SystemExit(done)
    from .cli import main as cli_main

    cli_main()
