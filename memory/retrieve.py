"""Scoring and page-in: pure functions over the index's dense and sparse candidates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ._models import Fact, Hit
from ._text import content_tokens
from .index import IndexHit, QueryResult


@dataclass(frozen=True)
class RetrievalPolicy:
    """Weights of the hybrid score. Defaults were tuned on LoCoMo (see BENCHMARKS.md).

    Ranking is weighted reciprocal-rank fusion of the dense and BM25 lists (robust to
    their different score scales) plus small priors for importance and, for episodic
    facts, recency. `min_relevance` is the page-in threshold `context()` applies to the
    dense cosine, so that a 'thanks!' pages in nothing.
    """

    candidates: int = 60
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    rrf_k: int = 60
    importance_weight: float = 0.002
    recency_weight: float = 0.002
    recency_half_life_days: float = 30.0
    min_relevance: float = 0.25
    min_lexical_relevance: float = 0.45
    mmr_duplicate: float = 0.92


@dataclass
class Scored:
    fact: Fact
    score: float
    explain: dict[str, float]
    vector: list[float] | None

    def hit(self) -> Hit:
        return Hit(fact=self.fact, score=self.score, explain=self.explain)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(sum(x * y for x, y in zip(a, b)))


def recency(fact: Fact, now: datetime, half_life_days: float) -> float:
    if fact.kind != "episodic":
        return 0.0
    when = fact.event_at or fact.valid_from
    age_days = max(0.0, (now - when).total_seconds() / 86400)
    return math.exp(-math.log(2) * age_days / half_life_days)


def fuse(
    result: QueryResult, query_vector: Sequence[float], *, now: datetime, policy: RetrievalPolicy = RetrievalPolicy()
) -> list[Scored]:
    """Combine dense and sparse candidates into one ranking with an explanation per fact."""
    by_id: dict[str, dict[str, float]] = {}
    facts: dict[str, IndexHit] = {}
    for channel, hits in (("dense", result.dense), ("sparse", result.sparse)):
        for rank, hit in enumerate(hits, start=1):
            entry = by_id.setdefault(hit.fact.id, {})
            entry[f"{channel}_rank"] = rank
            entry[channel] = hit.score
            facts.setdefault(hit.fact.id, hit)
    max_sparse = max((h.score for h in result.sparse), default=0.0) or 1.0
    scored: list[Scored] = []
    for fact_id, entry in by_id.items():
        hit = facts[fact_id]
        cos = entry.get("dense")
        if cos is None and hit.vector is not None:
            cos = _dot(query_vector, hit.vector)
        fusion = 0.0
        if "dense_rank" in entry:
            fusion += policy.dense_weight / (policy.rrf_k + entry["dense_rank"])
        if "sparse_rank" in entry:
            fusion += policy.sparse_weight / (policy.rrf_k + entry["sparse_rank"])
        rec = recency(hit.fact, now, policy.recency_half_life_days)
        score = fusion + policy.importance_weight * hit.fact.importance + policy.recency_weight * rec
        explain = {
            "dense": round(cos or 0.0, 4),
            "sparse": round(entry.get("sparse", 0.0), 4),
            "sparse_norm": round(entry.get("sparse", 0.0) / max_sparse, 4),
            "fusion": round(fusion, 6),
            "importance": hit.fact.importance,
            "recency": round(rec, 4),
            "score": round(score, 6),
        }
        for key in ("dense_rank", "sparse_rank"):
            if key in entry:
                explain[key] = entry[key]
        scored.append(Scored(hit.fact, score, explain, hit.vector))
    scored.sort(key=lambda s: (-s.score, s.fact.id))
    return scored


def is_relevant(s: Scored, policy: RetrievalPolicy) -> bool:
    """The page-in threshold: semantically close, or lexically strong and not unrelated."""
    dense = s.explain.get("dense", 0.0)
    if dense >= policy.min_relevance:
        return True
    return s.explain.get("sparse_norm", 0.0) >= policy.min_lexical_relevance and dense >= policy.min_relevance / 2


def has_content(query: str) -> bool:
    """'thanks!' or 'ok' carry no content words: nothing is worth paging in for them."""
    from .extract._rules import SMALL_TALK_STEMS

    return any(t not in SMALL_TALK_STEMS for t in content_tokens(query))


def drop_near_duplicates(scored: Sequence[Scored], threshold: float) -> tuple[list[Scored], list[Scored]]:
    """Greedy MMR-style pass: keep a fact only if it is not a near copy of one kept before."""
    kept: list[Scored] = []
    dropped: list[Scored] = []
    for s in scored:
        if s.vector is not None and any(k.vector is not None and _dot(s.vector, k.vector) >= threshold for k in kept):
            dropped.append(s)
        else:
            kept.append(s)
    return kept, dropped
