"""Serving a Memory: `tiermem serve` (HTTP JSON API), the client behind
`Memory.open(url=...)`, and the coordinator that lets several processes share one home."""

from ._api import METHODS, VERSION
from ._client import RemoteMemory
from ._server import MemoryServer
from ._shared import SharedMemory

__all__ = ["METHODS", "VERSION", "MemoryServer", "RemoteMemory", "SharedMemory"]
