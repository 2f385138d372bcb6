"""A memory-aware Messages client: `MemoryClient(anthropic.Anthropic(), memory)`.

`client.messages.create(...)` / `.stream(...)` take the SDK's own parameters plus
`user_id`, `session_id` and an optional `budget`, with `messages` holding only the new
turn(s). Each call builds the request with `Memory.context()` (cached prefix, session
window and summary, paged-in facts), stores the user turn before the call and the reply
after it, records the usage, and returns the SDK's own objects.

A request that does not fit is shrunk before it is sent (a local count, chars/4 calibrated
per model from the usage the API returns; `count_tokens` only near the edge) and, if the
API still answers "prompt is too long", rebuilt smaller in context()'s degrade order
(documents, the memory block, older turns, the summary) and sent again. The system prompt,
the tools and the new message are never dropped; when they alone do not fit, the error is
a `ContextOverflow` that names their sizes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from tiermem import (
    CallUsage,
    Context,
    ContextOverflow,
    ContextReport,
    Dropped,
    InvalidInput,
    MemoryAPI,
    approx_tokens,
    check_id,
)
from tiermem.claude import ModelCaller, PromptTooLong, RetryPolicy, model_info, request_tokens, require_credentials

from ._memory_tool import TiermemMemoryTool

logger = logging.getLogger("tiermem")
MAX_BREAKPOINTS = 4
LOOKBACK_EVERY = 15  # a breakpoint at least every 15 message blocks (the API looks back 20)
OVERFLOW_RETRIES = 4
EDGE = 0.95  # above this share of the limit, the local estimate is checked with count_tokens
_TOO_LONG = re.compile(r"(\d[\d,]*) tokens > (\d[\d,]*)")


class RequestReport(BaseModel):
    """What the last request held, what was dropped and why, and what it cost."""

    user_id: str
    session_id: str
    model: str
    limit: int  # tokens the request may hold (context window minus max_tokens, or `budget`)
    estimated_tokens: int = 0  # the calibrated local estimate of the request sent
    calibration: float = 1.0  # the model's tokens per chars/4 token, as measured so far
    context: ContextReport | None = None
    dropped: list[Dropped] = Field(default_factory=list)
    overflow_retries: int = 0
    breakpoints: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    cache_read_share: float = 0.0
    notes: list[str] = Field(default_factory=list)


class _Plan:
    """One call being prepared: its arguments, and the budget context() gets."""

    def __init__(self, kw: dict[str, Any], limit: int, ratio: float):
        self.user_id: str = kw.pop("user_id")
        self.session_id: str = kw.pop("session_id")
        self.new: list[dict[str, Any]] = kw.pop("messages")
        self.system = kw.pop("system", None)
        self.tools = kw.pop("tools", None)
        self.documents = kw.pop("documents", None)
        self.model: str = kw["model"]
        self.rest = kw  # every other SDK parameter, passed through
        self.limit = limit
        tools = approx_tokens(json.dumps(self.tools or "", ensure_ascii=False))
        self.context_budget = max(256, int(limit * 0.97 / ratio) - tools)  # tools are not context()'s to count
        self.stored: list[str] = []  # ids of the new turns, stored before the call
        self.local_tokens = 0  # chars/4 of the request last built (counted once per build)
        self.report = RequestReport(user_id=self.user_id, session_id=self.session_id, model=self.model, limit=limit)


def _system_text(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return system
    return "\n\n".join(b.get("text", "") for b in system if isinstance(b, Mapping))


def _plain(value: Any) -> Any:
    """Deterministic JSON form: sorted keys all the way down (byte-stable between calls)."""
    return json.loads(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(b) for b in content]


def _query(new: Sequence[Mapping[str, Any]]) -> str:
    """What the new turn asks (for retrieval): its text, or what its tool results say."""
    for message in reversed(new):
        if message.get("role") != "user":
            continue
        parts = []
        for block in _blocks(message["content"]):
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                parts.append(inner if isinstance(inner, str) else " ".join(
                    b.get("text", "") for b in inner or [] if isinstance(b, Mapping)))
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text[:4000]
    return "(continue)"


class _Planner:
    """Everything between the caller's arguments and the SDK call, without I/O: the sync and
    async clients share it and differ only in how they wait."""

    def __init__(self, memory: MemoryAPI, budget: int | None):
        self.memory = memory
        self.budget = budget
        self.calibration: dict[str, float] = {}
        self.learned_limit: dict[str, int] = {}  # per model, from 'prompt is too long: N > M maximum'
        self.pending_tool_use: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self.warned: set[tuple[str, str]] = set()
        self.lock = threading.Lock()

    def start(self, kw: dict[str, Any]) -> _Plan:
        for name in ("model", "max_tokens", "messages", "user_id"):
            if name not in kw:
                raise InvalidInput(f"messages.create() needs {name}=")
        kw["user_id"] = check_id(kw["user_id"], "user_id")
        kw["session_id"] = check_id(kw.get("session_id", "default"), "session_id")
        new = kw["messages"]
        if not isinstance(new, list) or not new or not all(isinstance(m, Mapping) and "role" in m for m in new):
            raise InvalidInput("messages must be a non-empty list of the new turn(s): [{'role': 'user', 'content': ...}]")
        if new[-1]["role"] != "user":
            raise InvalidInput("messages must end with the new user turn")
        info = model_info(kw["model"])
        budget = kw.pop("budget", None) or self.budget
        limit = budget if budget else info.context_window - int(kw["max_tokens"])
        limit = min(limit, self.learned_limit.get(kw["model"], limit))
        if not isinstance(limit, int) or limit < 256:
            raise InvalidInput(f"budget must leave at least 256 tokens for the request, got {limit!r}")
        return _Plan(kw, limit, self.calibration.get(kw["model"], 1.0))

    def fixed_tokens(self, plan: _Plan) -> dict[str, int]:
        ratio = self.calibration.get(plan.model, 1.0)
        sizes = {"system prompt": approx_tokens(_system_text(plan.system) or ""),
                 "tools": approx_tokens(json.dumps(plan.tools or "", ensure_ascii=False)),
                 "new message": approx_tokens(json.dumps(plan.new, ensure_ascii=False, default=str))}
        return {k: int(v * ratio) for k, v in sizes.items()}

    def overflow(self, plan: _Plan, why: str) -> ContextOverflow:
        sizes = self.fixed_tokens(plan)
        listed = ", ".join(f"{k} ~{v:,}" for k, v in sizes.items())
        return ContextOverflow(
            f"the request cannot fit {plan.model}'s limit of {plan.limit:,} tokens ({why}): the parts that are never "
            f"dropped are {listed} tokens (~{sum(sizes.values()):,} in all); shorten them, lower max_tokens, or pass "
            "tools and documents more sparingly")

    def build(self, plan: _Plan, ctx: Context) -> dict[str, Any]:
        messages = [dict(m, content=[dict(b) for b in m["content"]]) for m in ctx.messages]
        final = messages[-1]["content"]
        final.pop()  # the query text context() placed last: the caller's own blocks go instead
        new_blocks: list[dict[str, Any]] = []
        for message in plan.new:
            if message["role"] == "user":
                new_blocks += _blocks(message["content"])
        results = [b for b in new_blocks if b.get("type") == "tool_result"]
        others = [b for b in new_blocks if b.get("type") != "tool_result"]
        pending = self.pending_tool_use.get((plan.user_id, plan.session_id))
        if results and pending and len(messages) >= 2 and messages[-2]["role"] == "assistant":
            messages[-2] = {"role": "assistant", "content": [dict(b) for b in pending]}  # verbatim: its tool_use ids
            messages[-2]["content"][-1]["cache_control"] = {"type": "ephemeral"}
        elif results:  # no tool_use to answer in this request: the results travel as text
            others = [{"type": "text", "text": _query([{"role": "user", "content": [r]}])} for r in results] + others
            results = []
        messages[-1]["content"] = results + final + others  # tool results must come first
        request: dict[str, Any] = {**plan.rest, "system": ctx.system, "messages": messages}
        if plan.tools:
            tools = sorted((_plain(t) for t in plan.tools), key=lambda t: str(t.get("name", "")))
            tools[-1]["cache_control"] = {"type": "ephemeral"}
            request["tools"] = tools
        plan.report.breakpoints = _place_breakpoints(request)
        plan.report.context = ctx.report
        plan.local_tokens = request_tokens(request)
        return request

    def build_steps(self, plan: _Plan) -> Generator[tuple[str, dict[str, Any]], Any, dict[str, Any]]:
        """The request-building loop as steps, without I/O: yields ("context", {}) for a
        `context()` and ("count_tokens", params) near the edge, receives their answers, and
        returns the request once it fits. The sync and async clients drive it alike."""
        while True:
            ctx = yield ("context", {})
            request = self.build(plan, ctx)
            estimated = self.estimate(plan)
            if estimated > plan.limit:
                self.shrink(plan, f"estimated {estimated:,} tokens > {plan.limit:,}", estimated)
                continue
            if estimated > EDGE * plan.limit:  # near the edge: ask the API to count
                params = {"model": plan.model, "system": request["system"], "messages": request["messages"],
                          **({"tools": request["tools"]} if request.get("tools") else {})}
                counted = yield ("count_tokens", params)
                self.calibrate(plan.model, plan.local_tokens, counted)
                if counted > plan.limit:
                    self.shrink(plan, f"count_tokens says {counted:,} > {plan.limit:,}", counted)
                    continue
            return request

    def estimate(self, plan: _Plan) -> int:
        """The request last built, in the model's tokens as calibrated so far."""
        return int(plan.local_tokens * self.calibration.get(plan.model, 1.0))

    def calibrate(self, model: str, local: int, actual: int) -> None:
        if local <= 0 or actual <= 0:
            return
        with self.lock:
            measured = actual / local
            old = self.calibration.get(model)
            self.calibration[model] = measured if old is None else 0.5 * old + 0.5 * measured

    def shrink(self, plan: _Plan, why: str, estimated: int) -> None:
        """Lower context()'s budget so the next build fits; raise when it cannot shrink."""
        fixed = sum(self.fixed_tokens(plan).values())
        if fixed >= plan.limit:
            raise self.overflow(plan, why)
        ratio = self.calibration.get(plan.model, 1.0)
        factor = min(0.9, plan.limit / max(estimated, 1) * 0.95)
        # What the limit leaves for context() once the tools are in, in its own (local) count.
        target = int(plan.limit * 0.95 / ratio) - approx_tokens(json.dumps(plan.tools or "", ensure_ascii=False))
        budget = min(int(plan.context_budget * factor), target)
        if budget < 256 or plan.report.overflow_retries >= OVERFLOW_RETRIES:
            raise self.overflow(plan, why)
        plan.report.overflow_retries += 1
        plan.report.dropped.append(Dropped(what="request", why=f"{why}: rebuilt with a {budget:,}-token context budget "
                                                               f"(was {plan.context_budget:,})", tokens=estimated))
        plan.context_budget = budget

    def too_long(self, plan: _Plan, exc: PromptTooLong) -> None:
        found = _TOO_LONG.search(str(exc.__cause__ or exc))
        estimated = self.estimate(plan)
        if found:
            actual, maximum = (int(g.replace(",", "")) for g in found.groups())
            self.calibrate(plan.model, plan.local_tokens, actual)
            with self.lock:  # the window the API enforces: later requests are planned for it
                self.learned_limit[plan.model] = min(maximum, self.learned_limit.get(plan.model, maximum))
            plan.limit = min(plan.limit, maximum)
            estimated = actual
        self.shrink(plan, "the API answered 'prompt is too long'", max(estimated, plan.limit + 1))

    def user_turns(self, plan: _Plan) -> list[dict[str, Any]]:
        """The new turns to store. An assistant message passed back (a tool loop appending
        `response.content`) is the reply already stored after the last call: not twice."""
        return [dict(m) for m in plan.new if m["role"] != "assistant"]

    def finish(self, plan: _Plan, request: Mapping[str, Any], message: Any) -> list[dict[str, Any]]:
        """Account for the reply; returns the assistant turn to store."""
        usage = CallUsage.of(message, purpose="chat", model=plan.model)
        self.calibrate(plan.model, plan.local_tokens, usage.prompt_tokens)
        report = plan.report
        report.estimated_tokens = self.estimate(plan)
        report.calibration = self.calibration.get(plan.model, 1.0)
        report.usage = {"input_tokens": usage.input_tokens, "cache_write_5m": usage.cache_write_5m,
                        "cache_write_1h": usage.cache_write_1h, "cache_read": usage.cache_read,
                        "output_tokens": usage.output_tokens}
        report.cache_read_share = usage.cache_read / usage.prompt_tokens if usage.prompt_tokens else 0.0
        if report.context is not None:
            report.dropped = report.context.dropped + report.dropped
        key = (plan.user_id, plan.session_id)
        with self.lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            prefix = (report.context.prefix_tokens if report.context else 0) + approx_tokens(
                json.dumps(request.get("tools") or "", ensure_ascii=False))
            minimum = model_info(plan.model).cache_min_tokens
            if self.requests[key] >= 2 and usage.cache_read == 0 and prefix >= minimum and key not in self.warned:
                self.warned.add(key)
                note = (f"no cache reads although the stable prefix (~{prefix:,} tokens) is above {plan.model}'s "
                        f"minimum of {minimum:,}: something in the system prompt or tools changes between requests")
                report.notes.append(note)
                logger.warning("tiermem: session %r of %r: %s", plan.session_id, plan.user_id, note)
            blocks = [b.model_dump(exclude_none=True) for b in message.content]
            if any(b.get("type") == "tool_use" for b in blocks):
                self.pending_tool_use[key] = [b for b in blocks if b.get("type") in ("text", "tool_use")]
            else:
                self.pending_tool_use.pop(key, None)
        with contextlib.suppress(Exception):
            message.tiermem_report = report
        storable = [b for b in blocks if b.get("type") in ("text", "tool_use") and (b.get("text") or b.get("type") == "tool_use")]
        return [{"role": "assistant", "content": storable}] if storable else []


