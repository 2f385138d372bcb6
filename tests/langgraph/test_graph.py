"""TiermemStore inside compiled LangGraph graphs, the memory nodes and tools, and the
reference agent (agents/langgraph_agent.py) end to end: offline and through the real
anthropic SDK against the fake Messages API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedStore, ToolNode
from langgraph.store.base import BaseStore

from tiermem.adapters.langgraph import memory_tools
from tiermem.testing import FakeAnthropic, Reply

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "agents"))
import langgraph_agent  # noqa: E402

USER = {"configurable": {"user_id": "ana", "thread_id": "t1"}}


def test_nodes_reach_the_store_through_get_store_and_injected_store(vstore):
    @tool
    def save_note(text: str, store: Annotated[BaseStore, InjectedStore()]) -> str:
        """Save a note."""
        store.put(("notes", "ana"), f"n{len(store.search(('notes', 'ana')))}", {"text": text})
        return "saved"

    def writer(state: MessagesState) -> dict[str, Any]:
        get_store().put(("seen", "ana"), "last", {"text": state["messages"][-1].content})
        return {"messages": [AIMessage(content="", tool_calls=[{"name": "save_note", "args": {"text": "buy milk"},
                                                                 "id": "c1"}])]}

    def reader(state: MessagesState) -> dict[str, Any]:
        hits = get_store().search(("notes",), query="milk")
        return {"messages": [AIMessage(content=hits[0].value["text"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("writer", writer)
    graph.add_node("tools", ToolNode([save_note]))
    graph.add_node("reader", reader)
    graph.add_edge(START, "writer")
    graph.add_edge("writer", "tools")
    graph.add_edge("tools", "reader")
    graph.add_edge("reader", END)
    app = graph.compile(store=vstore, checkpointer=InMemorySaver())
    out = app.invoke({"messages": [HumanMessage(content="hello there")]}, USER)
    assert out["messages"][-1].content == "buy milk"
    assert vstore.get(("seen", "ana"), "last").value == {"text": "hello there"}


async def test_a_graph_run_async_uses_abatch(vstore):
    async def node(state: MessagesState) -> dict[str, Any]:
        store = get_store()
        await store.aput(("a",), "k", {"text": "async put"})
        item = await store.aget(("a",), "k")
        return {"messages": [AIMessage(content=item.value["text"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    app = graph.compile(store=vstore)
    out = await app.ainvoke({"messages": [HumanMessage(content="x")]})
    assert out["messages"][-1].content == "async put"


def test_memory_tools_search_remember_and_reversible_forget(mem):
    tools = {t.name: t for t in memory_tools(mem)}
    assert set(tools) == {"search_memory", "remember_fact", "forget_fact"}
    assert "config" not in tools["search_memory"].args
    created = tools["remember_fact"].invoke({"content": "Ana is allergic to peanuts"}, USER)
    fact_id = created.split()[-1]
    assert created.startswith("created memory") and mem.get(fact_id).user_id == "ana"
    found = json.loads(tools["search_memory"].invoke({"query": "peanut allergy"}, USER))
    assert found[0]["id"] == fact_id and found[0]["text"] == "Ana is allergic to peanuts"
    assert json.loads(tools["search_memory"].invoke({"query": "peanut allergy"},
                                                    {"configurable": {"user_id": "bob"}})) == []
    assert tools["forget_fact"].invoke({"id": fact_id}, {"configurable": {"user_id": "bob"}}).startswith("Error")
    assert tools["forget_fact"].invoke({"id": fact_id}, USER) == f"forgot memory {fact_id}"
    assert json.loads(tools["search_memory"].invoke({"query": "peanut allergy"}, USER)) == []
    history = mem.history(fact_id)
    assert history[-1].op == "invalidate" and history[-1].reason == "forgotten at the user's request"
    mem.restore(fact_id, user_id="ana")
    assert json.loads(tools["search_memory"].invoke({"query": "peanut allergy"}, USER))[0]["id"] == fact_id
    assert tools["remember_fact"].invoke({"content": "  "}, USER).startswith("Error")


def test_tools_without_a_user_say_how_to_pass_one(mem):
    search = memory_tools(mem)[0]
    reply = search.invoke({"query": "x"}, {"configurable": {}})  # a tool answers the model, not raise
    assert reply.startswith("Error") and "config['configurable']['user_id']" in reply


def test_agent_recalls_across_threads_of_a_user_and_never_for_another(mem):
    agent = langgraph_agent.build_agent(mem)
    ask = langgraph_agent.ask
    assert ask(agent, "I am allergic to peanuts and I live in Lisbon.", user="ana", thread="t1") == "(offline) Noted."
    assert ask(agent, "Remember that my sister is called Marta.", user="ana", thread="t1").startswith("(offline) Done: created")
    mem.flush(timeout=30)
    reply = ask(agent, "What am I allergic to?", user="ana", thread="t2")
    assert "peanuts" in reply
    assert "Marta" in ask(agent, "What is my sister called?", user="ana", thread="t3")
    other = ask(agent, "What am I allergic to?", user="bob", thread="t2")
    assert "peanuts" not in other and "don't remember" in other
    # every thread's turns were stored, in their own sessions
    assert {t.session_id for t in mem.turns(user_id="ana", limit=10_000)} == {"t1", "t2", "t3"}
    assert all(t.user_id == "bob" for t in mem.turns(user_id="bob", limit=10_000))


def test_offline_agent_answers_from_what_it_was_told_and_remembers_a_request_once(mem):
    agent = langgraph_agent.build_agent(mem)
    ask = langgraph_agent.ask
    ask(agent, "I live in Lisbon.", user="ana", thread="t1")
    assert "Lisbon" in ask(agent, "Where do I live?", user="ana", thread="t2")  # 'live' meets 'lives'
    ask(agent, "Remember that my passport number ends in 4242.", user="ana", thread="t1")
    mem.flush(timeout=30)
    passport = [f for f in mem.facts(user_id="ana") if "4242" in f.text]
    assert len(passport) == 1 and passport[0].sources  # the tool's fact and the turn's are one
    assert "4242" in ask(agent, "What does my passport number end in?", user="ana", thread="t3")


def test_remember_node_stores_each_turn_once_per_thread(mem):
    agent = langgraph_agent.build_agent(mem)
    for message in ("I moved to Porto.", "I like green tea.", "Nice weather."):
        langgraph_agent.ask(agent, message, user="ana", thread="t1")
    texts = [t.content for t in mem.turns(user_id="ana", session_id="t1", limit=10_000)]
    assert len(texts) == 6 and texts.count("I moved to Porto.") == 1


def test_agent_with_claude_sends_recalled_memory_and_tools(mem):
    def responder(body: dict) -> Reply:
        last = body["messages"][-1]["content"]
        if any(b.get("type") == "tool_result" for b in last):
            return Reply("Saved it.")
        if "remember" in last[-1]["text"].lower():
            return Reply(stop_reason="tool_use", tool_name="remember_fact", tool_input={"content": "Ana's sister is Marta"})
        return Reply("Your sister is Marta." if "sister" in last[-1]["text"] else "ok")

    with FakeAnthropic(responder) as fake:
        agent = langgraph_agent.build_agent(mem, langgraph_agent.claude_model(fake.client()))
        assert langgraph_agent.ask(agent, "Please remember my sister is Marta", user="ana", thread="t1") == "Saved it."
        assert langgraph_agent.ask(agent, "Who is my sister?", user="ana", thread="t2") == "Your sister is Marta."
        first, _, last = fake.requests[0], fake.requests[1], fake.requests[2]
    assert {t["name"] for t in first["tools"]} == {"search_memory", "remember_fact", "forget_fact"}
    assert "config" not in json.dumps(first["tools"])
    assert first["system"][0]["text"] == langgraph_agent.SYSTEM
    assert any("cache_control" in b for b in last["system"])
    memory_text = last["messages"][-1]["content"][0]["text"]
    assert memory_text.startswith("<memories>") and "Marta" in memory_text
    assert [f.text for f in mem.facts(user_id="ana")][0] == "Ana's sister is Marta"
