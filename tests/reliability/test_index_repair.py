"""The journal and the index agree, or the user is told and can repair it (D4, D6, D13, D17):
an interrupted rebuild is redone, an index of another database is never served, a corrupted
one gives a tiermem error, and `tiermem doctor --repair` fixes each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import T0, say
from tiermem import HashEmbedder, IndexCorrupted, Memory
from tiermem.cli import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def filled(home: Path, n: int = 600) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say(f"I visited museum number {i} in city {i % 17}.", id=f"m-{i}") for i in range(n)], user_id="ana", at=T0)


REINDEXER = textwrap.dedent(
    """
    import os, sys
    from tiermem import HashEmbedder, Memory
    mem = Memory.open(sys.argv[1], embedder=HashEmbedder(64))
    mem.reindex(batch_size=100, progress=lambda done, total: os.kill(os.getpid(), 9) if done >= 200 else None)
    """
)


def test_a_rebuild_killed_midway_is_redone_on_the_next_open(home: Path) -> None:
    filled(home)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", REINDEXER, str(home)], env=env, capture_output=True)
    assert child.returncode == -signal.SIGKILL
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert mem.verify() == {"missing": set(), "extra": set()}
        assert len(mem.search("museum number 599", user_id="ana", limit=5)) > 0
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:  # and stays repaired
        assert mem.index.count() == mem.session.count_facts(include_invalid=True)


def test_an_older_copy_of_the_database_restored_beside_a_newer_index_never_serves_what_it_lacks(home: Path) -> None:
    import shutil

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("My first pet was a hamster called Bubbles.")], user_id="vic", at=T0)
    shutil.copy(home / "tiermem.db", home.parent / "backup.db")  # closed: the WAL is checkpointed
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("My secret code word is zebrafish42.")], user_id="vic", at=T0)
        mem.add([say("I love the opera qzopera.")], user_id="wen", at=T0)
    for suffix in ("-wal", "-shm"):
        (home / f"tiermem.db{suffix}").unlink(missing_ok=True)
    shutil.copy(home.parent / "backup.db", home / "tiermem.db")  # the restore
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert [h.fact.text for h in mem.search("secret code word", user_id="vic")] == [
            "Ana's first pet was a hamster called Bubbles."]  # say() speaks as Ana
        assert mem.search("opera", user_id="wen") == []
        assert mem.verify() == {"missing": set(), "extra": set()}


def test_an_index_whose_database_is_gone_is_never_served(home: Path) -> None:
    filled(home, 20)
    for suffix in ("", "-wal", "-shm"):
        (home / f"tiermem.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(IndexCorrupted, match="doctor --repair"):
        Memory.open(home, embedder=HashEmbedder(64))
    result = runner.invoke(app, ["doctor", "--home", str(home)])
    assert result.exit_code == 1 and "another database" in result.output
    result = runner.invoke(app, ["doctor", "--repair", "--home", str(home), "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert mem.search("museum", user_id="ana") == [] and mem.index.count() == 0  # nothing served without a journal


@pytest.mark.parametrize("damage", ["edge_config.json", "wal", "segment"])
def test_a_corrupted_index_is_a_tiermem_error_and_doctor_repairs_it(home: Path, damage: str) -> None:
    filled(home, 50)
    facts = home / "facts"
    if damage == "edge_config.json":
        (facts / "edge_config.json").write_text("{not json")
    elif damage == "wal":
        for f in (facts / "wal").glob("open-*"):
            f.write_bytes(b"garbage" * 100)
    else:
        for f in (facts / "segments").rglob("*.dat"):
            f.write_bytes(f.read_bytes()[:10])
    with pytest.raises(IndexCorrupted, match="doctor --repair"):
        Memory.open(home, embedder=HashEmbedder(64))
    result = runner.invoke(app, ["doctor", "--repair", "--home", str(home), "--embedder", "hash", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["index"]["status"] == "ok" and report["index"]["points"] == report["journal"]["facts (with history)"]
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert mem.verify() == {"missing": set(), "extra": set()} and mem.search("museum", user_id="ana")


def test_doctor_on_a_healthy_home_and_a_missing_one(home: Path, tmp_path: Path) -> None:
    filled(home, 10)
    result = runner.invoke(app, ["doctor", "--home", str(home), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["problems"] == []
    missing = tmp_path / "typo"
    result = runner.invoke(app, ["doctor", "--home", str(missing)])
    assert result.exit_code == 1 and not missing.exists()  # a typo creates nothing
    for args in (["search", "x", "--user", "ana", "--embedder", "hash"], ["reindex", "--embedder", "hash"], ["users"]):
        assert runner.invoke(app, [*args, "--home", str(missing)]).exit_code == 1
    assert not missing.exists()


@pytest.mark.parametrize("damage", ["lost", "not hex"])
def test_a_lost_or_damaged_sealing_key_is_found_by_doctor_and_repaired(home: Path, damage: str) -> None:
    """Q13: a user with facts and no key row (their facts unsearchable) or a damaged key (raw
    ValueError before): a tiermem error naming the fix, `doctor` reports it, `--repair` makes
    a new key and rebuilds the index, and the user can be searched and erased again."""
    import sqlite3

    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        mem.add([say("I visited the qzMuseum of glass in Venice.")], user_id="ana", at=T0)
    db = sqlite3.connect(home / "tiermem.db")
    if damage == "lost":
        db.execute("DELETE FROM tm_user_keys WHERE user_id = 'ana'")
    else:
        db.execute("UPDATE tm_user_keys SET key = 'zz-not-hex' WHERE user_id = 'ana'")
    db.commit()
    db.close()
    if damage == "not hex":
        with Memory.open(home, embedder=HashEmbedder(64)) as mem, pytest.raises(IndexCorrupted, match="doctor --repair"):
            mem.search("museum", user_id="ana")
    result = runner.invoke(app, ["doctor", "--home", str(home), "--json"])
    assert result.exit_code == 1 and any("sealing key" in p for p in json.loads(result.output)["problems"])
    result = runner.invoke(app, ["doctor", "--repair", "--home", str(home), "--embedder", "hash", "--json"])
    assert result.exit_code == 0, result.output
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert [h.fact.text for h in mem.search("museum", user_id="ana")][:1] == ["Ana visited the qzMuseum of glass in Venice."]
        receipt = mem.forget_user("ana")
        assert receipt.verified is True and mem.index.count() == 0
