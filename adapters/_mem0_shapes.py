"""mem0's contract, written down once: its argument checks (with its exception types and
messages), its filter language, and the shapes of its results. `tiermem.adapters.mem0`
translates between these and tiermem's facts; nothing here touches a store.

The checks raise what mem0 2.x raises, so code written against mem0 catches the same
things: `ValueError` for a bad id, query, `top_k`, `threshold` or a read without a scope,
and `ValidationError` (mirroring `mem0.exceptions.ValidationError`) for an `add()` without
a scope or with messages of the wrong type.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from tiermem import TieredMemoryError

logger = logging.getLogger("tiermem.adapters.mem0")

SCOPE_KEYS = ("user_id", "agent_id", "run_id")
# Payload keys mem0 lifts to the top level of a result item; the rest is `metadata`.
PROMOTED_KEYS = ("user_id", "agent_id", "run_id", "actor_id", "role", "attributed_to", "expiration_date")
# Payload keys mem0 keeps for itself: caller metadata cannot set them.
RESERVED_KEYS = frozenset({"data", "hash", "created_at", "updated_at", "id", "text_lemmatized"})
IDENTITY_KEYS = frozenset({*SCOPE_KEYS, "actor_id"})
OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains"})


def _mem0_exceptions() -> Any:
    """mem0ai's exceptions module when mem0ai is installed (then ours subclass its classes, so
    `except mem0.exceptions.ValidationError` catches them), else None."""
    import importlib.util

    if importlib.util.find_spec("mem0") is None:
        return None
    try:
        from mem0 import exceptions
    except Exception:  # noqa: BLE001 - a broken mem0ai install: our own classes alone
        return None
    return exceptions


_THEIRS = _mem0_exceptions()


class MemoryError(TieredMemoryError, *((_THEIRS.MemoryError,) if _THEIRS else ())):  # type: ignore[misc] # noqa: A001
    """Base of the errors mem0 raises with an error code: mem0's own `MemoryError` too when
    mem0ai is installed."""

    def __init__(self, message: str, error_code: str, details: dict[str, Any] | None = None,
                 suggestion: str | None = None, debug_info: dict[str, Any] | None = None):
        self.message = message
        self.error_code = error_code
        self.details = details or {}
        self.suggestion = suggestion
        self.debug_info = debug_info or {}
        Exception.__init__(self, message)  # not super(): mem0's __init__ would format its own message


class ValidationError(MemoryError, *((_THEIRS.ValidationError,) if _THEIRS else ())):  # type: ignore[misc]
    """Input failed validation: mem0's own `ValidationError` too when mem0ai is installed."""


# -- argument checks -----------------------------------------------------------------------
def entity_id(value: Any, name: str) -> str | None:
    """mem0's id rule: str() of the value, trimmed; empty or containing whitespace is refused."""
    if value is None:
        return None
    trimmed = str(value).strip()
    if not trimmed:
        raise ValueError(f"Invalid {name}: cannot be empty or whitespace-only. Provide a valid identifier.")
    if any(c.isspace() for c in trimmed):
        raise ValueError(f"Invalid {name}: cannot contain whitespace. Provide a valid identifier without spaces.")
    return trimmed


def add_scope(user_id: Any, agent_id: Any, run_id: Any) -> dict[str, str]:
    scope = {k: v for k, v in (("user_id", entity_id(user_id, "user_id")), ("agent_id", entity_id(agent_id, "agent_id")),
                                ("run_id", entity_id(run_id, "run_id"))) if v}
    if not scope:
        raise ValidationError(
            message="At least one of 'user_id', 'agent_id', or 'run_id' must be provided.",
            error_code="VALIDATION_001",
            details={"provided_ids": {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}},
            suggestion="Please provide at least one identifier to scope the memory operation.",
        )
    return scope


def read_filters(filters: Mapping[str, Any] | None, kwargs: Mapping[str, Any], method: str) -> dict[str, Any]:
    """search()/get_all() scope: inside `filters`, never as top-level keywords."""
    top_level = set(SCOPE_KEYS) & set(kwargs)
    if top_level:
        raise ValueError(f"Top-level entity parameters {top_level} are not supported in {method}(). "
                         "Use filters={'user_id': '...'} instead.")
    if kwargs:  # mem0 accepts and ignores them; say so rather than fail a working mem0 program
        logger.warning("%s(): ignoring arguments mem0's open-source API does not use: %s", method, sorted(kwargs))
    out = dict(filters) if filters else {}
    for key in SCOPE_KEYS:
        if key in out:
            out[key] = entity_id(out[key], key)
    if not any(key in out for key in SCOPE_KEYS):
        raise ValueError("filters must contain at least one of: user_id, agent_id, run_id. Example: filters={'user_id': 'u1'}")
    return out


