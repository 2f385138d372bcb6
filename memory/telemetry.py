"""OpenTelemetry traces and metrics of every memory operation, on the application's providers.

tiermem configures nothing: spans go to whatever `TracerProvider` the application set
(`opentelemetry.trace.set_tracer_provider`, or `opentelemetry-instrument`), metrics to its
`MeterProvider`. Without an SDK they are the API's no-ops. While nothing in the process has
imported `opentelemetry.trace` no provider can have been set, so tiermem does not import it
either (a cold `tiermem search` does not pay the ~90 ms import for spans nobody receives).

What the spans follow: the OpenTelemetry GenAI conventions, with the memory operations of
their proposal (`gen_ai.operation.name` = `search_memory`, `update_memory`, `delete_memory`;
`gen_ai.memory.*` attributes; span names `{operation} {store}`), `embeddings` for the
embedder, `db.*` for the index query. Each public call of a `Memory` is one span; the
embedding, the index query, extraction and reconciliation are its children; a served call
is a server span whose parent the client sent in `traceparent`.

What users said never goes into a span or an event: no query, message, fact or exception
text, and the user id only as a hash. An application opts in with
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (the GenAI instrumentations'
switch) or `TIERMEM_TRACE_CONTENT=1`: then queries, user ids and error messages are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["CONTENT_ENV", "OPERATIONS", "capture_content", "inject", "listening", "operation", "record_error", "served", "span"]

SCOPE = "tiermem"
STORE = "tiermem"
CONTENT_ENV = ("TIERMEM_TRACE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")

# The GenAI memory operation of each public method (an upsert is `update_memory`).
OPERATIONS: dict[str, str] = {
    "add": "update_memory", "remember": "update_memory", "update": "update_memory", "restore": "update_memory",
    "write_file": "update_memory", "record_usage": "update_memory",
    "search": "search_memory", "context": "search_memory", "facts": "search_memory", "get": "search_memory",
    "history": "search_memory", "users": "search_memory", "turns": "search_memory", "files": "search_memory", "usage": "search_memory",
    "forget": "delete_memory", "retract": "delete_memory", "forget_session": "delete_memory",
    "forget_user": "delete_memory", "delete_files": "delete_memory",
}

_MEMORY_TYPE = {"add": "long_term", "remember": "long_term", "search": "long_term", "context": "long_term",
                "facts": "long_term", "forget_session": "short_term", "items": "long_term"}


def capture_content() -> bool:
    """Whether the application opted in to what users said in spans (off by default)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in CONTENT_ENV)


def listening() -> bool:
    """Whether the application set a tracer or meter provider. Before it imports the API none
    can exist (nothing is imported here for it); the API's own proxy and no-op providers
    receive nothing, so with only those a call builds no span at all."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return True
    metrics = sys.modules.get("opentelemetry.metrics")
    return metrics is not None and type(metrics.get_meter_provider()).__name__ not in _NO_METERS


_NO_METERS = frozenset({"_ProxyMeterProvider", "NoOpMeterProvider"})  # the API's own: nobody reads them


class _State:
    tracer: Any = None
    duration: Any = None


def _tracer() -> Any:
    if _State.tracer is None:
        from opentelemetry import trace

        from . import __version__

        # A proxy until the application sets its provider; it follows the provider once set.
        _State.tracer = trace.get_tracer(SCOPE, __version__)
    return _State.tracer


def _duration() -> Any:
    if _State.duration is None:
        if "opentelemetry.metrics" not in sys.modules:
            return None
        from opentelemetry import metrics

        from . import __version__

        meter = metrics.get_meter(SCOPE, __version__)
        _State.duration = meter.create_histogram(
            "gen_ai.memory.operation.duration", unit="s", description="Duration of tiermem memory operations")
    return _State.duration


def user_hash(user_id: str) -> str:
    """A stable, non-reversible label for a user id (the id itself is kept only on opt-in)."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _clean(value: str, limit: int = 256) -> str:
    # Attributes are built before the call checks its arguments: a lone surrogate (which the
    # call will reject) must not break the span instead.
    return value.encode("utf-8", "replace").decode("utf-8")[:limit]


