"""`tiermem demo`: a scripted conversation that shows each tier at work."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

OP_STYLE = {"add": "green", "update": "cyan", "invalidate": "yellow", "noop": "dim"}


def load_script() -> dict[str, Any]:
    return json.loads(resources.files("tiermem.cli").joinpath("demo_script.json").read_text())


def run_demo(console: Console, home: Path | None, embedder_name: str) -> None:
    from .. import HashEmbedder, Memory, MiniLMEmbedder

    script = load_script()
    user = script["user_id"]
    with tempfile.TemporaryDirectory(prefix="tiermem-demo-") as tmp:
        where = Path(home) if home else Path(tmp)
        embedder = HashEmbedder() if embedder_name == "hash" else MiniLMEmbedder()
        console.print(Panel(f"tiermem demo: memory in [bold]{where}[/bold], embedder {embedder.name}, no network, no API key"))
        with Memory.open(where, embedder=embedder) as mem:
            for session in script["sessions"]:
                at = datetime.fromisoformat(session["at"])
                result = mem.add(session["turns"], user_id=user, session_id=session["session_id"], at=at)
                table = Table(title=f"session {session['session_id']} ({at:%d %b %Y}): {len(result.turns)} turns stored",
                              show_lines=False)
                table.add_column("op")
                table.add_column("fact")
                table.add_column("sources")
                table.add_column("why")
                for e in result.events:
                    style = OP_STYLE.get(e.op, "")
                    text = e.fact.text if e.fact else e.fact_id
                    table.add_row(f"[{style}]{e.op}[/{style}]", text, ",".join(e.fact.sources) if e.fact else "", e.reason)
                console.print(table)
            for q in script["questions"]:
                ctx = mem.context(q["message"], user_id=user, session_id=q["session_id"], system=script["system"], budget=2000)
                body = [f"[bold]message:[/bold] {q['message']}", "[bold]paged in:[/bold]"]
                body += [f"  {h.score:.4f}  {h.fact.text}" for h in ctx.facts] or ["  (nothing)"]
                profile = next((b["text"] for b in ctx.system if "user_profile" in b["text"]), "")
                body.append(f"[bold]cached profile (epoch {ctx.report.profile_epoch}):[/bold]\n{profile or '  (empty)'}")
                body.append(f"[bold]tokens:[/bold] {ctx.report.tokens}  cacheable prefix: {ctx.report.cacheable}")
                body += [f"[dim]note: {n}[/dim]" for n in ctx.report.notes]
                body += [f"[dim]dropped: {d.what} ({d.why})[/dim]" for d in ctx.report.dropped[:5]]
                console.print(Panel("\n".join(body), title="context()"))
            console.print(f"[bold]{len(mem.facts(user_id=user))}[/bold] valid facts, "
                          f"{len(mem.facts(user_id=user, include_invalid=True))} with history.")
        if home:
            console.print(f"Inspect them: tiermem facts list --user {user} --all --home {where}\n"
                          f"or in a browser: tiermem ui --open --home {where}")
        else:
            console.print("The demo memory was temporary; keep it with `tiermem demo --home DIR`, then "
                          f"`tiermem facts list --user {user} --all --home DIR` or `tiermem ui --open --home DIR`.")
