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


def test_a_question_that_opens_with_a_statement_keeps_the_statement() -> None:
    [fact] = extract("I need some new ideas for my meal prep, can you suggest protein sources that go with quinoa?")
    assert fact.text == "Priya needs some new ideas for their meal prep."
    [fact] = extract("I'm looking for mid-century modern inspiration for a new bedroom dresser, do you have any tips?")
    assert fact.text.startswith("Priya is looking for mid-century modern inspiration for a new bedroom dresser")
    # A question about the speaker's own things states nothing.
    for text in ("My sister, do you remember her name?", "Can you suggest some accessories for my camera?",
                 "I wonder, could you help?"):
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


def test_unnamed_assistant_turns_are_kept_as_said_never_as_user_facts() -> None:
    answer = "Sure! For a romantic dinner I would recommend Roscioli near Campo de' Fiori. Would you like its hours?"
    turn = Turn(user_id="u", session_id="s", role="assistant", content=answer, created_at=AT)
    assert RuleExtractor().extract([turn]) == []  # by default an unnamed assistant's words are no facts
    [said] = RuleExtractor(assistant_said=True).extract([turn])
    assert said.text == 'The assistant said: "For a romantic dinner I would recommend Roscioli near Campo de\' Fiori."'
    assert said.subject == "the assistant" and said.metadata == {"said_by": "assistant"} and said.importance < 0.5
    thanks = Turn(user_id="u", session_id="s", role="assistant", content="Noted, happy to help!", created_at=AT)
    assert RuleExtractor(assistant_said=True).extract([thanks]) == []  # pleasantries are not kept
    # The assistant is the model whatever its name; a person with a name is a `user` participant.
    assert extract("I went hiking in the Alps in June.", name="Tomas", role="assistant") == []
    assert len(extract("I went hiking in the Alps in June.", name="Tomas", role="user")) == 1


def test_an_assistant_echoing_the_user_is_not_kept_but_what_it_recommends_is() -> None:
    def said(user: str, assistant: str) -> list[str]:
        turns = [Turn(user_id="u", session_id="s", role="user", content=user, created_at=AT),
                 Turn(user_id="u", session_id="s", role="assistant", content=assistant, created_at=AT)]
        return [c.text for c in RuleExtractor(assistant_said=True).extract(turns) if c.metadata.get("said_by")]

    assert said("I'm vegetarian and my favorite cuisine is Japanese. I love hiking in the mountains.",
                "Noted: vegetarian, Japanese food, mountain hikes.") == []
    assert said("Can you recommend a romantic restaurant in Rome for dinner?",
                "For a romantic dinner in Rome I would recommend Roscioli.") == [
        'The assistant said: "For a romantic dinner in Rome I would recommend Roscioli."']


def test_what_the_assistant_said_never_updates_what_the_user_said(tmp_path) -> None:
    from tiermem import HashEmbedder, Memory

    with Memory.open(tmp_path / "home", embedder=HashEmbedder(64), extractor=RuleExtractor(assistant_said=True)) as mem:
        mem.add([{"role": "user", "content": "My favourite restaurant in Rome is Armando al Pantheon."},
                 {"role": "assistant", "content": "Your favourite restaurant in Rome is Roscioli, I believe."}],
                user_id="ana", at=AT)
        facts = {f.text for f in mem.facts(user_id="ana")}
    assert "The user's favourite restaurant in Rome is Armando al Pantheon." in facts
    assert 'The assistant said: "Your favourite restaurant in Rome is Roscioli, I believe."' in facts


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


def test_greetings_self_introductions_and_bare_fragments_yield_nothing() -> None:
    for text in ("Hi! I'm Priya.", "My name is Priya.", "Mostly pastries.", "Luna and Oliver!", "Tired today."):
        assert extract(text) == [], text


def test_a_fragment_that_answers_a_question_is_kept_with_the_question() -> None:
    asked = Turn(user_id="u", session_id="s", role="assistant", content="Lovely! What did you eat?", created_at=AT)
    answer = Turn(user_id="u", session_id="s", role="user", name="Priya", content="Mostly pastries.", created_at=AT)
    [fact] = RuleExtractor().extract([asked, answer])
    assert fact.text == 'Asked "What did you eat?", Priya answered: "Mostly pastries."'


def test_a_request_to_remember_is_the_statement_it_carries() -> None:
    for text in ("Remember that my passport number ends in 4242.", "Please note: my passport number ends in 4242.",
                 "FYI, my passport number ends in 4242."):
        [fact] = extract(text)
        assert fact.text == "Priya's passport number ends in 4242.", text


def test_a_sentence_without_a_subject_is_the_speakers() -> None:
    assert [f.text for f in extract("Off to Lisbon next week!")] == ["Priya is off to Lisbon in the week after 8 May 2023."]
    assert [f.text for f in extract("Went hiking with Tom.")] == ["Priya went hiking with Tom."]


def test_a_reported_statement_keeps_the_names_case() -> None:
    assert [f.text for f in extract("Rosa teaches piano in Lyon.")] == ["Priya says Rosa teaches piano in Lyon."]
    assert [f.text for f in extract("The gym opens at 6.")] == ["Priya says the gym opens at 6."]


def test_states_and_ended_states_are_semantic_not_events() -> None:
    for text in ("I'm based in Manchester.", "I'm dating someone named Alex.", "I stopped drinking coffee.",
                 "I used to live in Paris."):
        [fact] = extract(text)
        assert fact.kind == "semantic", text


def test_snowball_stems_meet_across_inflections() -> None:
    from tiermem._text import content_tokens

    for forms in (("live", "lives", "lived", "living"), ("move", "moved", "moving"), ("hike", "hiking", "hikes")):
        assert len({tuple(content_tokens(f)) for f in forms}) == 1, forms
