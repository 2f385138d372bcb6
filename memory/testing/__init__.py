"""Test doubles for trying and testing tiermem offline.

`FakeAnthropic` is a Messages API on 127.0.0.1 that the real `anthropic` SDK talks to: it
answers messages (JSON and streaming), token counts and Message Batches, simulates prompt
caching and the context window the way the API documents them, and lets a test script
faults (429, 529, timeouts, broken streams). With it every Claude path of tiermem runs
without a key and without a network.

Example:
    >>> from tiermem.testing import FakeAnthropic, extraction_responder
    >>> with FakeAnthropic(extraction_responder) as fake:
    ...     client = fake.client()          # an anthropic.Anthropic pointed at the fake
"""

from ._anthropic import (
    OVERLOADED,
    SERVER_ERROR,
    Error,
    FakeAnthropic,
    Hang,
    PromptCache,
    Reply,
    Reported,
    StreamError,
    approx,
    extraction_responder,
    fact_json,
    rate_limited,
    turns_of,
)

__all__ = [
    "OVERLOADED", "SERVER_ERROR", "Error", "FakeAnthropic", "Hang", "PromptCache", "Reply", "Reported",
    "StreamError", "approx", "extraction_responder", "fact_json", "rate_limited", "turns_of",
]
