"""The served API: the `MemoryAPI` contract as HTTP, shared by the server and the client.

Every contract method is `POST /v1/<name>` with a JSON object of its keyword arguments,
answered with `{"result": ...}` or `{"error": {"type": ..., "message": ...}}`. The method
table is derived from the contract (`tiermem._contract`): the same names, the same
parameters, results parsed back into the same classes, so code cannot tell where memory runs.
"""

from __future__ import annotations

import functools
import inspect
import typing
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from .. import _errors
from .._contract import CONTRACT, MemoryAPI

VERSION = "1"


class Method(NamedTuple):
    params: frozenset[str]
    required: frozenset[str]
    result: TypeAdapter[Any]
    typed: dict[str, TypeAdapter[Any]]  # parameters that JSON cannot carry as they are (datetimes, models)


class _ResultTypes(dict):
    """The names the contract's annotations use, imported when one is first read: the item
    tier's types (and SQLAlchemy under them) load only for a method that names them, so a
    client that calls search() does not pay for them."""

    def __missing__(self, name: str) -> Any:
        import builtins
        import importlib

        from .. import _contract

        if name in vars(_contract) or hasattr(builtins, name):
            raise KeyError(name)  # str, datetime, Sequence ...: eval finds them in the globals
        for module in ("_models", "_erasure", "items"):
            namespace = vars(importlib.import_module(f"tiermem.{module}"))
            if name in namespace:
                self[name] = namespace[name]
                return namespace[name]
        raise KeyError(name)


def _hints(name: str) -> dict[str, Any]:
    from .. import _contract

    # The contract imports its result types for type checkers only: resolve them here.
    return typing.get_type_hints(getattr(MemoryAPI, name), globalns=vars(_contract), localns=_ResultTypes())


def _needs_decoding(annotation: Any) -> bool:
    if annotation is datetime or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _needs_decoding(typing.get_args(annotation)[0])
    return any(_needs_decoding(a) for a in typing.get_args(annotation))


@functools.cache
def method(name: str) -> Method:
    """One served method, from the contract's signature and type hints (made on first use)."""
    if name not in CONTRACT:
        raise KeyError(name)
    signature = inspect.signature(getattr(MemoryAPI, name))
    hints = _hints(name)
    params = {p: v for p, v in signature.parameters.items() if p != "self"}
    required = frozenset(p for p, v in params.items() if v.default is inspect.Parameter.empty)
    typed = {p: TypeAdapter(hints[p]) for p in params if _needs_decoding(hints[p])}
    return Method(frozenset(params), required, TypeAdapter(hints["return"]), typed)


def methods() -> dict[str, Method]:
    """The served methods, from the contract's signatures and type hints."""
    return {name: method(name) for name in CONTRACT}


# HTTP status per error class (anything else from tiermem is a 500 with its type named).
STATUS = {"InvalidInput": 400, "ConfigError": 400, "EmbeddingMismatch": 409, "ContextOverflow": 400,
          "FactNotFound": 404, "UnknownUser": 404, "MemoryClosed": 503, "StoreUnavailable": 503, "OutcomeUnknown": 503,
          "MissingDependency": 501, "IndexLocked": 409, "IndexCorrupted": 500, "WriteConflict": 409,
          "Busy": 503}


def dump_result(name: str, value: Any) -> Any:
    return method(name).result.dump_python(value, mode="json")


def load_result(name: str, data: Any) -> Any:
    return method(name).result.validate_python(data)


def encode_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: to_jsonable_python(v) for k, v in kwargs.items()}


def decode_args(name: str, body: Any) -> dict[str, Any]:
    """The request body as keyword arguments, checked against the method's (the other
    checks are the method's own, as in-process)."""
    if name not in CONTRACT:
        raise _errors.InvalidInput(f"no method {name!r}; the API has {', '.join(sorted(CONTRACT))}")
    if not isinstance(body, dict):
        raise _errors.InvalidInput(f"the body of {name} must be a JSON object of its arguments")
    served = method(name)
    unknown = set(body) - served.params
    if unknown:
        raise _errors.InvalidInput(f"{name} takes no argument {', '.join(sorted(unknown))}; "
                                   f"it takes {', '.join(sorted(served.params)) or 'none'}")
    missing = served.required - set(body)
    if missing:
        raise _errors.InvalidInput(f"{name} needs {', '.join(sorted(missing))}")
    args = dict(body)
    for key in set(served.typed) & set(args):
        try:
            args[key] = served.typed[key].validate_python(args[key])
        except ValidationError as exc:
            raise _errors.InvalidInput(f"{key} of {name}: {exc.errors()[0]['msg']}") from None
    return args


def error_for(kind: str, message: str) -> Exception:
    """The tiermem exception a served error names (TieredMemoryError if unknown)."""
    cls = getattr(_errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, _errors.TieredMemoryError):
        return cls(message)
    return _errors.TieredMemoryError(f"{kind}: {message}")
