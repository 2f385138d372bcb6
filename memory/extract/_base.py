"""The extractor interface: one call per batch of turns, structured output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._models import Candidate, Fact, Turn


class Extractor(Protocol):
    """Turns a batch of turns into candidate facts.

    A model-based extractor makes one call per batch and returns `Candidate` values (the
    pydantic schema doubles as the tool-use schema); `known` carries facts already stored
    about the user, so a model can phrase updates against them. An extractor that never
    looks at them sets `uses_known = False`, and the write path skips fetching them.
    """

    name: str

    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]: ...

    async def aextract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]: ...
