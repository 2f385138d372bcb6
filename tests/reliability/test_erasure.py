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


def _clear_word_ids(folder: Path) -> set[bytes]:
    """Every CBOR unsigned 32-bit integer in the files of a folder: where a clear keyword id
    (crc32 of a stem) would sit."""
    import re

    data = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    return {data[m.start():m.start() + 5] for m in re.finditer(rb"\x1a", data)}


def test_the_sealed_index_keeps_no_word_id_a_dictionary_could_reverse(home: Path) -> None:
    """Q1: the keyword channel's word ids are derived with the user's key; after forget_user a
    brute force of a 4-digit PIN over the index files finds nothing, live users' numbers
    neither, and keyword search still finds a word by itself."""
    from tiermem._erasure import word_id_needles

    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("My bank PIN is 4417 and my daughter Marguerite has leukemia.", name="Zed")], user_id="zed", at=T0)
        mem.add([say("My locker number is 3321.", name="Liv")], user_id="liv", at=T0)
        [hit, *_] = mem.search("leukemia", user_id="zed")
        assert "leukemia" in hit.fact.text and hit.explain.get("sparse_rank") == 1.0  # the keyword channel works
        [liv] = mem.search("locker", user_id="liv")  # another user's words under their own key
        assert "3321" in liv.fact.text and liv.explain.get("sparse_rank") == 1.0
        receipt = mem.forget_user("zed")
        assert receipt.index == "sealed" and receipt.verified is True
    present = _clear_word_ids(home / "facts")
    pins = [f"{n:04d}" for n in range(10000) if word_id_needles([f"{n:04d}"])[0] in present]
    assert pins == []  # neither the erased 4417 nor the live 3321
    assert not set(word_id_needles(["Marguerite leukemia daughter locker"])) & present


def test_a_receipt_reads_the_sealed_index_for_clear_word_ids(tmp_path: Path) -> None:
    """The receipt scans what it claims: a file holding a clear word id of an erased text is
    a leftover."""
    from tiermem._erasure import find_leftovers, word_id_needles

    (tmp_path / "wal").write_bytes(b"\x00" * 64 + word_id_needles(["4417"])[0] + b"\x00" * 64)
    (tmp_path / "other").write_bytes(b"\x00" * 128)
    checked, leftovers = find_leftovers([], [tmp_path], raw=word_id_needles(["My bank PIN is 4417."]))
    assert checked == 2 and leftovers == [str(tmp_path / "wal")]


def test_a_secret_the_assistant_repeated_leaves_with_the_fact(home: Path) -> None:
    """Q2: forget(redact_turns=True) and the mem0 drop-in's delete() take the erased value out of
    the assistant's echo too (search, the recall of what it said, context() and the files);
    a plain forget() marks the echo forgotten so no read path serves it."""
    from tiermem.adapters.mem0 import Memory as Mem0

    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("My passport number is qzpass5512.", name="Ann"),
                 {"role": "assistant", "content": "Noted, your passport number qzpass5512 is saved for the visa form. "
                                                  "Anything else for the trip?"}], user_id="ann", at=T0)
        [passport] = [f for f in mem.facts(user_id="ann") if "qzpass5512" in f.text]
        mem.forget(passport.id, user_id="ann", redact_turns=True)
        question = "remind me what you said about my passport number"
        assert not any("qzpass5512" in h.fact.text for h in mem.search(question, user_id="ann"))
        assert "qzpass5512" not in str(mem.context(question, user_id="ann").messages)
        assert [t.content.strip() for t in mem.turns(user_id="ann", limit=10_000)] == ["Anything else for the trip?"]
        mm = Mem0(memory=mem)
        added = mm.add([{"role": "user", "content": "My bank PIN is qzpin8841."},
                        {"role": "assistant", "content": "Got it: your bank PIN qzpin8841 is stored."}], user_id="cal")
        for item in added["results"]:
            mm.delete(item["id"])
        assert not any("qzpin8841" in h.fact.text for h in mem.search("remind me what you told me about my bank PIN",
                                                                      user_id="cal"))
        mem.add([say("My locker code is qzlock7731.", name="Bo"),
                 {"role": "assistant", "content": "I'll remember locker qzlock7731 for you."}], user_id="bo", at=T0)
        [locker] = [f for f in mem.facts(user_id="bo") if "qzlock7731" in f.text]
        mem.forget(locker.id, user_id="bo")  # the turns stay, the echo is marked
        assert not any("qzlock7731" in h.fact.text for h in mem.search("remind me what you said about my locker",
                                                                        user_id="bo"))
        assert "qzlock7731" not in str(mem.context("what did you say about my locker?", user_id="bo").messages)
    assert grep(home, "qzpass5512") == [] and grep(home, "qzpin8841") == []


