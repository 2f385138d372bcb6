"""Hostile and malformed input: hundreds of generated bad calls, each raising a tiermem
error that names the argument, and none of them storing anything (D16, D18, D22-D24, D34)."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import Memory, TieredMemoryError

BAD_TEXTS = ["", "   ", "caf\udce9", "nul\x00byte", None, 5, b"bytes", ["list"], {"a": 1}]
BAD_IDS = BAD_TEXTS + [" padded", "tab\there", "x" * 300, True]
BAD_TIMES = ["2024-01-01", 1700000000, date(2024, 1, 1), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59),
             datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), object()]
BAD_MESSAGES = [
    [], {}, 5, b"I love tea", [5], [{"role": "wizard", "content": "hi"}], [{"role": "user"}],
    [{"role": "user", "content": ""}], [{"role": "user", "content": [{"type": "text", "text": None}]}],
    [{"role": "user", "content": [{"type": "text", "text": 5}]}], [{"role": "user", "content": "a", "id": {"a": 1}}],
    [{"role": "user", "content": "a\x00b"}], [{"role": "user", "content": "caf\udce9"}],
    [{"role": "user", "content": "x" * 400_001}], [{"role": "user", "content": "hi", "name": "A\x00na"}],
    [{"role": "user", "content": "y" * 300_000}] * 7,  # over the per-call total
]


def generated_calls(mem: Memory, fact_id: str, seed: int = 7) -> list[tuple[str, object]]:
    rng = random.Random(seed)
    calls: list[tuple[str, object]] = []
    for m in BAD_MESSAGES:
        calls.append(("add messages", lambda m=m: mem.add(m, user_id="ana")))
    for bad in BAD_IDS:
        calls += [
            ("add user_id", lambda b=bad: mem.add("I like tea.", user_id=b)),
            ("add session_id", lambda b=bad: mem.add("I like tea.", user_id="ana", session_id=b)),
            ("search user_id", lambda b=bad: mem.search("tea", user_id=b)),
            ("context user_id", lambda b=bad: mem.context("tea?", user_id=b)),
            ("facts user_id", lambda b=bad: mem.facts(user_id=b)),
            ("get fact_id", lambda b=bad: mem.get(b)),
            ("history fact_id", lambda b=bad: mem.history(b)),
            ("forget fact_id", lambda b=bad: mem.forget(b)),
            ("forget_user", lambda b=bad: mem.forget_user(b)),
            ("remember user_id", lambda b=bad: mem.remember("Ana likes tea.", user_id=b)),
        ]
    for bad in BAD_TEXTS:
        calls += [
            ("search query", lambda b=bad: mem.search(b, user_id="ana")),
            ("context message", lambda b=bad: mem.context(b, user_id="ana")),
            ("remember text", lambda b=bad: mem.remember(b, user_id="ana")),
            ("update text", lambda b=bad: mem.update(fact_id, b)),
        ]
    for bad in BAD_TIMES:
        calls += [
            ("add at", lambda b=bad: mem.add("I like tea.", user_id="ana", at=b)),
            ("search as_of", lambda b=bad: mem.search("tea", user_id="ana", as_of=b)),
            ("remember at", lambda b=bad: mem.remember("Ana likes tea.", user_id="ana", at=b)),
        ]
    for bad in [5, {"a": 1}, [{"type": "text", "text": "x"}], "nul\x00", "caf\udce9"]:
        calls.append(("context system", lambda b=bad: mem.context("tea?", user_id="ana", system=b)))
    for bad in [0, -1, True, "a", 2.5, None if False else [], 10**1]:
        if bad == 10:
            continue
        calls += [("search limit", lambda b=bad: mem.search("tea", user_id="ana", limit=b)),
                  ("facts limit", lambda b=bad: mem.facts(user_id="ana", limit=b))]
    for bad in ["semantic", [1], ["opinion"]]:
        calls.append(("search kinds", lambda b=bad: mem.search("tea", user_id="ana", kinds=b)))
    for bad in [100, "8000", 2.5, None]:
        calls.append(("context budget", lambda b=bad: mem.context("tea?", user_id="ana", budget=b)))
    for bad in ["doc", [5], [{"text": None}], [{"text": "x", "priority": "high"}], [{"text": "a\x00"}]]:
        calls.append(("context documents", lambda b=bad: mem.context("tea?", user_id="ana", documents=b)))
    for bad in ["x", 5, {"k": object()}, {1: "a"}, {"k": float("nan")}]:
        calls += [("add metadata", lambda b=bad: mem.add("I like tea.", user_id="ana", metadata=b)),
                  ("remember metadata", lambda b=bad: mem.remember("Ana likes tea.", user_id="ana", metadata=b))]
    # R14: numbers past any store's integers, shapes that are not lists, nesting past any parser,
    # and texts past every limit: the same limits at every door.
    deep: dict = {}
    for _ in range(2000):
        deep = {"k": deep}
    calls += [
        ("facts huge limit", lambda: mem.facts(user_id="ana", limit=10**30)),
        ("facts huge offset", lambda: mem.facts(user_id="ana", offset=2**70)),
        ("search huge limit", lambda: mem.search("tea", user_id="ana", limit=2**64)),
        ("context huge budget", lambda: mem.context("tea?", user_id="ana", budget=10**30)),
        ("context exclude_turns int", lambda: mem.context("tea?", user_id="ana", exclude_turns=-5)),
        ("context exclude_turns str", lambda: mem.context("tea?", user_id="ana", exclude_turns="x")),
        ("add deep metadata", lambda: mem.add("I like tea.", user_id="ana", metadata=deep)),
        ("add huge metadata", lambda: mem.add("I like tea.", user_id="ana", metadata={"k": "x" * 70_000})),
        ("flush text timeout", lambda: mem.flush(timeout="x")),
        ("flush nan timeout", lambda: mem.flush(timeout=float("nan"))),
        ("flush negative timeout", lambda: mem.flush(timeout=-1)),
        ("remember huge text", lambda: mem.remember("Ana likes tea. " * 200_000, user_id="ana")),
        ("update huge text", lambda: mem.update(fact_id, "Ana likes tea. " * 200_000)),
        ("retract huge reason", lambda: mem.retract(fact_id, reason="x" * 5_000_000)),
        ("write_file control name", lambda: mem.write_file("/memories/x\n5B\t/memories/fake", "x", user_id="ana")),
        ("write_file long path", lambda: mem.write_file("/memories/" + "a" * 200_000, "x", user_id="ana")),
        ("write_file NUL", lambda: mem.write_file("/memories/n", "secret\x00b", user_id="ana")),
    ]
    rng.shuffle(calls)
    return calls


def counts(home: Path, mem: Memory) -> dict[str, int]:
    with sqlite3.connect(home / "tiermem.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'tm_%'")]
        out = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables if t != "tm_meta"}
    out["index"] = mem.index.count()
    return out


def test_hundreds_of_bad_calls_raise_only_tiermem_errors_and_store_nothing(mem: Memory, home: Path) -> None:
    [fact] = mem.add([say("I love green tea.")], user_id="ana", at=T0).facts
    before = counts(home, mem)
    calls = generated_calls(mem, fact.id)
    assert len(calls) >= 200
    for label, call in calls:
        try:
            call()  # type: ignore[operator]
        except TieredMemoryError as exc:
            assert str(exc), label
        else:
            raise AssertionError(f"{label}: no error was raised")
    assert counts(home, mem) == before
    assert mem.get(fact.id).text == "Ana loves green tea."


@pytest.mark.parametrize("at", [datetime(9000, 12, 20), datetime(1900, 1, 2)])
def test_relative_dates_at_the_edges_of_time_are_left_as_said(mem: Memory, at: datetime) -> None:
    res = mem.add([say("I start a new job next month and I moved here last year.")], user_id="ana", at=at)
    assert not res.pending and res.facts
