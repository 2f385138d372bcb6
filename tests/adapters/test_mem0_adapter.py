"""tiermem.adapters.mem0 on its own: the config mapping, scopes, the deliberate
improvements (erasure, journaled contradictions, no duplicates) and AsyncMemory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tiermem import HashEmbedder
from tiermem import Memory as TiermemMemory
from tiermem._erasure import find_leftovers
from tiermem._errors import ConfigError
from tiermem.adapters.mem0 import AsyncMemory, Memory, ValidationError, tenant_of


@pytest.fixture
def m(home: Path) -> Iterator[Memory]:
    tm = TiermemMemory.open(home, embedder=HashEmbedder(64), extraction="inline")
    yield Memory(memory=tm)
    tm.close()


def config(path: Path, **sections: Any) -> dict[str, Any]:
    return {"vector_store": {"provider": "qdrant", "config": {"path": str(path), "collection_name": "mem0"}}, **sections}


def test_from_config_makes_the_qdrant_path_the_home_and_logs_what_it_ignores(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(tmp_path / "store", llm={"provider": "openai", "config": {"model": "gpt-4.1"}},
                 embedder={"provider": "openai", "config": {"model": "text-embedding-3-small"}},
                 history_db_path=str(tmp_path / "h.db"), custom_instructions="be brief")
    with caplog.at_level(logging.WARNING, logger="tiermem.adapters.mem0"), Memory.from_config(cfg) as memory:
        memory.add("I keep bees", user_id="ana", infer=False)
    assert (tmp_path / "store" / "tiermem.db").exists()
    notes = " ".join(r.getMessage() for r in caplog.records)
    for ignored in ("'openai'", "text-embedding-3-small", "history_db_path", "custom_instructions"):
        assert ignored in notes
    with Memory.from_config(cfg) as again:  # the same store, reopened
        assert [r["memory"] for r in again.get_all(filters={"user_id": "ana"})["results"]] == ["I keep bees"]


def test_from_config_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vector_store"):
        Memory.from_config({"vector_store": "qdrant"})
    with pytest.raises(ConfigError, match="dict"):
        Memory.from_config(["not", "a", "config"])  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_a_contradiction_is_journaled_not_stored_beside_the_old_memory(m: Memory) -> None:
    m.add("I live in Paris", user_id="ana")
    [paris] = m.get_all(filters={"user_id": "ana"})["results"]
    moved = m.add("I live in Berlin", user_id="ana")["results"]
    assert {"id": paris["id"], "memory": paris["memory"], "event": "DELETE"} in moved
    assert [r["memory"] for r in m.get_all(filters={"user_id": "ana"})["results"]] == [
        r["memory"] for r in moved if r["event"] == "ADD"]
    assert m.get(paris["id"]) is None  # deleted to mem0's eyes ...
    assert [h["event"] for h in m.history(paris["id"])] == ["ADD", "DELETE"]  # ... with its history kept
    assert m.history(paris["id"])[-1]["is_deleted"] is True


def test_a_repeat_is_recognised_not_stored_twice(m: Memory) -> None:
    [first] = m.add("I keep bees", user_id="ana", infer=False)["results"]
    [again] = m.add("I keep bees", user_id="ana", infer=False)["results"]
    assert again["event"] == "NONE" and again["id"] == first["id"]
    assert len(m.get_all(filters={"user_id": "ana"})["results"]) == 1
    [said] = m.add([{"role": "user", "content": "I like green tea."}], user_id="bo")["results"]  # extracted
    [repeated] = m.add([{"role": "user", "content": "I like green tea."}], user_id="bo")["results"]
    assert repeated["event"] == "NONE" and repeated["id"] == said["id"]  # merged sources are no change to mem0


def test_errors_are_mem0s_own_classes_when_mem0ai_is_installed(m: Memory) -> None:
    import mem0.exceptions as mem0_exceptions  # mem0ai is a dev dependency
    with pytest.raises(mem0_exceptions.ValidationError) as refused:
        m.add("I keep bees")  # no user_id, agent_id or run_id
    assert refused.value.error_code == "VALIDATION_001" and isinstance(refused.value, ValidationError)
    assert isinstance(refused.value, mem0_exceptions.MemoryError)


def test_delete_erases_the_text_from_every_file(m: Memory) -> None:
    secret = "My locker code is 4471-zebra"
    [item] = m.add(secret, user_id="ana", infer=False)["results"]
    m.update(item["id"], text=secret + " (changed)")
    m.delete(item["id"])
    assert m.history(item["id"]) == [] and m.get(item["id"]) is None
    checked, leftovers = find_leftovers([secret], m.tiermem.writes.local_files())
    assert checked > 0 and leftovers == []
    with pytest.raises(ValueError, match="not found"):
        m.delete(item["id"])


def test_scopes_agent_and_run_reads_span_users_as_in_mem0(m: Memory) -> None:
    m.add("I keep bees", user_id="ana", agent_id="coach", infer=False)
    m.add("I sail", user_id="bea", agent_id="coach", run_id="r1", infer=False)
    m.add("Prefers short answers", agent_id="coach", infer=False)
    m.add("Session note", run_id="r1", infer=False)
    def texts(**filters: Any) -> list[str]:
        return sorted(r["memory"] for r in m.get_all(filters=filters)["results"])

    assert texts(agent_id="coach") == ["I keep bees", "I sail", "Prefers short answers"]
    assert texts(run_id="r1") == ["I sail", "Session note"]
    assert texts(user_id="ana") == ["I keep bees"]
    assert texts(user_id="bea", agent_id="other") == []
    assert tenant_of({"agent_id": "coach"}) == "agent coach" and "agent coach" in [u for u, _, _ in m.tiermem.users()]
    found = m.search("bees", filters={"agent_id": "coach"}, threshold=0.0)["results"]
    assert found[0]["memory"] == "I keep bees"  # found in ana's tenant by an agent-only scope
    assert {r["memory"] for r in found} <= {"I keep bees", "I sail", "Prefers short answers"}
    m.delete_all(agent_id="coach")
    assert texts(agent_id="coach") == [] and texts(run_id="r1") == ["Session note"]
    assert texts(user_id="ana") == []


def test_metadata_filters_and_expiry(m: Memory) -> None:
    m.add("I keep bees", user_id="ana", metadata={"topic": "hobby", "stars": 4}, infer=False)
    m.add("I sail", user_id="ana", metadata={"topic": "sport", "stars": 2}, infer=False)
    m.add("Old promo code", user_id="ana", expiration_date="2001-01-01", infer=False)
    def texts(filters: dict[str, Any], **kw: Any) -> list[str]:
        return sorted(r["memory"] for r in m.get_all(filters={"user_id": "ana", **filters}, **kw)["results"])

    assert texts({"topic": "hobby"}) == ["I keep bees"]
    assert texts({"stars": {"gte": 3}}) == ["I keep bees"]
    assert texts({"topic": {"in": ["hobby", "sport"]}}) == ["I keep bees", "I sail"]
    assert texts({"NOT": [{"topic": "hobby"}]}) == ["I sail"]
    assert texts({"topic": "*"}) == ["I keep bees", "I sail"]
    assert texts({"topic": {"icontains": "SPO"}}) == ["I sail"]
    assert texts({}, show_expired=True) == ["I keep bees", "I sail", "Old promo code"]
    assert texts({}, top_k=1) == ["I keep bees"]
    [expired] = m.get_all(filters={"user_id": "ana"}, show_expired=True)["results"][2:]
    assert expired["expiration_date"] == "2001-01-01"


def test_update_merges_metadata_and_keeps_the_scope(m: Memory) -> None:
    [item] = m.add("I keep bees", user_id="ana", metadata={"a": 1}, infer=False)["results"]
    m.update(item["id"], metadata={"b": 2, "user_id": "mallory"})
    got = m.get(item["id"])
    assert got is not None and got["metadata"] == {"a": 1, "b": 2} and got["user_id"] == "ana"
    assert got["memory"] == "I keep bees" and got["updated_at"] >= got["created_at"]
    assert [h["event"] for h in m.history(item["id"])] == ["ADD", "UPDATE"]


def test_ids_are_accepted_in_either_uuid_spelling(m: Memory) -> None:
    [item] = m.add("I keep bees", user_id="ana", infer=False)["results"]
    assert len(item["id"]) == 36
    assert m.get(item["id"].replace("-", "")) == m.get(item["id"].upper()) == m.get(item["id"])


def test_bad_input_changes_nothing(m: Memory) -> None:
    with pytest.raises(ValidationError) as err:
        m.add("hello", metadata={"a": 1})
    assert err.value.error_code == "VALIDATION_001"
    with pytest.raises(ValueError, match="whitespace"):
        m.add("hello", user_id="  ")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        m.add("hello", user_id="ana", expiration_date="next tuesday")
    assert m.tiermem.users() == []


def test_what_mem0_accepts_quietly_is_accepted(m: Memory) -> None:
    assert m.add([{"role": "system", "content": "Be nice"}], user_id="ana") == {"results": []}
    assert m.add([{"role": "user", "content": "  "}, {"content": "no role"}], user_id="ana", infer=False) == {"results": []}
    assert m.search("anything", filters={"user_id": "nobody"}) == {"results": []}
    assert m.delete_all(user_id="nobody") == {"message": "Memories deleted successfully!"}
    assert m.get("not-an-id") is None and m.history("not-an-id") == []
    assert m.tiermem.users() == []


def test_reset_erases_every_user(m: Memory) -> None:
    m.add("I keep bees", user_id="ana", infer=False)
    m.add("Prefers short answers", agent_id="coach", infer=False)
    m.reset()
    assert m.tiermem.users() == []


def test_async_memory_has_the_same_methods(home: Path) -> None:
    tm = TiermemMemory.open(home, embedder=HashEmbedder(64), extraction="inline")

    async def scenario() -> list[Any]:
        am = AsyncMemory(memory=tm)
        [item] = (await am.add("I keep bees", user_id="ana", infer=False))["results"]
        listed = await am.get_all(filters={"user_id": "ana"})
        found = await am.search("bees", filters={"user_id": "ana"}, threshold=0.0)
        await am.update(item["id"], text="I keep two hives")
        history = await am.history(item["id"])
        got = await am.get(item["id"])
        await am.delete(item["id"])
        with pytest.raises(ValueError):
            await am.delete_all()
        return [listed["results"][0]["id"], found["results"][0]["id"], len(history), got["memory"], await am.get(item["id"])]

    try:
        listed_id, found_id, n_history, text, after = asyncio.run(scenario())
    finally:
        tm.close()
    assert listed_id == found_id and n_history == 2 and text == "I keep two hives" and after is None


def test_an_anthropic_llm_becomes_the_claude_extractor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiermem.adapters._mem0_config import tiermem_options

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    llm = {"provider": "anthropic", "config": {"model": "claude-haiku-4-5", "api_key": "k",
                                               "anthropic_base_url": "http://127.0.0.1:9"}}
    options, notes = tiermem_options(config(tmp_path, llm=llm))
    assert options["extractor"] == options["reconciler"] == "claude" and options["claude_model"] == "claude-haiku-4-5"
    assert options["anthropic_client_args"] == {"api_key": "k", "base_url": "http://127.0.0.1:9"}
    assert options["home"] == tmp_path and notes == []
    keyless = {"provider": "anthropic", "config": {"model": "claude-haiku-4-5"}}
    options, notes = tiermem_options(config(tmp_path, llm=keyless))
    assert "extractor" not in options and "no api_key" in notes[0]
    server = {"vector_store": {"provider": "qdrant", "config": {"host": "db", "port": 6333, "collection_name": "m"}}}
    options, _ = tiermem_options(server)
    assert options["qdrant_url"] == "http://db:6333" and options["collection"] == "m_tiermem"


def test_delete_and_delete_all_of_a_run_erase_the_messages_too(m: Memory, home: Path) -> None:
    """R1: what mem0's delete calls erase leaves no file and no later context()."""
    tm = m._memory
    [passport] = m.add("My passport number is qzpassport77.", user_id="alice")["results"]
    m.delete(passport["id"])
    m.add([{"role": "user", "content": "Hi there"}, {"role": "user", "content": "My bank PIN is qzpin5521."}],
          user_id="bob", run_id="r1")
    m.add("I like sailing.", user_id="bob", run_id="r2")
    m.delete_all(user_id="bob", run_id="r1")
    for user, marker in (("alice", "qzpassport77"), ("bob", "qzpin5521")):
        ctx = tm.context("what is my number?", user_id=user, session_id="r1")
        assert marker not in str(ctx.system) + str(ctx.messages)
    checked, leftovers = find_leftovers(["qzpassport77", "qzpin5521", "Hi there"], [home])
    assert checked and not leftovers
    assert [r["memory"] for r in m.get_all(filters={"user_id": "bob"})["results"]] == ["The user likes sailing."]  # r2 stays