def _context_args(plan: _Plan) -> dict[str, Any]:
    return {"message": _query(plan.new), "user_id": plan.user_id, "session_id": plan.session_id,
            "system": _system_text(plan.system), "budget": plan.context_budget, "documents": plan.documents,
            "exclude_turns": plan.stored}


def _place_breakpoints(request: dict[str, Any]) -> int:
    """At most 4 breakpoints, and one at least every 15 message blocks where slots are left.
    Over 4 (tools + system + stable documents + summary + history), the intermediate system
    ones go first, then the tools' (a later breakpoint covers everything before it)."""
    tools = [t for t in request.get("tools") or [] if "cache_control" in t]
    system = [b for b in request.get("system") or [] if isinstance(b, dict) and "cache_control" in b]
    history = [b for m in request["messages"] for b in m["content"] if isinstance(b, dict) and "cache_control" in b]
    count = len(tools) + len(system) + len(history)
    while count > MAX_BREAKPOINTS and (len(system) > 1 or tools):
        (system.pop(-2) if len(system) > 1 else tools.pop(0)).pop("cache_control")
        count -= 1
    since = 0
    for message in request["messages"][:-1]:
        for block in message["content"]:
            since = 0 if "cache_control" in block else since + 1
            if since >= LOOKBACK_EVERY and count < MAX_BREAKPOINTS:
                block["cache_control"] = {"type": "ephemeral"}
                since, count = 0, count + 1
    return count


