"""Serving a Memory: `tiermem serve` (HTTP JSON API), the client behind
`Memory.open(url=...)`, and the coordinator that lets several processes share one home.

Loaded on first use, so `tiermem mcp` answers `initialize` before any store is imported.
"""

from typing import TYPE_CHECKING

_LAZY = {"METHODS": "._api", "VERSION": "._api", "RemoteMemory": "._client", "MemoryServer": "._server",
         "SharedMemory": "._shared"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tiermem.serve' has no attribute {name!r}")


if TYPE_CHECKING:
    from ._api import METHODS, VERSION
    from ._client import RemoteMemory
    from ._server import MemoryServer
    from ._shared import SharedMemory

__all__ = ["METHODS", "VERSION", "MemoryServer", "RemoteMemory", "SharedMemory"]
