"""`tiermem --version`, `tiermem users` and `tiermem facts list` on a local home, without
loading typer, SQLAlchemy or pydantic: they start about as fast as sqlite-utils does. And
`tiermem search`, without typer or SQLAlchemy (`tiermem._quicksearch`).

`run(argv)` handles what it can and returns None for everything else (another command,
--help, an option it does not know, a database URL, another schema version, an unknown
user), which then goes to the full CLI with its own messages. Both print through
`_listing`, and a test checks that this parser takes exactly the typer commands' options.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


class _Refused(Exception):
    """The quick path does not take this command line: the full CLI does."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def parser(command: str) -> argparse.ArgumentParser:
    """The quick parser of `users`, `facts list` or `search` (the same options as the typer command)."""
    p = _Parser(add_help=False, allow_abbrev=False)
    if command == "search":
        p.add_argument("query")
        p.add_argument("--user", "-u", required=True)
        p.add_argument("--limit", type=int, default=10)
        p.add_argument("--embedder", default="minilm")
    if command == "facts list":
        p.add_argument("--user", "-u", required=True)
        p.add_argument("--all", dest="all_", action="store_true")
        p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", dest="as_json", action="store_true")
    p.add_argument("--jsonl", dest="as_jsonl", action="store_true")
    p.add_argument("--home", default=None)
    p.add_argument("--database-url", default=None)
    return p


def run(argv: Sequence[str]) -> int | None:
    args = list(argv)
    if args == ["--version"]:
        from .. import __version__

        print(f"tiermem {__version__}")
        return 0
    if args[:1] == ["users"]:
        command, rest = "users", args[1:]
    elif args[:2] == ["facts", "list"]:
        command, rest = "facts list", args[2:]
    elif args[:1] == ["search"]:
        command, rest = "search", args[1:]
    else:
        return None
    try:
        options = parser(command).parse_args(rest)
    except _Refused:
        return None
    if command == "search":
        return _search(options)
    from .._config import home_sqlite_file
    from .._quickread import QuickReader

    try:
        path = home_sqlite_file(options.home, options.database_url)
    except Exception:  # noqa: BLE001 - anything unusual: the full CLI says what is wrong
        return None
    reader = QuickReader.open(path) if path is not None else None
    if reader is None:
        return None
    from ._listing import print_facts, print_users

    try:
        rows = reader.users()
        if command == "users":
            print_users(rows, options.as_json, options.as_jsonl)
            return 0
        if options.user not in {u for u, _, _ in rows} or not 1 <= options.limit <= 10_000:
            return None  # the full CLI's message (and its NFC rules) for an unknown user or a bad limit
        from .._quickread import fact_json

        facts = reader.facts(options.user, include_invalid=options.all_, limit=options.limit)
        print_facts([fact_json(f) for f in facts], options.all_, options.as_json, options.as_jsonl)
        return 0
    finally:
        reader.close()


def _search(options: argparse.Namespace) -> int | None:
    """`tiermem search` on a local home with the default model (see `tiermem._quicksearch`)."""
    if options.embedder != "minilm" or options.database_url or not 1 <= options.limit <= 10_000:
        return None
    import os

    from .._config import home_sqlite_file

    if os.environ.get("TIERMEM_INDEX_URL") or os.environ.get("TIERMEM_QDRANT_URL"):
        return None  # the long-term tier is a server: the full path
    sqlite_file = home_sqlite_file(options.home, None)  # what `resolve` picks, without SQLAlchemy
    if sqlite_file is None or not sqlite_file.is_file():
        return None
    from .. import _quicksearch

    home = sqlite_file.parent
    try:
        hits = _quicksearch.search(home, sqlite_file, home / "facts", options.query, options.user, options.limit)
    except Exception:  # noqa: BLE001 - anything unusual: the full path answers, with its own message
        return None
    if hits is None:
        return None
    from ._listing import print_hits

    print_hits(hits, options.as_json, options.as_jsonl)
    return 0
