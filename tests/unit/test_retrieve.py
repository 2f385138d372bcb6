from datetime import UTC, datetime

from tiermem import Fact
from tiermem.index import IndexHit, QueryResult
from tiermem.index._base import to_payload
from tiermem.retrieve import RetrievalPolicy, _token_set, drop_near_duplicates, fuse, has_content, is_relevant

NOW = datetime(2024, 5, 2, tzinfo=UTC)


def hit(text: str, score: float, vector=None, **kw) -> IndexHit:
    fact = Fact(user_id="ana", kind=kw.pop("kind", "semantic"), text=text, subject="Ana", valid_from=NOW, **kw)
    return IndexHit(to_payload(fact), score, vector)


def test_fusion_rewards_agreement_and_explains_itself() -> None:
    a, b, c = hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)
    b_sparse = IndexHit(b.payload, 5.0)
    ranked = fuse(QueryResult([a, b, c], [b_sparse]), [1.0, 0.0], now=NOW)
    assert [s.fact.text for s in ranked] == ["b", "a", "c"]  # in both lists beats top of one
    top = ranked[0].explain
    assert top["dense_rank"] == 2 and top["sparse_rank"] == 1 and top["dense"] == 0.8 and top["sparse_norm"] == 1.0
    assert abs(top["score"] - ranked[0].score) < 1e-6


def test_sparse_only_hits_get_a_dense_score_from_their_vector() -> None:
    only_sparse = hit("x", 3.0, vector=[0.6, 0.8])
    [s] = fuse(QueryResult([], [only_sparse]), [1.0, 0.0], now=NOW)
    assert abs(s.explain["dense"] - 0.6) < 1e-6


def test_recency_breaks_ties_for_episodic_facts_only() -> None:
    old = hit("old", 0.5, kind="episodic", event_at=datetime(2023, 1, 1, tzinfo=UTC))
    new = hit("new", 0.5, kind="episodic", event_at=datetime(2024, 5, 1, tzinfo=UTC))
    ranked = fuse(QueryResult([old, new], []), [1.0], now=NOW, policy=RetrievalPolicy(recency_weight=1.0))
    assert ranked[0].fact.text == "new" and ranked[0].explain["recency"] > 0.9
    assert ranked[1].explain["recency"] < 0.01


def test_relevance_threshold_and_content() -> None:
    policy = RetrievalPolicy()
    [weak] = fuse(QueryResult([hit("w", 0.05)], []), [1.0], now=NOW)
    [strong] = fuse(QueryResult([hit("s", 0.6)], []), [1.0], now=NOW)
    assert not is_relevant(weak, policy) and is_relevant(strong, policy)
    assert not has_content("thanks!") and not has_content("ok, great") and has_content("what should I pack?")


def test_near_duplicates_are_dropped_in_rank_order() -> None:
    ranked = fuse(QueryResult([hit("Ana went hiking in the Alps.", 0.9), hit("Ana went hiking in the Alps!", 0.8),
                               hit("Ana adopted a dog.", 0.7)], []), [1.0], now=NOW)
    kept, dropped = drop_near_duplicates(ranked, 0.8)
    assert [s.fact.text for s in kept] == ["Ana went hiking in the Alps.", "Ana adopted a dog."]
    assert [s.fact.text for s in dropped] == ["Ana went hiking in the Alps!"]


def test_near_duplicate_removal_matches_comparing_every_pair() -> None:
    import random

    rng = random.Random(4)
    vocab = [f"word{i}" for i in range(14)]
    hits = [hit(" ".join(rng.sample(vocab, rng.randint(1, 7))), 0.5) for _ in range(300)]
    for threshold in (0.5, 0.8, 1.0):
        scored = fuse(QueryResult(hits, []), [1.0], now=NOW)
        kept, dropped = drop_near_duplicates(scored, threshold)
        expected: list = []
        for s in scored:  # the quadratic definition
            words = _token_set(s.fact.text)
            if not any(words and len(words & o) / len(words | o) >= threshold for _, o in expected):
                expected.append((s, words))
        assert [s.fact_id for s in kept] == [s.fact_id for s, _ in expected]
        assert len(kept) + len(dropped) == len(scored) and dropped
