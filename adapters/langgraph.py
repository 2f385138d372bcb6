"""tiermem for LangGraph: a `BaseStore`, memory nodes for a StateGraph loop, and memory tools.

- `TiermemStore`: LangGraph's store interface on tiermem (`graph.compile(store=...)`,
  `get_store()`, `runtime.store`, `InjectedStore`); see `_store.py`.
- `recall_node(memory)` / `remember_node(memory)`: nodes that page the user's memory into
  the state before the model runs and add the new turns after it.
- `memory_tools(memory)`: `search_memory`, `remember_fact`, `forget_fact` for an agent that
  manages its own memory (the argument shapes of LangMem's search / manage tools).

Users and threads come from the run's config: `config["configurable"]["user_id"]` (the
tenant: required) and `["thread_id"]` (the session; default "default").

Needs the `langgraph` extra: `pip install 'tiermem[langgraph]'`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import MessagesState

from tiermem import InvalidInput, MemoryAPI

from . import _tools
from ._store import TiermemStore, tiermem_store

__all__ = ["TiermemStore", "tiermem_store", "MemoryState", "recall_node", "remember_node", "memory_tools", "user_and_thread"]


class MemoryState(MessagesState, total=False):
    """`MessagesState` plus what `recall_node` pages in for the model."""

    memory_system: list[dict[str, Any]]  # context()'s system blocks (prompt, profile, summary), cache_control set
    memory_block: str  # the <memories> block of facts relevant to the last user message ("" if none)
    memory_fact_ids: list[str]  # the facts in it
    remembered_upto: int  # how many of `messages` remember_node has stored


def user_and_thread(config: RunnableConfig | Mapping[str, Any] | None) -> tuple[str, str]:
    """The tenant and session of a run, from `config["configurable"]`."""
    configurable = (config or {}).get("configurable") or {}
    user_id = configurable.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise InvalidInput("config['configurable']['user_id'] must name the user whose memory this run uses, "
                           "e.g. graph.invoke(state, {'configurable': {'user_id': 'ana', 'thread_id': 't1'}})")
    thread_id = configurable.get("thread_id") or "default"
    return user_id, str(thread_id)


def _role(message: AnyMessage | Mapping[str, Any]) -> str:
    kind = message.get("role") or message.get("type") if isinstance(message, Mapping) else message.type
    return {"human": "user", "ai": "assistant"}.get(str(kind), str(kind))


def _text(message: AnyMessage | Mapping[str, Any]) -> str:
    content = message.get("content") if isinstance(message, Mapping) else message.content
    if isinstance(content, str):
        return content
    parts = [b.get("text", "") if isinstance(b, Mapping) else str(b) for b in content or []]
    return "\n".join(p for p in parts if p)


def _last_user_text(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if _role(message) == "user" and _text(message).strip():
            return _text(message)
    raise InvalidInput("recall_node needs a user message in state['messages']")


def recall_node(memory: MemoryAPI, *, system: str | None = None, budget: int = 8000) -> Callable[..., dict[str, Any]]:
    """A node that reads the last user message and the run's user / thread ids, and puts
    `context()`'s system blocks and memory block into the state (`MemoryState`).

    The graph keeps its own message history, so only the system blocks (prompt, profile,
    rolling summary, with cache breakpoints) and the facts relevant to the message are used.
    """

    def recall(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        user_id, thread_id = user_and_thread(config)
        message = _last_user_text(state["messages"])
        ctx = memory.context(message, user_id=user_id, session_id=thread_id, system=system, budget=budget)
        return {"memory_system": ctx.system, "memory_block": _tools.memory_block(ctx), "memory_fact_ids": [h.fact.id for h in ctx.facts]}

    return recall


def remember_node(memory: MemoryAPI) -> Callable[..., dict[str, Any]]:
    """A node that adds the turns the graph has not stored yet (user and assistant text;
    tool calls and results are left out) to the user's memory, in the run's thread."""

    def remember(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        user_id, thread_id = user_and_thread(config)
        messages = state["messages"]
        start = int(state.get("remembered_upto") or 0)
        start = start if start <= len(messages) else 0  # the history was trimmed: nothing to skip by count
        turns = []
        for message in messages[start:]:
            role, text = _role(message), _text(message)
            if role in ("user", "assistant") and text.strip():
                turn: dict[str, Any] = {"role": role, "content": text}
                if isinstance(message, BaseMessage) and message.id:
                    turn["id"] = message.id
                turns.append(turn)
        if turns:
            memory.add(turns, user_id=user_id, session_id=thread_id)
        return {"remembered_upto": len(messages)}

    return remember


def memory_tools(memory: MemoryAPI, *, user_id: str | None = None) -> list[BaseTool]:
    """`search_memory`, `remember_fact` and `forget_fact` over the user's facts.

    The user is `user_id` if given, else the run's `config["configurable"]["user_id"]`
    (LangGraph passes the config to tools). `forget_fact` retracts: the fact leaves search
    and context but stays in the journal and `history()`, and `Memory.restore()` brings it
    back until the fact or the user is erased.
    """

    def who(config: RunnableConfig) -> str:
        return user_id if user_id is not None else user_and_thread(config)[0]

    def search_memory(query: str, limit: int = 10, offset: int = 0, *, config: RunnableConfig) -> str:
        return _tools.recall(memory, lambda: who(config), query, limit, offset)

    def remember_fact(content: str, kind: str | None = None, *, config: RunnableConfig) -> str:
        return _tools.remember(memory, lambda: who(config), content, kind)

    def forget_fact(id: str, reason: str = "forgotten at the user's request", *, config: RunnableConfig) -> str:
        return _tools.forget(memory, lambda: who(config), id, reason)

    search_memory.__doc__, remember_fact.__doc__, forget_fact.__doc__ = _tools.RECALL_DOC, _tools.REMEMBER_DOC, _tools.FORGET_DOC
    tools: list[BaseTool] = []
    for fn in (search_memory, remember_fact, forget_fact):
        tools.append(StructuredTool.from_function(fn, name=fn.__name__, description=(fn.__doc__ or "").strip()))
    return tools

