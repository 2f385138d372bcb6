"""A crash loses nothing that add() returned, and on reopen the index agrees with the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import T0, say
from tiermem import EdgeFactIndex, HashEmbedder, Memory, SessionStore

WRITER = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timezone
    from tiermem import HashEmbedder, Memory
    mem = Memory.open(sys.argv[1], embedder=HashEmbedder(64))
    at = datetime(2024, 5, 2, tzinfo=timezone.utc)
    for i in range(100000):
        res = mem.add([{"role": "user", "name": "Ana", "id": f"m-{i}",
                        "content": f"I collected stamp number {i} from country {i % 97}. I visited museum {i}."}],
                      user_id="ana", session_id="s", at=at)
        print(json.dumps({"i": i, "turns": [t.id for t in res.turns], "facts": [e.fact_id for e in res.events]}), flush=True)
    """
)


def test_sigkill_mid_stream_loses_nothing_returned(home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(home)], stdout=subprocess.PIPE, env=env, text=True)
    returned: list[dict] = []
    assert child.stdout is not None
    deadline = time.monotonic() + 120
    while len(returned) < 25 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        returned.append(json.loads(line))
    child.send_signal(signal.SIGKILL)  # mid-add: the next call is already running
    child.wait(timeout=30)
    assert len(returned) >= 25, "the writer did not get going"

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:  # the dead process's lock is gone
        stored_turns = {t.id for t in mem.turns(user_id="ana", limit=10_000)}
        for record in returned:
            assert set(record["turns"]) <= stored_turns
            for fact_id in record["facts"]:
                assert mem.get(fact_id).user_id == "ana"
        assert mem.verify() == {"missing": set(), "extra": set()}
        assert mem.search("stamp number 3", user_id="ana")


class IndexThatFails:
    """A FactIndex of our own whose writes fail while `failing`, as a full disk or a killed server would."""

    def __init__(self, inner: EdgeFactIndex):
        self.inner = inner
        self.dims = inner.dims
        self.location = inner.location
        self.failing = True

    def apply(self, ops) -> None:
        if self.failing:
            raise OSError("no space left on device")
        self.inner.apply(ops)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def memory_with_a_failing_index(home: Path) -> tuple[Memory, SessionStore, IndexThatFails]:
    home.mkdir(parents=True)
    session = SessionStore(f"sqlite:///{home / 'tiermem.db'}")
    index = IndexThatFails(EdgeFactIndex(home / "facts", 64))
    return Memory(session=session, index=index, embedder=HashEmbedder(64)), session, index


def test_a_failed_index_write_fails_no_add_and_the_index_catches_up(home: Path) -> None:
    mem, session, index = memory_with_a_failing_index(home)
    # The journal committed the turn and the fact: add() reports success, not the index's error.
    result = mem.add([say("I love hiking in the Alps.", id="m-1")], user_id="ana", at=T0)
    assert [e.op for e in result.events] == ["add"] and not result.pending
    assert [f.text for f in session.list_facts("ana")] == ["Ana loves hiking in the Alps."]  # journal first
    assert mem.verify()["missing"] == {result.events[0].fact_id}

    index.failing = False  # the disk has room again: the worker catches the index up while idle
    deadline = time.monotonic() + 10
    while mem.verify()["missing"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mem.verify() == {"missing": set(), "extra": set()}
    assert mem.search("hiking", user_id="ana")[0].fact.sources == ["m-1"]
    mem.close()


def test_journal_entries_an_index_missed_are_replayed_on_open(home: Path) -> None:
    mem, _, _ = memory_with_a_failing_index(home)
    mem.add([say("I love hiking in the Alps.", id="m-1")], user_id="ana", at=T0)
    mem.close()
    with Memory.open(home, embedder=HashEmbedder(64)) as reopened:  # replay on open
        assert reopened.verify() == {"missing": set(), "extra": set()}
        assert reopened.search("hiking", user_id="ana")[0].fact.sources == ["m-1"]


def test_the_same_folder_by_another_path_is_not_replayed(home: Path, monkeypatch) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I love hiking in the Alps.")], user_id="ana", at=T0)
        key = mem.sync._key
    monkeypatch.chdir(home.parent)
    with Memory.open(Path(home.name), embedder=HashEmbedder(64)) as mem:  # relative this time
        assert mem.sync._key == key and mem.index.count() == 1


BACKGROUND_WRITER = textwrap.dedent(
    """
    import json, sys, threading
    from datetime import datetime, timezone
    from tiermem import HashEmbedder, Memory, RuleExtractor

    class Stuck(RuleExtractor):
        # phase 2 never finishes in this process: every returned add() is still pending
        def extract(self, turns, *, known=()):
            threading.Event().wait()

    mem = Memory.open(sys.argv[1], embedder=HashEmbedder(64), extractor=Stuck(), extraction="background")
    at = datetime(2024, 5, 2, tzinfo=timezone.utc)
    for i in range(40):
        res = mem.add([{"role": "user", "name": "Ana", "id": f"m-{i}", "content": f"I planted an oak tree in park number {i}."}],
                      user_id="ana", session_id="s", at=at)
        assert res.pending
        print(json.dumps({"i": i}), flush=True)
    print("all", flush=True)
    threading.Event().wait()
    """
)


def test_sigkill_after_background_adds_returned_loses_no_extraction(home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen([sys.executable, "-c", BACKGROUND_WRITER, str(home)], stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while line.strip() != "all" and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
    child.send_signal(signal.SIGKILL)  # every add() returned; no batch was extracted
    child.wait(timeout=30)
    assert line.strip() == "all", "the writer did not get going"

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:  # a default (inline) open recovers them
        assert mem.flush(timeout=60)
        sources = {s for f in mem.facts(user_id="ana") for s in f.sources}
        assert sources == {f"m-{i}" for i in range(40)}
        assert mem.backlog() == {"pending_turns": 0, "failures": []}
        assert mem.verify() == {"missing": set(), "extra": set()}
