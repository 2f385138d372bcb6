"""Every integration over a served home: `Memory.open(url=...)` beside a running server gives
the adapters what `Memory.open(home)` gives them (they stand on the public contract only)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import say
from tiermem import HashEmbedder, Memory, MemoryAPI
from tiermem.serve import MemoryServer
from tiermem.testing import FakeAnthropic, Reply

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(home: Path) -> Iterator[tuple[Memory, MemoryAPI]]:
    """A Memory served on 127.0.0.1, and a RemoteMemory on it."""
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, port=0).start()
        try:
            with Memory.open(url=server.url) as remote:
                yield mem, remote
        finally:
            server.stop()


def test_memory_client_chats_over_a_served_home_and_pages_a_fact_back(served) -> None:
    from tiermem.adapters.anthropic import MemoryClient

    _, remote = served
    seen: list[str] = []

    def model(body: dict) -> Reply:
        seen.append(str(body))
        return Reply("Noted.")

    with FakeAnthropic(model) as fake:
        chat = MemoryClient(fake.client(), remote)
        for text in ("I am allergic to peanuts.", "I live in Lisbon."):
            chat.messages.create(model="claude-haiku-4-5", max_tokens=100, user_id="ana", session_id="s1",
                                 messages=[{"role": "user", "content": text}])
        chat.messages.create(model="claude-haiku-4-5", max_tokens=100, user_id="ana", session_id="s2",
                             messages=[{"role": "user", "content": "Any snack ideas given my peanut allergy?"}])
    assert "allergic to peanuts" in seen[-1]  # paged back in, in another session
    assert remote.usage(user_id="ana").total.calls == 3  # recorded through the contract


def test_the_memory_tool_over_a_served_home(served) -> None:
    from tiermem.adapters.anthropic import TiermemMemoryTool

    mem, remote = served
    tool = TiermemMemoryTool(remote, user_id="ana")
    run = lambda **command: tool.call(command)  # noqa: E731
    assert "created" in run(command="create", path="/memories/notes.md", file_text="Ana likes tea\n")
    run(command="str_replace", path="/memories/notes.md", old_str="tea", new_str="green tea")
    run(command="insert", path="/memories/notes.md", insert_line=1, insert_text="Ana hates coffee")
    assert "green tea" in run(command="view", path="/memories/notes.md")
    assert [h.fact.text for h in mem.search("coffee", user_id="ana")][0].startswith("Ana likes green tea")
    run(command="delete", path="/memories/notes.md")
    assert remote.files(user_id="ana") == [] and mem.session.list_facts("ana", include_invalid=True) == []


def test_the_mem0_drop_in_over_a_served_home(served) -> None:
    from tiermem.adapters.mem0 import Memory as Mem0Memory

    mem, remote = served
    m = Mem0Memory(memory=remote)
    added = m.add("I am allergic to peanuts", user_id="alice", infer=False)
    [item] = added["results"]
    assert m.search("peanuts", filters={"user_id": "alice"})["results"][0]["id"] == item["id"]
    assert m.get(item["id"])["memory"] == "I am allergic to peanuts"
    m.delete(item["id"])
    assert m.get_all(filters={"user_id": "alice"})["results"] == []
    assert not any("peanuts" in t.content for t in mem.session.turns("alice"))  # erased with its message (alice is gone)


def test_the_langgraph_agent_over_a_served_home(served) -> None:
    sys.path.insert(0, str(ROOT / "agents"))
    import langgraph_agent

    mem, remote = served
    agent = langgraph_agent.build_agent(remote)
    langgraph_agent.ask(agent, "I live in Lisbon.", user="ana", thread="t1")
    assert "Lisbon" in langgraph_agent.ask(agent, "Where do I live?", user="ana", thread="t2")
    assert {t.session_id for t in mem.turns(user_id="ana", limit=10_000)} == {"t1", "t2"}


def test_the_chat_agent_over_a_served_home(served, tmp_path: Path) -> None:
    mem, remote = served
    mem.add([say("I live in Lisbon.")], user_id="ana")
    out = subprocess.run([sys.executable, str(ROOT / "agents" / "chat.py"), "--user", "ana", "--offline",
                          "--url", remote.location], input="Where do I live?\n/quit\n", capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "Lisbon" in out.stdout and remote.location in out.stdout


def test_the_langgraph_store_over_a_served_home(served) -> None:
    from tiermem.adapters.langgraph import TiermemStore

    mem, remote = served
    store = TiermemStore(remote, index={"fields": ["text"]}, ttl={"refresh_on_read": True})
    store.put(("users", "ana"), "diet", {"text": "Ana is vegetarian"})
    store.put(("users", "bob"), "diet", {"text": "Bob eats everything"})
    hits = store.search(("users", "ana"), query="what does Ana eat?")
    assert [h.key for h in hits] == ["diet"] and hits[0].namespace == ("users", "ana")
    assert store.get(("users", "bob"), "diet").value == {"text": "Bob eats everything"}
    assert store.list_namespaces(prefix=("users",)) == [("users", "ana"), ("users", "bob")]
    store.delete(("users", "ana"), "diet")
    assert store.get(("users", "ana"), "diet") is None and store.search(("users", "ana"), query="vegetarian") == []
    remote.forget_user("bob")  # a user's items go with the user
    assert store.get(("users", "bob"), "diet") is None