class _Messages:
    def __init__(self, owner: MemoryClient):
        self._owner = owner

    def create(self, **kw: Any) -> Any:
        """`anthropic.Anthropic().messages.create(...)` plus `user_id`, `session_id`, `budget`
        (and `documents`, as context() takes them); `messages` holds only the new turn(s)."""
        return self._owner._create(kw)

    @contextlib.contextmanager
    def stream(self, **kw: Any) -> Iterator[Any]:
        """`messages.stream(...)` with memory: yields the SDK's MessageStream; the reply is
        stored when the stream completes. Opening it is retried like any call."""
        owner = self._owner
        plan, request = owner._prepare(kw)
        while True:
            try:
                stream = owner.caller.call(lambda r=request: owner.client.messages.stream(**r).__enter__(),
                                           purpose="chat", user_id=plan.user_id, session_id=plan.session_id,
                                           params=request, record=False)
            except PromptTooLong as exc:
                owner.planner.too_long(plan, exc)
                request = owner._build(plan)
                continue
            break
        try:
            yield stream
            final = stream.get_final_message()
        finally:
            stream.close()
        owner.caller.record_message(final, purpose="chat", user_id=plan.user_id, session_id=plan.session_id)
        owner._store_reply(plan, request, final)


class MemoryClient:
    """Wraps `anthropic.Anthropic` with tiermem memory.

    Args:
        client: the SDK client (its own retries are switched off: tiermem's model-call layer
            retries 429/529/5xx and timeouts, and records every call's usage).
        memory: the memory that stores turns and facts: any `MemoryAPI` (`Memory.open()`,
            or `Memory.open(url=...)` beside `tiermem serve`).
        budget: tokens a request may hold (default: the model's context window minus
            `max_tokens`, from the model table).

    Example:
        >>> chat = MemoryClient(anthropic.Anthropic(), Memory.open())
        >>> reply = chat.messages.create(model="claude-haiku-4-5", max_tokens=512, user_id="ana",
        ...                              system="You are a travel assistant.",
        ...                              messages=[{"role": "user", "content": "What should I pack?"}])
        >>> chat.last_report.cache_read_share
    """

    def __init__(self, client: Any, memory: MemoryAPI, *, budget: int | None = None, caller: ModelCaller | None = None):
        require_credentials(client, type(self).__name__)
        self.client = client.with_options(max_retries=0)
        self.memory = memory
        # A chat reply may take minutes to generate: the SDK's own 600 s, not the write path's 120 s.
        self.caller = caller or ModelCaller(self.client, policy=RetryPolicy(timeout=600.0))
        if self.caller.record is None:
            self.caller.record = memory.record_usage
        self.planner = _Planner(memory, budget)
        self.messages = _Messages(self)
        self.last_report: RequestReport | None = None

    def usage(self, user_id: str | None = None, session_id: str | None = None) -> Any:
        return self.memory.usage(user_id, session_id)

    def _context(self, plan: _Plan) -> Context:
        return self.memory.context(**_context_args(plan))

    def _build(self, plan: _Plan) -> dict[str, Any]:
        """Build the request, shrinking it until the calibrated estimate fits (the steps are
        the planner's; this shell only makes the calls)."""
        steps = self.planner.build_steps(plan)
        answer: Any = None
        while True:
            try:
                kind, request = steps.send(answer)
            except StopIteration as done:
                return done.value
            answer = self._context(plan) if kind == "context" else self.caller.call(
                lambda r=request: self.client.messages.count_tokens(**r).input_tokens,
                purpose="count_tokens", user_id=plan.user_id, record=False)

    def _prepare(self, kw: dict[str, Any]) -> tuple[_Plan, dict[str, Any]]:
        plan = self.planner.start(dict(kw))
        self.last_report = plan.report
        # The new turn is stored first (a failed call loses nothing); the request sends it
        # verbatim, so it is left out of the history context() reads.
        stored = self.memory.add(self.planner.user_turns(plan), user_id=plan.user_id, session_id=plan.session_id)
        plan.stored = [t.id for t in stored.turns]
        if sum(self.planner.fixed_tokens(plan).values()) >= plan.limit:
            raise self.planner.overflow(plan, "before sending")
        return plan, self._build(plan)

    def _create(self, kw: dict[str, Any]) -> Any:
        plan, request = self._prepare(kw)
        while True:
            try:
                message = self.caller.create(purpose="chat", user_id=plan.user_id, session_id=plan.session_id, **request)
            except PromptTooLong as exc:
                self.planner.too_long(plan, exc)
                request = self._build(plan)
                continue
            self._store_reply(plan, request, message)
            return message

    def _store_reply(self, plan: _Plan, request: Mapping[str, Any], message: Any) -> None:
        reply = self.planner.finish(plan, request, message)
        if reply:
            self.memory.add(reply, user_id=plan.user_id, session_id=plan.session_id)


