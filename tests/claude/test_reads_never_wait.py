"""A model call on the write path (the reconcile judge, a rolling summary) never holds up a
read: search() and context() answer while Claude takes its time (a fake Messages API that
answers in 5 s, through the real SDK)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import ContextBudget, Memory
from tiermem.claude import CircuitBreaker, ClaudeReconciler, ClaudeSummarizer, ModelCaller, RateLimiter, RetryPolicy
from tiermem.testing import FakeAnthropic, Reply

SLOW = 5.0
pytestmark = pytest.mark.minilm


def slow_model(body: dict) -> Reply:
    system = " ".join(b.get("text", "") for b in body.get("system") or [])
    time.sleep(SLOW)
    if "maintain a memory of facts" in system:  # the reconcile judge: nothing to change
        payload = {"decisions": []}
        if body.get("tool_choice"):
            return Reply(tool_input=payload, stop_reason="tool_use")
        return Reply(json.dumps(payload))
    return Reply("Ana talked about her hobbies and her travels.")  # the rolling summary


def timed_reads(mem: Memory, until: threading.Event) -> list[float]:
    waits = []
    while not until.is_set():
        start = time.monotonic()
        mem.search("what does Ana like?", user_id="ana", limit=5)
        mem.context("what should I do this weekend?", user_id="ana", session_id="s1", budget=2000)
        waits.append(time.monotonic() - start)
        time.sleep(0.05)
    return waits


def test_search_and_context_answer_while_the_judge_and_the_summarizer_wait_for_claude(home: Path, minilm) -> None:
    with FakeAnthropic(slow_model) as fake:
        caller = ModelCaller(fake.client(), policy=RetryPolicy(max_attempts=1, timeout=30.0), limiter=RateLimiter(),
                             breaker=CircuitBreaker(threshold=50))
        with Memory.open(home, embedder=minilm, reconciler=ClaudeReconciler(caller), summarizer=ClaudeSummarizer(caller),
                         budget=ContextBudget(window_tokens=16, window_low_water=0.5)) as mem:
            mem.add([say("I love hiking in the Alps with my sister.")], user_id="ana", session_id="s1", at=T0)
            done = threading.Event()
            calls_before = len(fake.requests)
            writer = threading.Thread(target=lambda: (mem.add([say("I like hiking in the Dolomites with my brother.")],
                                                               user_id="ana", session_id="s1", at=T0), done.set()))
            writer.start()
            while len(fake.requests) == calls_before:  # a model call is in flight
                time.sleep(0.01)
            waits = timed_reads(mem, done)
            writer.join()
    purposes = [" ".join(b.get("text", "") for b in r.get("system") or [])[:40] for r in fake.requests[calls_before:]]
    assert any("maintain a memory" in p for p in purposes) and any("running summary" in p for p in purposes)
    assert len(waits) > 20  # reads went on for the ~10 s the two calls took
    assert max(waits) < 1.0, f"a read waited {max(waits):.2f} s for a model call"
