"""reconcile() is pure: plain lists in, events out."""

from datetime import UTC, datetime, timedelta

from tiermem import Candidate, Fact, reconcile
from tiermem.reconcile import Neighbour

NOW = datetime(2024, 5, 2, tzinfo=UTC)
V1, V2 = [1.0, 0.0], [0.0, 1.0]


def cand(text: str, sources=("m-2",), **kw) -> Candidate:
    return Candidate(kind=kw.pop("kind", "semantic"), text=text, subject="Ana", sources=list(sources), valid_from=NOW, **kw)


def stored(text: str, sources=("m-1",), **kw) -> Fact:
    return Fact(user_id="ana", kind=kw.pop("kind", "semantic"), text=text, subject="Ana", sources=list(sources),
                valid_from=NOW - timedelta(days=30), **kw)


def test_new_fact_is_added() -> None:
    [e] = reconcile("ana", [cand("Ana loves hiking.")], [V1], [[]], now=NOW)
    assert e.op == "add" and e.fact.text == "Ana loves hiking." and e.fact.user_id == "ana"


def test_exact_duplicate_from_a_new_turn_merges_sources() -> None:
    old = stored("Ana loves hiking.")
    [e] = reconcile("ana", [cand("ana LOVES hiking")], [V1], [[Neighbour(old, None)]], now=NOW)
    assert e.op == "update" and e.fact.id == old.id
    assert e.fact.sources == ["m-1", "m-2"] and e.fact.mentions == 2
    assert e.previous == old


def test_replaying_the_same_turn_is_a_noop() -> None:
    old = stored("Ana loves hiking.", sources=("m-2",))
    [e] = reconcile("ana", [cand("Ana loves hiking.")], [V1], [[Neighbour(old, None)]], now=NOW)
    assert e.op == "noop"


def test_a_restatement_merges_and_another_subject_never_does() -> None:
    old = stored("Ana really loves hiking.")
    # the same claim (intensifiers aside) merges whatever the cosine
    [e] = reconcile("ana", [cand("Ana loves hiking a lot.")], [V1], [[Neighbour(old, 0.80)]], now=NOW)
    assert e.op == "update"
    # other words for it need the rephrasing cosine
    [e] = reconcile("ana", [cand("Ana adores hiking.")], [V1], [[Neighbour(old, 0.95)]], now=NOW)
    assert e.op == "update"
    [e] = reconcile("ana", [cand("Ana adores hiking.")], [V1], [[Neighbour(old, 0.85)]], now=NOW)
    assert e.op == "add"
    # the same words about someone else are another fact
    other = stored("Bob really loves hiking.").model_copy(update={"subject": "Bob"})
    [e] = reconcile("ana", [cand("Ana loves hiking a lot.")], [V1], [[Neighbour(other, 0.99)]], now=NOW)
    assert e.op == "add"


def test_same_sentence_about_different_days_is_two_events() -> None:
    day = lambda d: datetime(2024, 4, d, tzinfo=UTC)  # noqa: E731
    old = stored("Ana went hiking.", kind="episodic", event_at=day(1))
    [e] = reconcile("ana", [cand("Ana went hiking.", kind="episodic", event_at=day(20))], [V1], [[Neighbour(old, 1.0)]], now=NOW)
    assert e.op == "add"


def test_conflict_invalidates_the_old_fact_and_keeps_it() -> None:
    old = stored("Ana lives in Lisbon.", attribute="lives in", value="Lisbon")
    events = reconcile("ana", [cand("Ana moved to Berlin.", attribute="lives in", value="Berlin")], [V1], [[Neighbour(old, None)]], now=NOW)
    assert [e.op for e in events] == ["invalidate", "add"]
    invalidated, added = events[0].fact, events[1].fact
    assert invalidated.id == old.id and invalidated.text == old.text  # history kept, nothing deleted
    assert invalidated.invalid_at == NOW and invalidated.superseded_by == added.id
    assert added.value == "Berlin" and added.is_valid


def test_same_attribute_same_value_is_a_mention() -> None:
    old = stored("Ana lives in Berlin.", attribute="lives in", value="Berlin")
    [e] = reconcile("ana", [cand("Ana still lives in berlin.", attribute="lives in", value="berlin")], [V1], [[Neighbour(old, None)]], now=NOW)
    assert e.op == "update"


def test_invalid_neighbours_are_ignored() -> None:
    old = stored("Ana loves hiking.").model_copy(update={"invalid_at": NOW})
    [e] = reconcile("ana", [cand("Ana loves hiking.")], [V1], [[Neighbour(old, 1.0)]], now=NOW)
    assert e.op == "add"


def test_candidates_in_one_batch_see_each_other() -> None:
    events = reconcile("ana", [cand("Ana loves hiking.", sources=("m-1",)), cand("Ana loves hiking!", sources=("m-2",)),
                               cand("Ana hates spiders.")], [V1, V1, V2], [[], [], []], now=NOW)
    assert [e.op for e in events] == ["add", "update", "add"]
    assert events[1].fact.id == events[0].fact.id and events[1].fact.sources == ["m-1", "m-2"]
