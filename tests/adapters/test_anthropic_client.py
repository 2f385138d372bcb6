"""MemoryClient through the real anthropic SDK against the caching fake Messages API."""

from __future__ import annotations

import asyncio

import pytest

from tiermem import ContextOverflow, HashEmbedder, Memory
from tiermem.adapters.anthropic import AsyncMemoryClient, MemoryClient
from tiermem.claude import CircuitBreaker, ModelCaller, RateLimiter, RetryPolicy
from tiermem.testing import OVERLOADED, FakeAnthropic, Reply, rate_limited

SYSTEM = "You are a travel assistant who remembers what the traveller told you. " * 80  # ~1.4k tokens
MODEL = "claude-sonnet-4-5"  # cache minimum 1,024


def echo(body: dict) -> Reply:
    last = body["messages"][-1]["content"][-1]
    return Reply(f"Noted: {last.get('text', '')[:60]}")


@pytest.fixture
def mem(home):
    memory = Memory.open(home, embedder=HashEmbedder(64))
    yield memory
    memory.close()


def client_for(fake: FakeAnthropic, mem: Memory, **options) -> MemoryClient:
    caller = ModelCaller(fake.client(), policy=RetryPolicy(base_delay=0.01, max_delay=0.02), limiter=RateLimiter(),
                         breaker=CircuitBreaker(threshold=50))
    return MemoryClient(fake.client(), mem, caller=caller, **options)


def say(chat: MemoryClient, text: str, **kw):
    return chat.messages.create(model=MODEL, max_tokens=300, user_id="ana", system=SYSTEM,
                                messages=[{"role": "user", "content": text}], **kw)


def test_a_long_session_is_served_from_cache(fake: FakeAnthropic, mem: Memory) -> None:
    fake.responder = echo
    chat = client_for(fake, mem)
    for i in range(50):
        reply = say(chat, f"Day {i}: I visited town number {i} and loved the food.")
        assert reply.content[0].text.startswith("Noted: Day")  # the SDK's own Message comes back
    first, second = fake.reported[:2]
    assert first.cache_read_input_tokens == 0 and second.cache_read_input_tokens > 1024
    totals = fake.totals()
    share = totals["cache_read"] / (totals["input_tokens"] + totals["cache_write"] + totals["cache_read"])
    assert share > 0.9
    ours = mem.usage(user_id="ana").total
    assert (ours.input_tokens, ours.cache_read, ours.output_tokens) == (
        totals["input_tokens"], totals["cache_read"], totals["output_tokens"])
    assert ours.cache_read_share == pytest.approx(share)
    turns = mem.turns(user_id="ana", session_id="default", limit=10_000)
    assert len(turns) == 100 and [t.role for t in turns[:2]] == ["user", "assistant"]
    for request in fake.requests:
        marks = sum("cache_control" in b for b in request["system"]) + sum(
            "cache_control" in b for m in request["messages"] for b in m["content"])
        assert marks <= 4
    assert chat.last_report.notes == []


def test_past_the_window_it_keeps_answering_and_keeps_what_matters(fake: FakeAnthropic, mem: Memory) -> None:
    fake.responder = echo
    fake.context_window = 3000
    chat = client_for(fake, mem)
    for i in range(300):
        text = f"Turn {i}: I visited city {i} and liked the dumplings and the noodles there."
        say(chat, text)
        request = fake.requests[-1]
        assert request["system"][0]["text"].startswith(SYSTEM[:60])  # the system prompt is never dropped
        assert request["messages"][-1]["content"][-1]["text"] == text  # nor the new message, last
    assert fake.totals()["responses"] == 300
    assert len(mem.turns(user_id="ana", session_id="default", limit=10_000)) == 600  # every turn stored
    assert len(fake.requests) <= 302  # one or two 400s, then the window is learned and planned for
    assert chat.planner.learned_limit[MODEL] == 3000
    assert any(d.what.endswith("older turns") for d in chat.last_report.dropped)  # history gave way, and says so


def test_prompt_too_long_is_retried_smaller_and_reported(fake: FakeAnthropic, mem: Memory) -> None:
    fake.responder = echo
    chat = client_for(fake, mem)
    for i in range(20):
        say(chat, f"Fact {i}: my favourite museum in city {i} has a long name and a longer queue. " * 3)
    fake.context_window = 2400
    before = len(fake.requests)
    say(chat, "What did I say about museums?")
    report = chat.last_report
    assert report.overflow_retries >= 1
    assert any("prompt is too long" in d.why for d in report.dropped)
    assert fake.requests[before]["messages"] != fake.requests[-1]["messages"]  # rebuilt smaller
    assert fake.requests[-1]["messages"][-1]["content"][-1]["text"] == "What did I say about museums?"


