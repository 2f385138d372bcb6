"""What the pages draw, as plain values: a timeline's geometry, a score's parts, a request's
tokens per tier. Pure functions over the contract's values (no HTTP, no templates), so the
numbers a page shows can be tested without a browser."""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .._models import ContextReport, Fact, Hit
from ..retrieve import clears_page_in, relevance_of

# -- the timeline ---------------------------------------------------------------------------

LABEL_WIDTH = 340  # the fact texts, left of the plot
PLOT_WIDTH = 620
ROW = 24
AXIS = 30  # room for the date ticks above the rows
TIMELINE_LIMIT = 200  # rows drawn; the table lists every fact


@dataclass(frozen=True)
class Bar:
    """One fact on the timeline: a span from when it held to when it stopped (a semantic
    fact), or a point at when it happened (an episodic one)."""

    fact: Fact
    y: int
    x0: float
    x1: float
    point: bool  # an event: drawn as a marker at x0
    open_end: bool  # still valid: the bar runs to the right edge
    label: str

    @property
    def valid(self) -> bool:
        return self.fact.is_valid


@dataclass(frozen=True)
class Arrow:
    """A supersession: the old fact's end to the start of the fact that replaced it."""

    old: str
    new: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Timeline:
    width: int
    height: int
    plot_x: int
    bars: list[Bar] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    left_out: int = 0  # facts not drawn (over TIMELINE_LIMIT)


def fact_start(fact: Fact) -> datetime:
    """When a fact began to hold on the event-time axis: when it happened, where the
    conversation said, else when it was learnt."""
    return fact.event_at or fact.valid_from


def _short(text: str, n: int = 46) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def timeline(facts: Sequence[Fact], *, limit: int = TIMELINE_LIMIT) -> Timeline:
    """Lay out facts over event time, oldest first; supersessions become arrows from the old
    fact to its replacement when both are drawn."""
    ordered = sorted(facts, key=lambda f: (fact_start(f), f.created_at, f.id))
    left_out = max(0, len(ordered) - limit)
    drawn = ordered[-limit:] if left_out else ordered
    plot_x = LABEL_WIDTH
    out = Timeline(width=LABEL_WIDTH + PLOT_WIDTH + 20, height=AXIS + ROW * max(1, len(drawn)) + 10, plot_x=plot_x,
                   left_out=left_out)
    if not drawn:
        return out
    times = [fact_start(f) for f in drawn] + [f.invalid_at for f in drawn if f.invalid_at is not None]
    start, end = min(times), max(times)
    if end - start < timedelta(days=1):
        start, end = start - timedelta(hours=12), end + timedelta(hours=12)
    pad = (end - start) * 0.04  # a valid fact's bar runs past the last date: it still holds
    end = end + pad
    out.start, out.end = start, end
    span = (end - start).total_seconds()

    def x(when: datetime) -> float:
        return round(plot_x + PLOT_WIDTH * (when - start).total_seconds() / span, 1)

    by_id = {f.id: f for f in drawn}
    rows: dict[str, Bar] = {}
    for i, f in enumerate(drawn):
        y = AXIS + ROW * i + ROW // 2
        point = f.kind == "episodic" and f.event_at is not None
        x0 = x(fact_start(f))
        ended = f.invalid_at
        successor = by_id.get(f.superseded_by or "")
        if ended is not None and successor is not None:
            # On the event-time axis a replaced fact ends when its replacement began to hold
            # ("moved last week"), which is often before the change was learnt.
            ended = max(fact_start(f), min(ended, fact_start(successor)))
        x1 = x0 if point else (x(ended) if ended is not None else plot_x + PLOT_WIDTH)
        rows[f.id] = Bar(fact=f, y=y, x0=x0, x1=max(x1, x0 + 2) if not point else x0, point=point,
                         open_end=not point and f.invalid_at is None, label=_short(f.text))
    out.bars = list(rows.values())
    for bar in out.bars:
        new = rows.get(bar.fact.superseded_by or "")
        if new is not None:
            out.arrows.append(Arrow(old=bar.fact.id, new=new.fact.id, x0=bar.x1, y0=bar.y, x1=new.x0, y1=new.y))
    out.ticks = [(x(t), label) for t, label in _ticks(start, end)]
    return out


