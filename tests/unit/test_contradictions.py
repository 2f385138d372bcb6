"""Contradictions beat near-duplicates, and time decides which value is current (pure functions)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0
from tiermem import Candidate, Fact, HashEmbedder, reconcile
from tiermem._contradict import compare
from tiermem.reconcile import Neighbour

EMBED = HashEmbedder(64)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Ana is allergic to peanuts.", "Ana is not allergic to peanuts."),
        ("Ana's PIN is 1234.", "Ana's PIN is 5678."),
        ("Ana's flight is on Monday.", "Ana's flight is on Tuesday."),
        ("Ana lives in Lisbon.", "Ana no longer lives in Lisbon."),
        ("Ana's gym is open until 9 pm.", "Ana's gym is open until 10 pm."),
        ("Ana's manager is Carla.", "Ana's manager is Tomas."),
        ("Ana drinks coffee.", "Ana never drinks coffee."),
    ],
)
def test_a_changed_negation_number_date_or_name_is_a_contradiction(old: str, new: str) -> None:
    assert compare(old, new, "Ana").contradicts()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Ana loves Italian food.", "Ana really loves Italian food."),
        ("Ana went to Paris.", "Ana went to Paris with Tom."),  # detail added, nothing replaced
        ("Ana has a dog named Rex.", "Ana is learning to play the cello."),  # unrelated frames
    ],
)
def test_rephrasing_or_added_detail_is_no_contradiction(old: str, new: str) -> None:
    assert not compare(old, new, "Ana").contradicts()


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
