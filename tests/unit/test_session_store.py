"""The session tier against a real SQLite file (and PostgreSQL where TIERMEM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import T0
from tiermem import ConfigError, Fact, FactEvent, StoreUnavailable, Turn
from tiermem.session import SCHEMA_VERSION, SessionStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        s = SessionStore(f"sqlite:///{tmp_path / 'tm.db'}")
    else:
        s = SessionStore(request.getfixturevalue("clean_postgres"))  # a clean slate per test
    yield s
    s.close()


def turn(content: str, session: str = "s1", user: str = "ana") -> Turn:
    return Turn(user_id=user, session_id=session, role="user", content=content, created_at=T0)


def fact(text: str, user: str = "ana", **kw) -> Fact:
    return Fact(user_id=user, kind="semantic", text=text, subject="Ana", valid_from=T0, **kw)


def test_turns_get_session_sequence_numbers(store: SessionStore) -> None:
    first, _ = store.commit([turn("a"), turn("b")], [])
    second, _ = store.commit([turn("c"), turn("x", session="s2")], [])
    assert [t.seq for t in first + second] == [1, 2, 3, 1]
    assert [t.content for t in store.turns("ana", "s1", after_seq=1)] == ["b", "c"]


def test_turns_and_fact_changes_commit_together(store: SessionStore) -> None:
    f = fact("Ana loves hiking.")
    _, events = store.commit([turn("I love hiking")], [FactEvent(op="add", fact_id=f.id, user_id="ana", fact=f, at=T0)])
    assert events[0].seq is not None and store.last_event_seq() == events[0].seq
    assert store.get_fact(f.id) == f.model_copy(update={"updated_at": T0}) == events[0].fact
    assert [e.op for e in store.history(f.id)] == ["add"]
    assert store.facts_by_hash("ana", ["nope"]) == {}


def test_a_failed_transaction_stores_nothing(store: SessionStore) -> None:
    f = fact("Ana loves hiking.")
    duplicate = turn("dup")  # the same primary key twice: the database rejects the batch
    with pytest.raises(IntegrityError):
        store.commit([turn("first"), duplicate, duplicate], [FactEvent(op="add", fact_id=f.id, user_id="ana", fact=f, at=T0)])
    assert store.turns("ana", "s1") == [] and store.get_fact(f.id) is None and store.last_event_seq() == 0


def test_forget_user_erases_every_row_but_a_tombstone(store: SessionStore) -> None:
    f = fact("Ana loves hiking.")
    store.commit([turn("I love hiking")], [FactEvent(op="add", fact_id=f.id, user_id="ana", fact=f, at=T0)])
    store.commit([turn("hi", user="bob")], [])
    tomb, removed = store.forget_user("ana", T0)
    assert tomb.op == "forget_user" and tomb.fact is None and removed["tm_turns"] == 1 and removed["tm_facts"] == 1
    [stored] = store.events_after(0)
    assert stored.user_id.startswith("erased:") and "ana" not in stored.model_dump_json()  # no personal text
    assert store.list_facts("ana", include_invalid=True) == [] and store.turns("ana") == []
    assert [u for u, _, _ in store.users()] == ["bob"]


def test_schema_is_migrated_once_and_versioned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tm.db'}"
    SessionStore(url).close()
    SessionStore(url).close()
    db = sqlite3.connect(tmp_path / "tm.db")
    assert db.execute("SELECT version FROM tm_schema_version").fetchall() == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_urls_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        SessionStore("not a url")
    with pytest.raises(ConfigError, match="not supported"):
        SessionStore("mysql://u@localhost/db")
    with pytest.raises(StoreUnavailable, match="cannot open database"):
        SessionStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
