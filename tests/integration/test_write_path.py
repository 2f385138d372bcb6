"""The two-phase write path: turns first, then extraction inline or in the background; what
failures in phase 2 do; what context() must not write; the API the adapters build on."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import (
    Candidate,
    ContextBudget,
    Fact,
    FactNotFound,
    HashEmbedder,
    InvalidInput,
    Memory,
    RuleExtractor,
    Turn,
    UnknownUser,
)


class FlakyExtractor:
    """An Extractor of our own that fails its first `failures` calls, as a model API would."""

    name = "flaky"
    uses_known = True

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0
        self.known_seen: list[int] = []
        self.rules = RuleExtractor()

    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        self.calls += 1
        self.known_seen.append(len(known))
        if self.calls <= self.failures:
            raise ConnectionError("model API unreachable")
        return self.rules.extract(turns)

    async def aextract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        return self.extract(turns, known=known)


class GatedExtractor(RuleExtractor):
    """Rules, but each batch waits for the test to open the gate (a slow model)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.batches: list[int] = []

    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        assert self.gate.wait(30)
        self.batches.append(len(turns))
        return super().extract(turns, known=known)


def rows(home: Path, table: str) -> int:
    with sqlite3.connect(home / "tiermem.db") as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_background_add_returns_after_the_turns_and_flush_waits_for_the_facts(home: Path, embedder: HashEmbedder) -> None:
    extractor = GatedExtractor()
    with Memory.open(home, embedder=embedder, extractor=extractor, extraction="background") as mem:
        results = [mem.add([say(f"I visited museum number {i} in Porto.", id=f"m-{i}")], user_id="ana", at=T0)
                   for i in range(5)]
        assert all(r.pending and r.events == [] for r in results)
        assert len(mem.turns(user_id="ana", limit=10_000)) == 5  # phase 1 is committed before add() returns
        assert mem.backlog("ana")["pending_turns"] == 5
        extractor.gate.set()
        assert mem.flush(timeout=30)
        assert mem.backlog("ana")["pending_turns"] == 0
        assert sorted(s for f in mem.facts(user_id="ana") for s in f.sources) == sorted(f"m-{i}" for i in range(5))
        assert sum(extractor.batches) == 5 and len(extractor.batches) < 5  # queued batches of one user are merged


def test_a_failing_extraction_never_fails_add_and_is_retried(home: Path, embedder: HashEmbedder) -> None:
    extractor = FlakyExtractor(failures=2)
    with Memory.open(home, embedder=embedder, extractor=extractor, retry_delays=(0.05, 0.05, 0.05)) as mem:
        result = mem.add([say("I live in Lisbon.", id="m-1")], user_id="ana", at=T0)  # inline, and it fails
        assert result.pending and "ConnectionError" in (result.error or "")
        assert [t.content for t in mem.turns(user_id="ana", limit=10_000)] == ["I live in Lisbon."]  # phase 1 kept
        [failure] = mem.backlog("ana")["failures"]
        assert failure.attempts >= 1 and "unreachable" in failure.error
        assert mem.flush(timeout=30)
        assert [f.text for f in mem.facts(user_id="ana")] == ["Ana lives in Lisbon."]
        assert mem.backlog("ana") == {"pending_turns": 0, "failures": []}
        assert extractor.known_seen[-1] == 0  # a model extractor is shown the user's known facts


def test_turns_whose_retries_are_spent_are_extracted_by_the_next_open(home: Path, embedder: HashEmbedder) -> None:
    with Memory.open(home, embedder=embedder, extractor=FlakyExtractor(failures=100), retry_delays=(0.01,)) as mem:
        assert mem.add([say("I work at Acme.", id="m-1")], user_id="ana", at=T0).pending
        assert mem.flush(timeout=30)  # retries spent: the turn stays pending, recorded
        assert mem.backlog()["pending_turns"] == 1
    with Memory.open(home, embedder=embedder) as mem:  # the rules work again
        assert mem.flush(timeout=30)
        assert [f.text for f in mem.facts(user_id="ana")] == ["Ana works at Acme."]
        assert mem.backlog() == {"pending_turns": 0, "failures": []}


