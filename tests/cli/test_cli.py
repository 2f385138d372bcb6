"""The admin CLI through typer's CliRunner, against a real memory home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory
from tiermem.cli import app

runner = CliRunner()


@pytest.fixture
def filled(home: Path) -> dict[str, str]:
    with Memory.open(home, embedder=HashEmbedder()) as mem:
        lisbon = mem.add([say("I live in Lisbon.", id="m-1")], user_id="ana", at=T0).facts[0]
        mem.add([say("I moved to Berlin.", id="m-2")], user_id="ana", at=T0)
        mem.add([say("I love sailing.", name="Bob")], user_id="bob", at=T0)
    return {"lisbon": lisbon.id}


def test_users_and_facts_list(filled: dict[str, str], home: Path) -> None:
    out = runner.invoke(app, ["users"])
    assert out.exit_code == 0 and "ana" in out.output and "bob" in out.output
    out = runner.invoke(app, ["facts", "list", "--user", "ana"])
    assert out.exit_code == 0 and "Berlin" in out.output and "Lisbon" not in out.output
    out = runner.invoke(app, ["facts", "list", "--user", "ana", "--all", "--json"])
    assert out.exit_code == 0 and len(json.loads(out.output)) == 2


def test_show_and_history_accept_an_id_prefix(filled: dict[str, str]) -> None:
    out = runner.invoke(app, ["facts", "show", filled["lisbon"][:8]])
    assert out.exit_code == 0 and "Lisbon" in out.output and "superseded_by" in out.output
    out = runner.invoke(app, ["facts", "history", filled["lisbon"]])
    assert out.exit_code == 0 and "invalidate" in out.output and "lives in changed" in out.output


def test_errors_name_the_fix(filled: dict[str, str], tmp_path: Path) -> None:
    out = runner.invoke(app, ["facts", "list", "--user", "nobody"])
    assert out.exit_code == 1 and "known users: ana, bob" in out.output
    out = runner.invoke(app, ["facts", "show", "deadbeef"])
    assert out.exit_code == 1 and "tiermem facts list" in out.output
    out = runner.invoke(app, ["users", "--home", str(tmp_path / "empty")])
    assert out.exit_code == 1 and "tiermem demo" in out.output


def test_listing_works_while_an_agent_holds_the_index(filled: dict[str, str], home: Path) -> None:
    with Memory.open(home, embedder=HashEmbedder()):
        assert runner.invoke(app, ["facts", "list", "--user", "ana"]).exit_code == 0
        out = runner.invoke(app, ["search", "Berlin", "--user", "ana", "--embedder", "hash"])
        assert out.exit_code == 1 and "already open in this process" in out.output  # CliRunner: the same process


def test_search_forget_and_reindex(filled: dict[str, str]) -> None:
    out = runner.invoke(app, ["search", "where does Ana live", "--user", "ana", "--embedder", "hash"])
    assert out.exit_code == 0 and "Berlin" in out.output
    out = runner.invoke(app, ["reindex", "--embedder", "hash"])
    assert out.exit_code == 0 and "indexed 3 facts" in out.output
    out = runner.invoke(app, ["facts", "forget", filled["lisbon"], "--yes", "--embedder", "hash"])
    assert out.exit_code == 0
    assert filled["lisbon"] not in runner.invoke(app, ["facts", "list", "--user", "ana", "--all", "--json"]).output


def test_forget_sticks_and_redact_turns_deletes_the_messages(home: Path) -> None:
    with Memory.open(home, embedder=HashEmbedder()) as mem:
        peanuts = mem.add([say("I am allergic to peanuts.", id="m-1")], user_id="ana", at=T0).facts[0]
        mem.add([say("I drink green tea.", id="m-2")], user_id="ana", at=T0)
    assert "messages it came from stay" in " ".join(runner.invoke(app, ["facts", "forget", "--help"]).output.split())
    assert runner.invoke(app, ["facts", "forget", peanuts.id, "--yes", "--embedder", "hash"]).exit_code == 0
    turns = runner.invoke(app, ["turns", "list", "--user", "ana", "--json"]).output
    assert "allergic to peanuts" in turns  # the message stays
    out = runner.invoke(app, ["reextract", "--user", "ana", "--extractor", "rules", "--yes", "--embedder", "hash"])
    assert out.exit_code == 0, out.output
    facts = runner.invoke(app, ["facts", "list", "--user", "ana", "--json"]).output
    assert "peanuts" not in facts and "green tea" in facts  # not re-created; the other fact is
    out = runner.invoke(app, ["facts", "forget", _fact_id(facts, "green tea"), "--redact-turns", "--yes", "--embedder", "hash"])
    assert out.exit_code == 0 and "deleted the messages" in out.output
    assert "green tea" not in runner.invoke(app, ["turns", "list", "--user", "ana", "--json"]).output


def _fact_id(listing: str, words: str) -> str:
    return next(f["id"] for f in json.loads(listing) if words in f["text"])


def test_listing_does_not_import_torch(filled: dict[str, str], home: Path) -> None:
    code = ("import sys; from typer.testing import CliRunner; from tiermem.cli import app; "
            "r = CliRunner().invoke(app, ['facts', 'list', '--user', 'ana']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'qdrant_edge', 'qdrant_client') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_runs_offline(tmp_path: Path) -> None:
    out = runner.invoke(app, ["demo", "--embedder", "hash", "--home", str(tmp_path / "demo")])
    assert out.exit_code == 0, out.output
    assert "invalidate" in out.output and "update" in out.output and "context()" in out.output
    assert "no content words" in out.output  # 'thanks!' pages in nothing


def test_optimize_command(filled: dict[str, str]) -> None:
    out = runner.invoke(app, ["optimize", "--embedder", "hash"])
    assert out.exit_code == 0 and ("optimized" in out.output or "already optimal" in out.output)
