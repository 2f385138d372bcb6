"""Stored text is shown literally by every CLI command: markup and terminal escapes in facts
and user ids neither crash a command nor restyle or spoof the terminal (D7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory
from tiermem.cli import app

runner = CliRunner()
HOSTILE = [
    "I love the band [/bold] and [red]pink[/red] stuff.",
    "I like [link=http://evil.example]this site[/link] a lot.",
    "I collect clocks \x1b[2J\x1b[31mred\x1b[0m and bells.",
    "I visit \x1b]8;;http://evil.example\x1b\\\\the museum\x1b]8;;\x1b\\\\ on Sundays.",
    "I read books \u202eevil\u202c every night.",
]
USERS = ["[/x]", "[bold]boss[/bold]", "ana"]


@pytest.fixture
def hostile_home(home: Path) -> dict[str, str]:
    with Memory.open(home, embedder=HashEmbedder()) as mem:
        ids = {}
        for user in USERS:
            for i, text in enumerate(HOSTILE):
                res = mem.add([say(text, id=f"[/m]-{i}")], user_id=user, at=T0)
                ids[f"{user}-{i}"] = res.facts[0].id
    return ids


def commands(ids: dict[str, str]) -> list[list[str]]:
    out = [["users"]]
    for user in USERS:
        out += [["facts", "list", "--user", user], ["facts", "list", "--user", user, "--all", "--json"],
                ["search", "band clocks museum books", "--user", user, "--embedder", "hash"]]
    for fid in list(ids.values())[:6]:
        out += [["facts", "show", fid], ["facts", "history", fid]]
    return out


def test_every_command_shows_hostile_text_literally(hostile_home: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tiermem import cli

    monkeypatch.setattr(cli.console, "width", 400)  # a wide terminal: table cells are not wrapped
    monkeypatch.setenv("COLUMNS", "400")  # (listings make their console when they print)
    for args in commands(hostile_home):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "\x1b" not in result.output and "\u202e" not in result.output, args  # no raw escapes reach the terminal
    listing = runner.invoke(app, ["facts", "list", "--user", "[/x]"]).output
    assert "[/bold]" in listing and "[red]pink[/red]" in listing and "[link=http://evil.example]" in listing
    assert "\\x1b[2J" in listing  # the escape is shown, not executed
    assert "[/x]" in runner.invoke(app, ["users"]).output and "[bold]boss[/bold]" in runner.invoke(app, ["users"]).output
    json.loads(runner.invoke(app, ["facts", "list", "--user", "ana", "--json"]).output)  # still valid JSON
    for line in runner.invoke(app, ["facts", "list", "--user", "ana", "--jsonl"]).output.splitlines():
        json.loads(line)


def test_errors_about_hostile_ids_are_literal_too(hostile_home: dict[str, str]) -> None:
    result = runner.invoke(app, ["facts", "list", "--user", "nobody[/x]"])
    assert result.exit_code == 1 and "nobody[/x]" in result.output and "Traceback" not in result.output