class _AsyncMessages:
    def __init__(self, owner: AsyncMemoryClient):
        self._owner = owner

    async def create(self, **kw: Any) -> Any:
        return await self._owner._create(kw)

    @contextlib.asynccontextmanager
    async def stream(self, **kw: Any) -> AsyncIterator[Any]:
        owner = self._owner
        plan, request = await owner._prepare(kw)
        while True:
            try:
                stream = await owner.caller.acall(lambda r=request: owner.client.messages.stream(**r).__aenter__(),
                                                  purpose="chat", user_id=plan.user_id, session_id=plan.session_id,
                                                  params=request, record=False)
            except PromptTooLong as exc:
                owner.planner.too_long(plan, exc)
                request = await owner._build(plan)
                continue
            break
        try:
            yield stream
            final = await stream.get_final_message()
        finally:
            await stream.close()
        owner.caller.record_message(final, purpose="chat", user_id=plan.user_id, session_id=plan.session_id)
        await owner._store_reply(plan, request, final)


class AsyncMemoryClient:
    """`MemoryClient` for `anthropic.AsyncAnthropic`: the same planning, awaited I/O."""

    def __init__(self, client: Any, memory: MemoryAPI, *, budget: int | None = None, caller: ModelCaller | None = None):
        require_credentials(client, type(self).__name__)
        self.client = client.with_options(max_retries=0)
        self.memory = memory
        self.caller = caller or ModelCaller(async_client=self.client, policy=RetryPolicy(timeout=600.0))
        if self.caller.record is None:
            self.caller.record = memory.record_usage
        self.planner = _Planner(memory, budget)
        self.messages = _AsyncMessages(self)
        self.last_report: RequestReport | None = None

    async def _build(self, plan: _Plan) -> dict[str, Any]:
        steps = self.planner.build_steps(plan)
        answer: Any = None
        while True:
            try:
                kind, request = steps.send(answer)
            except StopIteration as done:
                return done.value
            if kind == "context":
                answer = await self.memory.acontext(**_context_args(plan))
            else:
                answer = await self.caller.acall(lambda r=request: self.client.messages.count_tokens(**r),
                                                 purpose="count_tokens", user_id=plan.user_id, record=False)
                answer = answer.input_tokens

    async def _prepare(self, kw: dict[str, Any]) -> tuple[_Plan, dict[str, Any]]:
        plan = self.planner.start(dict(kw))
        self.last_report = plan.report
        stored = await self.memory.aadd(self.planner.user_turns(plan), user_id=plan.user_id, session_id=plan.session_id)
        plan.stored = [t.id for t in stored.turns]
        if sum(self.planner.fixed_tokens(plan).values()) >= plan.limit:
            raise self.planner.overflow(plan, "before sending")
        return plan, await self._build(plan)

    async def _create(self, kw: dict[str, Any]) -> Any:
        plan, request = await self._prepare(kw)
        while True:
            try:
                message = await self.caller.acreate(purpose="chat", user_id=plan.user_id, session_id=plan.session_id,
                                                    **request)
            except PromptTooLong as exc:
                self.planner.too_long(plan, exc)
                request = await self._build(plan)
                continue
            await self._store_reply(plan, request, message)
            return message

    async def _store_reply(self, plan: _Plan, request: Mapping[str, Any], message: Any) -> None:
        reply = self.planner.finish(plan, request, message)
        if reply:
            await self.memory.aadd(reply, user_id=plan.user_id, session_id=plan.session_id)


__all__ = ["AsyncMemoryClient", "MemoryClient", "RequestReport", "TiermemMemoryTool"]
