"""The idempotency key of the served request being run (set by `tiermem serve` around a
call): `add()` records it in the same transaction as its turns, so a resent request never
stores them twice, even after the owner that ran the first one died."""

from __future__ import annotations

from contextvars import ContextVar

request_key: ContextVar[str | None] = ContextVar("tiermem_request_key", default=None)
