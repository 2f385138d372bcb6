"""Caller documents in the working context: parsing, trimming at sentence or paragraph
boundaries, and rendering as Anthropic content blocks. Pure functions over values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidInput
from ._messages import check_text
from ._text import content_tokens
from ._tokens import TokenCounter

TRIM_MARKER = "[… trimmed: {shown:,} of {total:,} tokens shown]"


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


def trim(text: str, max_tokens: int, count: TokenCounter, message: str = "") -> str | None:
    """What matters of a document that does not fit, with a marker saying how much is shown;
    None when not even one line or sentence fits.

    The document is cut into lines and sentences, and they are kept in this order of need:
    those that share words with the message (most first), the last one (a log's final
    `error:` line, a text's conclusion), the first one (its title), then the rest from both
    ends inwards. They are shown in their own order, a `[…]` line where some were left out.
    """
    total = count(text)
    if total <= max_tokens:
        return text
    spans = _units(text)
    if not spans:
        return None
    wanted = set(content_tokens(message))
    overlap = [len(wanted & set(content_tokens(text[a:b]))) if wanted else 0 for a, b in spans]
    last = len(spans) - 1
    ends = [i for pair in zip(range(last - 1, -1, -1), range(1, last), strict=False) for i in pair]
    preference = [*sorted((i for i in range(len(spans)) if overlap[i]), key=lambda i: (-overlap[i], i)), last, 0, *ends]
    # Sizes are estimated per unit (each may need a `[…]` line), then the result is checked.
    unit_cost = [count(text[a:b]) + 2 for a, b in spans]
    used = count(TRIM_MARKER.format(shown=total, total=total)) + 1
    kept: list[int] = []
    for i in preference:
        if i not in kept and used + unit_cost[i] <= max_tokens:
            kept.append(i)
            used += unit_cost[i]
    while kept:
        shown = _shown(text, spans, sorted(kept), total, count)
        if count(shown) <= max_tokens:
            return shown
        kept.pop()
    return None


_UNIT = re.compile(r"\n+|(?<=[.!?])[\"')\]]?[ \t]+")  # line breaks, then sentence ends


def _units(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line or sentence with any text."""
    spans, at = [], 0
    for m in _UNIT.finditer(text):
        if text[at:m.start()].strip():
            spans.append((at, m.start()))
        at = m.end()
    if text[at:].strip():
        spans.append((at, len(text)))
    return spans


def _shown(text: str, spans: Sequence[tuple[int, int]], chosen: Sequence[int], total: int, count: TokenCounter) -> str:
    """The chosen units in document order: adjacent ones as the text has them, a `[…]` line
    between runs, then the trim marker."""
    parts: list[str] = []
    run_start = previous = None
    for i in chosen:
        if previous is not None and i == previous + 1:
            previous = i
            continue
        if run_start is not None and previous is not None:
            parts.append(text[spans[run_start][0]:spans[previous][1]])
        if parts or i > 0:
            parts.append("[…]")
        run_start = previous = i
    if run_start is not None and previous is not None:
        parts.append(text[spans[run_start][0]:spans[previous][1]])
    if previous is not None and previous < len(spans) - 1:
        parts.append("[…]")
    return _with_marker("\n".join(parts), total, count)


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


def fit(docs: Sequence[Document], budget: int, count: TokenCounter, message: str = ""
        ) -> tuple[list[Placed], list[tuple[Document, str, int]]]:
    """Documents into `budget` tokens: higher priority first, documents of one priority
    sharing fairly, and small documents never pushed out by a large one.

    Before a priority group is placed, the whole cost of every later document no larger than
    an even share of the budget is set aside for it. Within a group, documents that fit in
    an even share of what is left go in whole (the smallest first, repeatedly); the others
    split the rest, trimmed to what matters for `message` (see `trim`), or dropped when a
    stable one (never trimmed: its bytes are cached) or not even a line fits.

    Returns the placed documents (highest priority first) and (document, why, tokens) for
    those trimmed or dropped.
    """
    ordered = sorted(docs, key=lambda d: (-d.priority, d.position))
    if not ordered:
        return [], []
    whole = {id(d): render(d) for d in ordered}
    cost = {id(d): block_tokens(whole[id(d)], count) for d in ordered}
    fair = budget / len(ordered)
    placed: list[Placed] = []
    notes: list[tuple[Document, str, int]] = []
    left = budget
    groups = [[d for d in ordered if d.priority == p] for p in sorted({d.priority for d in ordered}, reverse=True)]
    for g, group in enumerate(groups):
        later = [d for rest in groups[g + 1:] for d in rest]
        set_aside = sum(cost[id(d)] for d in later if cost[id(d)] <= fair)
        room = max(0, left - set_aside)
        pending = sorted(group, key=lambda d: cost[id(d)])
        while pending and cost[id(pending[0])] <= room / len(pending):
            doc = pending.pop(0)
            placed.append(Placed(doc, whole[id(doc)], cost[id(doc)], False))
            room -= cost[id(doc)]
        for n, doc in enumerate(sorted(pending, key=lambda d: d.position)):
            share = room // (len(pending) - n)
            block = None if doc.stable else _trimmed(doc, share, cost[id(doc)], count, message)
            if block is None:
                why = "stable documents are dropped whole, never trimmed" if doc.stable else "over the documents budget"
                notes.append((doc, f"dropped: {why} (lowest priority first)", cost[id(doc)]))
                continue
            tokens = block_tokens(block, count)
            placed.append(Placed(doc, block, tokens, True))
            room -= tokens
            notes.append((doc, f"trimmed to what matters for the message, to fit the documents budget "
                               f"({tokens} of {cost[id(doc)]} tokens)", cost[id(doc)] - tokens))
        left = room + set_aside
    rank = {id(d): i for i, d in enumerate(ordered)}
    return sorted(placed, key=lambda p: rank[id(p.doc)]), notes


def _trimmed(doc: Document, room: int, cost: int, count: TokenCounter, message: str) -> dict[str, Any] | None:
    if room <= 0:
        return None
    overhead = cost - count(doc.text)
    text = trim(doc.text, room - overhead, count, message)
    return render(doc, text) if text is not None else None


def without(placed: Sequence[Placed], excess: int, count: TokenCounter, message: str = ""
            ) -> tuple[list[Placed], list[tuple[Document, str, int]]]:
    """Give back `excess` tokens, the lowest-priority documents first (the degrade order)."""
    return fit([p.doc for p in placed], max(0, sum(p.tokens for p in placed) - excess), count, message)
