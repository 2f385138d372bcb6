"""A LangGraph agent with tiermem memory: recall -> model -> tools -> remember.

    python agents/langgraph_agent.py --user ana --thread t1            # Claude (ANTHROPIC_API_KEY), else offline
    python agents/langgraph_agent.py --user ana --thread t2 --offline  # a scripted model, no key
    python agents/langgraph_agent.py --user ana --url http://127.0.0.1:8765  # over `tiermem serve`

`recall` pages the user's memory (profile, summary, the facts relevant to the message) into
the state; the model answers, and may call `search_memory`, `remember_fact` or
`forget_fact`; `remember` adds the turns to the user's memory. Facts told in one thread are
recalled in every other thread of the same user, never for another user. The graph's
store is a `TiermemStore` on the same home, so nodes can keep their own items too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode

from tiermem import Memory, MemoryAPI
from tiermem.adapters.langgraph import MemoryState, memory_tools, recall_node, remember_node

SYSTEM = ("You are a helpful assistant with long-term memory of the user. Use the <memories> you are given when "
          "they help; call remember_fact for anything the user asks you to remember, forget_fact when they ask "
          "you to forget something, and search_memory when you need more than you were given. Keep answers short.")
ModelFn = Callable[[MemoryState, Sequence[Any]], AIMessage]


# -- the scripted model (offline) -----------------------------------------------------------------
def scripted_model(state: MemoryState, tools: Sequence[Any]) -> AIMessage:
    """Answers questions from the memory block, stores "remember that ..." with the
    remember_fact tool, and acknowledges everything else: the tiers and tools can be seen
    working without a model."""
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return AIMessage(content=f"(offline) Done: {last.content}")
    text = str(last.content).strip()
    if text.lower().startswith("remember that "):
        return AIMessage(content="", tool_calls=[{"name": "remember_fact", "args": {"content": text[14:].strip()},
                                                  "id": f"call-{len(state['messages'])}"}])
    if text.endswith("?"):
        best = _best_memory(text, state)
        return AIMessage(content=f"(offline) From memory: {best}" if best else "(offline) I don't remember that.")
    return AIMessage(content="(offline) Noted.")


def _best_memory(question: str, state: MemoryState) -> str | None:
    """The remembered line (memory block or profile) sharing the most words with the
    question; else the earlier message of this thread that does (the recent turns are the
    model's to read, and context() does not page in facts they already hold)."""
    blocks = [state.get("memory_block", "")] + [b.get("text", "") for b in state.get("memory_system", [])]
    lines = [line[2:].split("] ", 1)[-1] if line.startswith("- [") else line[2:]
             for block in blocks for line in block.splitlines() if line.startswith("- ")]
    said = [str(m.content) for m in state["messages"][:-1] if isinstance(m, HumanMessage) and not str(m.content).endswith("?")]
    asked = _words(question)
    for candidates in (lines, said):
        best = max(((len(asked & _words(line)), line) for line in candidates), default=(0, None), key=lambda s: s[0])
        if best[0]:
            return best[1]
    return None


_STOP = frozenset("a an the i my me is am are was were do does did what where when who how to of in on at it you your "
                  "and or for with about that this".split())


def _words(text: str) -> set[str]:
    """Snowball stems of a text's content words: 'live' meets 'lives' and 'living'."""
    import Stemmer

    return set(Stemmer.Stemmer("english").stemWords([w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]))


# -- Claude ----------------------------------------------------------------------------------------
def _anthropic_messages(messages: Sequence[AnyMessage], memory_block: str) -> list[dict[str, Any]]:
    """LangChain messages to Anthropic's: text, tool_use and tool_result blocks, strictly
    alternating; the memory block goes before the newest user message."""
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    for i, m in enumerate(messages):
        if isinstance(m, HumanMessage):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": memory_block}] if i == last_human and memory_block else []
            add("user", [*blocks, {"type": "text", "text": str(m.content)}])
        elif isinstance(m, AIMessage):
            blocks = [{"type": "text", "text": str(m.content)}] if m.content else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]} for c in m.tool_calls]
            add("assistant", blocks or [{"type": "text", "text": "(no reply)"}])
        elif isinstance(m, ToolMessage):
            add("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": str(m.content)}])
    return out


