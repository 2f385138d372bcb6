"""tiermem for the OpenAI Agents SDK: its `Session` on tiermem, the user's memory in the
agent's instructions, and memory tools.

    from agents import Agent, Runner
    from tiermem.adapters.openai_agents import TiermemSession

    session = TiermemSession("chat-7", memory=mem, user_id="ana")
    agent = Agent(name="Assistant", instructions=session.instructions("You are a helpful assistant."),
                  tools=session.tools())
    await Runner.run(agent, "I moved to Berlin last week", session=session)

- `TiermemSession(session_id, memory, *, user_id, session_settings=None)` is the SDK's
  `Session` protocol (`get_items`, `add_items`, `pop_item`, `clear_session`,
  `session_settings`): the run's history is kept in the session tier, item for item as the
  SDK gave it (tool calls and outputs, reasoning, any shape), under the user and session.
  The user and assistant messages it is given also go through `add()`, so facts are
  extracted from them and reconciled with what the user said in every other session.
- `memory_instructions(memory, ...)` (or `session.instructions(base)`): dynamic instructions
  that page the user's profile, the session's summary and the facts relevant to the
  current input into the agent's instructions with `context()`, within a token budget.
- `memory_tools(memory, user_id=...)` (or `session.tools()`): `recall`, `remember` and
  `forget` function tools, bound to one user.

Works over any `MemoryAPI`: a `Memory`, a home shared by processes, or
`Memory.open(url=...)` beside `tiermem serve`. Needs the `openai-agents` extra:
`pip install 'tiermem[openai-agents]'`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper, function_tool
from agents.memory import SessionSettings
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit

from tiermem import InvalidInput, MemoryAPI, TieredMemoryError, check_id
from tiermem.items import PutItem, SearchItems

from . import _tools

__all__ = ["TiermemSession", "memory_instructions", "memory_tools"]

logger = logging.getLogger("tiermem")

ROOT = "openai_agents"  # the item namespace: (ROOT, user, session)
PAGE = 1000
_ORDER = itertools.count()  # ties of the clock within this process keep their order
_ORDER_LOCK = threading.Lock()
EXTRACTED_ROLES = frozenset({"user", "assistant"})  # system/developer prompts are not what anyone said

UserOf = str | Callable[[RunContextWrapper[Any]], str]


def _label(value: str) -> str:
    # Namespace labels cannot hold "." (LangGraph's rule, which the item tier keeps): escape it.
    return value.replace("%", "%25").replace(".", "%2E")


def _keys(count: int) -> list[str]:
    """Keys that sort in the order items were added: the clock, then a counter."""
    with _ORDER_LOCK:
        now = time.time_ns()
        return [f"{now:020d}-{next(_ORDER):012d}" for _ in range(count)]


def _plain(item: Any) -> dict[str, Any]:
    """An item as the JSON object it will be read back as (a model object dumped as the SDK
    would send it). Raises TypeError for what JSON cannot hold, before anything is written."""
    if hasattr(item, "model_dump"):
        item = item.model_dump(mode="json", exclude_unset=True)
    if not isinstance(item, Mapping):
        raise TypeError(f"a session item must be a dict (a TResponseInputItem), got {type(item).__name__}")
    return json.loads(json.dumps(item, ensure_ascii=False, allow_nan=False))


def _turns(keyed: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The items a person or the model said something in, as tiermem turns."""
    turns = []
    for key, item in keyed:
        if item.get("role") not in EXTRACTED_ROLES or item.get("type", "message") != "message":
            continue
        text = _tools.item_text(item)
        if text.strip():
            # The item's own key, not the model's message id: test doubles (and some
            # providers) repeat those, and a fact's sources must name one turn.
            turns.append({"role": item["role"], "content": text, "id": key})
    return turns


