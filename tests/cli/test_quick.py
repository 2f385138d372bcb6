"""The quick path (`--version`, `users`, `facts list` without typer, SQLAlchemy or pydantic)
prints exactly what the full CLI prints, takes exactly its options, and hands everything
else to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import typer

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory, __version__
from tiermem._quickread import QuickReader, fact_json
from tiermem.cli import app
from tiermem.cli._quick import parser
from tiermem.session import SessionStore


@pytest.fixture
def varied(tmp_path: Path) -> Path:
    """Facts of every shape: invalidated, with metadata, accessed, non-ASCII, hostile text."""
    home = tmp_path / "home"
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as mem:
        mem.add([say("I live in Lisbon.")], user_id="ana", at=T0)
        mem.add([say("I moved to Berlin.")], user_id="ana", at=T0 + timedelta(days=30), metadata={"src": "chat", "n": [1, 2]})
        mem.remember("Ana's café is «Zé» [/bold] \x1b[2J", user_id="ana", at=T0)
        mem.remember("Bo plays chess", user_id="bo", at=T0)
        mem.session.record_access(mem.facts(user_id="ana")[:2], T0 + timedelta(days=40, microseconds=1234))
    return home


def tiermem(*args: str, home: Path, module: str = "tiermem") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "TIERMEM_DATABASE_URL": ""}
    return subprocess.run([sys.executable, "-m", module, *args, "--home", str(home)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_the_stdlib_reader_gives_the_stores_facts_byte_for_byte(varied: Path) -> None:
    store = SessionStore(f"sqlite:///{varied / 'tiermem.db'}")
    quick = QuickReader.open(varied / "tiermem.db")
    assert quick is not None
    assert quick.users() == store.users()
    for user in ("ana", "bo"):
        for include_invalid in (False, True):
            expected = [f.model_dump_json() for f in store.list_facts(user, include_invalid=include_invalid, limit=50)]
            assert [fact_json(f) for f in quick.facts(user, include_invalid=include_invalid, limit=50)] == expected
    assert any(f.access_count for f in store.list_facts("ana"))  # the access columns were compared too
    quick.close()
    store.close()


@pytest.mark.parametrize("args", [["users"], ["users", "--json"], ["users", "--jsonl"], ["facts", "list", "--user", "ana"],
                                  ["facts", "list", "--user", "ana", "--all", "--json"],
                                  ["facts", "list", "-u", "ana", "--limit", "1", "--jsonl"]])
def test_the_quick_path_prints_what_the_full_cli_prints(varied: Path, args: list[str]) -> None:
    quick = tiermem(*args, home=varied)  # `tiermem`'s entry point: the quick path
    full = tiermem(*args, home=varied, module="tiermem.cli")  # typer's app
    assert quick.returncode == full.returncode == 0, (quick.stderr, full.stderr)
    assert quick.stdout == full.stdout and quick.stdout.strip()


def test_what_the_quick_path_does_not_take_goes_to_the_full_cli(varied: Path) -> None:
    unknown = tiermem("facts", "list", "--user", "zed", home=varied)
    assert unknown.returncode == 1 and "no user 'zed'" in unknown.stderr and "ana, bo" in unknown.stderr
    bad = tiermem("facts", "list", "--user", "ana", "--limit", "0", home=varied)
    assert bad.returncode == 2 and "--limit" in bad.stderr  # a usage error, from the full CLI's parser
    missing = tiermem("users", home=varied / "nope")
    assert missing.returncode == 1 and "no memory at" in missing.stderr
    assert "Usage:" in tiermem("facts", "list", "--help", home=varied).stdout
    version = subprocess.run([sys.executable, "-m", "tiermem", "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout == f"tiermem {__version__}\n"


def test_the_quick_path_loads_neither_typer_nor_sqlalchemy_nor_pydantic(varied: Path) -> None:
    code = ("import sys\nfrom tiermem._entry import main\n"
            f"sys.argv = ['tiermem', 'facts', 'list', '--user', 'ana', '--home', {str(varied)!r}]\n"
            "try:\n    main()\nexcept SystemExit as done:\n    assert done.code == 0\n"
            "print(sorted(m for m in ('typer', 'sqlalchemy', 'pydantic', 'numpy') if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TIERMEM_DATABASE_URL": ""})
    assert out.stderr.strip() == "[]", out.stderr


@pytest.mark.parametrize("command", ["users", "facts list", "search"])
def test_the_quick_parser_takes_exactly_the_commands_options(command: str) -> None:
    click_app = typer.main.get_command(app)
    group, *rest = command.split()
    cmd = click_app.commands[group]  # type: ignore[attr-defined]
    if rest:
        cmd = cmd.commands[rest[0]]
    typer_options = {o for p in cmd.params if p.param_type_name == "option" for o in p.opts if o != "--help"}
    quick_options = {o for action in parser(command)._actions for o in action.option_strings}
    assert quick_options == typer_options
    typer_arguments = [p.name for p in cmd.params if p.param_type_name == "argument"]
    assert [a.dest for a in parser(command)._actions if not a.option_strings] == typer_arguments


def test_json_is_one_document_and_jsonl_one_object_a_line(varied: Path) -> None:
    document = json.loads(tiermem("facts", "list", "--user", "ana", "--all", "--json", home=varied).stdout)
    lines = tiermem("facts", "list", "--user", "ana", "--all", "--jsonl", home=varied).stdout.splitlines()
    assert document == [json.loads(line) for line in lines] and len(document) >= 3


def test_a_four_character_prefix_finds_a_fact_and_an_ambiguous_one_says_so(varied: Path) -> None:
    import sqlite3

    with sqlite3.connect(varied / "tiermem.db") as db:  # two ids that share their first characters
        ids = [row[0] for row in db.execute("SELECT id FROM tm_facts WHERE user_id = 'ana' ORDER BY id LIMIT 2")]
        for n, old in enumerate(ids):
            db.execute("UPDATE tm_facts SET id = ? WHERE id = ?", (f"abcd{n}{old[5:]}", old))
    from typer.testing import CliRunner

    runner = CliRunner()
    shown = runner.invoke(app, ["facts", "show", "abcd1", "--home", str(varied)])
    assert shown.exit_code == 0 and json.loads(shown.output)["user_id"] == "ana"
    ambiguous = runner.invoke(app, ["facts", "show", "abcd", "--home", str(varied)])
    assert ambiguous.exit_code == 1 and "start of several fact ids" in ambiguous.output and "abcd0" in ambiguous.output
    short = runner.invoke(app, ["facts", "show", "abc", "--home", str(varied)])
    assert short.exit_code == 1 and "at least 4 characters" in short.output
    wildcard = runner.invoke(app, ["facts", "show", "ab%d", "--home", str(varied)])
    assert wildcard.exit_code == 1 and "no fact" in wildcard.output  # LIKE's wildcards are taken literally


@pytest.fixture
def minilm_home(tmp_path: Path, minilm) -> Path:
    home = tmp_path / "home"
    with Memory.open(home, embedder=minilm, share=False) as mem:
        mem.add([say("I live in Lisbon and I love hiking."), say("I work as a nurse.")], user_id="ana", at=T0)
        mem.add([say("I moved to Berlin.")], user_id="ana", at=T0 + timedelta(days=30))
        mem.remember("Bo plays chess", user_id="bo", at=T0)
    return home


LOADED = ("import sys\nfrom tiermem._entry import main\nsys.argv = ['tiermem', *sys.argv[1:]]\n"
          "try:\n    main()\nexcept SystemExit as done:\n    assert done.code == 0, done.code\n"
          "print(sorted(m for m in ('typer', 'sqlalchemy') if m in sys.modules), file=sys.stderr)")


def loaded(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "TIERMEM_DATABASE_URL": ""})


@pytest.mark.parametrize("args", [["search", "where does Ana live", "--user", "ana"],
                                  ["search", "what is her job", "-u", "ana", "--limit", "2", "--json"],
                                  ["search", "chess", "--user", "bo", "--jsonl"]])
def test_a_cold_search_answers_what_the_full_cli_answers_without_sqlalchemy(minilm_home: Path, args: list[str]) -> None:
    quick = loaded(*args, "--home", str(minilm_home))
    full = tiermem(*args, home=minilm_home, module="tiermem.cli")
    assert quick.returncode == full.returncode == 0, (quick.stderr, full.stderr)
    assert quick.stdout == full.stdout and quick.stdout.strip()
    assert quick.stderr.strip().splitlines()[-1] == "[]", quick.stderr  # neither typer nor SQLAlchemy was loaded


def test_a_cold_search_leaves_to_the_full_path_what_opening_would_repair(minilm_home: Path) -> None:
    expected = tiermem("search", "where does Ana live", "--user", "ana", "--json", home=minilm_home, module="tiermem.cli")
    store = SessionStore(f"sqlite:///{minilm_home / 'tiermem.db'}")
    # an erasure that a crash interrupted after deleting the fact: opening finishes it first
    store.set_meta("erasing:f-1", json.dumps({"user_id": "ana", "sources": [], "redact": False, "text": "Ana x", "subject": "Ana"}))
    store.close()
    refused = loaded("search", "where does Ana live", "--user", "ana", "--json", "--home", str(minilm_home))
    assert refused.returncode == 0 and json.loads(refused.stdout) == json.loads(expected.stdout)
    assert "sqlalchemy" in refused.stderr.splitlines()[-1]  # answered by the full path
    # what the assistant said is recalled from the turns: the full path too
    said = loaded("search", "what did you tell me about hiking", "--user", "ana", "--home", str(minilm_home))
    assert "sqlalchemy" in said.stderr.splitlines()[-1]
    # an unknown user gets the full CLI's message
    unknown = tiermem("search", "x", "--user", "zed", home=minilm_home)
    assert unknown.returncode == 1 and "no user 'zed'" in unknown.stderr


def test_a_cold_search_beside_an_owner_asks_the_owner(minilm_home: Path, minilm) -> None:
    with Memory.open(minilm_home, embedder=minilm) as owner:  # owns the home and serves it on its socket
        owner.remember("Ana keeps bees", user_id="ana")  # in the owner's index: the quick path must ask it
        hits = loaded("search", "bees", "--user", "ana", "--json", "--home", str(minilm_home))
        assert hits.returncode == 0, hits.stderr
        assert json.loads(hits.stdout)[0]["text"] == "Ana keeps bees"
        assert hits.stderr.strip().splitlines()[-1] == "[]"
