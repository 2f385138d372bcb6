"""Fixtures for the Claude paths: the fake Messages API and a Memory wired to it through
the real anthropic SDK, with short retry delays so a fault schedule runs in seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tiermem import HashEmbedder, Memory
from tiermem.claude import CircuitBreaker, ClaudeExtractor, ModelCaller, RateLimiter, RetryPolicy
from tiermem.testing import FakeAnthropic, extraction_responder

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5.0, timeout=2.0)


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "TIERMEM_EXTRACTOR",
                "TIERMEM_RECONCILER", "TIERMEM_SUMMARIZER", "TIERMEM_CLAUDE_MODEL", "TIERMEM_EXTRACTION"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(extraction_responder, cache_minimum=4096) as server:
        yield server


class Sleeps(list):
    """Records the delays the caller asks for, and sleeps a little of each."""

    def __call__(self, seconds: float) -> None:
        import time

        self.append(seconds)
        time.sleep(min(seconds, 0.02))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def caller(fake: FakeAnthropic, sleeps: Sleeps) -> ModelCaller:
    return ModelCaller(fake.client(), policy=FAST, limiter=RateLimiter(), breaker=CircuitBreaker(threshold=50),
                       sleep=sleeps)


@pytest.fixture
def claude_mem(home: Path, caller: ModelCaller) -> Iterator[Memory]:
    memory = Memory.open(home, embedder=HashEmbedder(64), extractor=ClaudeExtractor(caller), extraction="inline")
    yield memory
    memory.close()
