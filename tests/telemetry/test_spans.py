"""Every public operation is a span of the application's tracer, with the GenAI memory
conventions, children for the stages, no user text, and errors recorded."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import T0, say
from tiermem import InvalidInput, Memory, UnknownUser
from tiermem.telemetry import user_hash

# What users said, spread over every call: none of it may reach a span.
SECRETS = ("Quillfeather", "Marrowdale", "ochre-kettle", "sabrecat")


def _said(mem: Memory) -> None:
    mem.add([say(f"I moved to {SECRETS[1]} last month."), say(f"My dog is called {SECRETS[0]}.")],
            user_id="ana", session_id="s1", at=T0)


def _everything(span) -> str:
    """A span's attributes, events and status as one string, to look for text in."""
    parts = [span.name, json.dumps(dict(span.attributes), default=str), span.status.description or ""]
    for event in span.events:
        parts.append(event.name)
        parts.append(json.dumps(dict(event.attributes), default=str))
    return "\n".join(parts)


def test_add_search_context_forget_user_each_make_a_span_with_children(mem: Memory, telemetry) -> None:
    _said(mem)
    hits = mem.search(f"where does my {SECRETS[3]} live", user_id="ana")
    ctx = mem.context(f"what is my dog called, {SECRETS[2]}?", user_id="ana", session_id="s1", system="You help.")
    mem.forget_user("ana")

    expected = {"add": "update_memory", "search": "search_memory", "context": "search_memory",
                "forget_user": "delete_memory"}
    for method, operation in expected.items():
        [span] = telemetry.named(method)
        assert span.attributes["gen_ai.operation.name"] == operation
        assert span.name == f"{operation} tiermem"
        assert span.attributes["gen_ai.provider.name"] == "tiermem"
        assert span.attributes["gen_ai.memory.scope"] == "user"
        assert span.attributes["tiermem.user.hash"] == user_hash("ana")
        assert span.status.status_code is not StatusCode.ERROR

    add = telemetry.named("add")[0]
    add_children = {s.name for s in telemetry.children(add)}
    assert "tiermem.extract" in add_children and "tiermem.reconcile" in add_children
    assert any(name.startswith("embeddings ") for name in add_children)
    assert add.attributes["tiermem.turns"] == 2 and add.attributes["tiermem.events.add"] >= 1
    assert add.attributes["gen_ai.conversation.id"] == "s1"

    search = telemetry.named("search")[0]
    children = telemetry.children(search)
    embedding = next(s for s in children if s.name.startswith("embeddings "))
    assert embedding.attributes["gen_ai.operation.name"] == "embeddings"
    assert embedding.attributes["gen_ai.request.model"] == mem.embedder.name
    query = next(s for s in children if s.name == "query tiermem.facts")
    assert query.attributes["db.system.name"] == "qdrant" and query.attributes["db.operation.name"] == "query"
    assert search.attributes["gen_ai.memory.search.result.count"] == len(hits)

    context = telemetry.named("context")[0]
    assert any(s.name == "query tiermem.facts" for s in telemetry.children(context))
    for tier, tokens in ctx.report.tokens.items():
        assert context.attributes[f"tiermem.context.tokens.{tier}"] == tokens
    assert context.attributes["tiermem.context.tokens.total"] == ctx.report.total
    assert context.attributes["gen_ai.memory.search.result.count"] == len(ctx.facts)

    erased = telemetry.named("forget_user")[0]
    assert erased.attributes["tiermem.erasure.verified"] is True
    assert {"delete tiermem.session", "delete tiermem.facts", "tiermem.erasure.verify"} <= {
        s.name for s in telemetry.children(erased)}

    for span in telemetry.spans():
        text = _everything(span)
        for secret in (*SECRETS, "ana"):
            assert secret not in text.replace(user_hash("ana"), ""), (span.name, secret)


def test_a_rejected_call_is_an_error_span_without_the_input(mem: Memory, telemetry) -> None:
    _said(mem)
    with pytest.raises(InvalidInput):
        mem.search("where", user_id="ana", kinds=[SECRETS[3]])
    with pytest.raises(UnknownUser):
        mem.forget_user(SECRETS[1])

    bad = telemetry.named("search")[0]
    assert bad.status.status_code is StatusCode.ERROR
    assert bad.attributes["error.type"] == "InvalidInput"
    [event] = bad.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "tiermem._errors.InvalidInput"
    assert "rejected" in event.attributes["exception.message"]  # the class's own description
    unknown = telemetry.named("forget_user")[0]
    assert unknown.status.status_code is StatusCode.ERROR and unknown.attributes["error.type"] == "UnknownUser"
    for span in telemetry.spans():
        text = _everything(span)
        assert SECRETS[3] not in text and SECRETS[1] not in text


def test_content_is_kept_only_when_the_application_opts_in(mem: Memory, telemetry, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    _said(mem)
    mem.search(f"where does {SECRETS[3]} live", user_id="ana")
    with pytest.raises(InvalidInput):
        mem.search("where", user_id="ana", kinds=[SECRETS[2]])
    ok, bad = telemetry.named("search")
    assert ok.attributes["gen_ai.memory.query"] == f"where does {SECRETS[3]} live"
    assert ok.attributes["gen_ai.memory.namespace"] == "ana"
    assert SECRETS[2] in bad.events[0].attributes["exception.message"]


def test_operations_record_their_duration(mem: Memory, telemetry) -> None:
    _said(mem)
    mem.search("where", user_id="ana")
    data = telemetry.reader.get_metrics_data()
    points = [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "gen_ai.memory.operation.duration" for p in m.data.data_points]
    by_operation = {p.attributes["tiermem.operation"]: p for p in points}
    assert by_operation["search"].count >= 1 and by_operation["search"].sum > 0
    assert by_operation["add"].attributes["gen_ai.operation.name"] == "update_memory"


def test_a_served_call_continues_the_callers_trace(home, embedder, telemetry) -> None:
    from tiermem.serve import MemoryServer

    with Memory.open(home, embedder=embedder) as owner:
        server = MemoryServer(owner, port=0).start()
        try:
            with Memory.open(url=server.url) as client:
                client.add([say("I moved to Lisbon.")], user_id="ana", at=T0)
                client.search("where do I live", user_id="ana")
        finally:
            server.stop()

    clients = [s for s in telemetry.named("search") if s.kind is SpanKind.CLIENT]
    [client_span] = clients
    [served] = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER and s.attributes["rpc.method"] == "search"]
    assert served.parent.span_id == client_span.context.span_id
    assert served.context.trace_id == client_span.context.trace_id
    [inside] = [s for s in telemetry.named("search") if s.kind is SpanKind.INTERNAL]
    assert inside.parent.span_id == served.context.span_id
    assert any(s.name == "query tiermem.facts" for s in telemetry.children(inside))
