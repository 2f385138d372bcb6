"""ClaudeSummarizer: rolling session summaries written by Claude, under the same token
budget as the extractive summarizer, which it falls back to on any failure."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

from .._models import Turn
from .._sentences import split_sentences
from .._tokens import TokenCounter, approx_tokens
from ..summarize import ExtractiveSummarizer, Summarizer
from ._calls import ModelCaller, ModelCallFailed
from ._extractor import render_turns, turn_ids

logger = logging.getLogger("tiermem")

INSTRUCTIONS = """You keep the running summary of a long conversation between a user and an assistant. You receive the PREVIOUS SUMMARY (possibly empty) and the NEW TURNS that just left the assistant's working window. Write the updated summary: what was discussed, decided, asked and promised, the facts the user told about themselves, and open threads, with names, numbers and absolute dates (resolve "yesterday" and the like against the turn dates). Drop greetings and filler. Merge the previous summary with the new turns rather than appending, and keep it within the word limit given. Write plain prose or short lines, in English, third person, no preamble."""


class ClaudeSummarizer:
    name = "claude"

    def __init__(self, caller: ModelCaller, fallback: Summarizer | None = None,
                 count_tokens: TokenCounter = approx_tokens):
        self.caller = caller
        self.count_tokens = count_tokens
        self.fallback = fallback or ExtractiveSummarizer(count_tokens)
        self.stats: Counter[str] = Counter()

    def summarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str:
        if not any(t.kind == "text" for t in turns):
            return self.fallback.summarize(previous, turns, budget_tokens)
        words = max(20, budget_tokens * 3 // 4)
        body = (f"PREVIOUS SUMMARY:\n{previous or '(none)'}\n\nNEW TURNS:\n{render_turns(turn_ids(turns))}\n\n"
                f"Write the updated summary in at most {words} words.")
        try:
            message = self.caller.create(
                purpose="summarize", user_id=turns[0].user_id, session_id=turns[0].session_id,
                max_tokens=budget_tokens * 2 + 64,
                system=[{"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": body}])
        except ModelCallFailed as exc:
            return self._fall_back(previous, turns, budget_tokens, f"call failed ({exc.kind})")
        text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", None) == "text").strip()
        if message.stop_reason in ("refusal", "max_tokens") or not text:
            return self._fall_back(previous, turns, budget_tokens, message.stop_reason or "empty reply")
        if self.count_tokens(text) > budget_tokens:
            self.stats["trimmed"] += 1  # over budget: keep its most informative lines
            text = _first_sentences(text, budget_tokens, self.count_tokens)
        self.stats["claude"] += 1
        return text

    async def asummarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str:
        return await asyncio.to_thread(self.summarize, previous, turns, budget_tokens)

    def _fall_back(self, previous: str, turns: Sequence[Turn], budget_tokens: int, why: str) -> str:
        self.stats["fallbacks"] += 1
        logger.warning("tiermem: Claude summary fell back to the %s summarizer: %s", self.fallback.name, why)
        return self.fallback.summarize(previous, turns, budget_tokens)


def _first_sentences(text: str, budget: int, count_tokens: TokenCounter) -> str:
    kept, used = [], 0
    for sentence in split_sentences(text):
        cost = count_tokens(sentence) + 1
        if used + cost > budget:
            break
        kept.append(sentence)
        used += cost
    return " ".join(kept)
