"""The `tiermem` command's entry point. `tiermem mcp` is dispatched before the CLI (typer,
rich, the session store) is imported: an MCP client waits for `initialize` on every start."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "mcp" and not {"-h", "--help"} & set(sys.argv[2:]):
        from .serve.mcp_server import main as mcp_main

        raise SystemExit(mcp_main(sys.argv[2:]))
    from .cli import main as cli_main

    cli_main()
