"""Recall of what the assistant said: a question about the assistant's own earlier words ranks
passages of its stored answers beside the user's facts; other questions never see them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import T0
from tiermem import Memory
from tiermem._said import PASSAGE_CHARS, SAID_PREFIX, asks_what_was_said, passages

TRAIL_ANSWER = (
    "Moncayo Natural Park is a wonderful place to hike. Here are a few ideas for your visit:\n\n"
    "1. The GR-90 trail crosses the park's most stunning landscapes and offers panoramic views of the "
    "surrounding mountainside. Plan about six hours.\n"
    "2. The Hayedo de Peña Roya beech forest is beautiful in autumn, when the leaves turn copper.\n"
    "3. Bring layers: the summit of Moncayo is windy even in summer, and the weather changes quickly."
)
OTHER_ANSWERS = [
    "For a quick weeknight dinner, try a lentil curry with spinach; it keeps well for three days.",
    "A good stretching routine takes ten minutes: hamstrings, hip flexors, then the shoulders.",
    "To water succulents, wait until the soil is completely dry, then soak it and let it drain.",
]


def _chat(mem: Memory, user_id: str = "ana") -> None:
    mem.add([{"role": "user", "content": "I'm going hiking in the Moncayo mountains in Aragón next month.", "id": "u1"},
             {"role": "assistant", "content": TRAIL_ANSWER, "id": "a1"}],
            user_id=user_id, session_id="trip", at=T0)
    for n, answer in enumerate(OTHER_ANSWERS):
        mem.add([{"role": "user", "content": "I live in Lisbon and I work as a nurse.", "id": f"u{n + 2}"},
                 {"role": "assistant", "content": answer, "id": f"a{n + 2}"}],
                user_id=user_id, session_id=f"s{n}", at=T0 + timedelta(days=n + 1))


TRAIL_QUESTION = "What was the name of the hiking trail you recommended for the Moncayo park?"


@pytest.mark.parametrize("question", [
    TRAIL_QUESTION,
    "I remember you told me to dilute tea tree oil. What ratio was it?",
    "Going back to our previous conversation about sourdough, which flour did you suggest?",
    "Can you remind me of the restaurant in Rome you'd recommended?",
    "What was the 27th item on the list you gave me?",
    "Which stretches did you suggest for my knee?",
    "Can you remind me what the 27th parameter on that list was?",
    "What was the name of the sushi place we talked about?",
])
def test_questions_about_the_assistants_words_are_recognised(question: str) -> None:
    assert asks_what_was_said(question)


@pytest.mark.parametrize("question", [
    "Can you suggest a hotel for my trip to Miami?",
    "Where do I live?",
    "What did I tell my sister about the wedding?",
    "How many bikes do I own?",
    "Any tips on what to bake for my colleagues?",
    "Do you recommend a hotel near the beach?",
    "What do you suggest I cook now?",
])
def test_other_questions_are_not(question: str) -> None:
    assert not asks_what_was_said(question)


def test_a_long_message_is_read_at_its_ends() -> None:
    document = "The quarterly report lists revenue by region. " * 2000
    assert asks_what_was_said(document + "Which of these numbers did you say was wrong?")
    assert not asks_what_was_said(document + "Summarize this for me.")


def test_passages_keep_every_word_in_order_and_stay_small() -> None:
    text = TRAIL_ANSWER + " " + "word " * 200
    parts = passages(text)
    assert all(len(p) <= PASSAGE_CHARS for p in parts)
    assert " ".join(parts).split() == text.split()


def test_the_assistants_answer_is_found_with_its_turn_as_source(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        hits = mem.search(TRAIL_QUESTION, user_id="ana", limit=10)
    top = hits[0]
    assert top.fact.extractor == "said" and top.fact.text.startswith(SAID_PREFIX)
    assert "GR-90" in top.fact.text
    assert top.fact.sources == ["a1"] and top.fact.valid_from == T0
    assert top.explain["said_rank"] == 1 and top.explain["dense"] > 0.3
    # The user's facts are still ranked, interleaved after the passages.
    assert any(h.fact.extractor != "said" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_question_about_the_user_never_gets_the_assistants_words(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        hits = mem.search("Where does Ana live?", user_id="ana", limit=20)
        assert hits and all(h.fact.extractor != "said" for h in hits)
        # An explicit kinds filter asks for stored facts only.
        assert all(h.fact.extractor != "said"
                   for h in mem.search(TRAIL_QUESTION, user_id="ana", kinds=["episodic", "semantic"]))


def test_recall_reads_only_the_users_own_turns_and_only_up_to_as_of(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem, user_id="ana")
        mem.add([{"role": "user", "content": "hello", "id": "b1"},
                 {"role": "assistant", "content": "The GR-11 trail crosses the Pyrenees.", "id": "b2"}],
                user_id="bo", session_id="x", at=T0)
        ana = [h for h in mem.search(TRAIL_QUESTION, user_id="ana") if h.fact.extractor == "said"]
        bo = [h for h in mem.search(TRAIL_QUESTION, user_id="bo") if h.fact.extractor == "said"]
        earlier = [h for h in mem.search(TRAIL_QUESTION, user_id="ana", as_of=T0 - timedelta(days=1))
                   if h.fact.extractor == "said"]
    assert ana and all(h.fact.sources[0].startswith("a") for h in ana)
    assert [h.fact.sources for h in bo] == [["b2"]]
    assert earlier == []


def test_a_question_about_something_never_said_gets_no_passages(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        # It shares words with the answers ("summer", "keeps well"), not their topic.
        for question in ("Which tax software did you recommend for filing in summer?",
                         "What crypto wallet did you suggest, the one that keeps well offline?"):
            hits = mem.search(question, user_id="ana", limit=20)
            assert all(h.fact.extractor != "said" for h in hits)


def test_erased_answers_are_not_recalled(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        mem.forget_user("ana")
        assert mem.search(TRAIL_QUESTION, user_id="ana") == []


def test_an_erased_conversation_is_not_recalled_after_a_recall_read_it(home: Path, minilm) -> None:
    question = "Which sourdough flour did you recommend?"
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        # A conversation with no fact of the user's in it: only the recall ever read it.
        mem.add([{"role": "user", "content": "thanks!", "id": "x1"},
                 {"role": "assistant", "content": "For sourdough, use a strong bread flour such as Caputo Manitoba.",
                  "id": "x2"}], user_id="ana", session_id="bread", at=T0)
        assert any("Caputo" in h.fact.text for h in mem.search(question, user_id="ana"))  # read, and cached
        mem.forget_session("bread", user_id="ana")
        assert not any("Caputo" in h.fact.text for h in mem.search(question, user_id="ana"))
        said = mem.retriever.said
        assert said is not None
        # nothing of it is kept in memory (the cache is keyed by turn id and a hash, not the text)
        assert not any("Caputo" in text for kept in said._cache.values() for text, *_ in kept)


def test_context_pages_in_what_the_assistant_said(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        _chat(mem)
        ctx = mem.context(TRAIL_QUESTION, user_id="ana", session_id="later", budget=2000)
    said = [h for h in ctx.facts if h.fact.extractor == "said"]
    assert said and "GR-90" in said[0].fact.text
    request = json.dumps([ctx.system, ctx.messages])
    assert any(SAID_PREFIX in line and "GR-90" in line for line in request.split("\\n"))


def test_a_very_long_answer_is_read_at_its_two_ends_only(home: Path, minilm) -> None:
    """Q16: of an answer longer than twice TURN_ENDS a recall reads both ends: what it says
    first and last is still found, the cost of a recall stays bounded by the ends."""
    from tiermem._said import TURN_ENDS

    filler = "The service restarts cleanly after each deploy and the logs rotate daily. " * 2000
    answer = ("I recommended the Qzarra trail for your first hike. " + filler + filler
              + "Finally, the ranger station at Qzelm Gate sells the permits.")
    assert len(answer) > 4 * TURN_ENDS
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([{"role": "user", "content": "Plan my hike please."}, {"role": "assistant", "content": answer}],
                user_id="ana", at=T0)
        first = mem.search("which trail did you recommend for my first hike?", user_id="ana")
        last = mem.search("remind me where you said to buy the permits", user_id="ana")
        assert any("Qzarra" in h.fact.text for h in first if h.fact.text.startswith(SAID_PREFIX))
        assert any("Qzelm" in h.fact.text for h in last if h.fact.text.startswith(SAID_PREFIX))
        # what it read of the turn: both ends, not the middle
        [turn] = mem.session.assistant_turns("ana", limit=5, ends=TURN_ENDS)
        assert len(turn.content) <= 2 * TURN_ENDS + 4 and "Qzarra" in turn.content and "Qzelm" in turn.content
