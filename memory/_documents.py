"""Caller documents in the working context: parsing, trimming at sentence or paragraph
boundaries, and rendering as Anthropic content blocks. Pure functions over values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidInput
from ._messages import check_text
from ._tokens import TokenCounter

TRIM_MARKER = "[… trimmed: {shown:,} of {total:,} tokens shown]"
_BOUNDARY = re.compile(r"\n\s*\n|(?<=[.!?])[\"')\]]?\s+")  # paragraph, then sentence ends


@dataclass(frozen=True)
class Document:
    """One document the caller wants in the request.

    priority: higher is more important; the lowest go first when the request is too big.
    stable: the same text on many turns (a file being worked on): placed in the cached
        prefix with its own breakpoint, never trimmed (only dropped whole), so its bytes
        stay identical between turns.
    """

    text: str
    id: str | None = None
    title: str | None = None
    priority: float = 0.0
    stable: bool = False
    block_type: str = "text"  # "text" (rendered as a tagged text block) or "document" (Anthropic's)
    context: str | None = None  # Anthropic document blocks' optional context field
    position: int = 0  # order given by the caller: the tie-break

    @property
    def label(self) -> str:
        return self.id or self.title or f"#{self.position}"


def to_documents(documents: Sequence[Any] | None) -> list[Document]:
    """Validate caller documents: strings, {"text", "id"?, "title"?, "priority"?, "stable"?},
    Anthropic text blocks, or Anthropic document blocks with a text source.

    Raises:
        InvalidInput: naming documents[i] and what is wrong with it.
    """
    if documents is None:
        return []
    if isinstance(documents, str | Mapping) or not isinstance(documents, Sequence):
        raise InvalidInput("documents must be a list of strings or document dicts")
    out = []
    for i, raw in enumerate(documents):
        where = f"documents[{i}]"
        if isinstance(raw, str):
            out.append(Document(text=check_text(raw, where, allow_empty=True), position=i))
            continue
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{where} must be a string or a dict, got {type(raw).__name__}")
        block_type = "text"
        if raw.get("type") == "document":
            source = raw.get("source")
            if not isinstance(source, Mapping) or source.get("type") != "text" or not isinstance(source.get("data"), str):
                raise InvalidInput(f"{where}: a document block needs a text source "
                                   "({'type': 'text', 'media_type': 'text/plain', 'data': '...'})")
            text, block_type = source["data"], "document"
        elif raw.get("type") in (None, "text"):
            text = raw.get("text")
        else:
            raise InvalidInput(f"{where}: type must be 'text' or 'document', got {raw.get('type')!r}")
        if not isinstance(text, str):
            raise InvalidInput(f"{where}: text must be a string, got {type(text).__name__}")
        check_text(text, f"{where}: text", allow_empty=True)
        priority = raw.get("priority", 0.0)
        if isinstance(priority, bool) or not isinstance(priority, int | float):
            raise InvalidInput(f"{where}: priority must be a number, got {priority!r}")
        for key in ("id", "title", "context"):
            if raw.get(key) is not None:
                check_text(raw.get(key), f"{where}: {key}", allow_empty=True)
        if not isinstance(raw.get("stable", False), bool):
            raise InvalidInput(f"{where}: stable must be true or false")
        out.append(Document(text=text, id=raw.get("id"), title=raw.get("title"), priority=float(priority),
                            stable=raw.get("stable", False), block_type=block_type, context=raw.get("context"), position=i))
    return [d for d in out if d.text.strip()]


def trim(text: str, max_tokens: int, count: TokenCounter) -> str | None:
    """The longest prefix ending at a paragraph or sentence boundary that fits, with a marker
    saying how much is shown; None when not even the first sentence fits."""
    total = count(text)
    if total <= max_tokens:
        return text
    cuts = [m.start() for m in _BOUNDARY.finditer(text)]
    best = None
    lo, hi = 0, len(cuts) - 1
    while lo <= hi:  # the longest prefix that fits, by bisection over the boundaries
        mid = (lo + hi) // 2
        candidate = _with_marker(text[:cuts[mid]].rstrip(), total, count)
        if count(candidate) <= max_tokens:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def _with_marker(prefix: str, total: int, count: TokenCounter) -> str:
    return f"{prefix}\n{TRIM_MARKER.format(shown=count(prefix), total=total)}"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def render(doc: Document, text: str | None = None) -> dict[str, Any]:
    """The content block for a document (its text trimmed to `text` if given). A stable
    document goes into the system prompt, which takes text blocks only: always text."""
    body = doc.text if text is None else text
    if doc.block_type == "document" and not doc.stable:
        block: dict[str, Any] = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": body}}
        if doc.title:
            block["title"] = doc.title
        if doc.context:
            block["context"] = doc.context
        return block
    attrs = "".join(f' {k}="{_attr(v)}"' for k, v in (("id", doc.id), ("title", doc.title)) if v)
    return {"type": "text", "text": f"<document{attrs}>\n{body}\n</document>"}


def block_tokens(block: Mapping[str, Any], count: TokenCounter) -> int:
    if block.get("type") == "document":
        return count(block["source"]["data"]) + count(block.get("title") or "") + count(block.get("context") or "")
    return count(block["text"])


@dataclass(frozen=True)
class Placed:
    doc: Document
    block: dict[str, Any]
    tokens: int
    trimmed: bool


def fit(docs: Sequence[Document], budget: int, count: TokenCounter) -> tuple[list[Placed], list[tuple[Document, str, int]]]:
    """Documents by priority into `budget` tokens: whole while they fit, the first that does
    not fit trimmed at a boundary (a stable one is never trimmed), the rest dropped.

    Returns the placed documents (in priority order) and (document, why, tokens) for those
    trimmed or dropped.
    """
    placed: list[Placed] = []
    notes: list[tuple[Document, str, int]] = []
    used = 0
    for doc in sorted(docs, key=lambda d: (-d.priority, d.position)):
        whole = render(doc)
        cost = block_tokens(whole, count)
        room = budget - used
        if cost <= room:
            placed.append(Placed(doc, whole, cost, False))
            used += cost
            continue
        if not doc.stable and room > 0:
            overhead = cost - count(doc.text)
            text = trim(doc.text, room - overhead, count)
            if text is not None:
                block = render(doc, text)
                tokens = block_tokens(block, count)
                placed.append(Placed(doc, block, tokens, True))
                used += tokens
                notes.append((doc, f"trimmed at a sentence boundary to fit the documents budget ({tokens} of {cost} tokens)",
                              cost - tokens))
                continue
        why = "stable documents are dropped whole, never trimmed" if doc.stable else "over the documents budget"
        notes.append((doc, f"dropped: {why} (lowest priority first)", cost))
    return placed, notes


def without(placed: Sequence[Placed], excess: int, count: TokenCounter) -> tuple[list[Placed], list[tuple[Document, str, int]]]:
    """Give back `excess` tokens, the lowest-priority documents first (the degrade order)."""
    return fit([p.doc for p in placed], max(0, sum(p.tokens for p in placed) - excess), count)
