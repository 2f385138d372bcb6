"""Erasure means gone: after forget_user() none of the user's text (nor the id) is anywhere in
the home's files, WAL files included, also with context() calls racing it (D2, D3, D12, D19)."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.conftest import T0, say
from tiermem import ContextBudget, HashEmbedder, Memory

USER = "eve.marker@example.com"


def grep(home: Path, needle: str) -> list[str]:
    data = needle.encode()
    return [str(p) for p in home.rglob("*") if p.is_file() and data in p.read_bytes()]


def fill(mem: Memory) -> None:
    for i in range(30):
        mem.add([say(f"My passport number is qxvmarkerone{i} and I love secretwordzeta. " * 3, name="Eve"),
                 {"role": "assistant", "content": f"Noted qxvmarkertwo{i}. " * 10}], user_id=USER, session_id="s", at=T0)
    mem.add([say("I love sailing in the bay near the old harbour.", name="Bob")], user_id="bob", at=T0)


def test_forget_user_leaves_no_text_in_any_file(home: Path) -> None:
    small = ContextBudget(window_tokens=300, summary_tokens=120)  # summaries and a profile get written
    with Memory.open(home, embedder=HashEmbedder(64), budget=small) as mem:
        fill(mem)
        assert mem.session.latest_summary(USER, "s") is not None
        assert grep(home, "secretwordzeta")
        assert grep(home / "facts", "secretwordzeta") == [] and grep(home / "facts", USER) == []  # sealed
        segments = sorted(p.name for p in (home / "facts" / "segments").iterdir())
        receipt = mem.forget_user(USER)
        assert receipt.verified is True and receipt.leftovers == [] and receipt.index == "sealed"
        # The erased user's payloads were sealed with their key, now destroyed: the index is not
        # rewritten (the cost is the user's, not the index's), and nothing readable is left.
        assert sorted(p.name for p in (home / "facts" / "segments").iterdir()) == segments
        assert receipt.removed["tm_turns"] == 60 and receipt.removed["index_points"] > 0
        for needle in ("secretwordzeta", "qxvmarkerone", "qxvmarkertwo", USER):
            assert grep(home, needle) == [], needle  # WAL and index segments included, before close
        assert [h.fact.text for h in mem.search("sailing", user_id="bob")]  # the others' data is intact
        assert mem.verify() == {"missing": set(), "extra": set()}
    for needle in ("secretwordzeta", USER):
        assert grep(home, needle) == [], needle  # and after close
    with Memory.open(home, embedder=HashEmbedder(64)) as again:
        assert again.search("passport", user_id=USER) == []


def test_erasure_racing_context_leaves_nothing(home: Path) -> None:
    small = ContextBudget(window_tokens=300, summary_tokens=120)
    with Memory.open(home, embedder=HashEmbedder(64), budget=small) as mem:
        fill(mem)
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                mem.context("what is my passport number?", user_id=USER, session_id="s")

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        receipt = mem.forget_user(USER)
        stop.set()
        for t in threads:
            t.join()
        assert receipt.verified is True
        assert "secretwordzeta" not in str(mem.context("passport?", user_id=USER, session_id="s").system)
    assert grep(home, "secretwordzeta") == [] and grep(home, USER) == []


def test_forget_removes_the_fact_text_from_the_files(home: Path) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        [fact] = mem.remember("Eve's locker code is qxvmarkerfour.", user_id="eve").facts
        mem.remember("Eve likes tea.", user_id="eve")
        assert grep(home, "qxvmarkerfour")
        mem.forget(fact.id, user_id="eve")
        assert grep(home, "qxvmarkerfour") == []
        assert [f.text for f in mem.facts(user_id="eve")] == ["Eve likes tea."]


def test_forget_can_redact_the_turns_a_fact_came_from(home: Path) -> None:
    small = ContextBudget(window_tokens=80, summary_tokens=150)
    with Memory.open(home, embedder=HashEmbedder(64), budget=small) as mem:
        res = mem.add([say("My passport number is qxvmarkerfive.", name="Eve", id="m-secret")], user_id="eve",
                      session_id="s", at=T0)
        for i in range(12):
            mem.add([say(f"I went hiking on trail number {i} in the hills.", name="Eve"),
                     {"role": "assistant", "content": "Lovely."}], user_id="eve", session_id="s", at=T0)
        assert "qxvmarkerfive" in (mem.session.latest_summary("eve", "s").text or "")  # rolled into the summary
        [secret] = [f for f in res.facts if "passport" in f.text]
        mem.forget(secret.id, user_id="eve", redact_turns=True)
        ctx = mem.context("what is my passport number?", user_id="eve", session_id="s")
        assert "qxvmarkerfive" not in str(ctx.system) + str(ctx.messages)
        assert [t for t in mem.session.turns("eve") if "qxvmarkerfive" in t.content] == []
        assert "hiking" in (mem.session.latest_summary("eve", "s").text or "")  # the summary, rebuilt without it
        assert grep(home, "qxvmarkerfive") == []


def test_sealed_pages_of_an_erased_user_leave_the_disk_at_the_next_compaction(home: Path) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        fill(mem)
        token = mem.index.seal.tenant(USER).encode()  # what the index's files hold instead of the user id
        assert grep(home / "facts", token.decode())
        receipt = mem.forget_user(USER)
        assert receipt.index == "sealed" and mem.index.seal.tenant(USER) != token.decode()  # the key is gone
        mem.optimize(compact=True)
        assert grep(home / "facts", token.decode()) == []  # the ciphertext's pages too
        assert [h.fact.text for h in mem.search("sailing", user_id="bob")]
