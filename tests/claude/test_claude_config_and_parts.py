"""Configuration of the Claude paths, the reconciler and summarizer, the limiter and the
breaker, re-extraction (live and through Message Batches) and the usage/reextract CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import T0, say
from tiermem import ConfigError, HashEmbedder, Memory, RuleExtractor
from tiermem.claude import (
    CircuitBreaker,
    ClaudeExtractor,
    ClaudeReconciler,
    ClaudeSummarizer,
    ModelCaller,
    RateLimiter,
    RetryPolicy,
)
from tiermem.cli import app
from tiermem.testing import FakeAnthropic, Reply, extraction_responder


# -- configuration -------------------------------------------------------------------------------
def test_claude_without_a_key_names_the_variable(home) -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        Memory.open(home, embedder=HashEmbedder(64), extractor="claude")
    assert not (home / "tiermem.db").exists()  # refused before anything was created


def test_unknown_extractor_name_is_refused(home, monkeypatch) -> None:
    monkeypatch.setenv("TIERMEM_EXTRACTOR", "gpt")
    with pytest.raises(ConfigError, match="TIERMEM_EXTRACTOR"):
        Memory.open(home, embedder=HashEmbedder(64))


def test_environment_configures_every_claude_part(home, fake: FakeAnthropic, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("TIERMEM_EXTRACTOR", "claude")
    monkeypatch.setenv("TIERMEM_SUMMARIZER", "claude")
    monkeypatch.setenv("TIERMEM_RECONCILER", "claude")
    monkeypatch.setenv("TIERMEM_CLAUDE_MODEL", "claude-sonnet-4-5")
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert mem.extraction == "background"
        assert isinstance(mem.extractor, ClaudeExtractor)
        assert isinstance(mem.writes.reconciler, ClaudeReconciler)
        assert isinstance(mem.writes.upkeep.summarizer, ClaudeSummarizer)
        assert mem.extractor.caller.model == "claude-sonnet-4-5"
        assert mem.extractor.caller.client.max_retries == 0  # every attempt is ours
        mem.add([say("I play the cello.")], user_id="ana", at=T0)
        assert mem.flush(timeout=30)
        assert [f.extractor for f in mem.facts(user_id="ana")] == ["claude:claude-sonnet-4-5"]
        assert fake.requests[0]["model"] == "claude-sonnet-4-5"
        assert mem.usage(user_id="ana").by_model["claude-sonnet-4-5"].calls == 1


def test_offline_default_makes_no_calls_and_records_no_usage(mem: Memory) -> None:
    mem.add([say("I play the cello.")], user_id="ana", at=T0)
    assert isinstance(mem.extractor, RuleExtractor) and mem.extraction == "inline"
    assert mem.usage().total.calls == 0


def test_forced_tool_use_for_a_model_without_json_output(home, fake: FakeAnthropic, sleeps) -> None:
    caller = ModelCaller(fake.client(), model="claude-3-5-haiku", policy=RetryPolicy(base_delay=0.01), sleep=sleeps)
    with Memory.open(home, embedder=HashEmbedder(64), extractor=ClaudeExtractor(caller), extraction="inline") as mem:
        mem.add([say("I play the cello.")], user_id="ana", at=T0)
        assert fake.requests[0]["tool_choice"] == {"type": "tool", "name": "record_facts"}
        assert "output_config" not in fake.requests[0]
        assert [f.extractor for f in mem.facts(user_id="ana")] == ["claude:claude-3-5-haiku"]


# -- reconciler and summarizer -------------------------------------------------------------------
def decide(decision: str, reason: str = "same thing"):
    def responder(body: dict) -> Reply:
        if "NEW 1:" in str(body["messages"]):
            return Reply(json.dumps({"decisions": [{"candidate": 1, "decision": decision, "fact": "f1.1",
                                                    "reason": reason}]}))
        return extraction_responder(body)
    return responder


@pytest.mark.parametrize("decision", ["contradicts", "update", "same", "unrelated"])
def test_claude_reconciler_decides_what_rules_cannot(home, fake: FakeAnthropic, caller, decision) -> None:
    fake.responder = decide(decision, "a change of plan")
    with Memory.open(home, embedder=HashEmbedder(64), reconciler=ClaudeReconciler(caller)) as mem:
        first = mem.remember("Ana plans to study medicine at university.", user_id="ana").facts[0]
        mem.remember("Ana plans to study law at university.", user_id="ana")
        facts = {f.id: f for f in mem.facts(user_id="ana", include_invalid=True)}
        if decision == "contradicts":
            assert not facts[first.id].is_valid and len(facts) == 2
            assert "a change of plan" in mem.history(first.id)[-1].reason  # invalidated with the reason, kept
        elif decision == "update":
            assert len(facts) == 1 and facts[first.id].text == "Ana plans to study law at university."
            assert mem.history(first.id)[0].fact.text == "Ana plans to study medicine at university."
        elif decision == "same":
            assert len(facts) == 1 and facts[first.id].text == first.text
        else:
            assert len(facts) == 2 and all(f.is_valid for f in facts.values())
        assert any("NEW 1: Ana plans to study law" in str(r["messages"]) for r in fake.requests)


def test_claude_reconciler_failure_leaves_the_rules_decision(home, fake: FakeAnthropic, caller) -> None:
    from tiermem.testing import Error

    with Memory.open(home, embedder=HashEmbedder(64), reconciler=ClaudeReconciler(caller)) as mem:
        mem.remember("Ana plans to study medicine at university.", user_id="ana")
        fake.script = [Error(400, "invalid_request_error", "bad")]
        mem.remember("Ana plans to study law at university.", user_id="ana")
        assert len(mem.facts(user_id="ana")) == 2 and mem.writes.reconciler.stats["failed"] == 1


def test_claude_summarizer_and_its_fallback(fake: FakeAnthropic, caller) -> None:
    from tiermem import Turn

    turns = [Turn(user_id="ana", session_id="s", role="user", content="I adopted a cat named Miso.", name="Ana")]
    summarizer = ClaudeSummarizer(caller)
    fake.script = [Reply("Ana adopted a cat named Miso.")]
    assert summarizer.summarize("", turns, 100) == "Ana adopted a cat named Miso."
    fake.script = [Reply("cut", stop_reason="max_tokens")]
    assert "Miso" in summarizer.summarize("", turns, 100) and summarizer.stats["fallbacks"] == 1
    fake.script = [Reply("Ana adopted a cat. " * 50)]  # over budget: trimmed to it
    assert len(summarizer.summarize("", turns, 20)) <= 20 * 4


# -- limiter and breaker -------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_queues_a_burst_in_order() -> None:
    clock = Clock()
    limiter = RateLimiter(requests_per_minute=60, input_tokens_per_minute=1000, clock=clock)
    waits = [limiter.reserve(10) for _ in range(62)]
    assert waits[:60] == [0.0] * 60 and waits[60] == pytest.approx(1.0) and waits[61] == pytest.approx(2.0)
    clock.now = 100.0
    assert limiter.reserve(1500) == 0.0  # a request bigger than the bucket waits for a full one, not forever
    assert limiter.reserve(500) == pytest.approx(30.0)
    limiter.pause(45.0)
    assert limiter.reserve(0) >= 45.0


def test_circuit_breaker_opens_then_probes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 11
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure()
    assert breaker.state == "open"
    clock.now = 22
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


# -- re-extraction and the CLI -------------------------------------------------------------------
def test_reextract_live_and_by_batch_destroys_nothing(home, fake: FakeAnthropic, caller) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I moved to Berlin.", id="m1"), say("I love techno.", id="m2")], user_id="ana", at=T0)
        mem.remember("Ana is allergic to peanuts.", user_id="ana")
        old = {f.id for f in mem.facts(user_id="ana") if f.extractor == "rules"}
        extractor = ClaudeExtractor(caller)
        plan = mem.plan_reextract("ana", extractor=extractor)
        assert plan.calls == 1 and plan.cost_usd > 0 and not fake.requests  # priced before any call
        report = mem.reextract("ana", plan=plan)
        assert report.invalidated == len(old) and report.added == 2
        valid = {f.text: f.extractor for f in mem.facts(user_id="ana")}
        assert valid == {"Ana says: I moved to Berlin.": "claude:claude-haiku-4-5",
                         "Ana says: I love techno.": "claude:claude-haiku-4-5", "Ana is allergic to peanuts.": "caller"}
        for fact_id in old:  # invalidated, with the reason, history kept
            assert mem.history(fact_id)[-1].reason == "re-extracted" and not mem.get(fact_id).is_valid

        report = mem.reextract("ana", extractor=extractor, batch=True, poll_interval=0.01)
        assert report.batch_id and report.added == 2 and report.invalidated == 2
        batch = mem.usage(user_id="ana").by_model["claude-haiku-4-5"]
        assert batch.calls == 2 and [r.service_tier for r in mem.session.usage_rows("ana")][-1] == "batch"
        assert fake.requests[-1]["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}  # batches: 1h TTL
        [batch_sent] = fake.batches.values()
        assert [r["custom_id"][:3] for r in batch_sent["results"]] == ["rx-"]


def test_reextract_batch_results_that_failed_fall_back(home, fake: FakeAnthropic, caller) -> None:
    from tiermem.testing import OVERLOADED

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I moved to Berlin.")], user_id="ana", at=T0)
        fake.script = [OVERLOADED]  # the one batch request errors
        report = mem.reextract("ana", extractor=ClaudeExtractor(caller), batch=True, poll_interval=0.01)
        assert report.fallbacks == 1 and {f.extractor for f in mem.facts(user_id="ana")} == {"rules"}


def test_cli_usage_and_reextract(home, fake: FakeAnthropic, monkeypatch) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I moved to Berlin.")], user_id="ana", at=T0)
    runner = CliRunner()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    result = runner.invoke(app, ["reextract", "--user", "ana", "--embedder", "hash"])
    assert result.exit_code == 2 and "--yes" in result.output and not fake.requests  # no terminal to ask: no call
    result = runner.invoke(app, ["reextract", "--user", "ana", "--embedder", "hash", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["added"] == 1 and summary["invalidated"] == 1 and summary["estimated_cost_usd"] > 0
    result = runner.invoke(app, ["usage", "--user", "ana", "--json"])
    report = json.loads(result.output)
    assert report["total"]["calls"] == 1 and report["total"]["input_tokens"] == fake.reported[0].input_tokens
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["usage"])
    assert result.exit_code == 0 and "claude-haiku-4-5" in result.output and "extract" in result.output
    assert runner.invoke(app, ["usage", "--user", "nobody"]).exit_code == 1