def claude_model(client: Any, model: str = "claude-haiku-4-5", max_tokens: int = 1024) -> ModelFn:
    """A model node body calling Claude with the recalled system blocks (cache breakpoints
    set by tiermem) and the memory tools."""

    def call(state: MemoryState, tools: Sequence[Any]) -> AIMessage:
        specs = []
        for tool in tools:
            schema = tool.tool_call_schema.model_json_schema()
            specs.append({"name": tool.name, "description": tool.description,
                          "input_schema": {"type": "object", "properties": schema.get("properties", {}),
                                           "required": schema.get("required", [])}})
        response = client.messages.create(model=model, max_tokens=max_tokens, system=state.get("memory_system") or SYSTEM,
                                          messages=_anthropic_messages(state["messages"], state.get("memory_block", "")),
                                          tools=specs)
        text = "".join(b.text for b in response.content if b.type == "text")
        calls = [{"name": b.name, "args": b.input, "id": b.id} for b in response.content if b.type == "tool_use"]
        return AIMessage(content=text, tool_calls=calls)

    return call


# -- the graph ---------------------------------------------------------------------------------------
def build_agent(memory: MemoryAPI, model: ModelFn = scripted_model, *, store: Any = None, checkpointer: Any = None) -> Any:
    """recall -> model -> (tools -> model)* -> remember, compiled with a checkpointer (one
    message history per thread) and, if given, a store."""
    tools = memory_tools(memory)

    def model_node(state: MemoryState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [model(state, tools)]}

    def route(state: MemoryState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "remember"

    graph = StateGraph(MemoryState)
    graph.add_node("recall", recall_node(memory, system=SYSTEM))
    graph.add_node("model", model_node)
    graph.add_node("tools", ToolNode(tools))
    graph.add_node("remember", remember_node(memory))
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "model")
    graph.add_conditional_edges("model", route, {"tools": "tools", "remember": "remember"})
    graph.add_edge("tools", "model")
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=checkpointer or InMemorySaver(), store=store)


def ask(agent: Any, message: str, *, user: str, thread: str) -> str:
    config = {"configurable": {"user_id": user, "thread_id": thread}}
    state = agent.invoke({"messages": [HumanMessage(content=message)]}, config)
    return str(state["messages"][-1].content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", required=True, help="whose memory (kept across runs)")
    parser.add_argument("--thread", default="default", help="the conversation id")
    parser.add_argument("--offline", action="store_true", help="a scripted model instead of Claude (no key needed)")
    parser.add_argument("--model", default=os.environ.get("TIERMEM_CLAUDE_MODEL", "claude-haiku-4-5"))
    parser.add_argument("--home", default=None, help="memory folder (default $TIERMEM_HOME, else ./.tiermem)")
    parser.add_argument("--url", default=None, help="a `tiermem serve` to use instead of a folder (http://... or unix://...)")
    args = parser.parse_args(argv)
    offline = args.offline or not os.environ.get("ANTHROPIC_API_KEY")
    if offline and not args.offline:
        print("no ANTHROPIC_API_KEY: running the scripted offline model (pass --offline to say so)")
    from tiermem.adapters.langgraph import TiermemStore

    memory = Memory.open(url=args.url) if args.url else Memory.open(args.home)
    store = TiermemStore(memory, index={"fields": ["$"]})
    try:
        model: ModelFn = scripted_model
        if not offline:
            import anthropic

            model = claude_model(anthropic.Anthropic(), args.model)
        agent = build_agent(memory, model, store=store)
        print(f"memory for {args.user!r} in {memory.location}; /quit to leave")
        lines = sys.stdin if not sys.stdin.isatty() else iter(lambda: input("you> "), None)
        for line in lines:
            message = line.strip()
            if message in ("/quit", "/exit"):
                break
            if message:
                print(f"bot> {ask(agent, message, user=args.user, thread=args.thread)}")
        memory.flush(timeout=60)
    finally:
        store.close()
        memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

