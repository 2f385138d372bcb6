"""The served API: one table of methods shared by the server and the client.

Every method is `POST /v1/<name>` with a JSON object of the Memory method's keyword
arguments, answered with `{"result": ...}` or `{"error": {"type": ..., "message": ...}}`.
Results are the pydantic models of the in-process API, dumped as JSON; the client parses
them back into the same classes, so code cannot tell where memory runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from .. import _errors
from .._erasure import ErasureReceipt
from .._models import AddResult, Context, Fact, FactEvent, Hit, UsageReport

VERSION = "1"
TIME_ARGS = frozenset({"at", "as_of"})

# name -> (allowed keyword arguments, the result's type)
METHODS: dict[str, tuple[frozenset[str], Any]] = {
    "add": (frozenset({"messages", "user_id", "session_id", "at", "metadata"}), AddResult),
    "remember": (frozenset({"text", "user_id", "kind", "metadata", "at"}), AddResult),
    "update": (frozenset({"fact_id", "text", "metadata", "user_id"}), FactEvent),
    "search": (frozenset({"query", "user_id", "limit", "as_of", "kinds"}), list[Hit]),
    "context": (frozenset({"message", "user_id", "session_id", "system", "budget", "documents", "exclude_turns"}), Context),
    "facts": (frozenset({"user_id", "include_invalid", "limit", "offset"}), list[Fact]),
    "get": (frozenset({"fact_id", "user_id"}), Fact),
    "history": (frozenset({"fact_id", "user_id"}), list[FactEvent]),
    "forget": (frozenset({"fact_id", "user_id", "redact_turns"}), FactEvent),
    "retract": (frozenset({"fact_id", "user_id", "reason"}), FactEvent),
    "restore": (frozenset({"fact_id", "user_id"}), FactEvent),
    "forget_user": (frozenset({"user_id"}), ErasureReceipt),
    "usage": (frozenset({"user_id", "session_id"}), UsageReport),
    "flush": (frozenset({"timeout"}), bool),
    "users": (frozenset(), list[tuple[str, int, int]]),
    "health": (frozenset(), dict[str, Any]),
}
_ADAPTERS = {name: TypeAdapter(kind) for name, (_, kind) in METHODS.items()}

# HTTP status per error class (anything else from tiermem is a 500 with its type named).
STATUS = {"InvalidInput": 400, "ConfigError": 400, "EmbeddingMismatch": 409, "ContextOverflow": 400,
          "FactNotFound": 404, "UnknownUser": 404, "MemoryClosed": 503, "StoreUnavailable": 503,
          "MissingDependency": 501, "IndexLocked": 409, "IndexCorrupted": 500}


def dump_result(name: str, value: Any) -> Any:
    return _ADAPTERS[name].dump_python(value, mode="json")


def load_result(name: str, data: Any) -> Any:
    return _ADAPTERS[name].validate_python(data)


def encode_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in kwargs.items()}


def decode_args(name: str, body: Any) -> dict[str, Any]:
    """The request body as keyword arguments, checked against the method's."""
    if name not in METHODS:
        raise _errors.InvalidInput(f"no method {name!r}; the API has {', '.join(sorted(METHODS))}")
    if not isinstance(body, dict):
        raise _errors.InvalidInput(f"the body of {name} must be a JSON object of its arguments")
    unknown = set(body) - METHODS[name][0]
    if unknown:
        raise _errors.InvalidInput(f"{name} takes no argument {', '.join(sorted(unknown))}; "
                                   f"it takes {', '.join(sorted(METHODS[name][0])) or 'none'}")
    args = dict(body)
    for key in TIME_ARGS & set(args):
        if isinstance(args[key], str):
            try:
                args[key] = datetime.fromisoformat(args[key])
            except ValueError:
                raise _errors.InvalidInput(f"{key} must be an ISO 8601 datetime, got {args[key]!r}") from None
    return args


def error_for(kind: str, message: str) -> Exception:
    """The tiermem exception a served error names (TieredMemoryError if unknown)."""
    cls = getattr(_errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, _errors.TieredMemoryError):
        return cls(message)
    return _errors.TieredMemoryError(f"{kind}: {message}")


Call = Callable[[str, dict[str, Any]], Any]
