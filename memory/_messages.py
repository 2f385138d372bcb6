"""Turning caller message dicts (Anthropic or OpenAI shaped) into validated turns.

Everything is checked before anything is stored, so a bad message rejects the whole call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ._errors import InvalidInput
from ._limits import (  # noqa: F401 - re-exported: the limits and checks every door applies
    MAX_BUDGET,
    MAX_CALL_CHARS,
    MAX_FACT_CHARS,
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_MESSAGE_CHARS,
    MAX_METADATA_CHARS,
    MAX_METADATA_DEPTH,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_REASON_CHARS,
    MAX_TIMEOUT,
    check_count,
    check_id,
    check_ids,
    check_text,
    check_timeout,
)
from ._models import Role, Turn, TurnKind, as_utc
from ._tokens import TokenCounter, approx_tokens

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "human": "user", "ai": "assistant"}
_SKIPPED_ROLES = {"system", "developer"}  # instructions, not conversation turns
_TOOL_ROLES = {"tool", "function"}  # OpenAI tool results: stored as user-side tool_result turns
_TEXT_BLOCKS = ("text", "input_text", "output_text")


def check_time(value: Any, what: str) -> datetime:
    """A datetime (naive = UTC) between the years 1900 and 9000, as UTC."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime (naive is taken as UTC), got {type(value).__name__} {value!r}")
    try:
        utc = as_utc(value)
    except (OverflowError, ValueError):
        raise InvalidInput(f"{what} {value!r} is out of range") from None
    if not 1900 <= utc.year <= 9000:
        raise InvalidInput(f"{what} must be between the years 1900 and 9000, got {value.isoformat()}")
    return utc


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Caller metadata: a JSON object (it is stored as JSON and returned as given), at most
    32 levels deep and 64 KiB as JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"metadata must be a dict, got {type(metadata).__name__}")
    if _depth(metadata) > MAX_METADATA_DEPTH:
        raise InvalidInput(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"metadata must be JSON-serializable: {exc}") from None
    if len(encoded) > MAX_METADATA_CHARS:
        raise InvalidInput(f"metadata is {len(encoded):,} characters as JSON; the limit is {MAX_METADATA_CHARS:,}")
    if not all(isinstance(k, str) for k in metadata):
        raise InvalidInput("metadata keys must be strings")
    return dict(metadata)


