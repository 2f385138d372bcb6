"""What facts say: non-English input kept verbatim (D33), relative dates in the caller's time
zone (D26), tool transcripts accepted (D16), wrong types refused rather than coerced (D23)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import say
from tiermem import InvalidInput, Memory


@pytest.mark.parametrize("text", [
    "Vivo en Madrid y me encanta el senderismo.",
    "Ich wohne in Berlin und arbeite bei Siemens.",
    "東京に住んでいて、寿司が大好きです。",
    "أنا أعيش في القاهرة وأحب القراءة",
])
def test_non_english_sentences_are_kept_verbatim_with_their_speaker(mem: Memory, text: str) -> None:
    [fact] = mem.add([say(text)], user_id="ana").facts
    assert fact.text == f'Ana said: "{text}"' and fact.metadata == {"verbatim": True}
    assert "The user" not in fact.text and "Ana encanta" not in fact.text


def test_relative_dates_resolve_in_the_callers_time_zone(mem: Memory) -> None:
    tokyo = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=9)))  # 31 Dec 16:00 in UTC
    [fact] = mem.add([say("I went to the dentist yesterday.")], user_id="ana", at=tokyo).facts
    assert fact.text == "Ana went to the dentist on 31 December 2023."
    [naive] = mem.add([say("I went to the bakery yesterday.")], user_id="bob", at=datetime(2024, 1, 1, 1, 0)).facts
    assert naive.text == "Ana went to the bakery on 31 December 2023."  # naive times are UTC


def test_wrong_types_are_refused_not_coerced(mem: Memory) -> None:
    for messages in ([{"role": "user", "content": [{"type": "text", "text": None}]}],
                     [{"role": "user", "content": [{"type": "text", "text": 5}]}],
                     [{"role": "user", "content": "hi", "id": {"a": 1}}]):
        with pytest.raises(InvalidInput, match="message 0"):
            mem.add(messages, user_id="ana")
    for system in ({"a": 1}, [{"type": "text", "text": "x"}]):
        with pytest.raises(InvalidInput, match="system"):
            mem.context("hi there", user_id="ana", system=system)


def test_facts_dated_after_the_year_3000_keep_their_validity(mem: Memory) -> None:
    mem.add([say("I live in Avalon.")], user_id="ana", at=datetime(3001, 1, 1))
    mem.add([say("I live in Berlin.")], user_id="ana", at=datetime(3002, 1, 1))
    assert [f.text for f in mem.facts(user_id="ana")] == ["Ana lives in Berlin."]
    assert [h.fact.text for h in mem.search("where does Ana live", user_id="ana")] == ["Ana lives in Berlin."]
    assert [h.fact.text for h in mem.search("where does Ana live", user_id="ana", as_of=datetime(3001, 6, 1))] == [
        "Ana lives in Avalon."]
