"""The rest of the admin CLI: every command against a missing home, an unknown user and
with --json; turns, stats and context; exit codes; reading commands import no model."""

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
HASH = ["--embedder", "hash"]


@pytest.fixture
def filled(home: Path) -> dict[str, str]:
    with Memory.open(home, embedder=HashEmbedder()) as mem:
        lisbon = mem.add([say("I live in Lisbon.", id="m-1"), say("Lovely city!", role="assistant")], user_id="ana",
                         session_id="s-1", at=T0).facts[0]
        mem.add([say("I moved to Berlin.", id="m-2")], user_id="ana", session_id="s-2", at=T0)
        mem.add([say("I love sailing.", name="Bob")], user_id="bob", at=T0)
    return {"lisbon": lisbon.id}


# Every command that reads a home, with the arguments it needs: (args, takes --user, embeds).
COMMANDS = [
    (["users"], False),
    (["facts", "list", "--user", "{user}"], True),
    (["facts", "show", "{fact}"], False),
    (["facts", "history", "{fact}"], False),
    (["facts", "forget", "{fact}", "--yes", *HASH], False),
    (["search", "where", "--user", "{user}", *HASH], True),
    (["context", "where do I live?", "--user", "{user}", *HASH], True),
    (["turns", "list", "--user", "{user}"], True),
    (["stats"], False),
    (["stats", "--user", "{user}"], True),
    (["usage", "--user", "{user}"], True),
    (["reextract", "--user", "{user}", "--extractor", "rules", "--yes", *HASH], True),
    (["export", "--user", "{user}"], True),
    (["reindex", *HASH], False),
    (["optimize", *HASH], False),
    (["doctor", *HASH], False),
]


def _args(args: list[str], home: Path, user: str = "ana", fact: str = "0" * 32) -> list[str]:
    return [a.format(user=user, fact=fact) for a in args] + ["--home", str(home)]