def test_fixed_parts_too_long_raise_context_overflow(fake: FakeAnthropic, mem: Memory) -> None:
    chat = client_for(fake, mem)
    with pytest.raises(ContextOverflow, match=r"system prompt ~[\d,]+.*new message"):
        chat.messages.create(model=MODEL, max_tokens=300, user_id="ana", system=SYSTEM, budget=1000,
                             messages=[{"role": "user", "content": "hello"}])
    assert [t.content for t in mem.turns(user_id="ana", session_id="default", limit=10_000)] == ["hello"]  # stored before, not lost


@pytest.mark.parametrize("fault", [OVERLOADED, rate_limited(0.05)], ids=["529", "429"])
def test_a_fault_mid_session_loses_no_turn(fake: FakeAnthropic, mem: Memory, fault) -> None:
    fake.responder = echo
    chat = client_for(fake, mem)
    say(chat, "I moved to Lisbon.")
    fake.script = [fault, fault]
    reply = say(chat, "I adopted a cat.")
    assert reply.content[0].text.startswith("Noted")
    assert [t.content for t in mem.turns(user_id="ana", session_id="default", limit=10_000)][-2:] == ["I adopted a cat.", reply.content[0].text]
    assert mem.usage().total.attempts == 4  # 1 + 3 (two faults, then the answer)


def test_an_unrecoverable_failure_keeps_the_user_turn(fake: FakeAnthropic, mem: Memory) -> None:
    from tiermem.claude import ModelCallFailed

    chat = client_for(fake, mem)
    fake.script = [OVERLOADED] * 4
    with pytest.raises(ModelCallFailed):
        say(chat, "I moved to Lisbon.")
    assert [t.content for t in mem.turns(user_id="ana", session_id="default", limit=10_000)] == ["I moved to Lisbon."]


def test_tools_are_byte_stable_and_tool_loops_send_tool_use_verbatim(fake: FakeAnthropic, mem: Memory) -> None:
    tools = [{"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {
        "city": {"type": "string"}}}}, {"input_schema": {"properties": {}, "type": "object"}, "name": "clock",
                                        "description": "Time"}]
    chat = client_for(fake, mem)
    fake.responder = echo
    say(chat, "hello", tools=tools)
    say(chat, "hello again", tools=list(reversed(tools)))
    a, b = fake.requests[-2]["tools"], fake.requests[-1]["tools"]
    assert a == b and [t["name"] for t in a] == ["clock", "weather"] and "cache_control" in a[-1]

    fake.script = [Reply(tool_input={"city": "Lisbon"}, stop_reason="tool_use")]
    reply = chat.messages.create(model=MODEL, max_tokens=300, user_id="ana", system=SYSTEM, tools=tools,
                                 tool_choice={"type": "tool", "name": "weather"},
                                 messages=[{"role": "user", "content": "Weather in Lisbon?"}])
    use = reply.content[0]
    assert use.type == "tool_use"
    chat.messages.create(model=MODEL, max_tokens=300, user_id="ana", system=SYSTEM, tools=tools, messages=[
        {"role": "assistant", "content": [use.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 24 C"}]}])
    sent = fake.requests[-1]["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"][0]["id"] == use.id
    assert sent[-1]["content"][0]["type"] == "tool_result"
    kinds = [t.kind for t in mem.turns(user_id="ana", session_id="default", limit=10_000)]
    assert kinds.count("tool_call") == 1 and kinds.count("tool_result") == 1  # the passed-back reply not stored twice


def test_stream_stores_the_reply(fake: FakeAnthropic, mem: Memory) -> None:
    fake.responder = lambda body: Reply("Streaming hello")
    fake.script = [OVERLOADED]  # opening the stream is retried like any call
    chat = client_for(fake, mem)
    with chat.messages.stream(model=MODEL, max_tokens=100, user_id="ana", system=SYSTEM,
                              messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "Streaming hello"
    assert [t.content for t in mem.turns(user_id="ana", session_id="default", limit=10_000)] == ["hi", "Streaming hello"]
    assert mem.usage(user_id="ana").total.calls == 1 and chat.caller.stats["attempts"] == 2


def test_async_client(fake: FakeAnthropic, mem: Memory) -> None:
    fake.responder = echo

    async def run() -> str:
        chat = AsyncMemoryClient(fake.async_client(), mem)
        reply = await chat.messages.create(model=MODEL, max_tokens=100, user_id="ana", system=SYSTEM,
                                           messages=[{"role": "user", "content": "I live in Porto."}])
        return reply.content[0].text

    assert asyncio.run(run()).startswith("Noted: I live in Porto.")
    assert len(mem.turns(user_id="ana", session_id="default", limit=10_000)) == 2 and mem.usage().total.calls == 1
