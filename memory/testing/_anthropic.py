"""A fake Anthropic Messages API on 127.0.0.1, driven through the real `anthropic` SDK.

It answers POST /v1/messages (JSON or SSE), /v1/messages/count_tokens and the Message
Batches endpoints, simulates prompt caching the way the API documents it (a prefix match
over tools -> system -> messages at cache_control breakpoints, a 20-block lookback, the
model's minimum cacheable length, 5-minute and 1-hour TTLs) and the context window (the
real 400 "prompt is too long" body). Each test scripts faults per request; every usage the
server reports is kept in `reported`, so tests can compare tiermem's accounting with it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOKBACK = 20


def approx(text: str) -> int:
    return (len(text) + 3) // 4


# -- scripted faults -------------------------------------------------------------------------
@dataclass
class Error:
    status: int
    type: str
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)


def rate_limited(retry_after: float | None = None) -> Error:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", headers)


OVERLOADED = Error(529, "overloaded_error", "Overloaded")
SERVER_ERROR = Error(500, "api_error", "Internal server error")


@dataclass
class Hang:
    """Sleep before answering: longer than the client's timeout, it is a timeout."""

    seconds: float


@dataclass
class StreamError:
    """Start a stream, then send an `error` event (HTTP 200, overloaded_error)."""


@dataclass
class Reply:
    """A reply with this text, or a tool_use block (`tool_name`, default the forced tool)."""

    text: str | None = None
    stop_reason: str = "end_turn"
    tool_input: dict | None = None
    tool_name: str | None = None


Action = Error | Hang | StreamError | Reply | None


@dataclass
class Reported:
    model: str
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    ephemeral_5m: int
    ephemeral_1h: int
    service_tier: str = "standard"


class PromptCache:
    """Prefix caching as documented: entries written at breakpoints whose prefix reaches the
    model's minimum, read by a later request whose breakpoint (or one of the 20 blocks
    before it) ends the same prefix, TTL refreshed on read."""

    def __init__(self, minimum: Callable[[str], int], clock: Callable[[], float] = time.monotonic):
        self.minimum = minimum
        self.clock = clock
        self.entries: dict[tuple[str, str], float] = {}  # (model, prefix hash) -> expiry
        self.lock = threading.Lock()

    @staticmethod
    def blocks(body: dict) -> list[tuple[str, str | None]]:
        """(rendered block, ttl if a breakpoint closes it) in cache order: tools, system, messages."""
        out: list[tuple[str, str | None]] = []

        def mark(block: Any) -> str | None:
            cc = block.get("cache_control") if isinstance(block, dict) else None
            return (cc.get("ttl") or "5m") if cc else None

        def render(block: Any) -> str:
            if isinstance(block, dict):
                block = {k: v for k, v in block.items() if k != "cache_control"}
            return json.dumps(block, sort_keys=True, ensure_ascii=False)

        for tool in body.get("tools") or []:
            out.append((render(tool), mark(tool)))
        system = body.get("system")
        if isinstance(system, str):
            out.append((system, None))
        for block in system or [] if not isinstance(system, str) else []:
            out.append((render(block), mark(block)))
        for message in body.get("messages", []):
            content = message["content"]
            if isinstance(content, str):
                out.append((message["role"] + render(content), None))
            else:
                for block in content:
                    out.append((message["role"] + render(block), mark(block)))
        top = body.get("cache_control")
        if top and out:  # automatic caching: a breakpoint on the last block
            text, ttl = out[-1]
            out[-1] = (text, ttl or top.get("ttl") or "5m")
        return out

    def account(self, body: dict) -> tuple[int, int, int, str | None]:
        """(uncached input, cache write, cache read, write ttl) for a request; writes entries."""
        blocks = self.blocks(body)
        sizes = [approx(text) for text, _ in blocks]
        cum = list(itertools.accumulate(sizes))
        total = cum[-1] if cum else 0
        hashes, h = [], hashlib.sha256()
        for text, _ in blocks:
            h.update(text.encode())
            h.update(b"\x00")
            hashes.append(h.copy().hexdigest())
        model = body["model"]
        breakpoints = [i for i, (_, ttl) in enumerate(blocks) if ttl]
        now = self.clock()
        with self.lock:
            hit = -1
            for b in breakpoints:
                for j in range(b, max(-1, b - LOOKBACK - 1), -1):
                    expiry = self.entries.get((model, hashes[j]))
                    if expiry is not None and expiry > now:
                        hit = max(hit, j)
                        break
            read = cum[hit] if hit >= 0 else 0
            if hit >= 0:
                ttl_hit = 3600 if any(blocks[b][1] == "1h" for b in breakpoints if b >= hit) else 300
                self.entries[(model, hashes[hit])] = now + ttl_hit
            write, write_ttl = 0, None
            for b in breakpoints:
                if cum[b] >= self.minimum(model) and b > hit:
                    ttl = blocks[b][1]
                    self.entries[(model, hashes[b])] = now + (3600 if ttl == "1h" else 300)
                    write, write_ttl = cum[b] - read, ttl
        return total - read - write, write, read, write_ttl


