"""ContextBuilder's steps over stub collaborators (no store, no index, no model): what each
tier gets, and the order in which the tiers give back when a request is over budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tiermem._context import ContextBuilder
from tiermem._documents import to_documents
from tiermem._models import Fact, Profile, Summary, Turn
from tiermem.index import IndexHit
from tiermem.index._base import to_payload
from tiermem.inject import ContextBudget
from tiermem.retrieve import RetrievalPolicy, Scored

T0 = datetime(2024, 5, 2, tzinfo=UTC)


def words(n: int, word: str = "word") -> str:
    return " ".join(f"{word}{i}" for i in range(n))


class Session:
    """What ContextBuilder reads of the session tier."""

    def __init__(self, turns: list[Turn], summary: str = "", profile: str = ""):
        self._turns, self._summary, self._profile = turns, summary, profile

    def get_profile(self, user_id: str) -> Profile | None:
        return Profile(user_id=user_id, text=self._profile) if self._profile else None

    def latest_summary(self, user_id: str, session_id: str) -> Summary | None:
        return Summary(user_id=user_id, session_id=session_id, covers_seq=0, text=self._summary) if self._summary else None

    def turns(self, user_id: str, session_id: str, after_seq: int = 0) -> list[Turn]:
        return self._turns


class Retriever:
    """Ranks the given facts in order, each close enough to be paged in."""

    policy = RetrievalPolicy()

    def __init__(self, facts: list[Fact]):
        self.facts = facts

    def scored(self, query: str, user_id: str, limit: int, *args: Any, settle: int | None = None) -> list[Scored]:
        out = []
        for i, fact in enumerate(self.facts):
            hit = IndexHit(to_payload(fact), 0.9, None)
            out.append(Scored(hit, 1.0 - i / 100, {"dense": 0.9, "sparse_norm": 0.0}, None))
        return out


def builder(turns: list[Turn], facts: list[Fact], summary: str = "") -> ContextBuilder:
    count = lambda text: len(text.split())  # noqa: E731 - a word is a token here
    return ContextBuilder(Session(turns, summary), Retriever(facts), ContextBudget(reply_reserve=100),  # type: ignore[arg-type]
                          "claude-haiku-4-5", count, clock=lambda: T0)


def conversation(n: int, size: int) -> list[Turn]:
    return [Turn(user_id="u", session_id="s", seq=i + 1, role="user" if i % 2 == 0 else "assistant",
                 content=words(size, f"t{i}w"), created_at=T0 + timedelta(minutes=i)) for i in range(n)]


def memory(n: int, size: int) -> list[Fact]:
    return [Fact(user_id="u", kind="semantic", subject="U", text=f"U fact {i}: " + words(size, f"f{i}w")) for i in range(n)]


def test_a_request_that_fits_gets_every_tier_whole_and_reports_what_it_sends() -> None:
    b = builder(conversation(4, 20), memory(3, 10), summary=words(30, "s"))
    ctx = b.build("what now?", "u", "s", "You help.", budget=4000, documents=to_documents(["a document " + words(40, "d")]))
    tokens = ctx.report.tokens
    assert tokens["memory"] > 0 and tokens["history"] > 0 and tokens["summary"] > 0 and tokens["documents"] > 0
    assert [h.fact.text for h in ctx.facts] == [f.text for f in memory(3, 10)]
    assert not [d for d in ctx.report.dropped if d.what != "memory"]
    assert ctx.report.total <= 4000 - ctx.report.budget["reply_reserve"]


@pytest.mark.parametrize("budget", [1500, 1100, 900, 700, 560, 420, 300])
def test_over_budget_every_tier_keeps_to_its_budget_and_the_summary_goes_last(budget: int) -> None:
    turns = conversation(8, 60)
    b = builder(turns, memory(20, 25), summary=words(120, "s"))
    ctx = b.build("and the facts now?", "u", "s", "You help.", budget=budget, documents=to_documents([words(300, "d")]))
    report = ctx.report
    assert report.total <= budget - report.budget["reply_reserve"], report.tokens
    assert report.tokens["documents"] <= report.budget["documents"] + 2  # its share (+ the block's own markup)
    assert ctx.messages[-1]["content"][-1]["text"] == "and the facts now?"  # the new message is never dropped
    # the turns shown are the newest ones: older turns go first
    shown = [c["text"] for m in ctx.messages[:-1] for c in m["content"] if c["text"].startswith("t")]
    kept = [t.content for t in turns if any(t.content in text for text in shown)]
    assert kept == [t.content for t in turns[len(turns) - len(kept):]]
    # the summary is dropped last: only when no other tier is left
    if report.tokens["summary"] == 0:
        assert any(d.what == "session summary" for d in report.dropped)
        assert report.tokens["documents"] == report.tokens["memory"] == report.tokens["history"] == 0, report.tokens


def test_the_memory_room_grows_into_what_the_turns_leave_and_never_past_its_maximum() -> None:
    facts = memory(200, 20)
    short = builder(conversation(1, 5), facts).build("which facts?", "u", "s", None, budget=30_000)
    long = builder(conversation(12, 400), facts).build("which facts?", "u", "s", None, budget=30_000)
    assert short.report.tokens["memory"] <= ContextBudget().memory_max_tokens
    assert short.report.tokens["memory"] > 30_000 * ContextBudget().memory_share / 4  # more than its bare share's room
    assert long.report.tokens["memory"] <= short.report.tokens["memory"]
