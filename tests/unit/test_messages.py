from datetime import UTC, datetime

import pytest

from tiermem import InvalidInput
from tiermem._messages import MAX_MESSAGE_CHARS, to_turns

AT = datetime(2024, 5, 2, tzinfo=UTC)


def turns(messages):
    return to_turns(messages, user_id="ana", session_id="s", at=AT)


def test_anthropic_and_openai_shapes() -> None:
    out = turns([
        {"role": "system", "content": "ignored: not a conversation turn"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image", "source": {}}], "name": "Ana", "id": 17},
        {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]},
    ])
    assert [(t.role, t.content, t.name, t.external_id) for t in out] == [("user", "hello", "Ana", "17"), ("assistant", "hi", None, None)]
    assert turns("just a string")[0].content == "just a string"


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([], "non-empty list"),
        ([{"role": "user", "content": "   "}], "content is empty"),
        ([{"role": "robot", "content": "x"}], "role must be 'user', 'assistant' or 'tool'"),
        ([{"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}], "over the"),
        ([{"role": "user", "content": 42}], "content must be a string"),
        (["not a dict"], "must be a dict"),
        ([{"role": "user", "content": "x", "name": ""}], "name must be a non-empty string"),
        ([{"role": "system", "content": "only system"}], "no user or assistant turn"),
    ],
)
def test_bad_messages_name_the_problem(messages, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        turns(messages)
