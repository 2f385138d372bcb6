"""RemoteMemory: the Memory API over `tiermem serve`, with the same methods, results and
errors as in-process (stdlib http.client; one keep-alive connection per thread)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .. import telemetry
from .._contract import MemoryAPI
from .._errors import ConfigError, InvalidInput, OutcomeUnknown, StoreUnavailable
from ._api import encode_args, error_for, load_result
from ._server import KEY_HEADER, RECORDED


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class RemoteMemory(MemoryAPI):
    """A served memory: every `MemoryAPI` method, with the same results and errors as
    in-process, over `tiermem serve`.

    Args:
        url: "http://127.0.0.1:PORT" or "unix:///path/to/socket".
        api_key: sent as `Authorization: Bearer` (default $TIERMEM_API_KEY).
        timeout: seconds per request.
        reconnect: called when the server cannot be reached, returning a new (url, api_key)
            (the shared-home coordinator: another process may have taken over).
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 reconnect: Callable[[], tuple[str, str | None]] | None = None):
        import os

        self._set_url(url)
        self.api_key = api_key if api_key is not None else os.environ.get("TIERMEM_API_KEY")
        self.timeout = timeout
        self.reconnect = reconnect
        self._local = threading.local()
        self._unanswered: dict[str, tuple[str, bytes]] = {}  # OutcomeUnknown writes by key, for resend()

    def _set_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "unix") or (parts.scheme == "http" and not parts.hostname):
            raise ConfigError(f"url must be http://HOST:PORT or unix:///PATH, got {url!r}")
        self.url = url
        self._parts = parts
        self._generation = getattr(self, "_generation", 0) + 1

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "generation", None) != self._generation:
            p = self._parts
            conn = (_UnixConnection(p.path, self.timeout) if p.scheme == "unix"
                    else http.client.HTTPConnection(p.hostname or "127.0.0.1", p.port or 80, timeout=self.timeout))
            self._local.conn, self._local.generation = conn, self._generation
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def _post(self, name: str, body: bytes, key: str | None) -> tuple[int, dict[str, Any]]:
        """One request on this thread's connection; any failure drops the connection (a
        half-used one would refuse every later request). A connection the server closed
        while idle is retried once, fresh."""
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if key is not None:
            headers[KEY_HEADER] = key
        telemetry.inject(headers)
        for attempt in range(2):
            conn = self._connection()
            broken = False
            try:
                try:
                    conn.request("POST", f"/v1/{name}", body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # A server at its connection cap answers 503 Busy and closes without reading
                    # the request: its answer may be waiting on the socket; read it if so, but
                    # never wait for one (what is there is there already).
                    if conn.sock is None:
                        raise
                    conn.sock.settimeout(min(self.timeout, 1.0))
                    broken = True
                try:
                    response = conn.getresponse()
                    data = response.read()
                except TimeoutError:
                    if broken:  # nothing was waiting: the connection is simply gone
                        raise ConnectionResetError("no answer after a broken send") from None
                    raise
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if attempt:
                    raise ConnectionError(str(exc)) from exc
                continue
            except BaseException:
                self._drop()
                raise
            if response.getheader("Connection", "").lower() == "close":
                self._drop()
            try:
                return response.status, json.loads(data or b"{}")
            except ValueError:
                return response.status, {"error": {"type": "TieredMemoryError",
                                                   "message": f"HTTP {response.status} with a body that is not JSON"}}
        raise AssertionError("unreachable")

    def call(self, name: str, **kwargs: Any) -> Any:
        """A method by name. A write is sent with an idempotency key: resent after a lost
        answer, or to a new owner after a failover, it is applied once."""
        key = uuid.uuid4().hex if name in RECORDED else None
        if not telemetry.listening():
            return self.call_with_key(name, key, **kwargs)
        with telemetry.operation(name, lambda: kwargs, kind="CLIENT") as span:
            span.set("server.address", self.url)
            result = self.call_with_key(name, key, **kwargs)
            span.result(name, result)
            return result

    def call_with_key(self, name: str, key: str | None, **kwargs: Any) -> Any:
        """A method by name under a given idempotency key (a write resent from elsewhere)."""
        body = json.dumps(encode_args(kwargs), ensure_ascii=False).encode()
        return self._send(name, body, key)

    def resend(self, key: str) -> Any:
        """Send again the write that raised `OutcomeUnknown` with this key: the server answers
        with its first result if it had stored it, and stores it now if it had not."""
        if key not in self._unanswered:
            raise InvalidInput(f"no unanswered request with key {key!r} in this client")
        name, body = self._unanswered[key]
        return self._send(name, body, key)

    def _send(self, name: str, body: bytes, key: str | None) -> Any:
        try:
            status, payload = self._post(name, body, key)
            gone = payload.get("error", {}).get("type") in _OWNER_GONE
        except TimeoutError as exc:
            raise self._unknown(name, body, key, f"no answer from {self.url} within {self.timeout:g} s") from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:  # an answer cut mid-body too (IncompleteRead)
            if self.reconnect is None:
                if key is not None:
                    raise self._unknown(name, body, key, f"the connection to {self.url} broke ({exc})") from exc
                raise StoreUnavailable(f"cannot reach tiermem at {self.url} ({exc}); is `tiermem serve` running?") from exc
            gone = True
        if gone and self.reconnect is not None:
            url, api_key = self.reconnect()  # the owner went away: find or become the new one
            self._set_url(url)
            self.api_key = api_key
            try:
                status, payload = self._post(name, body, key)  # the same key: applied once, whoever ran it first
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                raise self._unknown(name, body, key, f"the new owner at {url} did not answer ({exc})") from exc
        if key is not None:
            self._unanswered.pop(key, None)
        if "error" in payload:
            error = payload["error"]
            raise error_for(error.get("type", "TieredMemoryError"), error.get("message", f"HTTP {status}"))
        return load_result(name, payload["result"])

    def _unknown(self, name: str, body: bytes, key: str | None, why: str) -> StoreUnavailable:
        if key is None:
            return StoreUnavailable(f"{name}: {why}")
        self._unanswered[key] = (name, body)
        while len(self._unanswered) > 100:
            self._unanswered.pop(next(iter(self._unanswered)))
        return OutcomeUnknown(f"{name}: {why}; the write may have been stored. RemoteMemory.resend({key!r}) sends it "
                              "again and is answered with the first result if it was", key)

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        return self.call(name, **arguments)

    @property
    def location(self) -> str:
        return self.url

    def close(self, timeout: float | None = None) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    def __enter__(self) -> RemoteMemory:
        return self


_OWNER_GONE = frozenset({"ServerStopping", "MemoryClosed"})  # the owner is leaving: follow the next one