class Operation:
    """The span of one public call; `result()` adds what its answer says (counts, tokens)."""

    def __init__(self, span: Any):
        self.span = span

    def set(self, key: str, value: Any) -> None:
        if self.span is not None and value is not None:
            self.span.set_attribute(key, value)

    def result(self, method: str, value: Any) -> None:
        if self.span is None or not self.span.is_recording():
            return
        describe = _DESCRIBE.get(method)
        if describe is not None:
            for key, attr in describe(value).items():
                self.set(key, attr)


def _identity(method: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes from a call's arguments: ids and sizes, never text unless opted in."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATIONS.get(method, method),
        "gen_ai.provider.name": STORE,
        "gen_ai.memory.store.name": STORE,
        "tiermem.operation": method,
    }
    content = capture_content()
    user = arguments.get("user_id")
    if isinstance(user, str):
        attrs["gen_ai.memory.scope"] = "session" if method == "forget_session" else "user"
        attrs["tiermem.user.hash"] = user_hash(user)
        attrs["gen_ai.memory.namespace"] = _clean(user) if content else user_hash(user)
    session = arguments.get("session_id")
    if isinstance(session, str):
        attrs["gen_ai.conversation.id"] = _clean(session)
    fact_id = arguments.get("fact_id")
    if isinstance(fact_id, str):
        attrs["gen_ai.memory.id"] = _clean(fact_id)
    if method in _MEMORY_TYPE:
        attrs["gen_ai.memory.type"] = _MEMORY_TYPE[method]
    limit = arguments.get("limit")
    if method == "search" and isinstance(limit, int):
        attrs["tiermem.search.limit"] = limit
    budget = arguments.get("budget")
    if method == "context" and isinstance(budget, int):
        attrs["tiermem.context.budget"] = budget
    if content:
        query = arguments.get("query", arguments.get("message"))
        if isinstance(query, str):
            attrs["gen_ai.memory.query"] = _clean(query, 8192)
    return attrs


@contextlib.contextmanager
def operation(method: str, arguments: Callable[[], Mapping[str, Any]], *, kind: str = "INTERNAL") -> Iterator[Operation]:
    """One public call as a span (and a duration measurement). `arguments` is called only
    when a tracer may be listening, so an untraced process pays one dict lookup. A
    `RemoteMemory` call is a CLIENT span whose context travels in the request's headers."""
    if not listening():
        yield Operation(None)
        return
    from opentelemetry.trace import SpanKind

    attrs = _identity(method, arguments())
    started = time.perf_counter()
    error: str | None = None
    with _tracer().start_as_current_span(f"{attrs['gen_ai.operation.name']} {STORE}", kind=getattr(SpanKind, kind),
                                         attributes=attrs, record_exception=False,
                                         set_status_on_exception=False) as current:
        try:
            yield Operation(current)
        except BaseException as exc:
            error = type(exc).__name__
            record_error(current, exc)
            raise
        finally:
            histogram = _duration()
            if histogram is not None:
                measured = {"gen_ai.operation.name": attrs["gen_ai.operation.name"], "tiermem.operation": method}
                if error is not None:
                    measured["error.type"] = error
                histogram.record(time.perf_counter() - started, measured)


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "INTERNAL") -> Iterator[Any]:
    """A child span (the embedding, the index query, extraction, reconciliation): None and
    no cost when nothing listens."""
    if not listening():
        yield None
        return
    from opentelemetry.trace import SpanKind

    with _tracer().start_as_current_span(name, kind=getattr(SpanKind, kind), attributes=dict(attributes or {}),
                                         record_exception=False, set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            record_error(current, exc)
            raise


def inject(headers: dict[str, str]) -> None:
    """The current span's context into an outgoing request's headers (W3C `traceparent`)."""
    if listening():
        from opentelemetry import propagate

        propagate.inject(headers)


@contextlib.contextmanager
def served(method: str, headers: Mapping[str, str], address: str) -> Iterator[Any]:
    """A request `tiermem serve` answers: a SERVER span, child of the caller's span when its
    headers carry one; the `Memory` call it makes is that span's child."""
    if not listening():
        yield None
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    parent = propagate.extract({k.lower(): v for k, v in headers.items()})
    attrs = {"gen_ai.operation.name": OPERATIONS.get(method, method), "tiermem.operation": method,
             "rpc.system.name": "tiermem", "rpc.method": method, "server.address": address}
    with _tracer().start_as_current_span(f"tiermem.serve/{method}", context=parent, kind=SpanKind.SERVER,
                                         attributes=attrs, record_exception=False,
                                         set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            record_error(current, exc)
            raise


def record_error(current: Any, exc: BaseException) -> None:
    """Status ERROR, `error.type` and an `exception` event. Its message and the last line of
    its stack trace are the error class's own description unless content is opted in: an
    error's message may quote the input it rejected."""
    from opentelemetry.trace import Status, StatusCode

    if isinstance(exc, GeneratorExit):
        return
    kind = type(exc).__qualname__
    message = str(exc) if capture_content() else _describe_error(exc)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    current.set_attribute("error.type", kind)
    current.record_exception(exc, attributes={
        "exception.type": f"{type(exc).__module__}.{kind}",
        "exception.message": message,
        "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{kind}: {message}",
        "exception.escaped": True,
    })
    current.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))