def _depth(value: Any, limit: int = MAX_METADATA_DEPTH + 1) -> int:
    """How deep a JSON value nests (counted without recursion, up to `limit`)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > limit:
            return level
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list | tuple) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, Mapping | list | tuple))
    return deepest


def _text_of(value: Any, where: str) -> str:
    return check_text(value, f"{where}: text", allow_empty=True)


def _tool_result_text(block: Mapping[str, Any], where: str) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        body = content
    elif isinstance(content, Sequence):
        body = "\n".join(_text_of(b.get("text"), where) if isinstance(b, Mapping) and b.get("type") == "text"
                         else f"[{b.get('type', 'block') if isinstance(b, Mapping) else 'block'} omitted]" for b in content)
    else:
        raise InvalidInput(f"{where}: tool_result content must be a string or a list of blocks")
    error = " (error)" if block.get("is_error") else ""
    return f"[tool result {block.get('tool_use_id', '')}{error}]\n{body}"


def _tool_call_text(name: Any, arguments: Any) -> str:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
    return f"[tool call {name}({arguments})]"


def _content(message: Mapping[str, Any], index: int) -> tuple[str, TurnKind]:
    """The text a turn stores, and its kind: Anthropic blocks (text, tool_use, tool_result)
    or OpenAI parts and tool calls. Tool calls and results are kept, rendered as text."""
    where = f"message {index}"
    content = message.get("content")
    parts: list[str] = []
    kind: TurnKind = "text"
    if isinstance(content, str):
        parts.append(check_text(content, f"{where}: content", allow_empty=True))
    elif isinstance(content, Sequence):
        for block in content:
            if isinstance(block, str):
                parts.append(check_text(block, f"{where}: content", allow_empty=True))
            elif not isinstance(block, Mapping):
                raise InvalidInput(f"{where}: a content block must be a dict, got {type(block).__name__}")
            elif block.get("type") in _TEXT_BLOCKS:
                parts.append(_text_of(block.get("text"), where))
            elif block.get("type") == "tool_use":
                parts.append(_tool_call_text(block.get("name"), block.get("input", {})))
                kind = "tool_call"
            elif block.get("type") == "tool_result":
                parts.append(_tool_result_text(block, where))
                kind = "tool_result"
            # Images, documents and other blocks carry no text to store: skipped.
    elif content is not None:
        raise InvalidInput(f"{where}: content must be a string or a list of blocks, got {type(content).__name__}")
    for call in message.get("tool_calls") or ():  # OpenAI: the assistant's calls, content often None
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        parts.append(_tool_call_text(function.get("name"), function.get("arguments", "")))
        kind = "tool_call"
    if message.get("role") in _TOOL_ROLES:
        call_id = message.get("tool_call_id") or message.get("name") or ""
        return f"[tool result {call_id}]\n" + "\n".join(parts), "tool_result"
    return "\n".join(parts), kind


def to_turns(
    messages: Sequence[Mapping[str, Any]] | Mapping[str, Any] | str,
    *,
    user_id: str,
    session_id: str,
    at: datetime,
    metadata: Mapping[str, Any] | None = None,
    count_tokens: TokenCounter = approx_tokens,
) -> list[Turn]:
    """Validate and convert messages. System and developer messages are not conversation
    turns; tool calls and tool results are (kind "tool_call" / "tool_result"), rendered as text.

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
    offset = at.utcoffset() if isinstance(at, datetime) else None
    utc_offset = int(offset.total_seconds() // 60) if offset is not None else None
    at = check_time(at, "at")
    checked: list[Mapping[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise InvalidInput(f"message {i} must be a dict with 'role' and 'content', got {type(m).__name__}")
        checked.append(m)
    total = sum(len(str(m.get("content") or "")) for m in checked)
    if total > MAX_CALL_CHARS:
        raise InvalidInput(f"messages hold {total:,} characters, over the {MAX_CALL_CHARS:,} limit of one add() call; "
                           "send them in several calls")
    turns: list[Turn] = []
    for i, message in enumerate(checked):
        raw_role = message.get("role")
        if raw_role in _SKIPPED_ROLES:
            continue
        role = "user" if raw_role in _TOOL_ROLES else _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise InvalidInput(f"message {i}: role must be 'user', 'assistant' or 'tool', got {raw_role!r}")
        text, kind = _content(message, i)
        text = check_text(text, f"message {i}: content", allow_empty=True).strip()
        if not text:
            raise InvalidInput(f"message {i}: content is empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInput(
                f"message {i}: content is {len(text):,} characters, over the {MAX_MESSAGE_CHARS:,} limit; "
                "split it into several messages"
            )
        name = message.get("name")
        if name is not None:
            name = check_id(name.strip() if isinstance(name, str) else name, f"message {i}: name")
        external = message.get("id")
        if external is not None:
            if not isinstance(external, str | int) or isinstance(external, bool):
                raise InvalidInput(f"message {i}: id must be a string or an integer, got {type(external).__name__}")
            external = check_id(str(external), f"message {i}: id")
        turns.append(
            Turn(
                user_id=user_id,
                session_id=session_id,
                role=role,
                name=name,
                content=text,
                kind=kind,
                created_at=at,
                utc_offset=utc_offset,
                token_count=count_tokens(f"{name}: {text}" if name else text),  # as a request shows it
                external_id=external,
                metadata=dict(metadata or {}),
            )
        )
    if not turns:
        raise InvalidInput("messages held no user or assistant turn")
    return turns