class TiermemSession:
    """The Agents SDK's `Session` on tiermem's session tier, for one user's conversation.

    Args:
        session_id: the conversation (also the tiermem session its turns go to).
        memory: any `MemoryAPI` (the caller keeps it open and closes it).
        user_id: the tenant: sessions of different users never see each other's items,
            whatever their session ids.
        session_settings: the SDK's `SessionSettings` (or a dict of its fields): `limit`
            is how many of the latest items `get_items()` returns by default.
        extract: also send the user and assistant messages through `add()` (default), so
            long-term memory learns from the conversation. False keeps only the history.

    Raises:
        InvalidInput: a bad `session_id` or `user_id`. TypeError: unknown settings fields.
    """

    def __init__(self, session_id: str, memory: MemoryAPI, *, user_id: str,
                 session_settings: SessionSettings | Mapping[str, Any] | None = None, extract: bool = True):
        self.session_id = check_id(session_id, "session_id")
        self.user_id = check_id(user_id, "user_id")
        self.memory = memory
        self.session_settings: SessionSettings | None = (
            coerce_session_settings(session_settings) if session_settings is not None else SessionSettings())  # type: ignore[arg-type]
        self.extract = extract
        self.namespace = [ROOT, _label(self.user_id), _label(self.session_id)]
        # Reads and writes of this object run in worker threads; a pop is read-then-delete.
        self._lock = threading.Lock()

    # -- the Session protocol ---------------------------------------------------------------------
    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The history, oldest first; with `limit` (or the settings' limit), the latest that
        many. A limit of 0 or less returns nothing."""
        chosen = resolve_session_limit(limit, self.session_settings)
        if chosen is not None and chosen <= 0:
            return []
        keyed = await asyncio.to_thread(self._read)
        items = [item for _, item in keyed]
        return items if chosen is None else items[-chosen:]

    async def add_items(self, items: list[Any]) -> None:
        """Append items in order (all or none of them: one batch), then send the messages
        among them through `add()`. A failure there is logged and retried by tiermem's own
        backlog; the history is already stored."""
        plain = [_plain(item) for item in items]
        if not plain:
            return
        await asyncio.to_thread(self._append, plain)

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item (None when the session is empty). Facts already
        extracted from it stay; `memory.forget_session()` erases the session's facts too."""
        return await asyncio.to_thread(self._pop)

    async def clear_session(self) -> None:
        """Remove every item of this session. What long-term memory learned from it stays
        (it is the user's, across sessions); `memory.forget_session()` erases that too."""
        await asyncio.to_thread(self._clear)

    def close(self) -> None:
        """Nothing to release: the memory belongs to the caller."""

    # -- long-term memory for the agent, bound to this session's user -------------------------------
    def instructions(self, base: str | None = None, *, budget: int = 4000) -> Callable[..., Awaitable[str]]:
        """Dynamic instructions for an `Agent`: `base` plus what the user's memory knows
        that bears on the current input (see `memory_instructions`)."""
        return memory_instructions(self.memory, user_id=self.user_id, session_id=self.session_id, base=base, budget=budget)

    def tools(self) -> list[FunctionTool]:
        """`recall`, `remember` and `forget` over this session's user's facts."""
        return memory_tools(self.memory, user_id=self.user_id)

    # -- storage ----------------------------------------------------------------------------------
    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        keyed: list[tuple[str, dict[str, Any]]] = []
        for offset in itertools.count(0, PAGE):
            [page] = self.memory.items([SearchItems(namespace_prefix=self.namespace, limit=PAGE, offset=offset)])
            keyed += [(r.key, r.value["item"]) for r in page if r.namespace == self.namespace]
            if len(page) < PAGE:
                break
        keyed.sort(key=lambda pair: pair[0])
        return keyed

    def _append(self, plain: list[dict[str, Any]]) -> None:
        keyed = list(zip(_keys(len(plain)), plain, strict=True))
        with self._lock:
            self.memory.items([PutItem(namespace=self.namespace, key=key, value={"item": item}, owner=self.user_id)
                               for key, item in keyed])
        turns = _turns(keyed) if self.extract else []
        if turns:
            try:
                self.memory.add(turns, user_id=self.user_id, session_id=self.session_id)
            except TieredMemoryError as exc:  # the history is stored; say so, do not fail the run
                logger.warning("tiermem: session %s: messages kept in the history but not added to memory: %s",
                               self.session_id, exc)

    def _pop(self) -> Any | None:
        with self._lock:
            keyed = self._read()
            if not keyed:
                return None
            key, item = keyed[-1]
            self.memory.items([PutItem(namespace=self.namespace, key=key, value=None, owner=self.user_id)])
            return item

    def _clear(self) -> None:
        with self._lock:
            keys = [key for key, _ in self._read()]
            for start in range(0, len(keys), PAGE):
                self.memory.items([PutItem(namespace=self.namespace, key=key, value=None, owner=self.user_id)
                                   for key in keys[start:start + PAGE]])

    def __repr__(self) -> str:
        return f"TiermemSession({self.session_id!r}, user_id={self.user_id!r})"


def _who(user_id: UserOf, ctx: RunContextWrapper[Any]) -> str:
    return user_id(ctx) if callable(user_id) else user_id


def memory_instructions(memory: MemoryAPI, *, user_id: UserOf, session_id: str | Callable[[RunContextWrapper[Any]], str] = "default",
                        base: str | None = None, budget: int = 4000) -> Callable[..., Awaitable[str]]:
    """Dynamic instructions (`Agent(instructions=...)`) that page in the user's memory.

    Before each model call the SDK asks for the instructions; this answers `base`, the
    user's core profile, the session's rolling summary and the facts relevant to the current
    input (its last user message), as `context()` builds them within `budget` tokens.

    Args:
        user_id / session_id: strings, or callables of the run context (e.g.
            `lambda ctx: ctx.context.user_id` for an agent shared by users).
    """
    if not isinstance(budget, int) or budget < 256:
        raise InvalidInput(f"budget must be an integer of at least 256 tokens, got {budget!r}")

    async def instructions(ctx: RunContextWrapper[Any], agent: Agent[Any]) -> str:
        session = session_id(ctx) if callable(session_id) else session_id
        return await _tools.paged_instructions(memory, _tools.last_user_text(ctx.turn_input), user_id=_who(user_id, ctx), session_id=session,
                                               base=base, budget=budget)

    return instructions


def memory_tools(memory: MemoryAPI, *, user_id: UserOf) -> list[FunctionTool]:
    """`recall`, `remember` and `forget` function tools over one user's facts (`user_id`, or
    a callable of the run context). Errors come back to the model as text. `forget`
    retracts: the fact leaves search and context, and `restore()` can bring it back."""

    async def recall(ctx: RunContextWrapper[Any], query: str, limit: int = 10) -> str:
        return await asyncio.to_thread(_tools.recall, memory, lambda: _who(user_id, ctx), query, limit)

    async def remember(ctx: RunContextWrapper[Any], fact: str) -> str:
        return await asyncio.to_thread(_tools.remember, memory, lambda: _who(user_id, ctx), fact)

    async def forget(ctx: RunContextWrapper[Any], id: str) -> str:
        return await asyncio.to_thread(_tools.forget, memory, lambda: _who(user_id, ctx), id)

    return [function_tool(recall, name_override="recall", description_override=_tools.RECALL_DOC),
            function_tool(remember, name_override="remember", description_override=_tools.REMEMBER_DOC),
            function_tool(forget, name_override="forget", description_override=_tools.FORGET_DOC)]
