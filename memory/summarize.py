"""An offline, extractive summarizer for turns evicted from the working window.

It keeps the most informative sentences (content words, names, numbers), in the order they
were said, under a token budget. A model-based summarizer can replace it behind the same
function signature.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._models import Turn
from ._text import content_tokens
from ._tokens import approx_tokens
from .extract._rules import is_small_talk, split_sentences


def _informativeness(sentence: str) -> float:
    tokens = content_tokens(sentence)
    names = len(re.findall(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]+", sentence))
    numbers = len(re.findall(r"\d", sentence))
    return len(set(tokens)) + 2 * names + numbers


def extractive_summary(previous: str | None, turns: Sequence[Turn], budget_tokens: int) -> str:
    """Fold `turns` into `previous`, keeping the most informative lines under the budget.

    Newer material wins ties, so an old summary gives way gradually as sessions grow.
    """
    lines: list[str] = [line for line in (previous or "").splitlines() if line.strip()]
    for turn in turns:
        for sentence in split_sentences(turn.content):
            if not is_small_talk(sentence):
                lines.append(f"{turn.speaker}: {sentence}")
    ranked = sorted(range(len(lines)), key=lambda i: (-_informativeness(lines[i]), -i))
    keep: set[int] = set()
    used = 0
    for i in ranked:
        cost = approx_tokens(lines[i]) + 1
        if used + cost <= budget_tokens:
            keep.add(i)
            used += cost
    return "\n".join(lines[i] for i in sorted(keep))