def test_close_leaves_unfinished_work_to_the_next_open(home: Path, embedder: HashEmbedder) -> None:
    extractor = GatedExtractor()  # never opened: the batch cannot finish before close's timeout
    mem = Memory.open(home, embedder=embedder, extractor=extractor, extraction="background")
    mem.add([say("I love sailing.", id="m-1")], user_id="ana", at=T0)
    mem.close(timeout=0.2)
    extractor.gate.set()  # let the abandoned worker thread end
    with Memory.open(home, embedder=embedder) as again:
        assert again.flush(timeout=30)
        assert [f.sources for f in again.facts(user_id="ana")] == [["m-1"]]


def test_context_writes_nothing(home: Path, embedder: HashEmbedder) -> None:
    small = ContextBudget(window_tokens=200, summary_tokens=60)
    with Memory.open(home, embedder=embedder, budget=small) as mem:
        for i in range(12):
            mem.add([say(f"Day {i}: I practised violin scales number {i} for an hour."),
                     {"role": "assistant", "content": f"Great practice on day {i}!"}], user_id="ana", session_id="s", at=T0)
        tables = ("tm_summaries", "tm_profiles", "tm_turns", "tm_facts", "tm_fact_events")
        before = {t: rows(home, t) for t in tables}
        assert before["tm_summaries"] > 0  # the roll happened on the write path
        mem.context("how is my violin going?", user_id="ana", session_id="s", budget=600)
        mem.context("hello", user_id="never-seen", session_id="s")  # an unknown user leaves no row behind
        assert {t: rows(home, t) for t in tables} == before
        with pytest.raises(UnknownUser, match="never-seen"):
            mem.forget_user("never-seen")


def test_one_token_counter_for_every_budget(home: Path, embedder: HashEmbedder) -> None:
    def words_x3(text: str) -> int:  # a 'tokenizer' far from characters/4
        return 3 * len(text.split())

    with Memory.open(home, embedder=embedder, count_tokens=words_x3) as mem:
        for i in range(40):
            mem.add([say(f"I read chapter {i} of a long novel about sailing ships and storms at sea."),
                     {"role": "assistant", "content": f"Chapter {i} sounds gripping, tell me more!"}],
                    user_id="ana", session_id="s", at=T0)
        for budget in (400, 800, 2000):
            ctx = mem.context("what did I read about ships?", user_id="ana", session_id="s", system="Be brief.", budget=budget)
            texts = [b["text"] for b in ctx.system] + [c["text"] for m in ctx.messages for c in m["content"]]
            assert sum(words_x3(t) for t in texts) <= budget - ctx.report.budget["reply_reserve"]
            assert ctx.report.total == sum(words_x3(t) for t in texts)  # the report counts what is sent


def test_remember_stores_a_statement_as_given(mem: Memory) -> None:
    first = mem.remember("Ana is allergic to peanuts", user_id="ana", metadata={"source": "intake form"})
    [fact] = first.facts
    assert (fact.text, fact.kind, fact.subject, fact.metadata) == (
        "Ana is allergic to peanuts", "semantic", "Ana", {"source": "intake form"})
    assert fact.importance >= 0.95 and first.turns == []
    again = mem.remember("Ana is allergic to peanuts", user_id="ana")
    assert [e.op for e in again.events] == ["noop"]  # deduplicated
    changed = mem.remember("Ana is not allergic to peanuts", user_id="ana")
    assert [e.op for e in changed.events] == ["invalidate", "add"]  # reconciled like extracted facts
    assert [f.text for f in mem.facts(user_id="ana")] == ["Ana is not allergic to peanuts"]
    with pytest.raises(InvalidInput, match="kind"):
        mem.remember("Ana likes tea", user_id="ana", kind="opinion")
    with pytest.raises(InvalidInput, match="metadata"):
        mem.remember("Ana likes tea", user_id="ana", metadata={"when": object()})


