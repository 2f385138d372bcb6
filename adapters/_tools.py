"""What every framework's memory tools do, once: search, remember and forget over one
user's facts, answering the model in text (errors included: a tool that raises ends most
agent loops). The framework adapters only wrap these in their own tool types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tiermem import FactNotFound, MemoryAPI, TieredMemoryError

RECALL_DOC = ("Search the user's long-term memory. Returns the facts most relevant to `query` "
              "(JSON: id, text, kind, score, valid_from).")
REMEMBER_DOC = ("Store a self-contained fact about the user in long-term memory (e.g. \"Ana is allergic to peanuts\"). "
                "A fact that contradicts a stored one replaces it; the old one stays in history.")
FORGET_DOC = ("Stop using a stored fact (by the id the search returned). Reversible: the fact is retracted, "
              "not erased.")


def hit_dict(hit: Any) -> dict[str, Any]:
    fact = hit.fact
    return {"id": fact.id, "text": fact.text, "kind": fact.kind, "score": round(hit.score, 4),
            "valid_from": fact.valid_from.isoformat(), "metadata": fact.metadata}


User = str | Callable[[], str]  # the user, or how to find it (a tool's run config): its errors answer too


def _user(user_id: User) -> str:
    return user_id() if callable(user_id) else user_id


def recall(memory: MemoryAPI, user_id: User, query: str, limit: int = 10, offset: int = 0) -> str:
    try:
        hits = memory.search(query, user_id=_user(user_id), limit=max(1, limit + offset))
    except TieredMemoryError as exc:
        return f"Error: {exc}"
    return json.dumps([hit_dict(h) for h in hits[offset:offset + limit]], ensure_ascii=False)


def remember(memory: MemoryAPI, user_id: User, content: str, kind: str | None = None) -> str:
    try:
        result = memory.remember(content, user_id=_user(user_id), kind=kind)
    except TieredMemoryError as exc:
        return f"Error: {exc}"
    event = result.events[0]
    verb = {"add": "created", "update": "updated", "noop": "already known as"}.get(event.op, event.op)
    return f"{verb} memory {event.fact_id}"


def forget(memory: MemoryAPI, user_id: User, id: str, reason: str = "forgotten at the user's request") -> str:
    try:
        memory.retract(id, user_id=_user(user_id), reason=reason)
    except FactNotFound:
        return f"Error: no memory {id!r} for this user; the search tool gives the ids"
    except TieredMemoryError as exc:
        return f"Error: {exc}"
    return f"forgot memory {id}"


# -- OpenAI-shaped messages (the Agents SDK's items, Pydantic AI's parts reduced to text) ---------
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def item_text(item: Mapping[str, Any]) -> str:
    """The text of a message item: a string content, or its text parts joined."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, Mapping) and part.get("type") in TEXT_PARTS and isinstance(part.get("text"), str))
    return ""


def last_user_text(items: Sequence[Any]) -> str:
    for item in reversed(items):
        if isinstance(item, Mapping) and item.get("role") == "user" and item.get("type", "message") == "message":
            text = item_text(item)
            if text.strip():
                return text
    return ""


def memory_block(context: Any) -> str:
    """The `<memories>` block `context()` put before the new message ("" when none)."""
    return next((b["text"] for b in context.messages[-1]["content"] if b.get("text", "").startswith("<memories>")), "")


def instructions_from(context: Any) -> str:
    """`context()`'s system blocks (prompt, profile, summary) and memory block as one text, for
    frameworks whose instructions are a string."""
    parts = [b["text"] for b in context.system if b.get("text")]
    block = memory_block(context)
    return "\n\n".join([*parts, block] if block else parts)


async def paged_instructions(memory: MemoryAPI, message: str, *, user_id: str, session_id: str, base: str | None,
                             budget: int) -> str:
    """`base` plus what `context()` pages in for `message` (profile, summary, relevant facts),
    as one instructions text; `base` alone when there is no message to page for."""
    if not message.strip():
        return base or ""
    built = await asyncio.to_thread(memory.context, message, user_id=user_id, session_id=session_id, system=base,
                                    budget=budget)
    return instructions_from(built)