class FakeAnthropic:
    """The server. `responder(body) -> Reply` answers requests no fault was scripted for;
    `script` is a list of actions taken by the next requests in order (None: answer
    normally); `schedule(n, body) -> Action` can decide per request instead."""

    def __init__(self, responder: Callable[[dict], Reply] | None = None, *, context_window: int = 200_000,
                 cache_minimum: int | Callable[[str], int] = 1024):
        self.responder = responder or (lambda body: Reply("ok"))
        self.script: list[Action] = []
        self.schedule: Callable[[int, dict], Action] | None = None
        self.context_window = context_window
        minimum = cache_minimum if callable(cache_minimum) else (lambda model, m=cache_minimum: m)
        self.cache = PromptCache(minimum)
        self.requests: list[dict] = []
        self.reported: list[Reported] = []
        self.batches: dict[str, dict] = {}
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeAnthropic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def client(self, **options: Any) -> Any:
        import anthropic

        return anthropic.Anthropic(api_key="test-key", base_url=self.url, max_retries=0, **options)

    def async_client(self, **options: Any) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(api_key="test-key", base_url=self.url, max_retries=0, **options)

    # -- totals ------------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        with self.lock:
            return {
                "input_tokens": sum(r.input_tokens for r in self.reported),
                "cache_write": sum(r.cache_creation_input_tokens for r in self.reported),
                "cache_read": sum(r.cache_read_input_tokens for r in self.reported),
                "output_tokens": sum(r.output_tokens for r in self.reported),
                "responses": len(self.reported),
            }

    # -- answering ---------------------------------------------------------------------------
    def _next_action(self, body: dict) -> Action:
        with self.lock:
            n = len(self.requests)
            self.requests.append(body)
            if self.script:
                return self.script.pop(0)
        return self.schedule(n, body) if self.schedule else None

    def _message(self, body: dict, reply: Reply, tier: str = "standard", delivered: bool = True) -> dict:
        uncached, write, read, ttl = self.cache.account(body)
        if reply.tool_input is not None:
            content = [{"type": "tool_use", "id": f"toolu_{next(self._ids)}", "name": reply.tool_name or body["tool_choice"]["name"],
                        "input": reply.tool_input}]
            out_text = json.dumps(reply.tool_input)
        else:
            content = [{"type": "text", "text": reply.text or ""}]
            out_text = reply.text or ""
        output = approx(out_text) + 1
        write_5m, write_1h = (write, 0) if ttl != "1h" else (0, write)
        usage = {"input_tokens": uncached, "output_tokens": output, "cache_creation_input_tokens": write,
                 "cache_read_input_tokens": read, "service_tier": tier,
                 "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h}}
        with self.lock:
            if delivered:  # an answer to a client that timed out was never reported to it
                self.reported.append(Reported(body["model"], uncached, write, read, output, write_5m, write_1h, tier))
        return {"id": f"msg_{next(self._ids):06d}", "type": "message", "role": "assistant", "model": body["model"],
                "content": content, "stop_reason": reply.stop_reason, "stop_sequence": None, "usage": usage}

    def _too_long(self, body: dict) -> Error | None:
        total = sum(approx(text) for text, _ in PromptCache.blocks(body))
        if total > self.context_window:
            return Error(400, "invalid_request_error",
                         f"prompt is too long: {total} tokens > {self.context_window} maximum")
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", f"req_{next(fake._ids)}")
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, e: Error) -> None:
                self._send(e.status, {"type": "error", "error": {"type": e.type, "message": e.message},
                                      "request_id": "req_fake"}, e.headers)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.startswith("/v1/messages/count_tokens"):
                    total = sum(approx(text) for text, _ in PromptCache.blocks(body))
                    return self._send(200, {"input_tokens": total})
                if self.path.startswith("/v1/messages/batches"):
                    return self._create_batch(body)
                action = fake._next_action(body)
                if isinstance(action, Error):
                    return self._error(action)
                if isinstance(action, Hang):
                    time.sleep(action.seconds)
                too_long = fake._too_long(body)
                if too_long is not None:
                    return self._error(too_long)
                if isinstance(action, StreamError) and not body.get("stream"):
                    return self._error(OVERLOADED)
                reply = action if isinstance(action, Reply) else fake.responder(body)
                if body.get("stream"):
                    return self._stream(body, reply, isinstance(action, StreamError))
                self._send(200, fake._message(body, reply, delivered=not isinstance(action, Hang)))

            def _stream(self, body: dict, reply: Reply, fail: bool) -> None:
                events: list[tuple[str, dict]] = []
                if fail:
                    start = {"id": "msg_s", "type": "message", "role": "assistant", "model": body["model"], "content": [],
                             "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}
                    events = [("message_start", {"type": "message_start", "message": start}),
                              ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
                else:
                    message = fake._message(body, reply)
                    text = message["content"][0].get("text", "")
                    usage = message["usage"]
                    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
                    events = [
                        ("message_start", {"type": "message_start", "message": start}),
                        ("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "text", "text": ""}}),
                        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": text}}),
                        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                                              "stop_sequence": None},
                                           "usage": {"output_tokens": usage["output_tokens"]}}),
                        ("message_stop", {"type": "message_stop"}),
                    ]
                data = "".join(f"event: {name}\ndata: {json.dumps(payload)}\n\n" for name, payload in events).encode()
                self._send(200, data, content_type="text/event-stream")

            # -- Message Batches: processed at once, results kept until fetched ------------
            def _create_batch(self, body: dict) -> None:
                batch_id = f"msgbatch_{next(fake._ids):06d}"
                results = []
                for request in body["requests"]:
                    params = {**request["params"]}
                    action = fake._next_action(params)
                    if isinstance(action, Error):
                        result = {"type": "errored", "error": {"type": "error", "error": {"type": action.type,
                                                                                          "message": action.message}}}
                    else:
                        reply = action if isinstance(action, Reply) else fake.responder(params)
                        result = {"type": "succeeded", "message": fake._message(params, reply, tier="batch")}
                    results.append({"custom_id": request["custom_id"], "result": result})
                fake.batches[batch_id] = {"results": results, "polls": 0}
                self._send(200, fake._batch(batch_id, ended=False))

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"] and parts[3] in fake.batches:
                    batch_id = parts[3]
                    if len(parts) == 5 and parts[4] == "results":
                        lines = "\n".join(json.dumps(r) for r in fake.batches[batch_id]["results"]) + "\n"
                        return self._send(200, lines.encode(), content_type="application/x-jsonl")
                    fake.batches[batch_id]["polls"] += 1
                    return self._send(200, fake._batch(batch_id, ended=fake.batches[batch_id]["polls"] >= 1))
                self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}})

        return Handler

    def _batch(self, batch_id: str, ended: bool) -> dict:
        results = self.batches[batch_id]["results"]
        ok = sum(r["result"]["type"] == "succeeded" for r in results)
        return {"id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else len(results), "succeeded": ok if ended else 0,
                                   "errored": len(results) - ok if ended else 0, "canceled": 0, "expired": 0},
                "created_at": "2026-11-24T00:00:00Z", "expires_at": "2026-11-25T00:00:00Z",
                "ended_at": "2026-11-24T00:01:00Z" if ended else None, "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None}