@pytest.mark.parametrize(("args", "_user"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS])
def test_a_missing_home_is_an_error_and_stays_missing(args: list[str], _user: bool, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-home"
    for extra in ([], ["--json"]):
        if "--json" in extra and args[0] == "export":
            continue  # export writes JSON lines anyway
        out = runner.invoke(app, _args(args, missing) + extra)
        assert out.exit_code == 1, out.output
        assert "no memory at" in out.output and not missing.exists()


@pytest.mark.parametrize("args", [c[0] for c in COMMANDS if c[1]], ids=[" ".join(c[0][:2]) for c in COMMANDS if c[1]])
def test_an_unknown_user_is_an_error_naming_the_known_ones(args: list[str], filled: dict[str, str], home: Path) -> None:
    before = runner.invoke(app, ["stats", "--json", "--home", str(home)]).output
    out = runner.invoke(app, _args(args, home, user="zed"))
    assert out.exit_code == 1 and "no user 'zed'" in out.output and "ana, bob" in out.output
    assert runner.invoke(app, ["stats", "--json", "--home", str(home)]).output == before  # nothing changed


@pytest.mark.parametrize("args", [c[0] for c in COMMANDS if c[0][0] != "export"],
                         ids=[" ".join(c[0][:2]) for c in COMMANDS if c[0][0] != "export"])
def test_json_output_is_json(args: list[str], filled: dict[str, str], home: Path) -> None:
    out = runner.invoke(app, [*_args(args, home, fact=filled["lisbon"]), "--json"])
    assert out.exit_code in (0, 1), out.output  # doctor exits 1 when it finds something to repair
    assert out.stdout.strip(), out.output
    document = json.loads(out.stdout)  # one JSON document, whatever the command
    if isinstance(document, list):  # a listing: --jsonl streams the same objects, one per line
        streamed = runner.invoke(app, [*_args(args, home, fact=filled["lisbon"]), "--jsonl"]).stdout
        assert [json.loads(line) for line in streamed.splitlines()] == document


def test_turns_list_by_time_or_one_session(filled: dict[str, str], home: Path) -> None:
    out = runner.invoke(app, ["turns", "list", "--user", "ana", "--json"])
    turns = json.loads(out.stdout)
    assert [t["content"] for t in turns] == ["I live in Lisbon.", "Lovely city!", "I moved to Berlin."]
    out = runner.invoke(app, ["turns", "list", "--user", "ana", "--session", "s-2", "--json"])
    assert [t["content"] for t in json.loads(out.stdout)] == ["I moved to Berlin."]
    out = runner.invoke(app, ["turns", "list", "--user", "ana", "--session", "s-9"])
    assert out.exit_code == 1 and "sessions: s-1, s-2" in out.output
    out = runner.invoke(app, ["turns", "list", "--user", "ana"])
    assert out.exit_code == 0 and "Lovely city!" in out.output and "3 turns" in out.output


def test_stats_counts_every_tier(filled: dict[str, str], home: Path) -> None:
    report = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    ana = report["users"]["ana"]
    assert ana["turns"] == 3 and ana["sessions"] == 2 and ana["invalid_facts"] == 1
    listed = {u["user_id"]: u for u in json.loads(runner.invoke(app, ["users", "--json"]).stdout)}
    assert sum(ana["facts"].values()) == listed["ana"]["facts"] >= 1 and report["users"]["bob"]["turns"] == 1
    assert report["totals"]["users"] == 2 and report["backlog"] == {"pending_turns": 0, "failed_batches": 0}
    assert report["disk_bytes"]["session (SQLite)"] > 0 and report["disk_bytes"]["long-term (embedded Qdrant)"] > 0
    assert report["usage"]["calls"] == 0
    only = json.loads(runner.invoke(app, ["stats", "--user", "bob", "--json"]).stdout)
    assert list(only["users"]) == ["bob"]
    out = runner.invoke(app, ["stats"])
    assert out.exit_code == 0 and "extraction backlog" in out.output


def test_context_explains_what_is_paged_in_and_what_is_dropped(filled: dict[str, str], home: Path) -> None:
    out = runner.invoke(app, ["context", "Berlin", "--user", "ana", "--session", "s-3", "--json", *HASH])
    report = json.loads(out.stdout)
    sent = " ".join([f["text"] for f in report["facts"]] + [report["profile"]["text"] if report["profile"] else ""])
    assert "Berlin" in sent and all("explain" in f and "score" in f for f in report["facts"])
    assert report["total_tokens"] <= report["budget"] and "message" in report["tokens"]
    tight = json.loads(runner.invoke(app, ["context", "Berlin " * 300, "--user", "ana", "--budget", "256", "--json",
                                           *HASH]).stdout)
    assert tight["tokens"]["message"] > 256  # the new message is never dropped, however long
    assert tight["dropped"] and all(d["what"] and d["why"] for d in tight["dropped"])
    out = runner.invoke(app, ["context", "Berlin", "--user", "ana", *HASH])
    assert out.exit_code == 0 and "tokens:" in out.output


def test_usage_errors_exit_2(filled: dict[str, str]) -> None:
    assert runner.invoke(app, ["turns", "list"]).exit_code == 2  # --user missing
    assert runner.invoke(app, ["stats", "--no-such-option"]).exit_code == 2
    out = runner.invoke(app, ["facts", "forget", filled["lisbon"], *HASH], input="")
    assert out.exit_code == 2 and "--yes" in out.output  # no terminal to confirm on


def test_reading_commands_import_no_model(filled: dict[str, str], home: Path, tmp_path: Path) -> None:
    code = ("import sys; from typer.testing import CliRunner; from tiermem.cli import app; "
            f"cmds = [['users', '--json'], ['stats', '--json'], ['turns', 'list', '--user', 'ana', '--json'], "
            f"['export', '-o', {str(tmp_path / 'e.jsonl')!r}], ['facts', 'history', {filled['lisbon']!r}, '--json'], "
            "['usage', '--json']]\n"
            "for c in cmds:\n    r = CliRunner().invoke(app, c); assert r.exit_code == 0, (c, r.output)\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'onnxruntime', 'qdrant_edge', 'qdrant_client') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
