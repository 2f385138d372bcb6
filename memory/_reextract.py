"""Re-extraction: rebuild a user's facts from the stored turns with another extractor.

Nothing is destroyed. The facts extracted before (those with source turns; a caller's
remember() facts have none and stay) are invalidated with the reason "re-extracted" in the
same transaction that adds the new ones, so their history stays readable and a crash
leaves either the old facts or the new ones, never neither. The model calls come first and
are priced before the first one is made; with `batch=True` they go through the Message
Batches API (half price), under deterministic custom ids, resumable after a crash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._models import Candidate, Turn
from ._tokens import approx_tokens
from .extract import Extractor

logger = logging.getLogger("tiermem")
BATCH_TURNS = 32
Progress = Callable[[int, int], None]


@dataclass
class ReextractPlan:
    """What a re-extraction will do, and what it will cost (estimated, before any call)."""

    user_id: str
    extractor: str
    batches: list[list[Turn]]
    model: str | None = None
    batch_api: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None: the model has no price in the table
    extractor_object: Any = field(default=None, repr=False)

    @property
    def turns(self) -> int:
        return sum(len(b) for b in self.batches)

    @property
    def calls(self) -> int:
        return len(self.batches) if self.model else 0

    def describe(self) -> str:
        if not self.model:
            return f"re-extract {self.turns} turns of {self.user_id!r} with {self.extractor} (offline, no model calls)"
        cost = "unknown (no price for this model)" if self.cost_usd is None else f"~${self.cost_usd:.4f}"
        how = "Message Batches API (50% price)" if self.batch_api else "live calls"
        return (f"re-extract {self.turns} turns of {self.user_id!r} with {self.extractor}: {self.calls} calls via {how}, "
                f"~{self.input_tokens:,} input and ~{self.output_tokens:,} output tokens, estimated cost {cost}")


@dataclass
class ReextractReport:
    plan: ReextractPlan
    invalidated: int = 0
    added: int = 0
    fallbacks: int = 0
    batch_id: str | None = None
    notes: list[str] = field(default_factory=list)


def plan(user_id: str, turns: Sequence[Turn], extractor: Extractor, *, batch_api: bool = False,
         batch_turns: int = BATCH_TURNS) -> ReextractPlan:
    """Batches by session, in turn order, and the estimated tokens and cost."""
    batches: list[list[Turn]] = []
    for turn in turns:
        if batches and batches[-1][-1].session_id == turn.session_id and len(batches[-1]) < batch_turns:
            batches[-1].append(turn)
        else:
            batches.append([turn])
    caller = getattr(extractor, "caller", None)
    result = ReextractPlan(user_id, getattr(extractor, "label", extractor.name), batches, batch_api=batch_api)
    if caller is None:
        return result
    result.model = caller.model
    sizes = [[approx_tokens(t.content) for t in b] for b in batches]
    result.input_tokens, result.output_tokens, result.cost_usd = estimate(caller, sizes, batch_api=batch_api)
    return result


def estimate(caller: Any, batches: Sequence[Sequence[int]], *, batch_api: bool = False) -> tuple[int, int, float | None]:
    """(input tokens, output tokens, USD) of extracting batches of turns of these token
    sizes with Claude: the instructions are written to the cache once and read by every
    later call (1-hour TTL for Message Batches); the output is taken as half the turns."""
    from .claude._extractor import instructions

    fixed = approx_tokens(instructions())
    said = sum(n + 12 for b in batches for n in b) + 60 * len(batches)
    output = said // 2 + 20 * len(batches)
    cost = caller.info.cost(
        input_tokens=said, output_tokens=output, cache_read=fixed * max(0, len(batches) - 1),
        **({"cache_write_1h": fixed} if batch_api else {"cache_write_5m": fixed}), batch=batch_api)
    return fixed * len(batches) + said, output, cost


def extract_live(p: ReextractPlan, extractor: Extractor, progress: Progress | None = None) -> list[Candidate]:
    out: list[Candidate] = []
    for i, turns in enumerate(p.batches, start=1):
        out += extractor.extract(turns, known=())
        if progress:
            progress(i, len(p.batches))
    return out


def custom_id(turns: Sequence[Turn], label: str) -> str:
    """Deterministic per chunk: the same turns and extractor give the same id."""
    key = f"{turns[0].user_id}|{turns[0].session_id}|{turns[0].seq}|{turns[-1].seq}|{label}"
    return "rx-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def extract_batched(p: ReextractPlan, extractor: Any, meta: Any, *, poll_interval: float = 30.0,
                    progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep
                    ) -> tuple[list[Candidate], str]:
    """Submit one Message Batch (or resume the one a crashed run submitted), wait for it, and
    turn its results into candidates; a result that failed falls back to the rules."""
    caller = extractor.caller
    key = "reextract_batch:" + hashlib.sha256(p.user_id.encode()).hexdigest()[:32]
    chunks = {custom_id(turns, p.extractor): turns for turns in p.batches}
    state = json.loads(meta.get_meta(key) or "null")
    if state is None or set(state["chunks"]) != set(chunks):
        requests = [{"custom_id": cid, "params": extractor.request(turns, (), extractor.max_tokens, ttl="1h")}
                    for cid, turns in chunks.items()]
        batch = caller.call(lambda: caller.client.messages.batches.create(requests=requests), purpose="batch-submit",
                            user_id=p.user_id, record=False)
        state = {"batch_id": batch.id, "chunks": {cid: [t.id for t in turns] for cid, turns in chunks.items()},
                 "usage_recorded": False}
        meta.set_meta(key, json.dumps(state))
        logger.info("tiermem: submitted Message Batch %s (%d requests)", batch.id, len(requests))
    batch_id = state["batch_id"]
    while True:
        status = caller.call(lambda: caller.client.messages.batches.retrieve(batch_id), purpose="batch-poll",
                             user_id=p.user_id, record=False)
        counts = status.request_counts
        if progress:
            progress(len(chunks) - counts.processing, len(chunks))
        if status.processing_status == "ended":
            break
        sleep(poll_interval)
    results = caller.call(lambda: list(caller.client.messages.batches.results(batch_id)), purpose="batch-results",
                          user_id=p.user_id, record=False)
    out: list[Candidate] = []
    seen: set[str] = set()
    for item in results:
        turns = chunks.get(item.custom_id)
        if turns is None or item.custom_id in seen:
            continue  # not ours, or a repeat: each chunk is applied once
        seen.add(item.custom_id)
        result = item.result
        if result.type != "succeeded":
            error = getattr(getattr(getattr(result, "error", None), "error", None), "type", result.type)
            out += extractor.fall_back(turns, f"batch result {error}")
            continue
        message = result.message
        if not state["usage_recorded"]:
            caller.record_message(message, purpose="extract", user_id=p.user_id, session_id=turns[0].session_id,
                                  service_tier="batch")
        if message.stop_reason in ("refusal", "max_tokens"):
            out += extractor.fall_back(turns, f"batch reply {message.stop_reason}")
            continue
        try:
            out += extractor.candidates(message, turns)
        except ValueError as exc:
            out += extractor.fall_back(turns, f"malformed output ({exc})")
    for cid, turns in chunks.items():
        if cid not in seen:
            out += extractor.fall_back(turns, "no batch result")
    state["usage_recorded"] = True
    meta.set_meta(key, json.dumps(state))
    return out, key


def plan_for(user_id: str, turns: Sequence[Turn], extractor: Any, anthropic_client: Any, *, batch: bool = False,
             bind_usage: Callable[[Any], None]) -> ReextractPlan:
    """`Memory.plan_reextract`: the extractor chosen by name or given, and the plan."""
    from ._components import build, choose
    from ._errors import InvalidInput
    from .extract import RuleExtractor

    chosen = choose("extractor", extractor)
    if isinstance(chosen, str):
        chosen = build({"extractor": chosen}, anthropic_client=anthropic_client)["extractor"] or RuleExtractor()
    if batch and getattr(chosen, "caller", None) is None:
        raise InvalidInput("batch=True needs a model extractor (extractor='claude'): the rules make no calls")
    bind_usage(chosen)
    result = plan(user_id, [t.extractable for t in turns if t.kind == "text"], chosen, batch_api=batch)
    result.extractor_object = chosen
    return result


def run(p: ReextractPlan, writes: Any, meta: Any, *, poll_interval: float = 30.0,
        progress: Progress | None = None) -> ReextractReport:
    """`Memory.reextract`: extract (live or through a Message Batch), then replace the
    user's extracted facts with the new ones in one transaction."""
    chosen = p.extractor_object
    before = dict(getattr(chosen, "stats", {}))
    key = None
    report = ReextractReport(plan=p)
    if p.batch_api:
        candidates, key = extract_batched(p, chosen, meta, poll_interval=poll_interval, progress=progress)
        report.batch_id = json.loads(meta.get_meta(key) or "{}").get("batch_id")
    else:
        candidates = extract_live(p, chosen, progress)
    turns = [t for b in p.batches for t in b]
    events, report.invalidated = writes.replace_extracted(p.user_id, writes.prepare(candidates, turns, chosen))
    if key is not None:
        meta.delete_meta(key)  # applied: a later run submits a new batch
    report.added = sum(e.op == "add" for e in events)
    report.fallbacks = getattr(chosen, "stats", {}).get("fallbacks", 0) - before.get("fallbacks", 0)
    return report
