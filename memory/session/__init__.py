"""The session tier: turns, rolling summaries, the cached profile and the fact journal."""

from ._migrations import LATEST as SCHEMA_VERSION
from ._store import FACT_TABLES, ITEM_TABLES, SessionStore

__all__ = ["FACT_TABLES", "ITEM_TABLES", "SCHEMA_VERSION", "SessionStore"]