def test_an_interrupted_forget_is_finished_on_open_and_a_retry_returns_the_tombstone(home: Path) -> None:
    """Q3: forget() deletes the fact in the same transaction as a record of its remaining steps;
    a process that dies right after (simulated: that first transaction alone, then close) leaves
    the record, the next open finishes it, and forgetting the id again returns its tombstone
    (another user's call still gets FactNotFound)."""
    import json
    from datetime import UTC, datetime

    import pytest

    from tiermem import FactNotFound

    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("My passport number is qzpass77x88.", name="Ann")], user_id="ann", at=T0)
        [fact] = [f for f in mem.facts(user_id="ann") if "qzpass77x88" in f.text]
        steps = {"user_id": "ann", "sources": fact.sources, "text": fact.text, "subject": fact.subject, "redact": True}
        mem.session.forget_fact(fact.id, datetime.now(UTC), pending=json.dumps(steps))  # ... and the process dies
        assert [t for t in mem.turns(user_id="ann", limit=10_000) if "qzpass77x88" in t.content]  # the turn is still there
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        assert [t for t in mem.session.turns("ann") if "qzpass77x88" in t.content] == []
        tombstone = mem.forget(fact.id, user_id="ann")
        assert tombstone.op == "forget" and tombstone.fact_id == fact.id
        with pytest.raises(FactNotFound):
            mem.forget(fact.id, user_id="bob")
    assert grep(home, "qzpass77x88") == []


def test_a_key_another_process_erased_is_not_used_for_a_write(tmp_path: Path) -> None:
    """Q6: a process that cached a user's key, while another erased the user (and so the key
    row), seals the user's next fact under the key the row holds now, not the cached one."""
    import os

    from tiermem.index._sealing import PayloadSeal

    rows: dict[str, bytes] = {}

    def keys(user_id: str, create: bool) -> bytes | None:
        if user_id not in rows and create:
            rows[user_id] = os.urandom(32)
        return rows.get(user_id)

    seal = PayloadSeal(keys)
    first = seal.seal({"user_id": "uma", "id": "f1", "text": "qz4411"})
    rows.clear()  # another process's forget_user deleted the key row
    seal.confirm("uma")  # what a write does first
    second = seal.seal({"user_id": "uma", "id": "f2", "text": "qzStamps"})
    assert "uma" in rows and first["user_id"] != second["user_id"]  # a new key, a new tenant token
    assert seal.open(second, "uma")["text"] == "qzStamps"


def test_a_restored_older_database_is_repaired_even_when_the_counts_match(tmp_path: Path) -> None:
    """Q5 (R2): the index folder records the last journal seq it applied; a database whose
    journal ends before it is compared with the index fact by fact, whatever the counts."""
    import shutil

    home = tmp_path / "home"
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("My goldfish is called Bubbles.", name="Vic")], user_id="vic", at=T0)
        mem.add([say("I drive a red qzMazda.", name="Wen")], user_id="wen", at=T0)
    shutil.copy(home / "tiermem.db", tmp_path / "backup.db")
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("My secret code word is zebrafish42.", name="Vic")], user_id="vic", at=T0)  # +1
        [mazda] = mem.facts(user_id="wen")
        mem.forget(mazda.id, user_id="wen")  # -1: the counts match again
    for leftover in ("tiermem.db-wal", "tiermem.db-shm"):
        (home / leftover).unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", home / "tiermem.db")
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        assert not any("zebrafish42" in h.fact.text for h in mem.search("secret code word", user_id="vic"))
        assert [h.fact.text for h in mem.search("red car mazda", user_id="wen")][:1] == ["Wen drives a red qzMazda."]
