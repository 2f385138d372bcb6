"""`tiermem export` and `tiermem import`: the portable JSON-lines format, and migration from
a mem0 store (registered on the app by `tiermem.cli._app`)."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from .._errors import TieredMemoryError
from ._app import DbOpt, EmbedderOpt, HomeOpt, JsonOpt, _fail, _known_user, _store, app, console

# Progress goes to stderr: stdout carries the export itself, or the --json report.
progress_console = Console(stderr=True, highlight=False)


@app.command("export", short_help="Write users' data as portable JSON lines.")
def export(
    user: Annotated[list[str] | None, typer.Option("--user", "-u", help="only this user (repeatable; default: every user)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Write users' turns, summaries, facts, journal, memory files and items as JSON lines
    (format version 2, documented in the README: it ends with a record that lets an import
    tell a complete file from a cut one). Reads the database only."""
    from .. import __version__
    from ..session._portable import export_lines

    store = _store(home, database_url)
    users = [_known_user(store, u) for u in user] if user else [u for u, _, _ in store.users()]
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    lines = 0
    try:
        with Progress(console=progress_console, transient=True, disable=not progress_console.is_terminal) as bar:
            task = bar.add_task("exporting users", total=len(users))
            for line in export_lines(store, users, tiermem_version=__version__, every_item=not user,
                                     progress=lambda done, total: bar.update(task, completed=done)):
                out.write(line)
                lines += 1
    finally:
        if output:
            out.close()
    store.close()
    if output:
        console.print(f"exported {len(users)} users ({lines - 2} records) to {output}", markup=False)


@app.command("import", short_help='Import an export, or a mem0 store.')
def import_(
    source: Annotated[str, typer.Argument(help="an export file (.jsonl; - for stdin), or the word mem0")],
    config: Annotated[Path | None, typer.Option("--config", help="mem0: its config as a JSON file")] = None,
    path: Annotated[Path | None, typer.Option("--path", help="mem0: its Qdrant local path (instead of --config)")] = None,
    collection: Annotated[str, typer.Option("--collection", help="mem0 with --path: the collection")] = "mem0",
    history_db: Annotated[Path | None, typer.Option("--history-db", help="mem0 with --path: its history database")] = None,
    index: Annotated[bool, typer.Option("--index/--no-index", help="embed the imported facts now (else at the next open)")] = True,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Import an export (`tiermem import file.jsonl`) or a mem0 store (`tiermem import mem0
    --config mem0.json`, or `--path`). Idempotent: what is already here is skipped. The
    home is created if it does not exist."""
    if source == "mem0" and not Path("mem0").is_file():
        records, scanned = _mem0_records(config, path, collection, history_db)
    else:
        if config is not None or path is not None:
            _fail("--config and --path are for `tiermem import mem0`")
        records, scanned = _file_records(source), None
    from ..session import SessionStore
    from ..session._portable import import_records

    where = _target(home, database_url)
    try:
        store = SessionStore(where.database_url)
        with Progress(console=progress_console, transient=True, disable=as_json or not progress_console.is_terminal) as bar:
            task = bar.add_task("importing", total=len(records))
            counts = import_records(store, records, progress=lambda done, total: bar.update(task, completed=done))
        store.close()
    except TieredMemoryError as exc:
        _fail(str(exc))
    report: dict[str, Any] = {**counts, **({"mem0_memories": scanned} if scanned is not None else {}), "indexed": False}
    if index and counts["facts"]:
        report["indexed"] = _catch_up(home, database_url, embedder, counts["facts"], quiet=as_json)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    console.print(f"imported {counts['turns']} turns, {counts['summaries']} summaries, {counts['facts']} facts, "
                  f"{counts['events']} journal rows, {counts['files']} files, {counts['items']} items (already there: "
                  f"{counts['turns_skipped']} turns, {counts['facts_skipped']} facts, of them "
                  f"{counts.get('facts_repeated', 0)} the same statement under another id)", markup=False)
    if counts["facts"] and not report["indexed"]:
        console.print("the index catches up at the next open (or run `tiermem reindex`)", markup=False)


def _target(home: Path | None, database_url: str | None) -> Any:
    from .._config import resolve

    try:
        where = resolve(home, database_url, create=True)
    except TieredMemoryError as exc:
        _fail(str(exc))
    return where


def _file_records(source: str) -> list[tuple[str, Any, dict[str, Any]]]:
    from ..session._portable import read_export

    try:
        if source == "-":
            return read_export(sys.stdin)
        file = Path(source)
        if not file.is_file():
            _fail(f"no file {source!r} (give an export made by `tiermem export`, or `mem0 --config FILE`)")
        with file.open(encoding="utf-8") as lines:
            return read_export(lines)
    except TieredMemoryError as exc:
        _fail(str(exc))
    except UnicodeDecodeError:
        _fail(f"{source} is not UTF-8 text: not a tiermem export")


def _mem0_records(config: Path | None, path: Path | None, collection: str,
                  history_db: Path | None) -> tuple[list[tuple[str, Any, dict[str, Any]]], int]:
    from tiermem.adapters._mem0_import import mem0_records

    if (config is None) == (path is None):
        _fail("give the mem0 store as --config mem0.json or as --path QDRANT_PATH (one of them)")
    if config is not None:
        try:
            settings = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"cannot read the mem0 config {config}: {exc}")
    else:
        settings = {"vector_store": {"provider": "qdrant", "config": {"path": str(path), "collection_name": collection}}}
        if history_db is not None:
            settings["history_db_path"] = str(history_db)
    with progress_console.status("reading the mem0 store through mem0ai"):
        try:
            return mem0_records(settings)
        except TieredMemoryError as exc:
            _fail(str(exc))


def _catch_up(home: Path | None, database_url: str | None, embedder: str, facts: int, quiet: bool) -> bool:
    """Embed what was imported now, by opening the memory (which replays the journal)."""
    from .. import Memory
    from ._app import _embedder_named

    with progress_console.status(f"indexing {facts} imported facts") if not quiet else nullcontext():
        try:
            mem = Memory.open(home, database_url, embedder=_embedder_named(embedder))
            try:
                # Beside a running owner this reaches it: flush() catches its index up with the journal.
                return bool(mem.flush(timeout=600))
            finally:
                mem.close()
        except TieredMemoryError as exc:  # e.g. an agent holds the embedded index: later, then
            progress_console.print(f"not indexed now: {exc}", markup=False)
            return False