# -- a scripted "model" for extraction requests ------------------------------------------------
def turns_of(body: dict) -> list[tuple[str, str, str, str]]:
    """(short id, speaker, role, text) of each turn line of an extraction request."""
    import re

    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
    return [(m.group(1), m.group(2), m.group(3), m.group(4))
            for m in re.finditer(r"^\[(t\d+)\] [^|]*\| (.+?) \((user|assistant)\): (.*)$", text, re.M)]


def fact_json(text: str, sources: list[str], subject: str = "Ana", kind: str = "semantic",
              attribute: str | None = None, value: str | None = None, event_date: str | None = None) -> dict:
    return {"text": text, "kind": kind, "subject": subject, "attribute": attribute, "value": value,
            "importance": 0.6, "sources": sources, "event_date": event_date}


def extraction_responder(body: dict) -> Reply:
    """One fact per user turn, 'Speaker says: text' (a model that understands nothing but
    follows the schema), so a test can tell Claude's facts from the rules' by their wording."""
    facts = [fact_json(f"{speaker} says: {text}", [short], subject=speaker)
             for short, speaker, role, text in turns_of(body) if role == "user"]
    payload = {"facts": facts}
    if body.get("tool_choice"):
        return Reply(tool_input=payload, stop_reason="tool_use")
    return Reply(json.dumps(payload))
