"""Pydantic AI over tiermem: its ConversationStore protocol on the item tier, memory in the
instructions, the history window, and tools bound to a user; a real Agent with FunctionModel
and TestModel, real files, and a served memory."""

from __future__ import annotations

import pytest
from pydantic_ai import Agent, Conversation
from pydantic_ai.capabilities import ProcessHistory
from pydantic_ai.conversation_store import ConversationConflict
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from tiermem import InvalidInput, Memory
from tiermem.adapters.pydantic_ai import TiermemConversationStore, history_window, memory_instructions, memory_toolset


class Scripted:
    """A FunctionModel that answers from a list and keeps what it was sent."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.instructions: list[str | None] = []
        self.sent: list[list[ModelMessage]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.instructions.append(info.instructions)
        self.sent.append(list(messages))
        return ModelResponse(parts=[TextPart(self.replies.pop(0))])


async def _turn(store, agent, conversation_id: str, prompt: str, scope: str):
    conversation = await store.load(conversation_id, scope=scope) or Conversation(conversation_id=conversation_id)
    result = await agent.run(prompt, conversation=conversation)
    await store.save(result, scope=scope)
    return result


async def test_a_conversation_is_saved_loaded_and_continued(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    model = Scripted("Hello Ana.", "You said hi.")
    agent = Agent(FunctionModel(model))
    await _turn(store, agent, "c1", "Hi, I'm Ana.", "ana")
    await _turn(store, agent, "c1", "What did I say?", "ana")
    assert [type(m) for m in model.sent[-1]] == [ModelRequest, ModelResponse, ModelRequest]  # the first turn came back
    loaded = await store.load("c1", scope="ana")
    assert len(loaded.messages) == 4
    assert loaded.messages[0].parts[0].content == "Hi, I'm Ana." and loaded.messages[-1].parts[0].content == "You said hi."
    assert len((await store.load("c1", scope="ana", limit=2)).messages) == 2
    [record] = await store.list_conversations(scope="ana")
    assert record.conversation_id == "c1" and record.head_id == (await store.load_entries("c1"))[-1].id


async def test_scopes_keep_conversations_to_their_user(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    await _turn(store, Agent(TestModel(custom_output_text="ok")), "shared-id", "mine", "ana")
    assert await store.load("shared-id", scope="ben") is None
    assert await store.list_conversations(scope="ben") == []
    await store.delete("shared-id", scope="ben")  # not ben's: left as it is
    assert await store.load("shared-id", scope="ana") is not None


async def test_a_stale_save_conflicts_and_writes_nothing(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    agent = Agent(TestModel(custom_output_text="ok"))
    await _turn(store, agent, "c", "first", "ana")
    a = await store.load("c", scope="ana")
    b = await store.load("c", scope="ana")
    await store.save(await agent.run("from a", conversation=a), scope="ana")
    with pytest.raises(ConversationConflict):
        await store.save(await agent.run("from b", conversation=b), scope="ana")
    prompts = [p.content for m in (await store.load("c")).messages for p in m.parts if isinstance(p, UserPromptPart)]
    assert prompts == ["first", "from a"]


async def test_update_fork_branch_and_delete(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    agent = Agent(TestModel(custom_output_text="ok"))
    await _turn(store, agent, "c", "one", "ana")
    await _turn(store, agent, "c", "two", "ana")
    updated = await store.update("c", title="Trip", metadata={"model": "x"}, scope="ana")
    assert updated.title == "Trip"
    with pytest.raises(ConversationConflict):
        await store.update("c", title="Other", expected_title=None, scope="ana")
    await _turn(store, agent, "c", "three", "ana")
    assert (await store.read_record("c")).title == "Trip"  # a save keeps what update set

    entries = await store.load_entries("c")
    fork = await store.fork("c", from_entry=entries[1].id, new_conversation_id="f", scope="ana")
    assert len(fork.messages) == 2
    record = await store.read_record("c")
    branched = await store.branch("c", at=4, expected_revision=record.revision, scope="ana")
    await store.save(await agent.run("two, again", conversation=branched), scope="ana")
    record = await store.read_record("c")
    assert len(record.branches) == 1  # the history it left stays stored, to branch back to
    prompts = [p.content for m in (await store.load("c")).messages for p in m.parts if isinstance(p, UserPromptPart)]
    assert prompts == ["one", "two", "two, again"]
    await store.delete("c", scope="ana")
    assert await store.load("c") is None
    kept = await store.load("f", scope="ana")  # the fork's shared entries outlive the original
    assert [p.content for m in kept.messages for p in m.parts if isinstance(p, UserPromptPart)] == ["one"]
    for gone in entries[2:]:
        with pytest.raises(KeyError):
            await store.read_entry(gone.id)  # only the fork's history was kept


async def test_saved_messages_become_facts_and_are_paged_into_the_next_run(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    model = Scripted("Noted.", "Avoid peanuts.")
    agent = Agent(FunctionModel(model), instructions=memory_instructions(mem, user_id=lambda ctx: ctx.deps,
                                                                         session_id="c2", base="You cook."),
                  deps_type=str)
    conversation = Conversation(conversation_id="c1")
    result = await agent.run("I am allergic to peanuts.", conversation=conversation, deps="ana")
    await store.save(result, scope="ana")
    mem.flush()
    assert any("peanut" in f.text for f in mem.facts(user_id="ana"))
    assert not any("Noted" in f.text for f in mem.facts(user_id="ana"))
    await agent.run("What should I not eat?", deps="ana")
    assert model.instructions[-1].startswith("You cook.") and "peanut" in model.instructions[-1]
    other = Scripted("Anything.")
    await Agent(FunctionModel(other), instructions=memory_instructions(mem, user_id="ben", base="You cook.")).run(
        "What should I not eat?")
    assert "peanut" not in other.instructions[-1]


async def test_forget_user_erases_their_conversations(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    await _turn(store, Agent(TestModel(custom_output_text="ok")), "c", "my code word is amber-lattice-9", "ana")
    assert mem.forget_user("ana").verified is True
    assert await store.load("c") is None and await store.list_conversations() == []


def _tool_turn(prompt: str, call_id: str) -> list[ModelMessage]:
    return [ModelRequest(parts=[UserPromptPart(prompt)]),
            ModelResponse(parts=[ToolCallPart("lookup", {"q": prompt}, tool_call_id=call_id)]),
            ModelRequest(parts=[ToolReturnPart("lookup", "x" * 400, tool_call_id=call_id)]),
            ModelResponse(parts=[TextPart("answer " + prompt)])]


def test_the_history_window_cuts_at_a_turn_and_keeps_the_current_one() -> None:
    history = _tool_turn("one", "a") + _tool_turn("two", "b") + [ModelRequest(parts=[UserPromptPart("three")])]
    sizes = {id(m): 100 for m in history}
    window = history_window(250, count_tokens=lambda m: sizes[id(m)])
    kept = window(history)
    assert kept == history[8:]  # two turns of 4 x 100 do not fit 250: only the current one
    assert history_window(10_000)(history) == history
    wide = history_window(550, count_tokens=lambda m: sizes[id(m)])(history)
    assert wide == history[4:]  # never starts at a tool return: the whole second turn and the current one
    with pytest.raises(InvalidInput, match="max_tokens"):
        history_window(0)


async def test_the_window_bounds_what_a_long_conversation_sends(mem: Memory) -> None:
    store = TiermemConversationStore(mem)
    model = Scripted(*(f"reply {i} " + "words " * 60 for i in range(12)))
    agent = Agent(FunctionModel(model), capabilities=[ProcessHistory(history_window(600))])
    for i in range(12):
        await _turn(store, agent, "long", f"message {i} " + "detail " * 60, "ana")
    assert len(model.sent[-1]) < 12  # bounded, while the store keeps everything
    assert len((await store.load("long")).messages) == 24
    first = model.sent[-1][0]
    assert isinstance(first, ModelRequest) and isinstance(first.parts[0], UserPromptPart)


async def test_tools_are_bound_to_their_user(mem: Memory) -> None:
    mem.remember("Ben's locker code is 4411", user_id="ben")
    calls = iter([
        ModelResponse(parts=[ToolCallPart("remember", {"fact": "Ana's favourite tea is genmaicha"}, tool_call_id="1")]),
        ModelResponse(parts=[ToolCallPart("recall", {"query": "locker code"}, tool_call_id="2")]),
        ModelResponse(parts=[TextPart("done")]),
    ])
    returns: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns.extend(p.content for p in messages[-1].parts if isinstance(p, ToolReturnPart))
        return next(calls)

    agent = Agent(FunctionModel(model), toolsets=[memory_toolset(mem, user_id="ana")])
    await agent.run("remember my tea, then find a locker code")
    assert returns[0].startswith("created memory ") and "4411" not in returns[1]
    assert any("genmaicha" in f.text for f in mem.facts(user_id="ana"))


async def test_over_a_served_memory(home, embedder) -> None:
    from tiermem.serve import MemoryServer

    with Memory.open(home, embedder=embedder) as owner:
        server = MemoryServer(owner, port=0).start()
        try:
            with Memory.open(url=server.url) as remote:
                store = TiermemConversationStore(remote)
                model = Scripted("Got it.", "September.")
                agent = Agent(FunctionModel(model), instructions=memory_instructions(remote, user_id="ana", session_id="b"))
                await _turn(store, agent, "a", "My daughter Maya starts school in September.", "ana")
                await _turn(store, agent, "b", "When does my daughter start school?", "ana")
                assert "Maya" in model.instructions[-1]
                assert len((await store.load("a", scope="ana")).messages) == 2
        finally:
            server.stop()
