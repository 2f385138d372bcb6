"""The one set of limits every door applies (in-process, served, MCP, the adapters, the
CLI), and the checks of plain values. Standard library only: the CLI's quick commands use
them without loading the models."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from ._errors import InvalidInput

MAX_MESSAGE_CHARS = 400_000  # ~100k tokens: a large tool result fits, a whole book does not
MAX_CALL_CHARS = 2_000_000  # one add() call, all messages together: checked before any work
MAX_ID_CHARS = 256
MAX_FACT_CHARS = 20_000  # remember() / update(): a statement, not a document
MAX_QUERY_CHARS = 20_000  # search()
MAX_REASON_CHARS = 1_000  # retract(reason=)
MAX_METADATA_CHARS = 65_536  # as JSON
MAX_METADATA_DEPTH = 32
MAX_LIMIT = 10_000  # search(limit=) and a page of facts(limit=)
MAX_OFFSET = 1_000_000_000
MAX_BUDGET = 10_000_000  # context(budget=) in tokens
MAX_TIMEOUT = 86_400.0  # flush(timeout=) in seconds

def check_text(value: Any, what: str, *, allow_empty: bool = False, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """A string that every backend can store: no NUL character (PostgreSQL refuses them,
    SQLite would keep them), no lone surrogate (not encodable as UTF-8), at most `max_chars`."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > max_chars:
        raise InvalidInput(f"{what} is {len(value):,} characters, over the {max_chars:,} limit")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character (\\x00); remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode text (a lone surrogate at position {exc.start})") from None
    return value


def check_id(value: Any, what: str) -> str:
    """An id (user, session, fact, message): a non-empty string, compared exactly after
    Unicode NFC normalization; case matters, and leading or trailing whitespace and control
    characters are refused rather than silently stripped (so 'alice' and 'alice ' can never
    be two tenants by accident)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    check_text(value, what)
    if value != value.strip():
        raise InvalidInput(f"{what} {value!r} has leading or trailing whitespace; strip it")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidInput(f"{what} {value!r} contains a control character")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{what} is longer than {MAX_ID_CHARS} characters")
    return unicodedata.normalize("NFC", value)


def check_count(value: Any, what: str, *, low: int = 1, high: int = MAX_LIMIT, none: bool = False) -> int | None:
    """An integer from `low` to `high` (None too, with `none`): a limit, an offset, a budget."""
    if none and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"{what} must be an integer from {low:,} to {high:,}{' or None' if none else ''}, got {value!r}")
    return value


def check_timeout(value: Any, what: str = "timeout") -> float | None:
    """Seconds to wait: None (no limit) or a number from 0 to a day."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_TIMEOUT:
        raise InvalidInput(f"{what} must be None or a number of seconds from 0 to {MAX_TIMEOUT:,.0f}, got {value!r}")
    return float(value)


def check_ids(value: Any, what: str) -> list[str]:
    """A list of ids (a str is one id, not a list of characters: refused)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidInput(f"{what} must be a list of ids, got {type(value).__name__}")
    return [check_id(v, f"{what}[{i}]") for i, v in enumerate(value)]


