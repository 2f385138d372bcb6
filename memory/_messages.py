"""Turning caller message dicts (Anthropic or OpenAI shaped) into validated turns.

Everything is checked before anything is stored, so a bad message rejects the whole call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ._errors import InvalidInput
from ._models import Role, Turn, as_utc
from ._tokens import TokenCounter, approx_tokens

MAX_MESSAGE_CHARS = 100_000
MAX_ID_CHARS = 256
_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "human": "user", "ai": "assistant"}
_SKIPPED_ROLES = {"system", "tool", "function", "developer"}


def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{what} is longer than {MAX_ID_CHARS} characters")
    return value


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Caller metadata: a JSON object (it is stored as JSON and returned as given)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata must be JSON-serializable: {exc}") from None
    if not all(isinstance(k, str) for k in metadata):
        raise InvalidInput("metadata keys must be strings")
    return dict(metadata)


def _content_text(content: Any, index: int) -> str:
    """Anthropic content blocks or OpenAI parts: keep the text parts, in order."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and block.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(block.get("text", "")))
        if parts:
            return "\n".join(parts)
    raise InvalidInput(
        f"message {index}: content must be a string or a list of text blocks, got {type(content).__name__}"
    )


def to_turns(
    messages: Sequence[Mapping[str, Any]] | Mapping[str, Any] | str,
    *,
    user_id: str,
    session_id: str,
    at: datetime,
    metadata: Mapping[str, Any] | None = None,
    count_tokens: TokenCounter = approx_tokens,
) -> list[Turn]:
    """Validate and convert messages; system/tool messages are not conversation turns.

    Raises:
        InvalidInput: with the index of the offending message and how to fix it.
    """
    check_metadata(metadata)
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or not messages:
        raise InvalidInput("messages must be a non-empty list of {'role', 'content'} dicts")
    at = as_utc(at)
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidInput(f"message {i} must be a dict with 'role' and 'content', got {type(message).__name__}")
        raw_role = message.get("role")
        if raw_role in _SKIPPED_ROLES:
            continue
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise InvalidInput(f"message {i}: role must be 'user' or 'assistant', got {raw_role!r}")
        text = _content_text(message.get("content"), i).strip()
        if not text:
            raise InvalidInput(f"message {i}: content is empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInput(
                f"message {i}: content is {len(text):,} characters, over the {MAX_MESSAGE_CHARS:,} limit; "
                "split it into several messages"
            )
        name = message.get("name")
        if name is not None:
            name = check_id(name, f"message {i}: name").strip()
        external = message.get("id")
        if external is not None:
            external = check_id(str(external), f"message {i}: id")
        turns.append(
            Turn(
                user_id=user_id,
                session_id=session_id,
                role=role,
                name=name,
                content=text,
                created_at=at,
                token_count=count_tokens(text),
                external_id=external,
                metadata=dict(metadata or {}),
            )
        )
    if not turns:
        raise InvalidInput("messages held no user or assistant turn")
    return turns
