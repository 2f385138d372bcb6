"""The numbers the UI's pictures are drawn from (tiermem.ui._views), without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tiermem._models import ContextReport, Fact, Hit
from tiermem.ui import _views as views

T = datetime(2024, 3, 1, tzinfo=UTC)


def fact(text: str, *, start: datetime, kind: str = "semantic", event_at: datetime | None = None,
         invalid_at: datetime | None = None, superseded_by: str | None = None, id: str | None = None) -> Fact:
    extra = {"id": id} if id else {}
    return Fact(user_id="u", kind=kind, text=text, subject="U", valid_from=start, event_at=event_at,
                invalid_at=invalid_at, superseded_by=superseded_by, **extra)


@pytest.mark.parametrize("days", [0.2, 5, 40, 300, 3000])
def test_a_timeline_spans_its_facts_in_order_with_dated_ticks(days: float) -> None:
    end = T + timedelta(days=days)
    facts = [fact("B holds", start=end), fact("A held", start=T, invalid_at=end - (end - T) / 2),
             fact("went out", start=T, kind="episodic", event_at=T + (end - T) / 3)]
    t = views.timeline(facts)
    assert [b.fact.text for b in t.bars] == ["A held", "went out", "B holds"]  # by when they began
    assert [b.y for b in t.bars] == sorted(b.y for b in t.bars) and t.height > t.bars[-1].y
    lo, hi = t.plot_x, t.plot_x + views.PLOT_WIDTH
    assert all(lo <= b.x0 <= b.x1 <= hi for b in t.bars)
    held, event, holds = t.bars
    assert not held.open_end and held.x1 < hi and holds.open_end and holds.x1 == hi
    assert event.point and event.x0 == event.x1
    assert 1 <= len(t.ticks) <= 10 and [x for x, _ in t.ticks] == sorted(x for x, _ in t.ticks)
    assert all(lo <= x <= hi for x, _ in t.ticks)


def test_a_replaced_fact_ends_where_its_replacement_began_and_an_arrow_joins_them() -> None:
    told = T + timedelta(days=60)
    new = fact("Ana moved to Berlin last week", start=told, event_at=told - timedelta(days=7), id="new")
    old = fact("Ana lives in Lisbon", start=T, invalid_at=told, superseded_by="new", id="old")
    t = views.timeline([new, old])
    bars = {b.fact.id: b for b in t.bars}
    assert bars["old"].x1 == bars["new"].x0 < t.plot_x + views.PLOT_WIDTH  # on the event-time axis
    assert not bars["old"].valid and bars["new"].valid
    (arrow,) = t.arrows
    assert (arrow.old, arrow.new, arrow.x0, arrow.y0, arrow.x1, arrow.y1) == (
        "old", "new", bars["old"].x1, bars["old"].y, bars["new"].x0, bars["new"].y)
    # a replacement not drawn (filtered out) gets no arrow, and the old bar keeps its own end
    alone = views.timeline([old])
    assert alone.arrows == [] and alone.bars[0].x1 == pytest.approx(alone.plot_x + views.PLOT_WIDTH / 1.04, abs=0.1)


def test_a_long_history_draws_the_newest_and_says_how_many_are_left_off() -> None:
    facts = [fact(f"fact {i}", start=T + timedelta(days=i)) for i in range(views.TIMELINE_LIMIT + 7)]
    t = views.timeline(facts)
    assert len(t.bars) == views.TIMELINE_LIMIT and t.left_out == 7 and t.bars[0].fact.text == "fact 7"
    assert views.timeline([]).bars == []


def test_a_score_bar_is_the_hit_s_parts_in_proportion() -> None:
    parts = {"part_dense": 0.05, "part_context": 0.04, "part_sparse": 0.09, "part_importance": 0.0018, "part_recency": 0.0}
    hit = Hit(fact=fact("x", start=T), score=sum(parts.values()), explain={**parts, "dense": 0.7, "sparse_norm": 1.0})
    bar = views.score_bar(hit, scale=hit.score * 2, width=300)
    assert [s.key for s in bar] == ["dense", "context", "sparse", "importance", "recency"]
    assert sum(s.width for s in bar) == pytest.approx(150, abs=0.05)
    assert all(b.x == pytest.approx(a.x + a.width, abs=0.02) for a, b in zip(bar, bar[1:], strict=False))
    passage = Hit(fact=fact("The assistant said: y", start=T), score=0.2, explain={"dense": 0.5, "said_fusion": 0.1})
    assert [(s.key, s.value) for s in views.score_bar(passage, scale=0.2)] == [("said", 0.2)]


def test_the_page_in_verdict_follows_the_memory_s_thresholds() -> None:
    limits = {"min_relevance": 0.25, "min_lexical_relevance": 0.45}

    def verdict(**explain: float) -> bool | None:
        return views.page_in_verdict(Hit(fact=fact("x", start=T), score=0.1, explain=explain), limits)[0]

    assert verdict(dense=0.3) and verdict(dense=0.1, context=0.26) and verdict(dense=0.1, sparse_norm=0.5)
    assert verdict(dense=0.1, context=0.2, sparse_norm=0.44) is False
    assert views.page_in_verdict(Hit(fact=fact("x", start=T), score=0.1), None) == (None, "")


def report(**tokens: int) -> ContextReport:
    full = {"system": 0, "profile": 0, "documents": 0, "summary": 0, "memory": 0, "history": 0, "message": 0, **tokens}
    prefix = full["system"] + full["profile"] + 100  # 100 tokens of stable documents
    return ContextReport(tokens=full, budget={"total": 8000, "reply_reserve": 1000}, prefix_tokens=prefix,
                         cache_min_tokens=4096, cacheable=prefix >= 4096)


def test_a_token_bar_adds_up_to_the_report_and_marks_the_prefix() -> None:
    r = report(system=1200, profile=300, documents=400, memory=250, history=2000, message=20)
    bar = views.token_bar(r, width=800)
    tiers = [s for s in bar.segments if s.key != "reserve"]
    assert sum(s.value for s in tiers) == bar.total == r.total == 4170
    assert sum(s.width for s in bar.segments) == pytest.approx(800 * (4170 + 1000) / 8000, abs=0.1)
    assert bar.prefix_x == pytest.approx(800 * 1600 / 8000) and not bar.cacheable
    assert views.token_bar(r, cache_min=1024).cacheable  # another model's minimum
    over = report(history=9000)  # over the budget: the bar grows to fit, it never clips
    assert sum(s.width for s in views.token_bar(over, width=800).segments) == pytest.approx(800)


def test_tier_costs_price_the_prefix_as_a_cache_write_then_a_read() -> None:
    prices = {"input": 3.0, "output": 15.0, "cache_write_5m": 3.75, "cache_write_1h": 6.0, "cache_read": 0.3}
    r = report(system=1200, profile=300, documents=400, memory=250, history=2000, message=20)
    costs = {k: (n, cold, warm) for k, n, cold, warm in views.tier_costs(r, prices, cacheable=True)}
    assert costs["system"] == (1200, pytest.approx(1200 * 3.75 / 1e6), pytest.approx(1200 * 0.3 / 1e6))
    # 100 of the 400 document tokens are stable (in the prefix); the rest is plain input
    assert costs["documents"][1] == pytest.approx((100 * 3.75 + 300 * 3.0) / 1e6)
    assert costs["history"][1] == costs["history"][2] == pytest.approx(2000 * 3.0 / 1e6)
    uncached = views.tier_costs(r, prices, cacheable=False)
    assert all(cold == warm for _, _, cold, warm in uncached)
    assert all(c is None for _, _, c, _ in views.tier_costs(r, None, cacheable=True))
