"""The one model-call layer every Claude path goes through.

The SDK's own retries are off (`max_retries=0`): every attempt is ours, counted, paced by
one rate limiter shared by all threads of the process, and stopped by a circuit breaker
when the API keeps failing, so that callers take their offline path instead of waiting.
Errors are classified by HTTP status and the body's error type, never by message text,
except "prompt is too long", which has no code of its own.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .._errors import TieredMemoryError
from .._models import CallUsage
from .._tokens import approx_tokens
from ._catalog import ModelInfo, model_info

logger = logging.getLogger("tiermem")

RETRYABLE_STATUS = frozenset({408, 409, 429})
RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


class ModelCallFailed(TieredMemoryError, RuntimeError):
    """A model call failed for good (after our retries, or at once for a non-retryable error).

    `kind` is one of: rate_limited, overloaded, server, timeout, connection, prompt_too_long,
    bad_request, auth, circuit_open, other.
    """

    def __init__(self, message: str, *, kind: str, attempts: int, status: int | None = None,
                 error_type: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        self.status = status
        self.error_type = error_type


class CircuitOpen(ModelCallFailed):
    """The breaker is open after repeated failures: no call was made."""


class PromptTooLong(ModelCallFailed):
    """The request is longer than the model's context window (400 'prompt is too long')."""


@dataclass(frozen=True)
class Failure:
    kind: str
    retryable: bool
    status: int | None = None
    error_type: str | None = None
    retry_after: float | None = None  # seconds the server asked us to wait


def classify(exc: BaseException) -> Failure:
    """What an SDK exception means for us: its kind, whether to retry, and the server's
    requested delay. By status and error type; 'prompt is too long' by its message prefix."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return Failure("timeout", True)
    if isinstance(exc, anthropic.APIConnectionError):
        return Failure("connection", True)
    if not isinstance(exc, anthropic.APIStatusError):
        return Failure("other", False)
    status, error_type = exc.status_code, getattr(exc, "type", None)
    headers = exc.response.headers if exc.response is not None else {}
    retry_after = _retry_after(headers)
    if status == 400 and error_type == "invalid_request_error" and _message(exc).lower().startswith("prompt is too long"):
        return Failure("prompt_too_long", False, status, error_type)
    override = (headers.get("x-should-retry") or "").lower()
    if status == 429 or error_type == "rate_limit_error":
        kind = "rate_limited"
    elif status == 529 or error_type == "overloaded_error":
        kind = "overloaded"
    elif status >= 500 or error_type == "api_error":
        kind = "server"
    elif status == 408 or error_type == "timeout_error":
        kind = "timeout"
    elif status in (401, 403) or error_type in ("authentication_error", "permission_error"):
        kind = "auth"
    elif status == 400:
        kind = "bad_request"
    else:
        kind = "other"
    # An error event inside a stream arrives with HTTP 200: its type decides.
    retryable = status in RETRYABLE_STATUS or status >= 500 or (status == 200 and error_type in RETRYABLE_TYPES)
    if override in ("true", "false"):
        retryable = override == "true"
    return Failure(kind, retryable, status, error_type, retry_after)


def _message(exc: Any) -> str:
    message = getattr(exc, "api_message", None)
    if isinstance(message, str):
        return message
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return ""


def _retry_after(headers: Any) -> float | None:
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Our retries. `max_retry_after` caps what a server may ask us to wait: the SDK honours
    any positive retry-after (days, for a spend cap), we give up and take the offline path."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    timeout: float = 120.0  # seconds per attempt

    def delay(self, attempt: int, failure: Failure) -> float | None:
        """Seconds before the next attempt, or None to stop."""
        if not failure.retryable or attempt >= self.max_attempts:
            return None
        if failure.retry_after is not None:
            if failure.retry_after > self.max_retry_after:
                return None
            return failure.retry_after
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return backoff * random.uniform(0.75, 1.0)  # jitter: callers that failed together do not retry together


class RateLimiter:
    """Requests and input tokens per minute, as two token buckets shared by every thread
    (and event loop) of the process. A caller reserves before it calls and sleeps for its
    turn outside the lock, so a burst queues in order instead of meeting 429s. A 429's
    retry-after pauses everyone, not only the caller that got it."""

    def __init__(self, requests_per_minute: float | None = None, input_tokens_per_minute: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.rpm = requests_per_minute
        self.itpm = input_tokens_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._requests = _Bucket(requests_per_minute, now)
        self._tokens = _Bucket(input_tokens_per_minute, now)
        self._paused_until = 0.0

    def reserve(self, input_tokens: int) -> float:
        """Take one request and `input_tokens` from the buckets; returns seconds to wait."""
        with self._lock:
            now = self._clock()
            return max(self._requests.take(1, now), self._tokens.take(input_tokens, now), self._paused_until - now, 0.0)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


@dataclass
class _Bucket:
    per_minute: float | None
    updated: float
    level: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.per_minute or 0.0

    def take(self, amount: float, now: float) -> float:
        if not self.per_minute:
            return 0.0
        rate = self.per_minute / 60.0
        self.level = min(self.per_minute, self.level + (now - self.updated) * rate)
        self.updated = now
        self.level -= min(amount, self.per_minute)  # one huge request waits for a full bucket, not forever
        return 0.0 if self.level >= 0 else -self.level / rate


class CircuitBreaker:
    """After `threshold` consecutive failed attempts, refuse calls for `cooldown` seconds;
    then let one probe through (half-open): its success closes the circuit."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.cooldown or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or (self._opened_at is None and self._failures >= self.threshold):
                logger.warning("tiermem: %d model calls failed in a row; Claude paths take the offline path for %.0f s",
                               self._failures, self.cooldown)
                self._opened_at = self._clock()
            self._probing = False


