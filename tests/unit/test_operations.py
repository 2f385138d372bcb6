"""What a statement does to what is stored, as pure functions: requests to forget told by
their shape, and the claim relations behind change, end and the controls. The sentences
here are not the benchmark's (bench.operations_suite): other verbs of each class, other
subjects, other values."""

from __future__ import annotations

import pytest

from tiermem._claims import clauses, parse, relate
from tiermem._forgetting import forget_target, named_share, target_words


@pytest.mark.parametrize(("sentence", "target"), [
    ("Could you forget about my divorce?", "my divorce"),
    ("Please forget my blood type.", "my blood type"),
    ("Get rid of my old phone number from your memory.", "my old phone number"),
    ("Clear what you have stored about my brother.", "my brother"),
    ("Hey, purge everything I told you about the surgery.", "the surgery"),
    ("I don't want you to remember my salary.", "my salary"),
    ("Please don't store my home address, thanks.", "my home address"),
    ("Ok, stop keeping notes on my diet", "my diet"),
    ("Disregard the bit about my landlord.", "the bit about my landlord"),
    ("Scratch that.", ""),
    ("Forget what I just said.", ""),
])
def test_a_request_to_forget_is_told_by_its_shape_and_names_its_target(sentence: str, target: str) -> None:
    assert forget_target(sentence) == target


@pytest.mark.parametrize("sentence", [
    "I'll never forget the concert in Lyon.",
    "Don't forget to water the plants on Friday.",
    "Remember that I'm vegan.",
    "Delete the cache folder before you build.",
    "Remove the duplicates from this list.",
    "I forgot my keys at the office.",
    "Forget it, let's move on.",
    "She told me to forget about him.",
    "Can you erase the last paragraph?",
    "We wiped the hard drive before selling it.",
])
def test_look_alikes_are_no_request_to_forget(sentence: str) -> None:
    assert forget_target(sentence) is None


def test_a_target_names_facts_by_its_content_words_not_its_filler() -> None:
    assert target_words("the surgery thing") == target_words("the surgery")
    assert named_share(target_words("my blood type"), "Ana's blood type is O-.", frozenset({"ana"})) == 1.0
    assert named_share(target_words("the blood thing"), "Ana donates blood every spring.") == 1.0
    assert named_share(target_words("my blood type"), "Ana donates blood every spring.") == 0.5
    assert named_share(target_words("my passport"), "Ana lives in Leeds.") == 0.0
    # stems that start one another match ('applications' / 'applying'), short ones do not
    assert named_share(target_words("the applications"), "Ana is applying for jobs.") == 1.0


def _relate(old: str, new: str, holder: str = "Ana") -> str:
    """As reconcile reads a statement: the whole, then each clause may replace on its own."""
    stored = parse(old, holder, "u")
    relations = [relate(stored, parse(text, holder, "u"), similarity=0.8)[0] for text in [new, *clauses(new)]]
    return "replaces" if "replaces" in relations else relations[0]


@pytest.mark.parametrize(("old", "new"), [
    ("Ana's gas bill is 70 a month.", "Ana's gas bill rose to 95 a month."),
    ("Ana's gas bill is 70 a month.", "The supplier cut Ana's gas bill to 55 a month."),
    ("The street party is on Saturday.", "They postponed the street party until Sunday."),
    ("Ana's yoga studio is in Clifton.", "Ana's yoga studio relocated to Redland."),
    ("Ana's dentist is Dr Moss.", "Dr Moss was succeeded by Dr Lin as Ana's dentist."),
    ("Ana's landlord is Mr Grant.", "Mr Grant resigned, Ms Vale is Ana's landlord now."),
    ("Ana has four goats.", "Ana has six goats."),
])
def test_a_new_value_of_the_same_slot_replaces(old: str, new: str) -> None:
    assert _relate(old, new) == "replaces"


@pytest.mark.parametrize(("old", "new"), [
    ("Ana takes salsa classes on Mondays.", "Ana cancelled the salsa classes."),
    ("Ana is a member of the chess club.", "Ana quit the chess club in the winter."),
    ("Ana owns a sailing boat.", "Ana sold the sailing boat."),
    ("Ana plays the cello in an orchestra.", "Ana doesn't play the cello anymore."),
])
def test_an_ending_of_what_was_held_or_done_replaces(old: str, new: str) -> None:
    assert _relate(old, new) == "replaces"


@pytest.mark.parametrize(("old", "new"), [
    ("Ana's son is Leo.", "Ana's son went to Paris."),  # a person moving is no new name
    ("Ana loves the beach.", "Ana left the beach early."),  # feelings end only by their negation
    ("Ana owns a van.", "Ana's neighbour sold his van."),  # someone else
    ("Ana's gas bill is 70 a month.", "Ana's brother's gas bill rose to 95 a month."),
    ("Ana takes salsa classes on Mondays.", "Ana quit her job at the bank."),  # another thing ended
    ("Ana has four goats.", "Ana also has two sheep."),
    ("Ana keeps notebook number 4 on the shelf.", "Ana keeps notebook number 7 on the shelf."),  # a number that names
    ("Ana will reach her dreams.", "Ana won't quit on her dreams."),  # an ending denied is no ending
    ("Ana is happier around people who accept her.",
     "It took years, but now Ana is ready to offer love to those who need it."),  # 'now' in a clause of chat
])
def test_look_alikes_of_a_change_replace_nothing(old: str, new: str) -> None:
    assert _relate(old, new) != "replaces"


def test_a_compound_statement_is_read_clause_by_clause() -> None:
    assert clauses("Mr Grant resigned, Ms Vale is Ana's landlord now.") == ["Mr Grant resigned",
                                                                            "Ms Vale is Ana's landlord now"]
    assert clauses("Ana lives in Leeds.") == []
