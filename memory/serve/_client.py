"""RemoteMemory: the Memory API over `tiermem serve`, with the same methods, results and
errors as in-process (stdlib http.client; one keep-alive connection per thread)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .._contract import MemoryAPI
from .._errors import ConfigError, StoreUnavailable
from ._api import encode_args, error_for, load_result


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

    def _post(self, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(2):  # a kept-alive connection the server closed: once more, fresh
            conn = self._connection()
            try:
                conn.request("POST", f"/v1/{name}", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                return response.status, json.loads(data or b"{}")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise ConnectionError(str(exc)) from exc
        raise AssertionError("unreachable")

    def call(self, name: str, **kwargs: Any) -> Any:
        body = json.dumps(encode_args(kwargs), ensure_ascii=False).encode()
        try:
            status, payload = self._post(name, body)
            gone = payload.get("error", {}).get("type") in _OWNER_GONE
        except (ConnectionError, OSError) as exc:
            if self.reconnect is None:
                raise StoreUnavailable(f"cannot reach tiermem at {self.url} ({exc}); is `tiermem serve` running?") from exc
            gone = True
        if gone and self.reconnect is not None:
            url, key = self.reconnect()  # the owner went away: find or become the new one
            self._set_url(url)
            self.api_key = key
            status, payload = self._post(name, body)
        if "error" in payload:
            error = payload["error"]
            raise error_for(error.get("type", "TieredMemoryError"), error.get("message", f"HTTP {status}"))
        return load_result(name, payload["result"])

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
