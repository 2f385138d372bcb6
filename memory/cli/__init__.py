"""The `tiermem` admin CLI (`_app.py` holds the commands). This package's own import is
empty on purpose: the quick path (`_quick.py`) runs without loading typer's app, and
`from tiermem.cli import app` still works (loaded on first use)."""

from __future__ import annotations

from typing import Any


def main() -> None:
    from ._app import main as run

    run()


def __getattr__(name: str) -> Any:
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module(f"{__name__}._app"), name)
