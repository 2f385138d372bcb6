"""The public API (DESIGN.md §4) end to end: real SQLite, real qdrant-edge, hash embedder."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import (
    ConfigError,
    EmbeddingMismatch,
    FactNotFound,
    HashEmbedder,
    IndexLocked,
    InvalidInput,
    Memory,
    MemoryClosed,
    StoreUnavailable,
    UnknownUser,
    approx_tokens,
)


def test_add_extracts_facts_with_provenance(mem: Memory) -> None:
    res = mem.add([say("I live in Lisbon. I love hiking in the mountains.", id="m-1")], user_id="ana", session_id="s-1", at=T0)
    assert [t.seq for t in res.turns] == [1]
    assert [e.op for e in res.events] == ["add", "add"]
    assert {f.text for f in res.facts} == {"Ana lives in Lisbon.", "Ana loves hiking in the mountains."}
    assert all(f.sources == ["m-1"] for f in res.facts)
    assert {f.id for f in mem.facts(user_id="ana")} == {f.id for f in res.facts}


def test_a_move_invalidates_the_old_home_and_keeps_history(mem: Memory) -> None:
    first = mem.add([say("I live in Lisbon.", id="m-1")], user_id="ana", at=T0 - timedelta(days=60))
    lisbon = first.facts[0]
    res = mem.add([say("I moved to Berlin last week", id="m-17")], user_id="ana", session_id="s-3", at=T0)
    assert [e.op for e in res.events] == ["invalidate", "add"]
    berlin = res.events[1].fact
    assert berlin.text == "Ana moved to Berlin in the week before 2 May 2024."
    assert [f.text for f in mem.facts(user_id="ana")] == [berlin.text]
    assert len(mem.facts(user_id="ana", include_invalid=True)) == 2
    assert [e.op for e in mem.history(lisbon.id)] == ["add", "invalidate"]
    assert mem.get(lisbon.id).superseded_by == berlin.id
    # search sees only what is valid now, or what was valid then
    assert [h.fact.id for h in mem.search("where does Ana live?", user_id="ana")] == [berlin.id]
    then = mem.search("where does Ana live?", user_id="ana", as_of=T0 - timedelta(days=30))
    assert [h.fact.id for h in then] == [lisbon.id]


def test_repeating_a_fact_merges_sources_instead_of_duplicating(mem: Memory) -> None:
    mem.add([say("I love hiking in the mountains.", id="m-1")], user_id="ana", at=T0)
    res = mem.add([say("I love hiking in the mountains!", id="m-9")], user_id="ana", at=T0)
    [event] = res.events
    assert event.op == "update" and event.fact.sources == ["m-1", "m-9"]
    again = mem.add([say("I love hiking in the mountains!", id="m-9")], user_id="ana", at=T0)
    assert [e.op for e in again.events] == ["noop"]
    assert len(mem.facts(user_id="ana")) == 1


def test_search_explains_scores(mem: Memory) -> None:
    mem.add([say("I love hiking in the mountains. My dog is named Rex.")], user_id="ana", at=T0)
    [top, *_] = mem.search("hiking mountains", user_id="ana")
    assert top.fact.text == "Ana loves hiking in the mountains."
    assert {"dense", "sparse", "fusion", "importance", "recency", "score"} <= set(top.explain)


def test_users_never_see_each_others_facts(mem: Memory) -> None:
    mem.add([say("I love hiking in the mountains.", name="Ana")], user_id="ana", at=T0)
    mem.add([say("I love hiking in the mountains.", name="Bob")], user_id="bob", at=T0)
    mem.add([say("My secret code is 4242 and I hike daily.", name="Bob")], user_id="bob", at=T0)
    hits = mem.search("secret code hiking mountains", user_id="ana", limit=50)
    assert hits and all(h.fact.user_id == "ana" for h in hits)
    ctx = mem.context("what is the secret code? do I hike?", user_id="ana", system="s")
    assert "4242" not in str(ctx.system) + str(ctx.messages)
    assert all(h.fact.user_id == "ana" for h in ctx.facts)


def test_context_layout_and_report(mem: Memory) -> None:
    mem.add([say("I'm vegetarian and my favorite cuisine is Japanese."), say("I went to Porto last weekend for a food festival.")],
            user_id="ana", session_id="s-1", at=T0)
    mem.add([say("Any tips for Porto?"), {"role": "assistant", "content": "Try the markets."}], user_id="ana", session_id="s-2", at=T0)
    ctx = mem.context("What food festival did I go to?", user_id="ana", session_id="s-2", system="You are helpful.", budget=2000)
    assert ctx.system[0] == {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}}
    assert "<user_profile" in ctx.system[1]["text"] and ctx.system[1]["cache_control"] == {"type": "ephemeral"}
    assert [m["role"] for m in ctx.messages] == ["user", "assistant", "user"]
    assert ctx.messages[-1]["content"][-1]["text"] == "What food festival did I go to?"
    assert any("Porto" in h.fact.text for h in ctx.facts)
    assert "Porto" in ctx.messages[-1]["content"][0]["text"]  # the memory block, before the message
    assert not ctx.report.cacheable and ctx.report.cache_min_tokens == 4096 and ctx.report.notes
    assert ctx.report.total <= 2000 and ctx.report.tokens["profile"] > 0


def test_the_cached_prefix_is_byte_stable_until_rebaked(mem: Memory) -> None:
    mem.add([say("I'm vegetarian. I live in Lisbon.")], user_id="ana", at=T0)
    first = mem.context("hello there, plan my week", user_id="ana", system="sys").system
    assert "Lisbon" in first[1]["text"]
    mem.add([say("I went to the cinema yesterday with my brother.")], user_id="ana", at=T0)  # episodic: no rebake
    mem.add([say("My favorite color is green."), say("My favorite color is blue.")], user_id="ana", at=T0)  # not profiled yet
    assert mem.context("and my weekend?", user_id="ana", system="sys").system == first
    mem.add([say("I moved to Munich.")], user_id="ana", at=T0 + timedelta(days=2))  # invalidates a profiled fact
    after = mem.context("and my weekend?", user_id="ana", system="sys")
    assert after.system != first and "Munich" in after.system[1]["text"] and "Lisbon" not in after.system[1]["text"]
    assert after.report.profile_epoch == 2


def test_thanks_pages_in_nothing(mem: Memory) -> None:
    mem.add([say("I love hiking in the mountains.")], user_id="ana", at=T0)
    ctx = mem.context("thanks!", user_id="ana")
    assert ctx.facts == [] and ctx.report.tokens["memory"] == 0
    assert any("no content words" in d.why for d in ctx.report.dropped)


def test_long_sessions_roll_into_a_summary(home: Path, embedder: HashEmbedder) -> None:
    from tiermem import ContextBudget

    small_window = ContextBudget(window_tokens=300, summary_tokens=80)
    with Memory.open(home, embedder=embedder, budget=small_window) as mem:
        for i in range(30):
            mem.add([say(f"Day {i}: I practised violin scales number {i} for an hour."),
                     {"role": "assistant", "content": f"Great practice on day {i}!"}], user_id="ana", session_id="s", at=T0)
        ctx = mem.context("how is my violin going?", user_id="ana", session_id="s", budget=1000)
        summary = ctx.system[-1]["text"].removeprefix("<earlier_in_this_session>\n").removesuffix("\n</earlier_in_this_session>")
        assert 0 < approx_tokens(summary) <= 80 and 0 < ctx.report.tokens["summary"] <= 90
        assert "earlier_in_this_session" in ctx.system[-1]["text"]
        assert ctx.report.total + ctx.report.budget["reply_reserve"] <= 1000
        history = [m["role"] for m in ctx.messages]
        assert history[0] == "user" and all(a != b for a, b in zip(history, history[1:], strict=False))
        # the window does not slide on every call: the next call keeps the same history prefix
        mem.add([say("I also started piano."), {"role": "assistant", "content": "Nice!"}], user_id="ana", session_id="s", at=T0)
        again = mem.context("how is my violin going?", user_id="ana", session_id="s", budget=1000)
        assert again.messages[0] == ctx.messages[0]
        # a small request hides older turns for itself only: the stored window and summary stay
        small = mem.context("violin?", user_id="ana", session_id="s", budget=300)
        assert small.report.total + small.report.budget["reply_reserve"] <= 300
        assert any("history budget" in d.why for d in small.report.dropped)
        assert mem.context("how is my violin going?", user_id="ana", session_id="s", budget=1000).messages == again.messages
        tight = mem.context("violin?", user_id="ana", session_id="s", system="x" * 1800, budget=500)
        assert tight.report.tokens["summary"] == 0 and any(d.what == "session summary" for d in tight.report.dropped)


def test_forget_erases_from_every_tier(mem: Memory) -> None:
    res = mem.add([say("I'm vegetarian. My secret code is 4242.")], user_id="ana", at=T0)
    secret = next(f for f in res.facts if "4242" in f.text)
    mem.context("hi, what do you know?", user_id="ana")
    mem.forget(secret.id)
    with pytest.raises(FactNotFound):
        mem.get(secret.id)
    with pytest.raises(FactNotFound):  # its history went with it
        mem.history(secret.id)
    [tombstone] = mem.session.history(secret.id)  # the journal keeps that it was erased, not what it said
    assert tombstone.op == "forget" and tombstone.fact is None and tombstone.previous is None
    assert all("4242" not in h.fact.text for h in mem.search("secret code 4242", user_id="ana", limit=50))
    assert "4242" not in str(mem.context("secret code?", user_id="ana").system)
    assert mem.verify() == {"missing": set(), "extra": set()}


def test_forget_user(mem: Memory) -> None:
    mem.add([say("I love hiking.")], user_id="ana", at=T0)
    mem.add([say("I love sailing.", name="Bob")], user_id="bob", at=T0)
    mem.forget_user("ana")
    with pytest.raises(UnknownUser):
        mem.facts(user_id="ana", include_invalid=True)
    assert mem.search("hiking", user_id="ana") == []
    assert mem.session.turns("ana") == [] and len(mem.facts(user_id="bob")) == 1
    with pytest.raises(UnknownUser, match="tiermem users"):
        mem.forget_user("ana")


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "user", "content": ""}], [{"role": "wizard", "content": "hi"}], [{"role": "user", "content": "x" * 400_001}]],
)
def test_bad_input_changes_nothing(mem: Memory, messages) -> None:
    mem.add([say("I love hiking.")], user_id="ana", at=T0)
    before = (mem.facts(user_id="ana", include_invalid=True), mem.turns(user_id="ana", limit=10_000), mem.index.count())
    with pytest.raises(InvalidInput):
        mem.add(messages, user_id="ana", at=T0)
    assert before == (mem.facts(user_id="ana", include_invalid=True), mem.turns(user_id="ana", limit=10_000), mem.index.count())


def test_bad_arguments_are_rejected(mem: Memory) -> None:
    with pytest.raises(InvalidInput, match="user_id"):
        mem.add([say("hi there friend")], user_id="")
    with pytest.raises(InvalidInput, match="query"):
        mem.search("  ", user_id="ana")
    with pytest.raises(InvalidInput, match="kinds"):
        mem.search("x", user_id="ana", kinds=["opinion"])
    with pytest.raises(InvalidInput, match="budget"):
        mem.context("x", user_id="ana", budget=10)
    with pytest.raises(FactNotFound, match="tiermem facts list"):
        mem.get("nope")
    assert mem.search("anything at all", user_id="someone-new") == []  # a new user is not an error
    assert mem.context("hello there", user_id="someone-new").facts == []
    with pytest.raises(UnknownUser, match="tiermem users"):  # but listing a user never seen is a typo
        mem.facts(user_id="someone-new")
    mem.add([say("thanks!")], user_id="small-talker", at=T0)
    assert mem.facts(user_id="small-talker") == []  # known (has turns), no facts yet


def test_another_process_joins_the_owner_and_a_non_sharing_opener_gets_a_clear_error(
        mem: Memory, home: Path, embedder: HashEmbedder) -> None:
    mem.add([say("I live in Lisbon.")], user_id="ana", at=T0)
    with pytest.raises(IndexLocked, match=r"already open in this process"):
        Memory.open(home, embedder=embedder)
    joins = (f"from tiermem import Memory, HashEmbedder\nm = Memory.open({str(home)!r}, embedder=HashEmbedder(64))\n"
             "print(type(m).__name__, [h.fact.text for h in m.search('where does Ana live', user_id='ana')])")
    other = subprocess.run([sys.executable, "-c", joins], capture_output=True, text=True, timeout=120)
    assert other.stdout.strip() == "SharedMemory ['Ana lives in Lisbon.']", other.stderr
    alone = (f"from tiermem import Memory, HashEmbedder\nMemory.open({str(home)!r}, embedder=HashEmbedder(64), share=False)")
    other = subprocess.run([sys.executable, "-c", alone], capture_output=True, text=True, timeout=120)
    socket = home / "serve.sock"  # the owner listens inside the home, not on a TCP port
    assert f"Memory.open(url='unix://{socket}')" in other.stderr and "open in another process (pid" in other.stderr
    assert stat.S_ISSOCK(socket.stat().st_mode) and stat.S_IMODE(socket.stat().st_mode) == 0o600


def test_closing_releases_the_folder(home: Path, embedder: HashEmbedder) -> None:
    with Memory.open(home, embedder=embedder) as first:
        first.add([say("I love hiking.")], user_id="ana", at=T0)
    with Memory.open(home, embedder=embedder) as second:
        assert len(second.search("hiking", user_id="ana")) == 1
    with pytest.raises(MemoryClosed, match="closed"):
        second.search("hiking", user_id="ana")


def test_embedding_size_mismatch_changes_nothing(home: Path) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I love hiking.")], user_id="ana", at=T0)
    with pytest.raises(EmbeddingMismatch, match="64-dimensional"):
        Memory.open(home, embedder=HashEmbedder(32))
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert len(mem.facts(user_id="ana")) == 1 and mem.index.count() == 1


def test_bad_urls(home: Path, embedder: HashEmbedder) -> None:
    with pytest.raises(ConfigError, match="http://"):
        Memory.open(home, qdrant_url="localhost:6333", embedder=embedder)
    with pytest.raises(StoreUnavailable, match="cannot reach Qdrant"):
        Memory.open(home, qdrant_url="http://127.0.0.1:9", embedder=embedder)
    assert not (home / "tiermem.db").exists()  # nothing was created for a server we cannot reach
    with pytest.raises(ConfigError, match="not a database URL"):
        Memory.open(home, database_url="nonsense", embedder=embedder)
    assert not (home / "facts").exists()  # nor an index folder for a database we cannot use
    with Memory.open(home, embedder=embedder) as mem:  # nothing was left locked
        assert mem.index.count() == 0


def test_a_lost_index_folder_is_rebuilt_from_the_journal(home: Path, embedder: HashEmbedder) -> None:
    import shutil

    with Memory.open(home, embedder=embedder) as mem:
        ids = {f.id for f in mem.add([say("I love hiking. I'm vegetarian.")], user_id="ana", at=T0).facts}
    shutil.rmtree(home / "facts")
    with Memory.open(home, embedder=embedder) as mem:
        assert mem.index.ids() == ids
        assert mem.search("hiking", user_id="ana")[0].fact.id in ids


async def test_async_twins(mem: Memory) -> None:
    res = await mem.aadd([say("I love hiking in the Alps.")], user_id="ana", at=T0)
    hits = await mem.asearch("Alps hiking", user_id="ana")
    ctx = await mem.acontext("Alps hiking plans?", user_id="ana", session_id="another-day")
    assert hits[0].fact.id == res.facts[0].id and ctx.facts[0].fact.id == res.facts[0].id


def test_facts_already_in_the_recent_turns_are_not_paged_in_again(mem: Memory) -> None:
    mem.add([say("I love hiking in the Alps.")], user_id="ana", session_id="today", at=T0)
    same = mem.context("any Alps hiking tips?", user_id="ana", session_id="today")
    assert same.facts == [] and any("recent turns" in d.why for d in same.report.dropped)
    other = mem.context("any Alps hiking tips?", user_id="ana", session_id="next-week")
    assert [h.fact.text for h in other.facts] == ["Ana loves hiking in the Alps."]


def test_paging_a_fact_in_records_access(home: Path, embedder: HashEmbedder) -> None:
    with Memory.open(home, embedder=embedder) as mem:
        fact = mem.add([say("I love hiking in the Alps.")], user_id="ana", at=T0).facts[0]
        assert mem.get(fact.id).access_count == 0
        assert mem.context("Alps hiking?", user_id="ana", session_id="later").facts
    with Memory.open(home, embedder=embedder) as mem:  # close() waited for the bookkeeping
        assert mem.get(fact.id).access_count == 1 and mem.get(fact.id).last_accessed_at is not None


def test_postgresql_by_url_needs_no_code_change(home: Path, embedder: HashEmbedder, clean_postgres: str) -> None:
    url = clean_postgres
    with Memory.open(home, database_url=url, embedder=embedder) as mem:
        mem.add([say("I live in Lisbon.", id="m-1")], user_id="ana", at=T0 - timedelta(days=9))
        res = mem.add([say("I moved to Berlin.", id="m-2")], user_id="ana", at=T0)
        assert [e.op for e in res.events] == ["invalidate", "add"]
        assert [h.fact.text for h in mem.search("where does Ana live", user_id="ana")] == ["Ana moved to Berlin."]
        ctx = mem.context("plans in Berlin?", user_id="ana", system="s")
        assert "Berlin" in ctx.system[-1]["text"]
        mem.forget_user("ana")
        assert mem.verify() == {"missing": set(), "extra": set()}


def test_optimize_is_explicit_maintenance(mem: Memory) -> None:
    mem.add([say(f"I visited museum number {i} in Lisbon.") for i in range(50)], user_id="ana", at=T0)
    before = [(h.fact.id, h.score) for h in mem.search("museum Lisbon", user_id="ana", limit=50)]
    mem.optimize()
    assert [(h.fact.id, h.score) for h in mem.search("museum Lisbon", user_id="ana", limit=50)] == before
    assert mem.verify() == {"missing": set(), "extra": set()}


def test_threads_can_share_one_memory(mem: Memory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> int:
        user = f"user-{i % 3}"
        res = mem.add([say(f"I visited museum number {i} in city {i}.", name=f"U{i % 3}", id=f"m-{i}")], user_id=user, at=T0)
        mem.search(f"museum {i}", user_id=user)
        mem.context(f"museum {i}?", user_id=user, session_id=f"s-{i}")
        return sum(e.op == "add" for e in res.events)

    with ThreadPoolExecutor(max_workers=6) as pool:
        added = sum(pool.map(work, range(30)))
    assert sum(len(mem.turns(user_id=f"user-{u}", limit=10_000)) for u in range(3)) == 30
    assert sum(len(mem.facts(user_id=f"user-{u}")) for u in range(3)) == added > 0
    assert mem.verify() == {"missing": set(), "extra": set()}
    for u in range(3):
        assert all(h.fact.user_id == f"user-{u}" for h in mem.search("museum", user_id=f"user-{u}", limit=50))


def test_a_small_budget_never_drops_the_system_prompt_or_the_message(mem: Memory) -> None:
    mem.add([say("I love hiking in the Alps."), {"role": "assistant", "content": "Nice!"}], user_id="ana", session_id="s", at=T0)
    ctx = mem.context("Alps hiking tips?", user_id="ana", session_id="other", system="x" * 1200, budget=300)
    assert ctx.system[0]["text"] == "x" * 1200 and ctx.messages[-1]["content"][-1]["text"] == "Alps hiking tips?"
    assert ctx.report.tokens["memory"] == 0 and ctx.report.budget["memory"] == 0
    assert any("alone take" in n for n in ctx.report.notes)
    roomy = mem.context("Alps hiking tips?", user_id="ana", session_id="other", system="x" * 1200, budget=1000)
    assert roomy.report.total + roomy.report.budget["reply_reserve"] <= 1000 and not any("alone take" in n for n in roomy.report.notes)


def test_reindex_drops_points_of_users_no_longer_in_the_journal(mem: Memory, embedder: HashEmbedder) -> None:
    from tiermem import Fact
    from tiermem._text import sparse_document
    from tiermem.index import IndexedFact, Upsert

    mem.add([say("I love hiking.")], user_id="ana", at=T0)
    ghost = Fact(user_id="ghost", kind="semantic", text="Ghost's secret", subject="Ghost")  # as if erased mid-crash
    mem.index.apply([Upsert([IndexedFact(ghost, embedder.embed([ghost.text])[0], sparse_document(ghost.text))])])
    assert mem.verify()["extra"] == {ghost.id}
    mem.reindex()
    assert mem.verify() == {"missing": set(), "extra": set()} and mem.index.count("ghost") == 0


LISTENING_TCP = """
import os, sys
from tiermem import Memory, HashEmbedder
mem = Memory.open(sys.argv[1], embedder=HashEmbedder(64))
mine = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}
listening = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
            listening.add(f"socket:[{fields[9]}]")
print(type(mem).__name__, len(mine & listening))
mem.close()
"""


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc to list listening sockets")
def test_a_library_open_listens_on_no_tcp_port(home: Path) -> None:
    opened = subprocess.run([sys.executable, "-c", LISTENING_TCP, str(home)], capture_output=True, text=True, timeout=120)
    assert opened.stdout.split() == ["Memory", "0"], opened.stderr  # it owns the home, and serves it on serve.sock only
