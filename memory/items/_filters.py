"""An item search's `filter`: compiled once per search, applied to each
item's JSON value.

The semantics are those of LangGraph's SQL stores, stated here because its stores differ:
- keys are dotted paths ("user.access-level"); a key may hold only letters, digits, "_",
  "-" and "." (anything else is a ValueError naming the key, as in SqliteStore);
- values compare by JSON type: 1 == 1.0, but True is not 1 and "1" is not 1;
- a plain value or `$eq` is equality (lists and objects compare whole); `None` matches a
  missing key or a JSON null; a plain object with no "$" operators matches nested fields;
- `$gt`, `$gte`, `$lt`, `$lte` compare numbers with numbers and strings with strings
  (anything else does not match); `$ne` never matches a missing key (SQL: NULL != x).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import InvalidInput

_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")
_MISSING = object()
_ORDER = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}
OPERATORS = frozenset({"$eq", "$ne", *_ORDER})

Matcher = Callable[[Any], bool]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values by type (bool is not a number; NaN equals nothing)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) or _number(b):
        return _number(a) and _number(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _at(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def _equals(expected: Any) -> Matcher:
    if expected is None:
        return lambda v: v is _MISSING or v is None
    return lambda v: v is not _MISSING and json_equal(v, expected)


def _operator(name: str, operand: Any, key: str) -> Matcher:
    if name == "$eq":
        return _equals(operand)
    if name == "$ne":
        if operand is None:
            return lambda v: v is not _MISSING and v is not None
        return lambda v: v is not _MISSING and v is not None and not json_equal(v, operand)
    if name in _ORDER:
        compare = _ORDER[name]
        if _number(operand):
            if isinstance(operand, float) and math.isnan(operand):
                return lambda v: False
            return lambda v: _number(v) and compare(v, operand)
        if isinstance(operand, str):
            return lambda v: isinstance(v, str) and compare(v, operand)
        raise InvalidInput(f"filter {key!r}: {name} compares numbers or strings, got {type(operand).__name__}")
    raise InvalidInput(f"Unsupported operator: {name!r} in filter {key!r}; use one of {', '.join(sorted(OPERATORS))}")


def _condition(expected: Any, key: str) -> Matcher:
    if isinstance(expected, Mapping):
        operators = [k for k in expected if isinstance(k, str) and k.startswith("$")]
        if operators and len(operators) != len(expected):
            raise InvalidInput(f"filter {key!r} mixes operators and fields: {sorted(expected)}")
        if operators:
            parts = [_operator(name, operand, key) for name, operand in expected.items()]
            return lambda v: all(p(v) for p in parts)
        nested = [(str(k).split("."), _condition(sub, f"{key}.{k}")) for k, sub in expected.items()]
        return lambda v: isinstance(v, Mapping) and all(match(_at(v, path)) for path, match in nested)
    return _equals(expected)


def compile_filter(filter: Mapping[str, Any] | None) -> Matcher:
    """A predicate over item values.

    Raises:
        InvalidInput (a ValueError): a key outside [A-Za-z0-9_.-], an unknown operator,
            or an ordering operator with an operand that is not a number or string.
    """
    if not filter:
        return lambda value: True
    if not isinstance(filter, Mapping):
        raise InvalidInput(f"filter must be a dict of field -> value, got {type(filter).__name__}")
    checks = []
    for key, expected in filter.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput(f"Invalid filter key: {key!r}. Filter keys may hold only letters, digits, "
                               "underscores, hyphens and dots (a dot separates nested fields)")
        checks.append((key.split("."), _condition(expected, key)))
    return lambda value: all(match(_at(value, path)) for path, match in checks)