def search_params(threshold: Any, top_k: Any) -> None:
    if threshold is not None:
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            raise ValueError("threshold must be a valid number")
        if threshold < 0 or threshold > 1:
            raise ValueError(f"Invalid threshold: {threshold}. Must be between 0 and 1 (inclusive).")
    if top_k is not None:
        if not isinstance(top_k, int) or isinstance(top_k, bool):
            raise ValueError("top_k must be a valid integer")
        if top_k < 0:
            raise ValueError(f"Invalid top_k: {top_k}. Must be a non-negative integer.")


def search_query(query: Any) -> str:
    if not isinstance(query, str):
        raise ValueError("Invalid query: must be a non-empty string.")
    if not query.strip():
        raise ValueError("Invalid query: cannot be empty or whitespace-only.")
    return query.strip()


def as_messages(messages: Any) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, dict):
        return [messages]
    if not isinstance(messages, list):
        raise ValidationError(
            message="messages must be str, dict, or list[dict]",
            error_code="VALIDATION_003",
            details={"provided_type": type(messages).__name__, "valid_types": ["str", "dict", "list[dict]"]},
            suggestion="Convert your input to a string, dictionary, or list of dictionaries.",
        )
    return messages


def expiration(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as exc:
            raise ValueError("expiration_date must be a valid date in YYYY-MM-DD format.") from exc
    raise ValueError("expiration_date must be a date string in YYYY-MM-DD format.")


def is_expired(payload: Mapping[str, Any], today: date | None = None) -> bool:
    value = payload.get("expiration_date")
    if not value:
        return False
    try:
        return date.fromisoformat(str(value)) < (today or datetime.now(UTC).date())
    except ValueError:
        return False


# -- filters -------------------------------------------------------------------------------
def check_filters(filters: Mapping[str, Any]) -> None:
    """Refuse what mem0 refuses before anything is read (unknown operators, malformed
    AND/OR/NOT)."""
    for key, value in filters.items():
        if key in ("AND", "OR", "NOT"):
            if not isinstance(value, list) or (key != "AND" and not value):
                raise ValueError(f"{key} operator requires a {'non-empty ' if key != 'AND' else ''}list of conditions")
            for condition in value:
                check_filters(condition)
        elif isinstance(value, dict):
            for operator in value:
                if operator not in OPERATORS:
                    raise ValueError(f"Unsupported metadata filter operator: {operator}")


def matches(payload: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether a memory's payload (its metadata with its scope) passes mem0 filters."""
    for key, condition in filters.items():
        if key == "AND":
            if not all(matches(payload, c) for c in condition):
                return False
        elif key == "OR":
            if not any(matches(payload, c) for c in condition):
                return False
        elif key == "NOT":
            if any(matches(payload, c) for c in condition):
                return False
        elif not _condition(payload, key, condition):
            return False
    return True


def _condition(payload: Mapping[str, Any], key: str, condition: Any) -> bool:
    present = key in payload
    value = payload.get(key)
    if condition == "*":
        return present
    if not isinstance(condition, dict):
        return present and value == condition
    for op, want in condition.items():
        if op == "eq" and not (present and value == want):
            return False
        if op == "ne" and present and value == want:
            return False
        if op == "in" and not (present and value in want):
            return False
        if op == "nin" and present and value in want:
            return False
        if op in ("gt", "gte", "lt", "lte") and not _compare(value, op, want):
            return False
        if op == "contains" and not (isinstance(value, str) and str(want) in value):
            return False
        if op == "icontains" and not (isinstance(value, str) and str(want).lower() in value.lower()):
            return False
    return True


def _compare(value: Any, op: str, want: Any) -> bool:
    try:
        if op == "gt":
            return bool(value > want)
        if op == "gte":
            return bool(value >= want)
        if op == "lt":
            return bool(value < want)
        return bool(value <= want)
    except TypeError:  # a missing key, or a string against a number: no match (as a store would)
        return False


# -- results ---------------------------------------------------------------------------------
def public_id(fact_id: str) -> str:
    """tiermem's ids are UUID hex; mem0 hands out the hyphenated form."""
    if len(fact_id) == 32:
        try:
            return str(uuid.UUID(hex=fact_id))
        except ValueError:
            pass
    return fact_id


def id_spellings(memory_id: Any) -> list[str]:
    """The ids a caller's memory id may be stored under (as given, UUID hex, hyphenated)."""
    text = str(memory_id)
    out = [text]
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return out
    return out + [s for s in (parsed.hex, str(parsed)) if s != text]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # mem0's content hash (not used for security)


def memory_item(fact_id: str, text: str, payload: Mapping[str, Any], created_at: datetime, updated_at: datetime,
                *, score: float | None = None, with_score: bool = True) -> dict[str, Any]:
    """One memory as mem0's get / get_all / search return it."""
    item: dict[str, Any] = {"id": public_id(fact_id), "memory": text, "hash": md5(text), "metadata": None}
    if with_score:
        item["score"] = score
    item["created_at"] = iso(created_at)
    item["updated_at"] = iso(updated_at)
    for key in PROMOTED_KEYS:
        if key in payload:
            item[key] = payload[key]
    extra = {k: v for k, v in payload.items() if k not in PROMOTED_KEYS}
    if extra:
        item["metadata"] = extra
    return item