def _month_add(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def _ticks(start: datetime, end: datetime, most: int = 7) -> list[tuple[datetime, str]]:
    """Dates worth a label between start and end: days, weeks, months or years, whichever
    gives at most `most` of them."""
    span = end - start
    if span <= timedelta(days=most):
        first = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return [(first + timedelta(days=i), f"{first + timedelta(days=i):%d %b}") for i in range(span.days + 1)
                if first + timedelta(days=i) <= end]
    if span <= timedelta(weeks=10):
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
        first += timedelta(days=(7 - first.weekday()) % 7 or 7)
        out, t = [], first
        while t <= end:
            out.append((t, f"{t:%d %b}"))
            t += timedelta(weeks=1)
        return out
    months = (end.year - start.year) * 12 + end.month - start.month
    if months <= most * 12:
        step = next(s for s in (1, 2, 3, 6, 12, 24, 60, 120) if months / s <= most)
        first = _month_add(start.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1)
        out, t = [], first
        while t <= end:
            out.append((t, f"{t:%b %Y}" if step < 12 else f"{t:%Y}"))
            t = _month_add(t, step)
        return out
    years = end.year - start.year
    step = max(1, -(-years // most))
    return [(datetime(y, 1, 1, tzinfo=UTC), str(y)) for y in range(start.year + 1, end.year + 1, step)]


# -- a hit's score, by part -----------------------------------------------------------------

# What each part of a hit's score is called on the page (the keys `fuse()` writes as
# explain["part_<name>"]; they sum to the score).
PARTS = (("dense", "dense"), ("context", "contextual"), ("sparse", "BM25"), ("importance", "importance"),
         ("recency", "recency"))
SCORE_WIDTH = 300


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    value: float
    x: float
    width: float


def score_parts(hit: Hit) -> list[tuple[str, str, float]]:
    """(key, label, value) of each part of the hit's score. A hit whose explanation has no
    parts (a passage of what the assistant said) is one part, its whole score."""
    parts = [(key, label, hit.explain[f"part_{key}"]) for key, label in PARTS if f"part_{key}" in hit.explain]
    return parts or [("said", "passage", hit.score)]


def score_bar(hit: Hit, scale: float, width: int = SCORE_WIDTH) -> list[Segment]:
    """The hit's score as a stacked bar, `scale` the score that fills `width`."""
    out, x = [], 0.0
    for key, label, value in score_parts(hit):
        w = width * max(0.0, value) / scale if scale > 0 else 0.0
        out.append(Segment(key, label, value, round(x, 2), round(w, 2)))
        x += w
    return out


def page_in_verdict(hit: Hit, thresholds: Mapping[str, float] | None) -> tuple[bool | None, str]:
    """Whether `context()` would page this hit in, and why (None: the memory did not say its
    thresholds, e.g. an older server)."""
    if not thresholds:
        return None, ""
    semantic, lexical = relevance_of(hit.explain)
    lo, lex = thresholds.get("min_relevance", 0.0), thresholds.get("min_lexical_relevance", 0.0)
    if not clears_page_in(semantic, lexical, lo, lex):
        return False, f"cosine {semantic:.3f} < {lo:g} and BM25 {lexical:.2f} of the best < {lex:g}"
    return True, f"cosine {semantic:.3f} ≥ {lo:g}" if semantic >= lo else f"BM25 {lexical:.2f} of the best ≥ {lex:g}"


# -- a request's tokens, by tier --------------------------------------------------------------

TIERS = (("system", "system prompt"), ("profile", "profile"), ("documents", "documents"), ("summary", "summary"),
         ("memory", "memory"), ("history", "history"), ("message", "message"))
TOKENS_WIDTH = 900


@dataclass
class TokenBar:
    segments: list[Segment]
    total: int  # what the request sends: the sum of the segments
    budget: int
    reserve: int
    prefix_tokens: int
    prefix_x: float
    cache_min: int
    cacheable: bool
    width: int = TOKENS_WIDTH


def token_bar(report: ContextReport, *, cache_min: int | None = None, width: int = TOKENS_WIDTH) -> TokenBar:
    """The request's tokens per tier as one stacked bar over the budget (the reply reserve
    drawn last), with the cacheable prefix marked. `cache_min`: another model's minimum
    cacheable prefix than the one the memory was built for."""
    budget = int(report.budget.get("total", 0))
    reserve = int(report.budget.get("reply_reserve", 0))
    total = report.total
    scale = max(budget, total + reserve, 1)
    known = [key for key, _ in TIERS]
    tiers = list(TIERS) + [(k, k) for k in report.tokens if k not in known]
    segments, x = [], 0.0
    for key, label in tiers:
        n = int(report.tokens.get(key, 0))
        w = width * n / scale
        segments.append(Segment(key, label, n, round(x, 2), round(w, 2)))
        x += w
    segments.append(Segment("reserve", "reply reserve", reserve, round(x, 2), round(width * reserve / scale, 2)))
    minimum = report.cache_min_tokens if cache_min is None else cache_min
    return TokenBar(segments=segments, total=total, budget=budget, reserve=reserve, prefix_tokens=report.prefix_tokens,
                    prefix_x=round(width * report.prefix_tokens / scale, 2), cache_min=minimum,
                    cacheable=report.prefix_tokens >= minimum, width=width)


def tier_costs(report: ContextReport, prices: Mapping[str, float] | None,
               cacheable: bool) -> list[tuple[str, int, float | None, float | None]]:
    """(tier, tokens, USD on a cold cache, USD on a warm one) per tier of the request, at the
    model's list prices per million tokens. The cacheable prefix (system prompt, profile,
    stable documents) is written on a cold cache (5-minute TTL) and read on a warm one, when
    it is long enough to be cached; everything after it is plain input either way."""
    tokens = {key: int(report.tokens.get(key, 0)) for key, _ in TIERS}
    stable_documents = max(0, report.prefix_tokens - tokens["system"] - tokens["profile"])
    cached = {"system": tokens["system"], "profile": tokens["profile"],
              "documents": min(tokens["documents"], stable_documents)} if cacheable else {}
    out: list[tuple[str, int, float | None, float | None]] = []
    for key, _ in TIERS:
        n = tokens[key]
        if prices is None:
            out.append((key, n, None, None))
            continue
        c = cached.get(key, 0)
        plain = (n - c) * prices["input"]
        out.append((key, n, (c * prices["cache_write_5m"] + plain) / 1e6, (c * prices["cache_read"] + plain) / 1e6))
    return out


def when(value: datetime | None) -> str:
    """A time as the pages show it: UTC, to the minute."""
    return "" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"
