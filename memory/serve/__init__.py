"""Serving a Memory: `tiermem serve` (HTTP JSON API), the client behind
`Memory.open(url=...)`, and the coordinator that lets several processes share one home.

Loaded on first use, so `tiermem mcp` answers `initialize` before any store is imported.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_LAZY = {"methods": "._api", "VERSION": "._api", "RemoteMemory": "._client", "MemoryServer": "._server",
         "SharedMemory": "._shared"}


__getattr__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:
    from ._api import VERSION, methods
    from ._client import RemoteMemory
    from ._server import MemoryServer
    from ._shared import SharedMemory

__all__ = ["VERSION", "methods", "MemoryServer", "RemoteMemory", "SharedMemory"]
