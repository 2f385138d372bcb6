"""The fault table of the Claude write path, through the real SDK against the fake API:
for each fault, no turn is lost, the right facts (Claude's or the rules') are stored, and
the attempts and usage are recorded as the server reported them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import T0, say
from tiermem import Memory
from tiermem.testing import (
    OVERLOADED,
    SERVER_ERROR,
    FakeAnthropic,
    Hang,
    Reply,
    fact_json,
    rate_limited,
    turns_of,
)

TURNS = [say("I moved to Berlin last week.", id="m1"), say("I am allergic to peanuts.", id="m2")]


def stored(mem: Memory) -> dict[str, str]:
    return {f.text: f.extractor or "" for f in mem.facts(user_id="ana")}


def assert_nothing_lost(mem: Memory) -> None:
    assert mem.session.count_pending("ana") == 0
    assert [t.content for t in mem.turns(user_id="ana", session_id="default", limit=10_000)] == [m["content"] for m in TURNS]


def assert_usage_matches(mem: Memory, fake: FakeAnthropic) -> None:
    ours, theirs = mem.usage().total, fake.totals()
    assert (ours.input_tokens, ours.cache_write_5m + ours.cache_write_1h, ours.cache_read, ours.output_tokens) == (
        theirs["input_tokens"], theirs["cache_write"], theirs["cache_read"], theirs["output_tokens"])


def test_success_stores_claude_facts_with_their_sources(claude_mem: Memory, fake: FakeAnthropic) -> None:
    result = claude_mem.add(TURNS, user_id="ana", at=T0)
    assert not result.pending
    facts = stored(claude_mem)
    assert facts == {"Ana says: I moved to Berlin in the week before 2 May 2024.": "claude:claude-haiku-4-5",
                     "Ana says: I am allergic to peanuts.": "claude:claude-haiku-4-5"}
    assert {tuple(f.sources) for f in claude_mem.facts(user_id="ana")} == {("m1",), ("m2",)}
    assert_nothing_lost(claude_mem)
    usage = claude_mem.usage(user_id="ana")
    assert usage.total.calls == 1 and usage.total.attempts == 1 and usage.by_purpose["extract"].calls == 1
    assert usage.total.cost_usd > 0
    assert_usage_matches(claude_mem, fake)


def test_second_batch_reads_the_instructions_from_cache(claude_mem: Memory, fake: FakeAnthropic) -> None:
    claude_mem.add([say("I play the cello.")], user_id="ana", at=T0)
    claude_mem.add([say("I work at Siemens.")], user_id="ana", at=T0)
    first, second = fake.reported
    assert first.cache_creation_input_tokens > 4096 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert claude_mem.usage().total.cache_read_share > 0.4
    assert_usage_matches(claude_mem, fake)


@pytest.mark.parametrize("fault", [rate_limited(0.3), OVERLOADED, SERVER_ERROR, Hang(3.0)],
                         ids=["429-retry-after", "529", "500", "timeout"])
def test_a_transient_fault_is_retried_and_counted(claude_mem: Memory, fake: FakeAnthropic, sleeps: list, fault) -> None:
    fake.script = [fault]
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert all(e == "claude:claude-haiku-4-5" for e in stored(claude_mem).values()) and len(stored(claude_mem)) == 2
    assert_nothing_lost(claude_mem)
    usage = claude_mem.usage().total
    assert usage.calls == 1 and usage.attempts == 2 and usage.failed == 0
    if fault.__class__.__name__ == "Error" and fault.status == 429:
        assert len(sleeps) == 1 and 0.2 < sleeps[0] <= 0.3  # the server's retry-after (in the limiter), once
    assert_usage_matches(claude_mem, fake)


def test_retries_exhausted_fall_back_to_the_rules(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [OVERLOADED] * 4
    claude_mem.add(TURNS, user_id="ana", at=T0)
    facts = stored(claude_mem)
    assert facts and set(facts.values()) == {"rules"}
    assert any("peanuts" in text for text in facts)
    assert_nothing_lost(claude_mem)
    usage = claude_mem.usage().total
    assert usage.calls == 1 and usage.attempts == 4 and usage.failed == 1
    assert claude_mem.extractor.stats["fallbacks"] == 1


def test_an_error_event_mid_stream_is_retried(caller, fake: FakeAnthropic) -> None:
    from tiermem.testing import StreamError

    fake.script = [StreamError()]
    message = caller.create(purpose="chat", stream=True, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "{\"facts\": []}" and caller.stats["attempts"] == 2


def test_malformed_json_falls_back_to_the_rules(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [Reply('{"facts": [{"text": "Ana', stop_reason="end_turn")]
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert set(stored(claude_mem).values()) == {"rules"}
    assert claude_mem.extractor.stats["fallback: malformed output"] == 1
    assert_nothing_lost(claude_mem)
    assert_usage_matches(claude_mem, fake)


def test_a_reply_cut_at_max_tokens_is_retried_larger(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [Reply('{"facts": [', stop_reason="max_tokens")]
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert set(stored(claude_mem).values()) == {"claude:claude-haiku-4-5"}
    assert [r["max_tokens"] for r in fake.requests] == [4096, 8192]
    assert_usage_matches(claude_mem, fake)


def test_a_reply_cut_even_at_the_cap_splits_the_batch(claude_mem: Memory, fake: FakeAnthropic) -> None:
    cut = Reply('{"facts": [', stop_reason="max_tokens")
    fake.script = [cut, cut, cut]  # 4096, 8192, 16000: then the two halves succeed
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert len(stored(claude_mem)) == 2 and set(stored(claude_mem).values()) == {"claude:claude-haiku-4-5"}
    assert [len(turns_of(r)) for r in fake.requests] == [2, 2, 2, 1, 1]
    assert claude_mem.extractor.stats["splits"] == 1


def test_hallucinated_source_ids_are_dropped_and_counted(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [Reply(json.dumps({"facts": [
        fact_json("Ana lives in Berlin.", ["t1", "t9"], attribute="lives in", value="Berlin"),
        fact_json("Ana owns a yacht.", ["t7"]),
        fact_json("Ana is allergic to peanuts.", ["t2"]),
    ]}))]
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert set(stored(claude_mem)) == {"Ana lives in Berlin.", "Ana is allergic to peanuts."}
    assert claude_mem.extractor.stats["hallucinated_sources"] == 2
    assert claude_mem.extractor.stats["dropped_unsourced"] == 1
    berlin = next(f for f in claude_mem.facts(user_id="ana") if "Berlin" in f.text)
    assert berlin.sources == ["m1"] and berlin.attribute == "lives in"


def test_a_refusal_falls_back_to_the_rules(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [Reply("I can't help with that.", stop_reason="refusal")]
    claude_mem.add(TURNS, user_id="ana", at=T0)
    assert set(stored(claude_mem).values()) == {"rules"} and claude_mem.extractor.stats["fallback: refusal"] == 1
    assert_nothing_lost(claude_mem)
    assert_usage_matches(claude_mem, fake)


def test_prompt_too_long_splits_then_falls_back(claude_mem: Memory, fake: FakeAnthropic) -> None:
    from tiermem.claude._extractor import instructions
    from tiermem.testing import approx

    base = approx(json.dumps({"type": "text", "text": instructions()}, sort_keys=True)) + 200
    fake.context_window = base + 1500  # the instructions and one long turn fit; two do not
    long = [say("I collect stamps. " * 200, id="a"), say("I bake bread on Sundays. " * 200, id="b")]
    claude_mem.add(long, user_id="ana", at=T0)
    facts = stored(claude_mem)
    assert set(facts.values()) == {"claude:claude-haiku-4-5"} and len(facts) == 2
    fake.context_window = base + 500  # not even one turn fits: the rules take it
    claude_mem.add([say("I like tea. " * 300)], user_id="ana", at=T0)
    assert claude_mem.extractor.stats["fallback: prompt too long for a single turn"] == 1
    assert claude_mem.session.count_pending("ana") == 0
    errors = [r.outcome for r in claude_mem.session.usage_rows("ana")]
    assert errors.count("error:prompt_too_long") == 2


def test_relative_dates_resolve_against_the_turn_time(claude_mem: Memory, fake: FakeAnthropic) -> None:
    fake.script = [Reply(json.dumps({"facts": [
        fact_json("Ana went hiking yesterday.", ["t1"], kind="episodic"),
        fact_json("Ana visits Rome.", ["t1"], kind="episodic", event_date="2024-06-10"),
    ]}))]
    claude_mem.add([say("Went hiking yesterday, and I'm off to Rome on 10 June.")], user_id="ana", at=T0)
    facts = {f.text: f for f in claude_mem.facts(user_id="ana")}
    assert "Ana went hiking on 1 May 2024." in facts
    assert facts["Ana went hiking on 1 May 2024."].event_at.date().isoformat() == "2024-05-01"
    assert facts["Ana visits Rome."].event_at.date().isoformat() == "2024-06-10"


def test_known_facts_are_shown_to_the_model(claude_mem: Memory, fake: FakeAnthropic) -> None:
    claude_mem.remember("Ana lives in Berlin.", user_id="ana")
    claude_mem.add([say("I moved to Lisbon.")], user_id="ana", at=T0)
    body = fake.requests[-1]["messages"][0]["content"]
    assert "[k1] Ana lives in Berlin." in body


def test_unreachable_api_takes_the_offline_path_at_once(home, fake: FakeAnthropic) -> None:
    import anthropic

    from tiermem.claude import CircuitBreaker, ClaudeExtractor, ModelCaller, RateLimiter, RetryPolicy

    dead = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9", max_retries=0)
    caller = ModelCaller(dead, policy=RetryPolicy(base_delay=0.01, max_delay=0.02), limiter=RateLimiter(),
                         breaker=CircuitBreaker(threshold=3, cooldown=60))
    mem = Memory.open(home, embedder=__import__("tiermem").HashEmbedder(64), extractor=ClaudeExtractor(caller))
    try:
        assert mem.extraction == "background"
        for i in range(5):
            assert mem.add([say(f"I like tea number {i}.")], user_id="ana").pending
        assert mem.flush(timeout=30)
        assert mem.session.count_pending("ana") == 0
        assert {f.extractor for f in mem.facts(user_id="ana")} == {"rules"}
        assert caller.breaker.state == "open" and caller.stats["refused"] >= 1
        assert caller.stats["attempts"] <= 4  # the breaker, not retries, answered the rest
    finally:
        mem.close()
