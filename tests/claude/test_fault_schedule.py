"""A long background run against a server that fails a large share of calls: nothing is
lost, every batch is extracted (by Claude or by the rules), flush() returns, and the usage
tiermem recorded equals what the server reported."""

from __future__ import annotations

import random

from tests.conftest import T0, say
from tiermem import HashEmbedder, Memory
from tiermem.claude import CircuitBreaker, ClaudeExtractor, ModelCaller, RateLimiter, RetryPolicy
from tiermem.testing import OVERLOADED, SERVER_ERROR, FakeAnthropic, Hang, rate_limited


def test_hundreds_of_turns_under_a_failing_api_lose_nothing(home, fake: FakeAnthropic) -> None:
    rng = random.Random(7)
    faults = [rate_limited(0.05), OVERLOADED, SERVER_ERROR, Hang(0.5)]
    fake.schedule = lambda n, body: rng.choice(faults) if rng.random() < 0.45 else None
    caller = ModelCaller(fake.client(), policy=RetryPolicy(base_delay=0.01, max_delay=0.05, timeout=0.3),
                         limiter=RateLimiter(), breaker=CircuitBreaker(threshold=4, cooldown=0.2))
    mem = Memory.open(home, embedder=HashEmbedder(64), extractor=ClaudeExtractor(caller))
    users = [f"user{i}" for i in range(12)]
    try:
        assert mem.extraction == "background"
        for round_ in range(25):
            for user in users:
                mem.add([say(f"I planted {round_} tulips in garden {user}.", name=user.title())], user_id=user, at=T0)
            if round_ % 5 == 4:
                mem.flush(timeout=60)  # several batches per user, so the schedule meets many calls
        assert mem.flush(timeout=120)
        assert mem.session.count_pending() == 0
        for user in users:
            turns = mem.turns(user_id=user, session_id="default", limit=10_000)
            assert len(turns) == 25
            facts = mem.facts(user_id=user, include_invalid=True)  # later counts supersede earlier ones
            assert facts and all(f.extractor in ("claude:claude-haiku-4-5", "rules") for f in facts)
            covered = {s for f in facts for s in f.sources}
            assert covered == {t.ref for t in turns}  # every turn's batch was extracted
        extractors = {f.extractor for u in users for f in mem.facts(user_id=u, include_invalid=True)}
        assert "claude:claude-haiku-4-5" in extractors  # most batches still went through Claude
        ours, theirs = mem.usage().total, fake.totals()
        assert (ours.input_tokens, ours.cache_write_5m + ours.cache_write_1h, ours.cache_read, ours.output_tokens) == (
            theirs["input_tokens"], theirs["cache_write"], theirs["cache_read"], theirs["output_tokens"])
        assert ours.attempts > ours.calls - ours.failed  # failed attempts were retried, and counted
    finally:
        mem.close()
