"""`tiermem turns`, `tiermem stats` and `tiermem context`: what is stored, how big it is, and
what would be paged in for a message (registered on the app by `tiermem.cli._app`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from .._errors import TieredMemoryError
from ._app import (
    DbOpt,
    EmbedderOpt,
    HomeOpt,
    JsonlOpt,
    JsonOpt,
    LimitOpt,
    UserOpt,
    _checked,
    _emit,
    _fail,
    _known_user,
    _memory,
    _store,
    _table,
    _user_in,
    _where,
    app,
    console,
)
from ._literal import literal, visible


def _tables() -> Any:
    """The session tier's tables (imported when a command needs them: SQLAlchemy is slow to load)."""
    from types import SimpleNamespace

    from ..session._tables import FactRow, SessionSeqRow, SummaryRow, TurnRow, table_of

    return SimpleNamespace(facts=table_of(FactRow), turns=table_of(TurnRow),
                           seqs=table_of(SessionSeqRow), summaries=table_of(SummaryRow))


turns_app = typer.Typer(help="The stored conversation turns.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(turns_app, name="turns")

@turns_app.command("list")
def turns_list(
    user: UserOpt,
    session: Annotated[str | None, typer.Option("--session", "-s", help="only this session (in turn order)")] = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    as_jsonl: JsonlOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """A user's turns: by time, or one session's in turn order (reads SQLite only)."""
    store = _store(home, database_url)
    user = _known_user(store, user)
    if session is not None:
        session = _checked(session, "--session")
        if session not in _sessions(store, user):
            _fail(f"user {user!r} has no session {session!r}; sessions: {', '.join(_sessions(store, user)) or 'none'}")
    if limit < 1:
        _fail(f"--limit must be at least 1, got {limit}")
    turns = store.turns(user, session, limit=limit)
    if as_json or as_jsonl:
        _emit([visible(turn.model_dump_json()) for turn in turns], as_jsonl)
        return
    table = _table("session", "seq", "at", "speaker", "text", wide=4)
    for t in turns:
        table.add_row(literal(t.session_id), str(t.seq), f"{t.created_at:%Y-%m-%d %H:%M}", literal(t.speaker), literal(t.content))
    console.print(table)
    console.print(f"{len(turns)} turns")


@app.command(short_help='Counts per user, disk per tier, owner, backlog, usage.')
def stats(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Facts per user and kind, turns, summaries, disk per tier, extraction backlog and model
    usage (reads SQLite only)."""
    from sqlalchemy import func, select

    from ..claude._report import usage_report

    t = _tables()
    FACTS, TURNS, SEQS, SUMMARIES = t.facts, t.turns, t.seqs, t.summaries  # noqa: N806 - table handles
    where = _where(home, database_url)
    store = _store(home, database_url)
    if user is not None:
        user = _known_user(store, user)
    users: dict[str, dict[str, Any]] = {}

    def entry(u: str) -> dict[str, Any]:
        return users.setdefault(u, {"facts": {"semantic": 0, "episodic": 0}, "invalid_facts": 0, "turns": 0,
                                    "sessions": 0, "summaries": 0, "pending_turns": 0})

    with store.engine.connect() as conn:
        facts = select(FACTS.c.user_id, FACTS.c.kind, FACTS.c.valid, func.count()).group_by(
            FACTS.c.user_id, FACTS.c.kind, FACTS.c.valid)
        for u, kind, valid, n in conn.execute(_only(facts, FACTS, user)):
            if valid:
                entry(u)["facts"][kind] = n
            else:
                entry(u)["invalid_facts"] += n
        turns = select(TURNS.c.user_id, TURNS.c.extracted, func.count()).group_by(TURNS.c.user_id, TURNS.c.extracted)
        for u, extracted, n in conn.execute(_only(turns, TURNS, user)):
            entry(u)["turns"] += n
            if not extracted:
                entry(u)["pending_turns"] += n
        for counted_table, key in ((SEQS, "sessions"), (SUMMARIES, "summaries")):
            counted = select(counted_table.c.user_id, func.count()).group_by(counted_table.c.user_id)
            for u, n in conn.execute(_only(counted, counted_table, user)):
                entry(u)[key] = n
    usage = usage_report(store.usage_rows(user, None), user_id=user).total
    from ..serve._shared import live_owner

    owner = live_owner(where.home)
    report: dict[str, Any] = {
        "home": str(where.home), "database": store.url_for_humans,
        "owner": {"pid": owner.get("pid"), "url": owner.get("url")} if owner else None,
        "users": users,
        "totals": {"users": len(users), "facts": sum(sum(u["facts"].values()) for u in users.values()),
                   "invalid_facts": sum(u["invalid_facts"] for u in users.values()),
                   "turns": sum(u["turns"] for u in users.values()),
                   "summaries": sum(u["summaries"] for u in users.values())},
        "backlog": {"pending_turns": store.count_pending(user), "failed_batches": len(store.failures(user))},
        "disk_bytes": _disk(where),
        "usage": {"calls": usage.calls, "input_tokens": usage.input_tokens, "cache_read": usage.cache_read,
                  "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd},
    }
    store.close()
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    table = _table("user", "semantic", "episodic", "invalidated", "turns", "sessions", "summaries", "pending")
    for u, e in sorted(users.items()):
        table.add_row(literal(u), str(e["facts"]["semantic"]), str(e["facts"]["episodic"]), str(e["invalid_facts"]),
                      str(e["turns"]), str(e["sessions"]), str(e["summaries"]), str(e["pending_turns"]))
    console.print(table)
    console.print(f"owner: pid {owner.get('pid')} serving at {owner.get('url')}" if owner else
                  "owner: none (the next opener owns the home)", markup=False)
    disk = report["disk_bytes"]
    console.print("disk: " + ", ".join(f"{tier} {_size(n)}" for tier, n in disk.items()) if disk else
                  "disk: not local (database by URL)", markup=False)
    backlog = report["backlog"]
    console.print(f"extraction backlog: {backlog['pending_turns']} turns pending, {backlog['failed_batches']} failed batches",
                  markup=False)
    console.print(f"model usage: {usage.calls} calls, {usage.input_tokens:,} input / {usage.cache_read:,} cache-read / "
                  f"{usage.output_tokens:,} output tokens, ${usage.cost_usd:.4f}", markup=False)


@app.command(short_help='What would be paged in for a message, and why.')
def context(
    message: Annotated[str, typer.Argument(help="the next user message")],
    user: UserOpt,
    session: Annotated[str, typer.Option("--session", "-s", help="whose recent turns come along")] = "default",
    budget: Annotated[int, typer.Option(help="total tokens of the request")] = 8000,
    system: Annotated[str | None, typer.Option(help="a system prompt")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    database_url: DbOpt = None,
    embedder: EmbedderOpt = "minilm",
) -> None:
    """What would be paged in for a message: each fact with its score explained, the tokens
    of every part, and what was dropped and why (opens the memory: needs the index)."""
    user = _user_in(home, database_url, user)
    with _memory(home, database_url, embedder) as mem:
        try:
            ctx = mem.context(message, user_id=user, session_id=_checked(session, "--session"), system=system, budget=budget)
        except TieredMemoryError as exc:
            _fail(str(exc))
    facts = [{"id": h.fact.id, "text": h.fact.text, "kind": h.fact.kind, "score": h.score, "explain": h.explain}
             for h in ctx.facts]
    # The profile is always sent (in the cached prefix); its facts are not paged in again. It is
    # read from the request itself: beside an owner this process has no stores to ask.
    profile = next((b["text"] for b in ctx.system if b["text"].startswith("<user_profile>")), "")
    baked = {"text": profile, "fact_ids": ctx.report.profile_facts, "epoch": ctx.report.profile_epoch} if profile else None
    report = {"user_id": user, "session_id": session, "budget": budget, "profile": baked, "facts": facts,
              "tokens": ctx.report.tokens, "total_tokens": ctx.report.total,
              "dropped": [d.model_dump() for d in ctx.report.dropped], "notes": ctx.report.notes,
              "cacheable_prefix_tokens": ctx.report.prefix_tokens if ctx.report.cacheable else 0}
    if as_json:
        sys.stdout.write(json.dumps(report, default=str) + "\n")
        return
    if baked and baked["text"]:
        console.print(Text.assemble(("profile (cached prefix, always sent): ", "bold"), literal(baked["text"])))
    table = _table("score", "paged-in fact", "why", wide=1)
    for f in facts:
        why = ", ".join(f"{k} {v:.3g}" for k, v in f["explain"].items() if k != "score" and not k.startswith("part_"))
        table.add_row(f"{f['score']:.4f}", literal(f["text"]), literal(why))
    console.print(table)
    console.print("tokens: " + ", ".join(f"{k} {v}" for k, v in ctx.report.tokens.items()) + f" (total {ctx.report.total} of {budget})",
                  markup=False)
    for d in ctx.report.dropped:
        console.print(Text.assemble(("dropped: ", "yellow"), literal(d.what), f" ({d.tokens} tokens): ", literal(d.why)))
    if not ctx.report.dropped:
        console.print("nothing dropped", markup=False)


def _sessions(store: Any, user: str) -> list[str]:
    from sqlalchemy import select

    seqs = _tables().seqs
    with store.engine.connect() as conn:
        rows = conn.execute(select(seqs.c.session_id).where(seqs.c.user_id == user)).scalars().all()
    return sorted(rows)


def _only(query: Any, table: Any, user: str | None) -> Any:
    return query if user is None else query.where(table.c.user_id == user)


def _disk(where: Any) -> dict[str, int]:
    """Bytes on disk per tier, for the stores that live in the home: blocks allocated, not
    apparent sizes (the embedded index maps sparse files far larger than what they hold)."""
    out: dict[str, int] = {}
    if where.sqlite_file is not None:
        db = Path(where.sqlite_file)
        out["session (SQLite)"] = sum(_allocated(p) for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    facts = where.index_path
    if where.index_url is None and facts.is_dir():
        out["long-term (embedded Qdrant)"] = sum(_allocated(p) for p in facts.rglob("*") if p.is_file())
    return out


def _allocated(path: Path) -> int:
    info = path.stat()
    blocks = getattr(info, "st_blocks", None)  # POSIX; Windows has only the apparent size
    return blocks * 512 if blocks is not None else info.st_size


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