UsageSink = Callable[[CallUsage], None]


def request_tokens(params: Mapping[str, Any]) -> int:
    """The local estimate of a request's input: characters / 4 of its JSON (system, messages,
    tools). The rate limiter paces by it; MemoryClient calibrates it per model."""
    return sum(approx_tokens(json.dumps(params.get(key) or "", ensure_ascii=False, default=str))
               for key in ("system", "messages", "tools"))


class ModelCaller:
    """Calls the Messages API through the real `anthropic` SDK with our retries, pacing,
    breaker and usage accounting.

    Args:
        client: an `anthropic.Anthropic` (its own retries are switched off here).
        async_client: an `anthropic.AsyncAnthropic` for the async paths (default: the sync
            client in a worker thread).
        model: the default model (TIERMEM_CLAUDE_MODEL, else claude-haiku-4-5).
        record: where each call's usage goes (the session tier's usage table).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        async_client: Any = None,
        model: str = "claude-haiku-4-5",
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        record: UsageSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.policy = policy or RetryPolicy()
        self.client = client.with_options(max_retries=0, timeout=self.policy.timeout) if client is not None else None
        self.async_client = (async_client.with_options(max_retries=0, timeout=self.policy.timeout)
                             if async_client is not None else None)
        self.model = model
        self.limiter = limiter or RateLimiter()
        self.breaker = breaker or CircuitBreaker()
        self.record = record
        self._sleep = sleep
        self.stats: dict[str, int] = {"calls": 0, "attempts": 0, "failed": 0}
        self._stats_lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return model_info(self.model)

    # -- sync -------------------------------------------------------------------------------
    def create(self, *, purpose: str, user_id: str | None = None, session_id: str | None = None,
               stream: bool = False, **params: Any) -> Any:
        """`messages.create(**params)` (or a stream run to its final message) with our
        retries. Returns the SDK's Message; raises ModelCallFailed (CircuitOpen,
        PromptTooLong) when it cannot."""
        if self.client is None:
            raise ModelCallFailed("no synchronous Anthropic client was given", kind="other", attempts=0)
        params.setdefault("model", self.model)
        client = self.client

        def invoke() -> Any:
            if not stream:
                return client.messages.create(**params)
            with client.messages.stream(**params) as s:
                return s.get_final_message()

        return self.call(invoke, purpose=purpose, user_id=user_id, session_id=session_id, params=params)

    def call(self, invoke: Callable[[], Any], *, purpose: str, user_id: str | None = None,
             session_id: str | None = None, params: dict[str, Any] | None = None, record: bool = True) -> Any:
        """Any SDK call (a batch submission, a poll, opening a stream) with our retries,
        pacing and breaker; a Message result's usage is recorded unless `record=False`."""
        params = params if params is not None else {"model": self.model}
        attempt = 0
        while True:
            attempt += 1
            wait = self._before(attempt, params, purpose, user_id, session_id)
            if wait:
                self._sleep(wait)
            try:
                result = invoke()
            except Exception as exc:
                delay = self._failed(exc, attempt, params, purpose, user_id, session_id)
                if delay:
                    self._sleep(delay)
                continue
            return self._succeeded(result, attempt, params, purpose, user_id, session_id, record)

    # -- async ------------------------------------------------------------------------------
    async def acreate(self, *, purpose: str, user_id: str | None = None, session_id: str | None = None,
                      stream: bool = False, **params: Any) -> Any:
        if self.async_client is None:
            return await asyncio.to_thread(self.create, purpose=purpose, user_id=user_id, session_id=session_id,
                                           stream=stream, **params)
        params.setdefault("model", self.model)
        client = self.async_client

        async def invoke() -> Any:
            if not stream:
                return await client.messages.create(**params)
            async with client.messages.stream(**params) as s:
                return await s.get_final_message()

        return await self.acall(invoke, purpose=purpose, user_id=user_id, session_id=session_id, params=params)

    async def acall(self, invoke: Callable[[], Awaitable[Any]], *, purpose: str, user_id: str | None = None,
                    session_id: str | None = None, params: dict[str, Any] | None = None, record: bool = True) -> Any:
        """`call()` for coroutines: the same bookkeeping, awaited waits."""
        params = params if params is not None else {"model": self.model}
        attempt = 0
        while True:
            attempt += 1
            wait = self._before(attempt, params, purpose, user_id, session_id)
            if wait:
                await asyncio.sleep(wait)
            try:
                result = await invoke()
            except Exception as exc:
                delay = self._failed(exc, attempt, params, purpose, user_id, session_id)
                if delay:
                    await asyncio.sleep(delay)
                continue
            return self._succeeded(result, attempt, params, purpose, user_id, session_id, record)

    def record_message(self, message: Any, *, purpose: str, user_id: str | None = None, session_id: str | None = None,
                       attempts: int = 1, **fields: Any) -> CallUsage:
        """Record a response that did not come back through `create` (a completed stream, a
        batch result); returns its usage."""
        usage = CallUsage.of(message, purpose=purpose, model=self.model, user_id=user_id, session_id=session_id,
                             attempts=attempts, outcome=message.stop_reason or "ok", **fields)
        self._save(usage)
        return usage

    # -- shared bookkeeping -----------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] = self.stats.get(key, 0) + 1

    def _before(self, attempt: int, params: dict[str, Any], purpose: str, user_id: str | None,
                session_id: str | None) -> float:
        """Count the attempt, or refuse it when the breaker is open; returns the pacing wait."""
        if attempt == 1:
            self._count("calls")
        if not self.breaker.allow():
            self._count("failed")
            self._count("refused")
            self._save(CallUsage(purpose=purpose, model=params["model"], user_id=user_id, session_id=session_id,
                                 attempts=attempt - 1, outcome="error:circuit_open"))
            raise CircuitOpen("the circuit breaker is open after repeated failures; no call was made",
                              kind="circuit_open", attempts=attempt - 1)
        self._count("attempts")
        return self.limiter.reserve(request_tokens(params))

    def _failed(self, exc: Exception, attempt: int, params: dict[str, Any], purpose: str, user_id: str | None,
                session_id: str | None) -> float:
        """Decide on a failed attempt: the delay before the next one, or raise."""
        failure = classify(exc)
        if failure.retryable:
            self.breaker.failure()
        delay = self.policy.delay(attempt, failure)
        if delay is not None:
            logger.info("tiermem: %s call failed (%s, attempt %d); retrying in %.2f s", purpose, failure.kind, attempt, delay)
            if failure.kind == "rate_limited" and failure.retry_after:
                # Every caller waits out the server's retry-after, in the limiter; not twice here.
                self.limiter.pause(delay)
                return 0.0
            return delay
        self._count("failed")
        self._save(CallUsage(purpose=purpose, model=params["model"], user_id=user_id, session_id=session_id,
                             attempts=attempt, outcome=f"error:{failure.kind}"))
        error = PromptTooLong if failure.kind == "prompt_too_long" else ModelCallFailed
        raise error(f"{purpose} call failed after {attempt} attempt(s): {failure.kind} ({exc})", kind=failure.kind,
                    attempts=attempt, status=failure.status, error_type=failure.error_type) from exc

    def _succeeded(self, result: Any, attempt: int, params: dict[str, Any], purpose: str, user_id: str | None,
                   session_id: str | None, record: bool = True) -> Any:
        self.breaker.success()
        if record:
            self._save(CallUsage.of(result, purpose=purpose, model=params["model"], user_id=user_id,
                                    session_id=session_id, attempts=attempt, outcome=result.stop_reason or "ok"))
        return result

    def _save(self, usage: CallUsage) -> None:
        if self.record is None:
            return
        try:
            self.record(usage)
        except Exception as exc:  # accounting must never lose the call's result
            logger.warning("tiermem: could not record model usage: %r", exc)
