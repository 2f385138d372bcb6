"""The session tier: turns, rolling summaries, the cached profile and the fact journal."""

from ._migrations import LATEST as SCHEMA_VERSION
from ._store import SessionStore

__all__ = ["SCHEMA_VERSION", "SessionStore"]
