"""Building the Claude pieces from configuration: arguments first, then the environment
(ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL as the SDK reads them, TIERMEM_CLAUDE_MODEL,
TIERMEM_CLAUDE_RPM / TIERMEM_CLAUDE_ITPM for the rate limiter)."""

from __future__ import annotations

import os
import threading
from typing import Any

from .._errors import ConfigError, MissingDependency
from ._calls import CircuitBreaker, ModelCaller, RateLimiter, RetryPolicy

DEFAULT_MODEL = "claude-haiku-4-5"
_limiters: dict[tuple[float | None, float | None], RateLimiter] = {}
_limiters_lock = threading.Lock()


def _rate(name: str) -> float | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number (requests or tokens per minute)") from None
    if rate <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return rate


def shared_limiter(rpm: float | None, itpm: float | None) -> RateLimiter:
    """One limiter per limit pair for the whole process: every Memory and thread that calls
    the API with the same limits queues in the same buckets."""
    with _limiters_lock:
        return _limiters.setdefault((rpm, itpm), RateLimiter(rpm, itpm))


def require_credentials(client: Any, purpose: str) -> None:
    """Refuse, now, a client that could not authenticate: the SDK builds one without a key and
    fails only at the first request, which the write path would turn into a silent fallback to
    the rules on every batch."""
    if getattr(client, "api_key", "") is None and getattr(client, "auth_token", "") is None:
        raise ConfigError(f"{purpose}: the Anthropic client has no API key; set ANTHROPIC_API_KEY (or pass "
                          "anthropic.Anthropic(api_key=...)). To try the Claude paths offline, use "
                          "tiermem.testing.FakeAnthropic().client()")


def claude_caller(anthropic_client: Any = None, *, model: str | None = None, async_client: Any = None,
                  policy: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                  purpose: str = "extractor='claude'") -> ModelCaller:
    """A ModelCaller over the given client, or over one built from the environment.

    Raises:
        MissingDependency: the `anthropic` package is not installed.
        ConfigError: no client was given and ANTHROPIC_API_KEY is not set.
    """
    try:
        import anthropic
    except ImportError:
        raise MissingDependency(f"{purpose} needs the anthropic SDK: pip install 'tiermem[claude]'") from None
    if anthropic_client is None:
        if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            raise ConfigError(f"{purpose} needs an Anthropic API key: set ANTHROPIC_API_KEY "
                              "(or pass anthropic_client=anthropic.Anthropic(...)); without one, use the offline default")
        anthropic_client = anthropic.Anthropic()
        async_client = async_client or anthropic.AsyncAnthropic()
    elif isinstance(anthropic_client, anthropic.AsyncAnthropic):
        raise ConfigError("anthropic_client must be a synchronous anthropic.Anthropic (the write path runs in threads)")
    require_credentials(anthropic_client, purpose)
    return ModelCaller(anthropic_client, async_client=async_client,
                       model=model or os.environ.get("TIERMEM_CLAUDE_MODEL") or DEFAULT_MODEL, policy=policy,
                       limiter=shared_limiter(_rate("TIERMEM_CLAUDE_RPM"), _rate("TIERMEM_CLAUDE_ITPM")), breaker=breaker)
