"""The async twins of `Memory`'s calls: the same logic on a worker thread, since the
embedded stores block. They differ from the sync calls only in the I/O."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import AddResult, Context, Hit


class AsyncTwins:
    add: Any
    remember: Any
    search: Any
    context: Any
    flush: Any

    async def aadd(self, messages: Any, **kwargs: Any) -> AddResult:
        """Async `add()`: the same logic on a worker thread (the embedded stores block)."""
        return await asyncio.to_thread(self.add, messages, **kwargs)

    async def aremember(self, text: str, **kwargs: Any) -> AddResult:
        """Async `remember()`."""
        return await asyncio.to_thread(self.remember, text, **kwargs)

    async def asearch(self, query: str, **kwargs: Any) -> list[Hit]:
        """Async `search()`."""
        return await asyncio.to_thread(self.search, query, **kwargs)

    async def acontext(self, message: str, **kwargs: Any) -> Context:
        """Async `context()`."""
        return await asyncio.to_thread(self.context, message, **kwargs)

    async def aflush(self, timeout: float | None = None) -> bool:
        """Async `flush()`."""
        return await asyncio.to_thread(self.flush, timeout)
