"""Scoring and page-in: pure functions over the index's dense and sparse candidates."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np

from ._models import Fact, Hit
from ._sentences import SMALL_TALK_STEMS
from ._text import content_tokens
from .index import IndexHit, QueryResult


@dataclass(frozen=True)
class RetrievalPolicy:
    """Weights of the hybrid score. Defaults were tuned on LoCoMo (see BENCHMARKS.md).

    Ranking is weighted reciprocal-rank fusion of three lists (robust to their different
    score scales): the facts nearest the query, the facts whose *contextual* vector (the
    fact with the turns it came from) is nearest, and BM25; plus small priors for
    importance and, for episodic facts, recency. The contextual list finds a fact whose
    own words lost its topic ("It taught her self-acceptance", where "it" is a book the
    turn before names). `min_relevance` is the page-in threshold `context()` applies to the
    dense cosine, so that a 'thanks!' pages in nothing.
    """

    candidates: int = 60
    dense_weight: float = 0.5
    context_weight: float = 0.5
    sparse_weight: float = 1.0
    rrf_k: int = 10
    dense_score_weight: float = 0.005
    # BM25 hits scoring below this (IDF-weighted) matched only terms that nearly every fact
    # has, such as the user's own name, and earn no rank credit: their order is just length.
    min_sparse_score: float = 0.3
    sparse_score_weight: float = 0.0
    importance_weight: float = 0.002
    recency_weight: float = 0.002
    recency_half_life_days: float = 30.0
    min_relevance: float = 0.25
    min_lexical_relevance: float = 0.45
    mmr_duplicate: float = 0.8  # content-word Jaccard between two paged-in facts


class Scored:
    """A ranked candidate; its `Fact` is only built if it is returned, and its explanation
    only if it is read (a search ranks ~100 candidates and returns 10).

    `explain`: the explanation, or a function that makes it; `relevance`: what the page-in
    threshold reads, (semantic, lexical) as the explanation shows them (default: read from it).
    """

    __slots__ = ("hit_", "score", "vector", "relevance", "_explain")

    def __init__(self, hit: IndexHit, score: float, explain: dict[str, float] | Callable[[], dict[str, float]],
                 vector: np.ndarray | None, relevance: tuple[float, float] | None = None):
        self.hit_ = hit
        self.score = score
        self.vector = vector
        self._explain = explain
        self.relevance = relevance if relevance is not None else relevance_of(self.explain)

    @property
    def explain(self) -> dict[str, float]:
        if callable(self._explain):
            self._explain = self._explain()
        return self._explain

    @property
    def fact(self) -> Fact:
        return self.hit_.fact

    @property
    def fact_id(self) -> str:
        return self.hit_.fact_id

    def hit(self) -> Hit:
        return Hit(fact=self.fact, score=self.score, explain=self.explain)


def _tied_ranks(scores: Sequence[float]) -> list[int]:
    """Competition ranks (1, 2, 2, 4): backends order equal scores differently, ranks must not."""
    ranks: list[int] = []
    for i, score in enumerate(scores):
        ranks.append(ranks[-1] if i and round(score, 6) == round(scores[i - 1], 6) else i + 1)
    return ranks


def recency(kind: str, event_ts: float, now_ts: float, half_life_days: float) -> float:
    if kind != "episodic":
        return 0.0
    age_days = max(0.0, (now_ts - event_ts) / 86400)
    return math.exp(-math.log(2) * age_days / half_life_days)


def fuse(
    result: QueryResult, query_vector: Sequence[float], *, now: datetime, policy: RetrievalPolicy = RetrievalPolicy(),
    settle: int | None = None,
) -> list[Scored]:
    """Combine dense and sparse candidates into one ranking with an explanation per fact.
    `settle`: how many leading candidates need their ties in final order (default all)."""
    entries: dict[str, dict[str, float]] = {}
    hits: dict[str, IndexHit] = {}
    for channel, channel_hits in (("dense", result.dense), ("context", result.context), ("sparse", result.sparse)):
        for rank, hit in zip(_tied_ranks([h.score for h in channel_hits]), channel_hits, strict=True):
            fact_id = hit.fact_id
            entry = entries.setdefault(fact_id, {})
            entry[f"{channel}_rank"] = rank
            entry[channel] = hit.score
            if fact_id not in hits or (hits[fact_id].vector is None and hit.vector is not None):
                hits[fact_id] = hit
    query = np.asarray(query_vector, dtype=np.float32)
    max_sparse = max((h.score for h in result.sparse), default=0.0) or 1.0
    now_ts = now.timestamp()
    scored: list[Scored] = []
    for fact_id, entry in entries.items():
        hit = hits[fact_id]
        payload = hit.payload
        vector = np.asarray(hit.vector, dtype=np.float32) if hit.vector is not None else None
        cos = entry.get("dense")
        if cos is None and vector is not None:
            cos = float(vector @ query)
        by_dense = policy.dense_weight / (policy.rrf_k + entry["dense_rank"]) if "dense_rank" in entry else 0.0
        by_context = policy.context_weight / (policy.rrf_k + entry["context_rank"]) if "context_rank" in entry else 0.0
        by_sparse = (policy.sparse_weight / (policy.rrf_k + entry["sparse_rank"])
                     if "sparse_rank" in entry and entry["sparse"] >= policy.min_sparse_score else 0.0)
        fusion = by_dense + by_context + by_sparse
        importance = float(payload.get("importance", 0.5))
        rec = recency(payload.get("kind", ""), payload.get("event_ts", now_ts), now_ts, policy.recency_half_life_days)
        sparse_norm = entry.get("sparse", 0.0) / max_sparse
        by_cosine = policy.dense_score_weight * (cos or 0.0)
        by_keywords = policy.sparse_score_weight * sparse_norm
        by_importance = policy.importance_weight * importance
        by_recency = policy.recency_weight * rec
        # Summed in this order since round 1: another order moves scores in the last bit, and
        # so which candidates tie.
        score = fusion + by_cosine + by_keywords + by_importance + by_recency
        by_dense, by_sparse = by_dense + by_cosine, by_sparse + by_keywords
        explain = functools.partial(_explanation, entry, cos, sparse_norm, fusion, importance, rec, score,
                                    (by_dense, by_context, by_sparse, by_importance, by_recency))
        # What the page-in threshold reads, rounded as the explanation shows it.
        relevance = (max(round(cos, 4) if cos is not None else 0.0, round(entry.get("context", 0.0), 4)), round(sparse_norm, 4))
        scored.append(Scored(hit, score, explain, vector, relevance))
    scored.sort(key=lambda s: -s.score)
    settle_ties(scored, len(scored) if settle is None else settle)
    return scored


def _explanation(entry: dict[str, float], cos: float | None, sparse_norm: float, fusion: float, importance: float,
                 rec: float, score: float, parts: tuple[float, float, float, float, float]) -> dict[str, float]:
    by_dense, by_context, by_sparse, by_importance, by_recency = parts
    explain = {
        "sparse": round(entry.get("sparse", 0.0), 4),
        "sparse_norm": round(sparse_norm, 4),
        "fusion": round(fusion, 6),
        "importance": importance,
        "recency": round(rec, 4),
        "score": round(score, 6),
        # what each channel and prior added to the score (they sum to it): the UI's bars
        "part_dense": round(by_dense, 6), "part_context": round(by_context, 6), "part_sparse": round(by_sparse, 6),
        "part_importance": round(by_importance, 6), "part_recency": round(by_recency, 6),
    }
    if cos is not None:
        explain["dense"] = round(cos, 4)
    if "context" in entry:
        explain["context"] = round(entry["context"], 4)
    for key in ("dense_rank", "context_rank", "sparse_rank"):
        if key in entry:
            explain[key] = entry[key]
    return explain


def settle_ties(scored: list[Scored], upto: int) -> None:
    """Equal scores ordered by text, then id, in place: the same order on every backend and
    in every home. Only tied candidates are read for it (on the embedded index reading the
    text opens a sealed payload; see index._sealing), and only the ties that start among the
    first `upto`, the ones a caller keeps: a search's long tail of keyword-only candidates
    ties at the prior, and would otherwise open ~50 payloads a search for nothing."""
    start = 0
    while start < min(upto, len(scored)):
        end = start + 1
        while end < len(scored) and scored[end].score == scored[start].score:
            end += 1
        if end - start > 1:
            scored[start:end] = sorted(scored[start:end], key=lambda s: (s.hit_.payload.get("text", ""), s.fact_id))
        start = end


def relevance_of(explain: Mapping[str, float]) -> tuple[float, float]:
    """(semantic, lexical) closeness as an explanation states it: the fact's or its contextual
    vector's cosine, whichever is higher, and the BM25 score as a share of the best match's."""
    return max(explain.get("dense", 0.0), explain.get("context", 0.0)), explain.get("sparse_norm", 0.0)


def clears_page_in(semantic: float, lexical: float, min_relevance: float, min_lexical_relevance: float) -> bool:
    """The page-in threshold: semantically close (the fact, or the fact in its context), or
    among the strongest keyword matches."""
    return semantic >= min_relevance or lexical >= min_lexical_relevance


def is_relevant(s: Scored, policy: RetrievalPolicy) -> bool:
    return clears_page_in(*s.relevance, policy.min_relevance, policy.min_lexical_relevance)


def has_content(query: str) -> bool:
    """'thanks!' or 'ok' carry no content words: nothing is worth paging in for them."""
    return any(t not in SMALL_TALK_STEMS for t in content_tokens(query))


@lru_cache(maxsize=8192)  # the same facts come back for query after query
def _token_set(text: str) -> frozenset[str]:
    return frozenset(content_tokens(text))


def drop_near_duplicates(scored: Sequence[Scored], threshold: float) -> tuple[list[Scored], list[Scored]]:
    """Greedy MMR-style pass: keep a fact only if it is not a near copy of one kept before.

    Near copies are judged on content words (Jaccard), not vectors: reconcile already
    merged everything above the embedding threshold at write time, so what is left to
    catch is rephrasings with the same words (the same event told on two days), and
    skipping the vectors keeps context() off the slow path of fetching them. Only kept
    facts that share a word of the candidate's prefix are compared (prefix filtering: two
    sets with Jaccard >= t share one of each one's first |A| - ceil(t|A|) + 1 words in any
    fixed order; rarest first here), so the pass is not quadratic in the candidates.
    """
    kept: list[tuple[Scored, frozenset[str]]] = []
    dropped: list[Scored] = []
    by_word: dict[str, list[int]] = {}
    sets = [_token_set(str(s.hit_.payload.get("text", ""))) for s in scored]
    frequency: dict[str, int] = {}
    for words in sets:
        for w in words:
            frequency[w] = frequency.get(w, 0) + 1
    for s, words in zip(scored, sets, strict=True):
        # Rarest words first: the prefixes then share few words, and few kept facts are compared.
        ordered = sorted(words, key=lambda w: (frequency[w], w))
        prefix = ordered[:max(1, len(words) - math.ceil(threshold * len(words)) + 1)] if words else []
        candidates = {i for w in prefix for i in by_word.get(w, ())}
        if any(len(words & kept[i][1]) / len(words | kept[i][1]) >= threshold for i in candidates):
            dropped.append(s)
            continue
        for w in prefix:
            by_word.setdefault(w, []).append(len(kept))
        kept.append((s, words))
    return [s for s, _ in kept], dropped
