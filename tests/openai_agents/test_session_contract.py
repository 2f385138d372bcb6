"""The Agents SDK's own Session tests (openai-agents-python tests/memory/test_session.py),
adapted to a factory `TiermemSession(session_id, memory=..., user_id=..., session_settings=...)`:
a real Runner with the SDK's ScriptedModel, a real Memory on files under tmp_path. The SQLite
file-lock and corrupt-row tests of that file test SQLiteSession's own storage and are left out."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, cast

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, TResponseInputItem
from agents.memory import Session
from agents.testing import ScriptedModel
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from tiermem import Memory
from tiermem.adapters.openai_agents import TiermemSession


def get_text_message(content: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(id="1", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(text=content, type="output_text", annotations=[], logprobs=[])])


@pytest.fixture
def make(mem: Memory):
    def factory(session_id: str, *, user_id: str = "ana", session_settings: Any = None) -> TiermemSession:
        return TiermemSession(session_id, memory=mem, user_id=user_id, session_settings=session_settings)
    return factory


def _run_sync_wrapper(agent, input_data, **kwargs):
    return Runner.run_sync(agent, input_data, **kwargs)


async def run_agent_async(runner_method: str, agent, input_data, **kwargs):
    if runner_method == "run":
        return await Runner.run(agent, input_data, **kwargs)
    if runner_method == "run_sync":
        return await asyncio.to_thread(_run_sync_wrapper, agent, input_data, **kwargs)
    result = Runner.run_streamed(agent, input_data, **kwargs)
    async for _event in result.stream_events():
        pass
    return result


RUNNERS = ["run", "run_sync", "run_streamed"]


def test_is_the_sdks_session_protocol(make) -> None:
    assert isinstance(make("protocol"), Session)


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_session_memory_basic_functionality(make, runner_method):
    session = make("test_session_123")
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("San Francisco")])
    result1 = await run_agent_async(runner_method, agent, "What city is the Golden Gate Bridge in?", session=session)
    assert result1.final_output == "San Francisco"
    model.enqueue([get_text_message("California")])
    result2 = await run_agent_async(runner_method, agent, "What state is it in?", session=session)
    assert result2.final_output == "California"
    last_input = model.calls[-1].input
    assert len(last_input) > 1
    session.close()


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_session_memory_different_sessions(make, runner_method):
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    session_1 = make("session_1")
    model.enqueue([get_text_message("I like cats")])
    await run_agent_async(runner_method, agent, "I like cats", session=session_1)
    session_2 = make("session_2")
    model.enqueue([get_text_message("I like dogs")])
    await run_agent_async(runner_method, agent, "I like dogs", session=session_2)
    model.enqueue([get_text_message("Yes, you mentioned cats")])
    result3 = await run_agent_async(runner_method, agent, "What did I say I like?", session=session_1)
    assert result3.final_output == "Yes, you mentioned cats"
    sent = model.calls[-1].input
    texts = [i.get("content") for i in sent if isinstance(i, dict)]
    assert "I like cats" in texts and "I like dogs" not in texts


async def test_session_memory_direct(make):
    session = make("direct_test")
    items: list[TResponseInputItem] = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"}]
    await session.add_items(items)
    retrieved = await session.get_items()
    assert len(retrieved) == 2
    assert retrieved[0].get("role") == "user" and retrieved[0].get("content") == "Hello"
    assert retrieved[1].get("role") == "assistant" and retrieved[1].get("content") == "Hi there!"
    await session.clear_session()
    assert len(await session.get_items()) == 0


async def test_pop_item(make):
    session = make("pop_test")
    assert await session.pop_item() is None
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
        {"role": "user", "content": "How are you?"},
    ]
    await session.add_items(items)
    assert len(await session.get_items()) == 3
    popped = await session.pop_item()
    assert popped == {"role": "user", "content": "How are you?"}
    after = await session.get_items()
    assert len(after) == 2 and after[-1].get("content") == "Hi there!"
    assert (await session.pop_item()).get("content") == "Hi there!"
    assert (await session.pop_item()).get("content") == "Hello"
    assert await session.pop_item() is None
    assert await session.get_items() == []


async def test_pop_different_sessions(make):
    session_1, session_2 = make("session_1"), make("session_2")
    await session_1.add_items([{"role": "user", "content": "Session 1 message"}])
    await session_2.add_items([{"role": "user", "content": "Session 2 message 1"},
                               {"role": "user", "content": "Session 2 message 2"}])
    popped = await session_1.pop_item()
    assert popped.get("content") == "Session 1 message"
    assert await session_1.get_items() == []
    items_2 = await session_2.get_items()
    assert [i.get("content") for i in items_2] == ["Session 2 message 1", "Session 2 message 2"]


async def test_get_items_with_limit(make):
    session = make("count_test")
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Message 1"}, {"role": "assistant", "content": "Response 1"},
        {"role": "user", "content": "Message 2"}, {"role": "assistant", "content": "Response 2"},
        {"role": "user", "content": "Message 3"}, {"role": "assistant", "content": "Response 3"},
    ]
    await session.add_items(items)
    all_items = await session.get_items()
    assert len(all_items) == 6 and all_items[0].get("content") == "Message 1" and all_items[-1].get("content") == "Response 3"
    assert [i.get("content") for i in await session.get_items(limit=2)] == ["Message 3", "Response 3"]
    assert [i.get("content") for i in await session.get_items(limit=4)] == ["Message 2", "Response 2", "Message 3", "Response 3"]
    assert len(await session.get_items(limit=10)) == 6
    assert await session.get_items(limit=0) == []


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_appends_list_input_by_default(make, runner_method):
    session = make("test_validation_parametrized")
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    initial_history: list[TResponseInputItem] = [{"role": "user", "content": "Earlier message"},
                                                 {"role": "assistant", "content": "Saved reply"}]
    await session.add_items(initial_history)
    list_input = [{"role": "user", "content": "Test message"}]
    model.enqueue([get_text_message("This should run")])
    await run_agent_async(runner_method, agent, list_input, session=session)
    assert model.calls[-1].input == initial_history + list_input


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_session_callback_prepared_input(make, runner_method):
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    session = make("session_1")
    initial_history: list[TResponseInputItem] = [{"role": "user", "content": "Hello there."},
                                                 {"role": "assistant", "content": "Hi, I'm here to assist you."}]
    await session.add_items(initial_history)

    def filter_assistant_messages(history, new_input):
        return [item for item in history if item["role"] == "user"] + new_input

    new_turn_input = [{"role": "user", "content": "What your name?"}]
    model.enqueue([get_text_message("I'm gpt-4o")])
    await run_agent_async(runner_method, agent, new_turn_input, session=session,
                          run_config=RunConfig(session_input_callback=filter_assistant_messages))
    assert model.calls[-1].input == [initial_history[0], new_turn_input[0]]


@pytest.mark.parametrize("runner_method", RUNNERS)
async def test_repeating_history_does_not_grow_session(make, runner_method):
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    session = make("session_repeat")

    def repeat_first(history, new_input):
        return new_input if not history else history + [history[0]] + new_input

    for turn in range(3):
        model.enqueue([get_text_message(f"assistant {turn}")])
        await run_agent_async(runner_method, agent, f"user {turn}", session=session,
                              run_config=RunConfig(session_input_callback=repeat_first))
    stored = await session.get_items()
    assert [i.get("content") for i in stored if i.get("role") == "user"] == ["user 0", "user 1", "user 2"]
    assert len(stored) == 6


async def test_unicode_content(make):
    session = make("unicode_test")
    await session.add_items([{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "😊👍"},
                             {"role": "user", "content": "Привет"}])
    assert [i.get("content") for i in await session.get_items()] == ["こんにちは", "😊👍", "Привет"]


async def test_special_characters_and_sql_injection(make):
    session = make("special_chars_test")
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "O'Reilly"},
        {"role": "assistant", "content": "DROP TABLE sessions;"},
        {"role": "user", "content": '"SELECT * FROM users WHERE name = "admin";"'},
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
        {"role": "user", "content": "Normal message"},
    ]
    await session.add_items(items)
    assert await session.get_items() == items


async def test_concurrent_access(make):
    session = make("concurrent_test")
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Message {i}"} for i in range(10)]

    def add_item(item):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(session.add_items([item]))
        loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
        list(executor.map(add_item, items))
    contents = {i.get("content") for i in await session.get_items()}
    assert contents == {f"Message {i}" for i in range(10)}


async def test_failed_add_items_stores_nothing_and_the_session_stays_usable(make):
    session = make("rollback_test")
    unserializable = cast(TResponseInputItem, {"role": "user", "content": object()})
    with pytest.raises(TypeError):
        await session.add_items([{"role": "user", "content": "fine"}, unserializable])
    assert await session.get_items() == []
    await session.add_items([{"role": "user", "content": "after failure"}])
    assert [i.get("content") for i in await session.get_items()] == ["after failure"]


async def test_add_items_exception_propagates_in_streamed(make):
    session = make("test_exception_session")

    async def _failing_add_items(_items):
        raise RuntimeError("Simulated session.add_items failure")

    session.add_items = _failing_add_items  # type: ignore[method-assign]
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("This should not be reached")])
    result = Runner.run_streamed(agent, "Hello", session=session)

    async def consume_stream():
        async for _event in result.stream_events():
            pass

    with pytest.raises(RuntimeError, match="Simulated session.add_items failure"):
        await asyncio.wait_for(consume_stream(), timeout=5.0)


def test_session_settings(make) -> None:
    default = make("default_settings_test")
    assert isinstance(default.session_settings, SessionSettings) and default.session_settings.limit is None
    assert make("constructor_settings_test", session_settings=SessionSettings(limit=5)).session_settings.limit == 5
    from_dict = make("dictionary_settings_test", session_settings={"limit": 0})
    assert isinstance(from_dict.session_settings, SessionSettings) and from_dict.session_settings.limit == 0
    assert from_dict.session_settings.resolve({"limit": 4}).limit == 4
    with pytest.raises(TypeError, match="Unknown session settings: limitt"):
        make("invalid_settings_test", session_settings={"limitt": 1})


async def test_get_items_uses_session_settings_limit(make):
    session = make("uses_settings_limit_test", session_settings=SessionSettings(limit=3))
    await session.add_items([{"role": "user", "content": f"Message {i}"} for i in range(5)])
    assert [i.get("content") for i in await session.get_items()] == ["Message 2", "Message 3", "Message 4"]


async def test_explicit_limit_overrides_session_settings(make):
    session = make("explicit_override_test", session_settings=SessionSettings(limit=5))
    await session.add_items([{"role": "user", "content": f"Message {i}"} for i in range(10)])
    assert [i.get("content") for i in await session.get_items(limit=2)] == ["Message 8", "Message 9"]


async def test_runner_with_session_settings_override(make):
    session = make("runner_override_test", session_settings=SessionSettings(limit=100))
    await session.add_items([{"role": "user", "content": f"Turn {i}"} for i in range(10)])
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("Got it")])
    await Runner.run(agent, "New question", session=session,
                     run_config=RunConfig(session_settings=SessionSettings(limit=2)))
    history_items = [i for i in model.calls[-1].input if i.get("content") != "New question"]
    assert [i.get("content") for i in history_items] == ["Turn 8", "Turn 9"]
