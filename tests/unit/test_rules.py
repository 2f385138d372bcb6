from datetime import UTC, datetime

from tiermem import RuleExtractor, Turn
from tiermem.extract._rules import to_third_person

AT = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def extract(text: str, name: str | None = "Priya", role: str = "user", external_id: str | None = "D1:3"):
    turn = Turn(user_id="u", session_id="s", role=role, name=name, content=text, created_at=AT, external_id=external_id)
    return RuleExtractor().extract([turn])


def test_first_person_resolves_to_the_speaker_and_dates_to_absolute() -> None:
    [fact] = extract("I went to a pottery workshop yesterday and it was so relaxing.")
    assert fact.text == "Priya went to a pottery workshop on 7 May 2023 and it was so relaxing."
    assert fact.kind == "episodic"
    assert fact.event_at == datetime(2023, 5, 7, tzinfo=UTC)
    assert fact.subject == "Priya"
    assert fact.sources == ["D1:3"]  # the caller's own message id is the provenance


def test_provenance_falls_back_to_our_turn_id() -> None:
    turn = Turn(user_id="u", session_id="s", role="user", name="Ana", content="I love painting sunsets.", created_at=AT)
    [fact] = RuleExtractor().extract([turn])
    assert fact.sources == [turn.id]


def test_small_talk_and_questions_yield_nothing() -> None:
    for text in ("Thanks!", "Hey Mel! Good to see you!", "Wow, that's awesome!", "How have you been?", "ok"):
        assert extract(text) == [], text


def test_attributes_for_conflicts() -> None:
    [fact] = extract("I moved to Berlin last week.")
    assert (fact.attribute, fact.value, fact.kind) == ("lives in", "Berlin", "semantic")
    [fact] = extract("My favorite food is sushi!")
    assert (fact.attribute, fact.value) == ("favorite food", "sushi")
    [fact] = extract("I'm vegetarian.")  # short, but an attribute: never dropped as small talk
    assert (fact.attribute, fact.value, fact.text) == ("diet", "vegetarian", "Priya is vegetarian.")


def test_separate_first_person_clauses_become_separate_facts() -> None:
    facts = extract("I live in Lisbon and I work as a product designer.")
    assert [f.text for f in facts] == ["Priya lives in Lisbon.", "Priya works as a product designer."]
    assert [f.attribute for f in facts] == ["lives in", "occupation"]


def test_unnamed_assistant_turns_are_not_user_facts() -> None:
    assert extract("I recommend visiting the Alps in June.", name=None, role="assistant") == []
    assert len(extract("I went hiking in the Alps in June.", name="Tomas", role="assistant")) == 1


def test_third_person_conjugation() -> None:
    assert to_third_person("I really love my dog", "Ana") == "Ana really loves their dog"
    assert to_third_person("My dog loves me", "Ana") == "Ana's dog loves them"
    assert to_third_person("I've been painting and I'm happy", "Ana") == "Ana has been painting and Ana is happy"
    assert to_third_person("I went there with my sister", "Ana") == "Ana went there with their sister"


def test_importance_ranks_attributes_above_chatter() -> None:
    [attribute] = extract("I work at Google.")
    [chatter] = extract("The weather was rainy and grey all afternoon.")
    assert attribute.importance > chatter.importance


def test_discourse_markers_are_not_part_of_the_fact() -> None:
    [fact] = extract("Well, I'm off to go do some research on sailboats.")
    assert fact.text == "Priya is off to go do some research on sailboats."
    [fact] = extract("Yeah, I knitted that green scarf last year!")
    assert fact.text == "Priya knitted that green scarf in 2022."
    assert extract("Yep, Tomas.") == []
