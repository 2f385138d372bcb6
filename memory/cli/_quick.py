"""`tiermem --version`, `tiermem users` and `tiermem facts list` on a local home, without
loading typer, SQLAlchemy or pydantic: they start about as fast as sqlite-utils does.

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
    """The quick parser of `users` or `facts list` (the same options as the typer command)."""
    p = _Parser(add_help=False, allow_abbrev=False)
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
    else:
        return None
    try:
        options = parser(command).parse_args(rest)
    except _Refused:
        return None
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
