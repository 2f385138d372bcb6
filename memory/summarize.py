"""Rolling session summaries: the `Summarizer` interface and the offline extractive one.

A summarizer folds the turns evicted from a session's window into the session's summary.
It runs on the write path (phase 2 of add()), never inside context(), so a model-backed
summarizer can take its time without slowing a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from ._models import Turn
from ._sentences import is_small_talk, split_sentences
from ._text import content_tokens
from ._tokens import TokenCounter, approx_tokens


class Summarizer(Protocol):
    """Folds evicted turns into the previous summary, under a token budget."""

    name: str

    def summarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str: ...

    async def asummarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str: ...


def _informativeness(sentence: str) -> float:
    tokens = content_tokens(sentence)
    names = len(re.findall(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]+", sentence))
    numbers = len(re.findall(r"\d", sentence))
    return len(set(tokens)) + 2 * names + numbers


class ExtractiveSummarizer:
    """Keeps the most informative sentences (content words, names, numbers), in the order
    they were said. Newer material wins ties, so an old summary gives way gradually.

    Args:
        count_tokens: the token counter every budget uses.
    """

    name = "extractive"

    def __init__(self, count_tokens: TokenCounter = approx_tokens):
        self.count_tokens = count_tokens

    def summarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str:
        lines: list[str] = [line for line in (previous or "").splitlines() if line.strip()]
        for turn in turns:
            if turn.kind != "text":
                continue  # a tool's output is data, not conversation: it stays in the session tier
            for sentence in split_sentences(turn.content):
                if not is_small_talk(sentence):
                    lines.append(f"{turn.speaker}: {sentence}")
        ranked = sorted(range(len(lines)), key=lambda i: (-_informativeness(lines[i]), -i))
        keep: set[int] = set()
        used = 0
        for i in ranked:
            cost = self.count_tokens(lines[i]) + 1
            if used + cost <= budget_tokens:
                keep.add(i)
                used += cost
        return "\n".join(lines[i] for i in sorted(keep))

    async def asummarize(self, previous: str, turns: Sequence[Turn], budget_tokens: int) -> str:
        return self.summarize(previous, turns, budget_tokens)

