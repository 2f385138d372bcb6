"""What a statement is about decides what it does to the stored facts (pure functions):
another subject is another fact, a plain-worded update replaces, a restatement merges,
and time decides which value is current."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0
from tiermem import Candidate, Fact, HashEmbedder, reconcile
from tiermem._claims import parse, relate, same_subject
from tiermem.reconcile import Neighbour

EMBED = HashEmbedder(64)


def relation(old: str, new: str, similarity: float | None = None, holder: str = "Ana") -> str:
    return relate(parse(old, holder), parse(new, holder), similarity=similarity)[0]


@pytest.mark.parametrize(
    ("text", "subject", "named"),
    [
        ("Ana's aunt Rosa teaches piano in Lyon.", {"ana", "aunt", "rosa"}, {"rosa"}),
        ("Ana says flat 3 has a leaking tap.", {"flat", "3"}, {"3"}),
        ("Tom lives in Oslo.", {"tom"}, {"tom"}),
        ("These days Ana takes their coffee black.", {"ana"}, set()),
        ("Tom is Ana's best friend.", {"ana", "best", "friend"}, set()),  # the same claim as 'Ana's best friend is Tom'
        ("Ana's new manager is Tomas.", {"ana", "manag"}, set()),  # 'new' says it changed, not who it is
    ],
)
def test_the_subject_is_the_noun_phrase_before_the_verb(text: str, subject: set[str], named: set[str]) -> None:
    claim = parse(text, "Ana")
    assert claim.subject == subject and claim.named == named and claim.parsed


def test_first_person_and_the_tenant_are_one_holder() -> None:
    mine = parse("my passport number ends in 4242", "ana", tenant="ana")
    theirs = parse("The user's passport number ends in 4242.", "The user", tenant="ana")
    assert same_subject(mine, theirs) == "same" and relate(mine, theirs)[0] == "same"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Ana's aunt Rosa teaches piano in Lyon.", "Ana's uncle Karl teaches piano in Bern."),
        ("Ana's friend Tom lives in Oslo.", "Ana's friend Maria lives in Oslo."),
        ("Ana says flat 3 has a leaking tap.", "Ana says flat 9 has a leaking tap."),
        ("Ana's wife Julia is a nurse.", "Ana's daughter Julia is a student."),
        ("Ana's colleague Priya is vegan.", "Ana's colleague Omar is vegetarian."),
        ("Tom's phone number is 555-1234.", "Maria's phone number is 555-9876."),
    ],
)
def test_statements_about_different_people_or_items_never_replace_each_other(old: str, new: str) -> None:
    assert relation(old, new, similarity=0.9) == "different"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Ana is allergic to peanuts.", "Ana is not allergic to peanuts."),
        ("Ana's PIN is 1234.", "Ana's PIN is 5678."),
        ("Ana's blood type is A+.", "Ana's blood type is O-."),
        ("Ana drinks coffee every morning.", "Ana stopped drinking coffee."),
        ("Ana takes oat milk in their coffee.", "These days Ana takes their coffee black."),
        ("Ana's favourite colour is blue.", "Now Ana's favourite colour is green."),
        ("Ana uses vim.", "Ana switched from vim to emacs."),
        ("Ana's manager is Carla.", "Ana's new manager is Tomas."),
        ("Ana drives a Honda.", "Ana sold the Honda and now drives a Tesla."),
        ("Ana runs every morning.", "Ana used to run every morning."),
        ("Ana supports Arsenal.", "Ana supports Chelsea now."),
    ],
)
def test_plain_worded_updates_replace(old: str, new: str) -> None:
    assert relation(old, new, similarity=0.7) == "replaces"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Ana loves hiking.", "Ana really loves hiking!", "same"),
        ("Ana jogs in the park every morning.", "Every morning Ana jogs in the park.", "same"),
        ("Ana has two kids.", "Ana has 2 kids.", "same"),
        ("Ana has a dog.", "Ana has a dog named Rex.", "refines"),
        ("Ana likes red wine.", "Ana likes white wine.", "unsure"),  # cosine 0.91, and two facts
        ("Ana likes pizza.", "Ana likes sushi.", "unsure"),
        ("Ana loves Italian food.", "Ana also loves French food.", "unsure"),
    ],
)
def test_restatements_merge_and_other_values_of_a_many_valued_relation_stay(old: str, new: str, expected: str) -> None:
    assert relation(old, new, similarity=0.91) == expected


def test_an_unparsed_statement_is_never_replaced() -> None:
    assert relation("Mostly pastries.", "Ana does not like pastries.") == "unsure"


def candidate(text: str, at=T0, kind: str = "semantic", **kw) -> Candidate:
    return Candidate(kind=kind, text=text, subject="Ana", valid_from=at, sources=[f"m-{hash(text) % 1000}"], **kw)


def stored(text: str, at=T0, kind: str = "semantic", **kw) -> Fact:
    return Fact(user_id="ana", kind=kind, text=text, subject="Ana", valid_from=at, created_at=at, **kw)


def decide(c: Candidate, existing: Fact):
    [vector] = EMBED.embed([c.index_text])
    [old_vector] = EMBED.embed([existing.index_text])
    similarity = sum(a * b for a, b in zip(vector, old_vector, strict=True))
    return reconcile("ana", [c], [vector], [[Neighbour(existing, similarity)]], now=T0 + timedelta(days=30))


def test_a_contradiction_is_not_merged_even_at_high_similarity() -> None:
    old = stored("Ana is allergic to peanuts.")
    events = decide(candidate("Ana is not allergic to peanuts.", at=T0 + timedelta(days=1)), old)
    assert [e.op for e in events] == ["invalidate", "add"]
    invalidated, added = events
    assert invalidated.fact.invalid_at == T0 + timedelta(days=1) and invalidated.fact.superseded_by == added.fact_id
    assert invalidated.fact.expired_at is not None  # record time of the change
    assert "negation" in invalidated.reason and added.fact.text == "Ana is not allergic to peanuts."


def test_backfilled_history_does_not_overturn_a_newer_fact() -> None:
    newer = stored("Ana's PIN is 5678.", at=T0)
    [event] = decide(candidate("Ana's PIN is 1234.", at=T0 - timedelta(days=60)), newer)
    assert event.op == "add" and not event.fact.is_valid  # history, already superseded
    assert event.fact.invalid_at == newer.valid_from and event.fact.superseded_by == newer.id
    assert event.fact.valid_at(T0 - timedelta(days=30)) and not event.fact.valid_at(T0 + timedelta(days=1))


def test_backfilled_attribute_lands_as_history() -> None:
    berlin = stored("Ana lives in Berlin.", at=T0, attribute="lives in", value="Berlin")
    [event] = decide(candidate("Ana lives in Lisbon.", at=T0 - timedelta(days=60), attribute="lives in", value="Lisbon"),
                     berlin)
    assert event.op == "add" and event.fact.invalid_at == T0  # Berlin stays current


def test_two_events_of_unknown_days_that_differ_in_a_value_are_two_events() -> None:
    old = stored("Ana visited museum number 3.", kind="episodic")
    [event] = decide(candidate("Ana visited museum number 6.", kind="episodic", at=T0 + timedelta(days=1)), old)
    assert event.op == "add" and event.fact.is_valid


def test_a_true_near_duplicate_still_merges() -> None:
    old = stored("Ana loves hiking in the Alps.")
    [event] = decide(candidate("Ana loves hiking in the Alps!", at=T0 + timedelta(days=1)), old)
    assert event.op == "update"