def _describe_error(exc: BaseException) -> str:
    doc = (type(exc).__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split()) or type(exc).__name__


# -- what a result says, per method (counts and tokens, never text) -------------------------------
def _hits(value: Any) -> dict[str, Any]:
    return {"gen_ai.memory.search.result.count": len(value)} if isinstance(value, list) else {}


def _context(value: Any) -> dict[str, Any]:
    report = getattr(value, "report", None)
    if report is None:
        return {}
    attrs: dict[str, Any] = {f"tiermem.context.tokens.{tier}": n for tier, n in report.tokens.items()}
    attrs["tiermem.context.tokens.total"] = report.total
    attrs["tiermem.context.prefix_tokens"] = report.prefix_tokens
    attrs["tiermem.context.cacheable"] = report.cacheable
    attrs["tiermem.context.dropped"] = len(report.dropped)
    attrs["gen_ai.memory.search.result.count"] = len(value.facts)
    return attrs


def _added(value: Any) -> dict[str, Any]:
    events = getattr(value, "events", None) or []
    counts: dict[str, int] = {}
    for event in events:
        counts[event.op] = counts.get(event.op, 0) + 1
    attrs: dict[str, Any] = {f"tiermem.events.{op}": n for op, n in counts.items()}
    attrs["tiermem.turns"] = len(getattr(value, "turns", None) or [])
    attrs["tiermem.pending"] = bool(getattr(value, "pending", False))
    return attrs


def _erased(value: Any) -> dict[str, Any]:
    removed = getattr(value, "removed", None)
    attrs: dict[str, Any] = {}
    if isinstance(removed, Mapping):
        attrs.update({f"tiermem.erased.{tier}": n for tier, n in removed.items() if isinstance(n, int)})
    verified = getattr(value, "verified", None)
    if isinstance(verified, bool):
        attrs["tiermem.erasure.verified"] = verified
    return attrs


def _counted(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {f"tiermem.erased.{k}": n for k, n in value.items() if isinstance(n, int)}
    return {}


_DESCRIBE: dict[str, Callable[[Any], dict[str, Any]]] = {
    "search": _hits, "facts": _hits, "users": _hits, "turns": _hits, "files": _hits, "items": _hits,
    "context": _context, "add": _added, "remember": _added,
    "forget_user": _erased, "forget_session": _counted,
}
