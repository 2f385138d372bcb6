"""tiermem's side of the Agents SDK loop: items round-trip exactly, tenants are isolated,
messages become facts, the next run's instructions carry them, tools are bound to one user,
and all of it over a served memory too."""

from __future__ import annotations

import json

import pytest
from agents import Agent, Runner
from agents.testing import ScriptedModel
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from tiermem import InvalidInput, Memory
from tiermem.adapters.openai_agents import TiermemSession, memory_instructions, memory_tools


def text(content: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(id=f"msg_{abs(hash(content))}", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(text=content, type="output_text", annotations=[], logprobs=[])])


def call(name: str, arguments: dict, call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(id=f"fc_{call_id}", call_id=call_id, type="function_call", name=name,
                                    arguments=json.dumps(arguments))


TOOL_ROUND = [
    {"role": "user", "content": [{"type": "input_text", "text": "Book me a table"}]},
    {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "book", "arguments": "{\"seats\": 2}", "status": "completed"},
    {"type": "function_call_output", "call_id": "c1", "output": "{\"ok\": true, \"table\": 7}"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "booked"}]},
    {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Table 7 is yours.", "annotations": []}]},
]


async def test_items_of_every_shape_round_trip_exactly(mem: Memory) -> None:
    session = TiermemSession("tools", memory=mem, user_id="ana")
    await session.add_items(TOOL_ROUND)
    assert await session.get_items() == TOOL_ROUND
    assert await session.pop_item() == TOOL_ROUND[-1]
    assert await session.get_items() == TOOL_ROUND[:-1]


async def test_users_and_sessions_are_isolated(mem: Memory) -> None:
    ana, ben = TiermemSession("chat", memory=mem, user_id="ana"), TiermemSession("chat", memory=mem, user_id="ben")
    dotted = TiermemSession("chat.v2", memory=mem, user_id="ana")
    await ana.add_items([{"role": "user", "content": "ana's"}])
    await ben.add_items([{"role": "user", "content": "ben's"}])
    await dotted.add_items([{"role": "user", "content": "ana's other"}])
    assert [i["content"] for i in await ana.get_items()] == ["ana's"]
    assert [i["content"] for i in await ben.get_items()] == ["ben's"]
    assert [i["content"] for i in await dotted.get_items()] == ["ana's other"]
    await ben.clear_session()
    assert await ben.get_items() == [] and len(await ana.get_items()) == 1
    assert await ben.pop_item() is None


def test_bad_ids_are_rejected_by_name(mem: Memory) -> None:
    with pytest.raises(InvalidInput, match="user_id"):
        TiermemSession("chat", memory=mem, user_id="")
    with pytest.raises(InvalidInput, match="session_id"):
        TiermemSession("", memory=mem, user_id="ana")


async def test_messages_become_facts_and_the_next_run_pages_them_in(mem: Memory) -> None:
    session = TiermemSession("trip", memory=mem, user_id="ana")
    model = ScriptedModel()
    agent = Agent(name="Concierge", model=model, instructions=session.instructions("You plan trips."))
    model.enqueue([text("Noted, enjoy Berlin!")])
    await Runner.run(agent, "I moved to Berlin last week and I am allergic to peanuts.", session=session)
    mem.flush()
    facts = [f.text for f in mem.facts(user_id="ana")]
    assert any("Berlin" in f for f in facts) and any("peanut" in f for f in facts)
    assert not any("enjoy" in f for f in facts)  # the assistant's words are not the user's facts

    # A new session of the same user: its first request already knows.
    later = TiermemSession("dinner", memory=mem, user_id="ana")
    agent = Agent(name="Concierge", model=model, instructions=later.instructions("You plan trips."))
    model.enqueue([text("Here are some peanut-free places.")])
    await Runner.run(agent, "Any food I should avoid at dinner?", session=later)
    sent = model.calls[-1].system_instructions
    assert sent.startswith("You plan trips.") and "peanut" in sent
    # Another user's agent learns nothing of ana's.
    other = TiermemSession("dinner", memory=mem, user_id="ben")
    model.enqueue([text("Anything you like.")])
    await Runner.run(Agent(name="Concierge", model=model, instructions=other.instructions("You plan trips.")),
                     "Any food I should avoid at dinner?", session=other)
    assert "peanut" not in model.calls[-1].system_instructions


async def test_tools_are_bound_to_their_user(mem: Memory) -> None:
    mem.remember("Ben's locker code is 4411", user_id="ben")
    session = TiermemSession("tools", memory=mem, user_id="ana")
    model = ScriptedModel()
    agent = Agent(name="Helper", model=model, tools=session.tools())
    model.enqueue([call("remember", {"fact": "Ana's favourite tea is genmaicha"}, "c1")])
    model.enqueue([call("recall", {"query": "locker code", "limit": 5}, "c2")])
    model.enqueue([text("Done.")])
    await Runner.run(agent, "Remember my tea, then look up a locker code", session=session)
    outputs = {i["call_id"]: i["output"] for i in await session.get_items() if i.get("type") == "function_call_output"}
    assert outputs["c1"].startswith("created memory ")
    assert "4411" not in outputs["c2"]  # ben's fact is not ana's to find
    assert any("genmaicha" in f.text for f in mem.facts(user_id="ana"))

    ben_fact = mem.facts(user_id="ben")[0].id
    model.enqueue([call("forget", {"id": ben_fact}, "c3")])
    model.enqueue([text("ok")])
    await Runner.run(agent, "forget that", session=session)
    outputs = {i["call_id"]: i["output"] for i in await session.get_items() if i.get("type") == "function_call_output"}
    assert outputs["c3"].startswith("Error: no memory")
    assert mem.get(ben_fact).invalid_at is None


async def test_forget_user_erases_the_sessions_items(mem: Memory, home) -> None:
    session = TiermemSession("secret", memory=mem, user_id="ana")
    await session.add_items([{"role": "user", "content": "my passphrase is violet-harbor-73"}])
    receipt = mem.forget_user("ana")
    assert receipt.verified is True
    assert await session.get_items() == []


async def test_an_agent_over_a_served_memory_remembers_across_runs(home, embedder) -> None:
    from tiermem.serve import MemoryServer

    with Memory.open(home, embedder=embedder) as owner:
        server = MemoryServer(owner, port=0).start()
        try:
            with Memory.open(url=server.url) as remote:
                model = ScriptedModel()
                first = TiermemSession("a", memory=remote, user_id="ana")
                agent = Agent(name="Assistant", model=model, instructions=first.instructions("Be brief."))
                model.enqueue([text("Got it.")])
                await Runner.run(agent, "My daughter Maya starts school in September.", session=first)
                second = TiermemSession("b", memory=remote, user_id="ana")
                agent = Agent(name="Assistant", model=model,
                              instructions=memory_instructions(remote, user_id=lambda ctx: "ana", session_id="b",
                                                               base="Be brief."),
                              tools=memory_tools(remote, user_id="ana"))
                model.enqueue([text("September.")])
                await Runner.run(agent, "When does my daughter start school?", session=second)
                assert "Maya" in model.calls[-1].system_instructions
                assert await first.get_items() != [] and len(await second.get_items()) == 2
        finally:
            server.stop()
