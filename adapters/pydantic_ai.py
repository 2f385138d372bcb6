"""tiermem for Pydantic AI: its `ConversationStore` on tiermem, the user's memory in the
agent's instructions, a history window within a token budget, and memory tools.

    from pydantic_ai import Agent
    from pydantic_ai.capabilities import ProcessHistory
    from tiermem.adapters.pydantic_ai import TiermemConversationStore, history_window, memory_instructions, memory_toolset

    store = TiermemConversationStore(mem)
    agent = Agent(model, instructions=memory_instructions(mem, user_id="ana", base="You help."),
                  toolsets=[memory_toolset(mem, user_id="ana")], capabilities=[ProcessHistory(history_window(6000))])
    conversation = await store.load("chat-7", scope="ana") or Conversation(conversation_id="chat-7")
    result = await agent.run("I moved to Berlin last week", conversation=conversation)
    await store.save(result, scope="ana")

- `TiermemConversationStore(memory)`: Pydantic AI's persistence protocol on the item tier.
  A conversation's `scope` is the tiermem user: its record and messages are that user's
  items (`forget_user(scope)` erases them), and the user prompts and model texts a save
  appends go through `add()` (session = the conversation id), so facts are extracted.
- `memory_instructions(memory, user_id=...)`: instructions that page in the user's profile,
  the session's rolling summary and the facts relevant to the run's prompt (`context()`).
- `history_window(max_tokens)`: a history processor that keeps the newest messages within a
  token budget, starting at a user prompt (a tool return never loses its call); what it
  leaves out is what tier 2 summarizes and `memory_instructions` pages back in.
- `memory_toolset(memory, user_id=...)`: `recall`, `remember`, `forget` bound to one user.

Works over any `MemoryAPI` (a `Memory`, a shared home, `Memory.open(url=...)` beside
`tiermem serve`). Needs the `pydantic-ai` extra: `pip install 'tiermem[pydantic-ai]'`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import RunContext
from pydantic_ai.conversation_store import (
    ConversationConflict,
    ConversationDetails,
    ConversationEntry,
    ConversationRecord,
    ConversationStore,
)
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolReturnPart, UserPromptPart
from pydantic_ai.toolsets import FunctionToolset

from tiermem import InvalidInput, MemoryAPI, TieredMemoryError, approx_tokens, check_id
from tiermem.items import GetItem, PutItem, SearchItems

from . import _tools

__all__ = ["TiermemConversationStore", "history_window", "memory_instructions", "memory_toolset"]

logger = logging.getLogger("tiermem")

RECORDS = ["pydantic_ai", "conversations"]
ENTRIES = ["pydantic_ai", "entries"]
PAGE = 1000
_RECORD = TypeAdapter(ConversationRecord)
_ENTRY = TypeAdapter(ConversationEntry)
_MESSAGE: TypeAdapter[ModelMessage] = TypeAdapter(ModelMessage)

UserOf = str | Callable[[RunContext[Any]], str]


class TiermemConversationStore(ConversationStore):
    """Pydantic AI's `ConversationStore` on tiermem's item tier.

    Args:
        memory: any `MemoryAPI` (the caller keeps it open and closes it).
        user_id: the tiermem user of conversations saved without a `scope` (None: such
            conversations are kept but nothing is extracted from them).
        extract: send the user prompts and model texts a save appends through `add()`.

    Revision checks (`ConversationConflict`) are atomic among the savers of this process;
    `delete()` erases the entries no remaining conversation reaches.
    """

    def __init__(self, memory: MemoryAPI, *, user_id: str | None = None, extract: bool = True):
        self.memory = memory
        self.user_id = check_id(user_id, "user_id") if user_id is not None else None
        self.extract = extract
        self._lock = threading.Lock()

    # -- the storage primitives the protocol builds on ------------------------------------------
    async def read_record(self, conversation_id: str) -> ConversationRecord | None:
        return await asyncio.to_thread(self._record, conversation_id)

    async def read_records(self, *, scope: str | None = None, limit: int | None = None) -> Sequence[ConversationRecord]:
        records = await asyncio.to_thread(self._records)
        chosen = [r for r in records if scope is None or r.scope == scope]
        chosen.sort(key=lambda r: r.updated_at, reverse=True)
        return chosen[:limit]

    async def write_record(self, record: ConversationRecord, *, new_entries: Sequence[ConversationEntry] = (),
                           expected_revision: str | None) -> None:
        await asyncio.to_thread(self._write_record, record, list(new_entries), expected_revision)

    async def write_details(self, conversation_id: str, details: ConversationDetails, *, expected_revision: str,
                            expected: ConversationDetails | None = None) -> ConversationRecord:
        return await asyncio.to_thread(self._write_details, conversation_id, details, expected_revision, expected)

    async def delete_record(self, conversation_id: str, *, expected_revision: str) -> None:
        await asyncio.to_thread(self._delete_record, conversation_id, expected_revision)

    async def read_entry(self, entry_id: str) -> ConversationEntry:
        return await asyncio.to_thread(self._entry, entry_id)

    async def read_history(self, head_id: str | None, *, limit: int | None = None) -> list[ConversationEntry]:
        return await asyncio.to_thread(self._history, head_id, limit)

    # -- storage, in worker threads ---------------------------------------------------------------
    def _get(self, namespace: list[str], key: str) -> dict[str, Any] | None:
        [found] = self.memory.items([GetItem(namespace=namespace, key=key)])
        return found.value if found is not None else None

    def _record(self, conversation_id: str) -> ConversationRecord | None:
        value = self._get(RECORDS, conversation_id)
        return _RECORD.validate_python(value["record"]) if value is not None else None

    def _records(self) -> list[ConversationRecord]:
        out: list[ConversationRecord] = []
        offset = 0
        while True:
            [page] = self.memory.items([SearchItems(namespace_prefix=RECORDS, limit=PAGE, offset=offset)])
            out += [_RECORD.validate_python(r.value["record"]) for r in page]
            if len(page) < PAGE:
                return out
            offset += PAGE

    def _entry(self, entry_id: str) -> ConversationEntry:
        value = self._get(ENTRIES, entry_id)
        if value is None:
            raise KeyError(entry_id)  # a LookupError: the protocol's "released by a concurrent write"
        return _ENTRY.validate_python(value["entry"])

    def _history(self, head_id: str | None, limit: int | None) -> list[ConversationEntry]:
        entries: list[ConversationEntry] = []
        entry_id = head_id
        while entry_id is not None and (limit is None or len(entries) < limit):
            entry = self._entry(entry_id)
            entries.append(entry)
            entry_id = entry.parent_id
        entries.reverse()
        return entries

    def _put_record(self, record: ConversationRecord) -> PutItem:
        return PutItem(namespace=RECORDS, key=record.conversation_id, owner=record.scope,
                       value={"record": _RECORD.dump_python(record, mode="json")})

    def _write_record(self, record: ConversationRecord, new_entries: list[ConversationEntry],
                      expected_revision: str | None) -> None:
        with self._lock:
            stored = self._record(record.conversation_id)
            if (stored.revision if stored is not None else None) != expected_revision:
                raise ConversationConflict(record.conversation_id)
            new_ids = {e.id for e in new_entries}
            if record.head_id is not None and record.head_id not in new_ids and self._get(ENTRIES, record.head_id) is None:
                raise ConversationConflict(record.conversation_id)
            if stored is not None:  # an update's title and metadata survive a save that read before it
                record = dataclasses.replace(record, title=stored.title, metadata=stored.metadata)
            ops = [PutItem(namespace=ENTRIES, key=e.id, owner=record.scope, value={"entry": _ENTRY.dump_python(e, mode="json")})
                   for e in new_entries]
            self.memory.items([*ops, self._put_record(record)])  # one batch: the entries and their record together
        self._remember(record, new_entries)

    def _write_details(self, conversation_id: str, details: ConversationDetails, expected_revision: str,
                       expected: ConversationDetails | None) -> ConversationRecord:
        with self._lock:
            stored = self._record(conversation_id)
            if stored is None or stored.revision != expected_revision:
                raise ConversationConflict(conversation_id)
            if expected and any(getattr(stored, key) != value for key, value in expected.items()):
                raise ConversationConflict(conversation_id)
            changed = dataclasses.replace(stored, **details)
            self.memory.items([self._put_record(changed)])
            return changed

    def _delete_record(self, conversation_id: str, expected_revision: str) -> None:
        with self._lock:
            stored = self._record(conversation_id)
            if stored is None or stored.revision != expected_revision:
                raise ConversationConflict(conversation_id)
            reachable: set[str] = set()
            for other in self._records():
                if other.conversation_id != conversation_id:
                    self._walk([other.head_id, *other.branches], reachable)
            mine: set[str] = set()
            self._walk([stored.head_id, *stored.branches], mine, stop=reachable)
            ops = [PutItem(namespace=ENTRIES, key=entry_id, value=None) for entry_id in sorted(mine - reachable)]
            self.memory.items([*ops, PutItem(namespace=RECORDS, key=conversation_id, value=None)])

    def _walk(self, tips: Sequence[str | None], seen: set[str], stop: Collection[str] = ()) -> None:
        for entry_id in tips:
            while entry_id is not None and entry_id not in seen and entry_id not in stop:
                value = self._get(ENTRIES, entry_id)
                if value is None:
                    break
                seen.add(entry_id)
                entry_id = value["entry"].get("parent_id")

    # -- long-term memory from what was said --------------------------------------------------------
    def _remember(self, record: ConversationRecord, entries: Sequence[ConversationEntry]) -> None:
        user = record.scope if record.scope is not None else self.user_id
        turns = [turn for e in entries for turn in _turns(e)] if self.extract and user is not None else []
        if not turns:
            return
        try:
            self.memory.add(turns, user_id=user, session_id=record.conversation_id)
        except TieredMemoryError as exc:  # the conversation is saved; say so, do not fail the save
            logger.warning("tiermem: conversation %s: saved, but its messages were not added to memory: %s",
                           record.conversation_id, exc)


def _turns(entry: ConversationEntry) -> list[dict[str, Any]]:
    message = entry.message
    if isinstance(message, ModelRequest):
        texts = [_prompt_text(p.content) for p in message.parts if isinstance(p, UserPromptPart)]
        role = "user"
    elif isinstance(message, ModelResponse):
        texts = [p.content for p in message.parts if isinstance(p, TextPart)]
        role = "assistant"
    else:
        return []
    text = "\n".join(t for t in texts if t.strip())
    return [{"role": role, "content": text, "id": entry.id}] if text.strip() else []


def _prompt_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(c for c in content if isinstance(c, str))
    return ""


def _who(user_id: UserOf, ctx: RunContext[Any]) -> str:
    return user_id(ctx) if callable(user_id) else user_id


def memory_instructions(memory: MemoryAPI, *, user_id: UserOf, session_id: str | Callable[[RunContext[Any]], str] = "default",
                        base: str | None = None, budget: int = 4000) -> Callable[[RunContext[Any]], Awaitable[str]]:
    """Instructions (`Agent(instructions=...)`) that page in the user's memory for the run's
    prompt: `base`, the core profile, the session's rolling summary and the relevant facts,
    as `context()` builds them within `budget` tokens.

    Args:
        user_id / session_id: strings, or callables of the run context (e.g.
            `lambda ctx: ctx.deps.user_id`).
    """
    if not isinstance(budget, int) or budget < 256:
        raise InvalidInput(f"budget must be an integer of at least 256 tokens, got {budget!r}")

    async def instructions(ctx: RunContext[Any]) -> str:
        session = session_id(ctx) if callable(session_id) else session_id
        return await _tools.paged_instructions(memory, _prompt_text(ctx.prompt), user_id=_who(user_id, ctx), session_id=session,
                                               base=base, budget=budget)

    return instructions


def _message_tokens(message: ModelMessage) -> int:
    return approx_tokens(_MESSAGE.dump_json(message).decode())


def _starts_a_turn(message: ModelMessage) -> bool:
    return isinstance(message, ModelRequest) and any(isinstance(p, UserPromptPart) for p in message.parts) \
        and not any(isinstance(p, ToolReturnPart) for p in message.parts)


def history_window(max_tokens: int, *, count_tokens: Callable[[ModelMessage], int] = _message_tokens
                   ) -> Callable[[list[ModelMessage]], list[ModelMessage]]:
    """A history processor (`ProcessHistory(history_window(n))`) that keeps the newest
    messages within `max_tokens`, cut where a user prompt starts a turn, so a tool return is
    never sent without its call. The current turn is always kept, whatever its size."""
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidInput(f"max_tokens must be a positive integer, got {max_tokens!r}")

    def window(messages: list[ModelMessage]) -> list[ModelMessage]:
        starts = [i for i, m in enumerate(messages) if _starts_a_turn(m)]
        if not starts:
            return messages
        sizes = [count_tokens(m) for m in messages]
        keep = starts[-1]  # the current turn
        for start in reversed(starts[:-1]):
            if sum(sizes[start:]) > max_tokens:
                break
            keep = start
        return messages[keep:]

    return window


def memory_toolset(memory: MemoryAPI, *, user_id: UserOf) -> FunctionToolset[Any]:
    """`recall`, `remember` and `forget` over one user's facts (`user_id`, or a callable of
    the run context). Errors come back to the model as text; `forget` retracts."""

    async def recall(ctx: RunContext[Any], query: str, limit: int = 10) -> str:
        return await asyncio.to_thread(_tools.recall, memory, lambda: _who(user_id, ctx), query, limit)

    async def remember(ctx: RunContext[Any], fact: str) -> str:
        return await asyncio.to_thread(_tools.remember, memory, lambda: _who(user_id, ctx), fact)

    async def forget(ctx: RunContext[Any], id: str) -> str:
        return await asyncio.to_thread(_tools.forget, memory, lambda: _who(user_id, ctx), id)

    toolset: FunctionToolset[Any] = FunctionToolset()
    for fn, doc in ((recall, _tools.RECALL_DOC), (remember, _tools.REMEMBER_DOC), (forget, _tools.FORGET_DOC)):
        toolset.add_function(fn, name=fn.__name__, description=doc)
    return toolset


