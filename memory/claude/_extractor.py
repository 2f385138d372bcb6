"""ClaudeExtractor: one Messages call per batch of turns, validated structured output.

The instructions are a byte-stable system block closed by a `cache_control` breakpoint, so
every batch after the first reads them from the provider's cache; what changes per batch
(the user's known facts and the turns) comes after it. Every way a call can go wrong ends
in a stored result: a reply cut at max_tokens is retried larger, then the batch is split;
a prompt too long is split; a refusal, malformed output or a failed call falls back to the
rule extractor for that batch. Each fallback is logged and counted, never silent.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._models import Candidate, Fact, Turn
from .._tokens import approx_tokens
from ..extract import RuleExtractor, resolve_dates
from ._calls import ModelCaller, ModelCallFailed, PromptTooLong

logger = logging.getLogger("tiermem")

KNOWN_FACTS_TOKENS = 2000  # how much of the user's known facts one request shows at most
MAX_TOKENS_CAP = 16_000  # non-streaming requests above ~21k output tokens are refused by the SDK

_FACT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text", "kind", "subject", "attribute", "value", "importance", "sources", "event_date", "operation"],
    "properties": {
        "text": {"type": "string", "description": "a self-contained statement, third person, absolute dates"},
        "kind": {"type": "string", "enum": ["semantic", "episodic"]},
        "subject": {"type": "string"},
        "attribute": {"type": ["string", "null"], "description": "a single-valued attribute, e.g. 'lives in'"},
        "value": {"type": ["string", "null"]},
        "importance": {"type": "number", "description": "0 to 1"},
        "sources": {"type": "array", "items": {"type": "string"}, "description": "turn ids such as t1"},
        "event_date": {"type": ["string", "null"], "description": "YYYY-MM-DD for events"},
        "operation": {"type": "string", "enum": ["state", "forget"],
                      "description": "'forget': the speaker asks to forget what text names; else 'state'"},
    },
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["facts"],
    "properties": {"facts": {"type": "array", "items": _FACT_SCHEMA}},
}
TOOL_NAME = "record_facts"


class _ExtractedFact(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1)
    kind: Literal["semantic", "episodic"]
    subject: str = ""
    attribute: str | None = None
    value: str | None = None
    importance: float = 0.5
    sources: list[str] = Field(default_factory=list)
    event_date: str | None = None
    operation: Literal["state", "forget"] = "state"


class _Extraction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    facts: list[_ExtractedFact]


class Malformed(ValueError):
    """The reply is not the JSON the schema asks for."""


@functools.cache
def instructions() -> str:
    return resources.files("tiermem.claude").joinpath("prompts/extract.md").read_text("utf-8")


def turn_ids(turns: Sequence[Turn]) -> dict[str, Turn]:
    """Short ids for a batch ('t1', 't2', ...): cheaper to repeat than uuids, and a source
    the model makes up is recognisable."""
    return {f"t{i}": turn for i, turn in enumerate(turns, start=1)}


def render_turns(ids: dict[str, Turn]) -> str:
    lines = []
    for short, t in ids.items():
        when = t.local_time.strftime("%Y-%m-%d %H:%M %a")
        content = " ".join(t.content.split()) if t.kind == "text" else f"[{t.kind}] {' '.join(t.content.split())[:500]}"
        lines.append(f"[{short}] {when} | {t.speaker} ({t.role}): {content}")
    return "\n".join(lines)


def render_known(known: Sequence[Fact], budget: int = KNOWN_FACTS_TOKENS) -> str:
    lines, used = [], 0
    for i, fact in enumerate(known, start=1):
        line = f"[k{i}] {fact.text}"
        used += approx_tokens(line) + 1
        if used > budget:
            break
        lines.append(line)
    return "\n".join(lines) or "(none)"


class ClaudeExtractor:
    """Extract facts with Claude (the `Extractor` interface).

    Args:
        caller: the model-call layer (retries, pacing, breaker, usage).
        max_tokens: the first output budget of a call; doubled when a reply is cut.
        cache_ttl: "5m" or "1h" for the instruction block's cache entry.
        fallback: the extractor a batch falls back to (default: the rules).

    `stats` counts batches, fallbacks by reason, splits and the sources the model made up.
    """

    name = "claude"
    uses_known = True

    def __init__(self, caller: ModelCaller, *, max_tokens: int = 4096, cache_ttl: Literal["5m", "1h"] = "5m",
                 fallback: Any = None):
        self.caller = caller
        self.max_tokens = max_tokens
        self.cache_ttl = cache_ttl
        self.fallback = fallback or RuleExtractor()
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"claude:{self.caller.model}"

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # -- the request ------------------------------------------------------------------------
    def request(self, turns: Sequence[Turn], known: Sequence[Fact], max_tokens: int, ttl: str | None = None) -> dict:
        """The Messages API parameters for one batch (also used for Message Batches)."""
        cache: dict[str, Any] = {"type": "ephemeral"}
        if (ttl or self.cache_ttl) == "1h":
            cache["ttl"] = "1h"
        user_id = turns[0].user_id
        body = (f"KNOWN FACTS about {user_id}:\n{render_known(known)}\n\nTURNS:\n{render_turns(turn_ids(turns))}\n\n"
                "Answer with the JSON object only.")
        params: dict[str, Any] = {
            "model": self.caller.model,
            "max_tokens": max_tokens,
            "system": [{"type": "text", "text": instructions(), "cache_control": cache}],
            "messages": [{"role": "user", "content": body}],
        }
        if self.caller.info.structured_output:
            params["output_config"] = {"format": {"type": "json_schema", "schema": OUTPUT_SCHEMA}}
        else:  # forced tool use where the model has no JSON-schema output
            params["tools"] = [{"name": TOOL_NAME, "description": "Record the extracted facts.",
                                "input_schema": OUTPUT_SCHEMA}]
            params["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return params

    # -- the flow ---------------------------------------------------------------------------
    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        if not any(t.kind == "text" for t in turns):
            return []
        self._count("batches")
        return self._extract(list(turns), known, self.max_tokens)

    async def aextract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        return await asyncio.to_thread(self.extract, turns, known=known)

    def _extract(self, turns: list[Turn], known: Sequence[Fact], max_tokens: int) -> list[Candidate]:
        try:
            message = self.caller.create(purpose="extract", user_id=turns[0].user_id, session_id=turns[-1].session_id,
                                         **self.request(turns, known, max_tokens))
        except PromptTooLong:
            if len(turns) > 1:
                return self._split(turns, known, max_tokens, "prompt too long")
            return self.fall_back(turns, "prompt too long for a single turn")
        except ModelCallFailed as exc:
            return self.fall_back(turns, f"call failed ({exc.kind} after {exc.attempts} attempts)")
        if message.stop_reason == "refusal":
            return self.fall_back(turns, "refusal")
        if message.stop_reason == "max_tokens":
            cap = min(MAX_TOKENS_CAP, self.caller.info.max_output)
            if max_tokens < cap:
                self._count("retried_larger")
                return self._extract(turns, known, min(cap, max_tokens * 2))
            if len(turns) > 1:
                return self._split(turns, known, self.max_tokens, "reply cut at max_tokens")
            return self.fall_back(turns, "reply cut at max_tokens")
        try:
            return self.candidates(message, turns)
        except Malformed as exc:
            return self.fall_back(turns, f"malformed output ({exc})")

    def _split(self, turns: list[Turn], known: Sequence[Fact], max_tokens: int, why: str) -> list[Candidate]:
        self._count("splits")
        logger.info("tiermem: splitting an extraction batch of %d turns (%s)", len(turns), why)
        half = len(turns) // 2
        return self._extract(turns[:half], known, max_tokens) + self._extract(turns[half:], known, max_tokens)

    def fall_back(self, turns: Sequence[Turn], why: str) -> list[Candidate]:
        self._count("fallbacks")
        self._count(f"fallback: {why.split(' (')[0]}")
        logger.warning("tiermem: Claude extraction of %d turns of %r fell back to %s: %s",
                       len(turns), turns[0].user_id, self.fallback.name, why)
        return [c.model_copy(update={"extractor": c.extractor or self.fallback.name})
                for c in self.fallback.extract(turns)]

    # -- the reply --------------------------------------------------------------------------
    def candidates(self, message: Any, turns: Sequence[Turn]) -> list[Candidate]:
        """Validated candidates from a reply. Sources the batch does not have are dropped and
        counted; a fact left without a source is dropped and counted."""
        payload = _payload(message)
        try:
            extraction = _Extraction.model_validate(payload)
        except ValidationError as exc:
            raise Malformed(f"{exc.error_count()} schema errors") from None
        ids = turn_ids(turns)
        out: list[Candidate] = []
        for item in extraction.facts:
            named = [s.strip().strip("[]") for s in item.sources]
            sources = [ids[s] for s in named if s in ids]
            made_up = len(named) - len(sources)
            if made_up:
                self._count("hallucinated_sources", made_up)
            if not sources:
                self._count("dropped_unsourced")
                logger.warning("tiermem: dropped an extracted fact whose sources are not in the batch: %r", item.text[:80])
                continue
            out.append(self._candidate(item, sources))
        self._count("claude_facts", len(out))
        return out

    def _candidate(self, item: _ExtractedFact, sources: list[Turn]) -> Candidate:
        said = max(sources, key=lambda t: t.created_at)
        # A relative date the model left in the text is resolved against the turn that said it.
        text, resolved = resolve_dates(" ".join(item.text.split()), said.local_time)
        event = _date(item.event_date) or resolved
        attribute = (item.attribute or "").strip().lower() or None
        value = (item.value or "").strip() or None
        if attribute is None or value is None:
            attribute = value = None
        refs = list(dict.fromkeys(t.ref for t in sources))  # in order, each once
        return Candidate(
            kind=item.kind,
            text=text,
            subject=item.subject.strip() or said.name or ("The user" if said.role == "user" else "The assistant"),
            attribute=attribute,
            value=value,
            importance=min(1.0, max(0.0, item.importance)),
            sources=refs,
            valid_from=said.created_at,
            event_at=datetime.combine(event, time(), tzinfo=UTC) if event else None,
            extractor=self.label,
            operation=item.operation,
        )


def _payload(message: Any) -> Any:
    for block in message.content:
        if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME:
            return block.input
    text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", None) == "text").strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc.msg} at {exc.pos}") from None


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
