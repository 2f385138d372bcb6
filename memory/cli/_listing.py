"""How listings print: JSON (one document), JSON Lines, or a table that fits the terminal.
Shared by the typer commands and the quick path (`_quick.py`), so both print the same bytes."""

from __future__ import annotations

import json
import sys
from typing import Any

from ._literal import literal, visible


def emit(items: list[str], jsonl: bool) -> None:
    """JSON objects (already serialized) as one JSON array, or one per line with --jsonl."""
    if jsonl:
        sys.stdout.write("".join(item + "\n" for item in items))
    else:
        sys.stdout.write("[" + ",\n ".join(items) + "]\n")


def table(*columns: str, wide: int | None = None) -> Any:
    """A rich table that wraps its cells to the terminal instead of cutting them; column
    `wide` (the text) takes the room the others leave."""
    from rich.table import Table

    out = Table(*columns)
    for i, column in enumerate(out.columns):
        column.overflow = "fold"  # a long id or word wraps onto the next line rather than being cut
        if i == wide:
            column.ratio = 1
            column.min_width = 20
    return out


def _print(*renderables: Any) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    for renderable in renderables:
        console.print(renderable, markup=False) if isinstance(renderable, str) else console.print(renderable)


def print_users(rows: list[tuple[str, int, int]], as_json: bool, as_jsonl: bool) -> None:
    if as_json or as_jsonl:
        emit([visible(json.dumps({"user_id": u, "facts": f, "turns": t}, ensure_ascii=False)) for u, f, t in rows], as_jsonl)
        return
    out = table("user", "facts", "turns")
    for user, n_facts, n_turns in rows:
        out.add_row(literal(user), str(n_facts), str(n_turns))
    _print(out)


def print_facts(lines: list[str], include_invalid: bool, as_json: bool, as_jsonl: bool) -> None:
    """Facts given as their JSON (`Fact.model_dump_json()`)."""
    if as_json or as_jsonl:
        emit([visible(line) for line in lines], as_jsonl)
        return
    out = table("id", "kind", "fact", "valid from", "until", wide=2)  # sources: `tiermem facts show ID`
    for fact in map(json.loads, lines):
        ended = fact.get("invalid_at") or fact.get("expired_at")
        out.add_row(fact["id"][:8], fact["kind"], literal(fact["text"]), fact["valid_from"][:10], ended[:10] if ended else "")
    _print(out, f"{len(lines)} facts" + ("" if include_invalid else " (valid only; --all for history)"))


def print_hits(hits: list[Any], as_json: bool, as_jsonl: bool) -> None:
    """`tiermem search`'s hits (`Hit`s), however they were found."""
    if as_json or as_jsonl:
        emit([visible(json.dumps({"id": h.fact.id, "text": h.fact.text, "score": h.score, "explain": h.explain},
                                 ensure_ascii=False)) for h in hits], as_jsonl)
        return
    out = table("score", "fact", "dense", "bm25", "sources", wide=1)
    for h in hits:
        out.add_row(f"{h.score:.4f}", literal(h.fact.text), f"{h.explain.get('dense', float('nan')):.3f}",
                    f"{h.explain.get('sparse', 0):.2f}", literal(",".join(h.fact.sources)))
    _print(out)