def test_update_is_a_journaled_correction(mem: Memory) -> None:
    [fact] = mem.add([say("I live in Berlin.")], user_id="ana", at=T0).facts
    event = mem.update(fact.id, "Ana lives in Hamburg.", user_id="ana")
    assert event.op == "update" and event.fact.id == fact.id and event.previous.text == "Ana lives in Berlin."
    assert mem.get(fact.id).text == "Ana lives in Hamburg." and mem.get(fact.id).value == "Hamburg"
    assert [h.fact.text for h in mem.search("Hamburg", user_id="ana")] == ["Ana lives in Hamburg."]
    assert [e.op for e in mem.history(fact.id)] == ["add", "update"]
    # the corrected value is what a later statement is compared with
    res = mem.add([say("I live in Hamburg.")], user_id="ana", at=T0 + timedelta(days=1))
    assert [e.op for e in res.events] in (["update"], ["noop"])


def test_reads_and_erasure_are_scoped_to_the_user_when_given(mem: Memory) -> None:
    [fact] = mem.add([say("I love chess.")], user_id="ana", at=T0).facts
    for call in (lambda: mem.get(fact.id, user_id="bob"), lambda: mem.history(fact.id, user_id="bob"),
                 lambda: mem.forget(fact.id, user_id="bob"), lambda: mem.update(fact.id, "x", user_id="bob")):
        with pytest.raises(FactNotFound):
            call()
    assert mem.get(fact.id, user_id="ana").text == "Ana loves chess."  # untouched by bob's attempts
    assert mem.forget(fact.id, user_id="ana").op == "forget"
    with pytest.raises(FactNotFound):
        mem.get(fact.id)


def test_add_metadata_reaches_the_facts_in_both_modes(home: Path, embedder: HashEmbedder) -> None:
    with Memory.open(home, embedder=embedder, extraction="background") as mem:
        mem.add([say("I love hiking in the Alps.")], user_id="ana", at=T0, metadata={"channel": "sms", "n": 2})
        mem.flush(timeout=30)
        [fact] = mem.facts(user_id="ana")
        assert fact.metadata == {"channel": "sms", "n": 2}
        assert mem.turns(user_id="ana", limit=10_000)[0].metadata == {"channel": "sms", "n": 2}
    with Memory.open(home, embedder=embedder) as mem:
        [fact] = mem.add([say("I love chess.")], user_id="bob", at=T0, metadata={"channel": "web"}).facts
        assert mem.get(fact.id).metadata == {"channel": "web"}


def test_the_window_follows_turn_order_whatever_the_times_say(home: Path, embedder: HashEmbedder) -> None:
    small = ContextBudget(window_tokens=400, summary_tokens=100)
    with Memory.open(home, embedder=embedder, budget=small) as mem:
        for i in range(40):  # `at` goes backwards: turn order, not time, is the session's order
            mem.add([say(f"Turn T{i} is about topic number {i} and nothing else at all today."),
                     {"role": "assistant", "content": f"Noted T{i}."}],
                    user_id="ana", session_id="s", at=T0 - timedelta(hours=i))
        for _ in range(2):
            ctx = mem.context("what was the last topic?", user_id="ana", session_id="s", budget=3000)
            history = " ".join(c["text"] for m in ctx.messages for c in m["content"])
            assert "T39" in history and "T38" in history  # the newest turns are always shown
            assert "Turn T0 " not in history  # what was rolled into the summary is not shown twice


def test_a_closed_memory_says_so(home: Path, embedder: HashEmbedder) -> None:
    from tiermem import MemoryClosed

    mem = Memory.open(home, embedder=embedder)
    mem.close()
    for call in (lambda: mem.add("I like tea", user_id="u"), lambda: mem.flush(), lambda: mem.remember("x", user_id="u")):
        with pytest.raises(MemoryClosed, match="Memory.open"):
            call()


def test_another_embedder_of_the_same_size_is_refused_until_told_to_reembed(home: Path) -> None:
    class OtherHash(HashEmbedder):
        def __init__(self) -> None:
            super().__init__(64)
            self.name = "other-64"

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I work at Acme.")], user_id="ana", at=T0)
    from tiermem import EmbeddingMismatch

    with pytest.raises(EmbeddingMismatch, match="reindex --embedder"):
        Memory.open(home, embedder=OtherHash())
    with Memory.open(home, embedder=OtherHash(), reembed=True) as mem:
        assert mem.reembedded and mem.verify() == {"missing": set(), "extra": set()}
    with Memory.open(home, embedder=OtherHash()) as mem:  # now it is the recorded one
        assert mem.search("Acme", user_id="ana")[0].fact.text == "Ana works at Acme."
