"""`tiermem serve`: one process owns a home and serves its Memory over HTTP (stdlib only).

Threads serve requests in parallel; Memory is thread-safe, and reads never wait for a write.
Requests are `POST /v1/<method>` (`GET /v1/health` too); bodies are JSON objects of at most
`max_body` bytes. A server bound to anything but loopback must have an API key
(`Authorization: Bearer <key>`), checked before a body is read.

What a client cannot do to it: hold a thread by sending nothing (every read times out, an
idle keep-alive connection is closed after `idle_timeout` seconds, and past
`max_connections` a new connection is answered 503 at once); desynchronise a connection (a
refused request's connection is closed); get a 500 for a malformed body (400, or 413 when
it is too large). A write that carries an `Idempotency-Key` is run once: a resend (a client
that lost the answer, or one that followed a new owner after a failover) gets the first
answer.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socket as socketlib
import socketserver
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .. import telemetry
from .._errors import ConfigError, InvalidInput, TieredMemoryError
from .._requests import request_key
from ._api import STATUS, VERSION, decode_args, dump_result

logger = logging.getLogger("tiermem.serve")
MAX_BODY = 4 * 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # an over-limit body up to this size is read and dropped, so the client sees the 413
IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing (headers, a body, the next request)
MAX_CONNECTIONS = 256
KEY_HEADER = "Idempotency-Key"
# Writes a resend must not repeat (items are idempotent puts and return documents, which an
# erasure could not reach in the request log: not recorded).
RECORDED = frozenset({"add", "remember", "update", "retract", "restore", "forget", "forget_session", "forget_user",
                      "write_file", "delete_files", "record_usage"})


def read_api_key(given: str | None, key_file: str | os.PathLike[str] | None, *, warn: Any = None) -> str | None:
    """The server's API key: from `key_file` (its first line), else `given` ($TIERMEM_API_KEY
    or --api-key). A key typed on the command line is readable by every local user in `ps`,
    so `warn` is told to say so."""
    if key_file is not None:
        path = Path(key_file)
        try:
            lines = path.read_text(encoding="utf-8").strip().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--api-key-file {path}: cannot read it ({exc})") from exc
        key = lines[0].strip() if lines else ""
        if len(key) < 16:
            raise ConfigError(f"--api-key-file {path}: the key on its first line must be at least 16 characters")
        return key
    if given is not None and len(given) < 16:
        raise ConfigError("the API key must be at least 16 characters (make one: python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')")
    if given is not None and warn is not None and os.environ.get("TIERMEM_API_KEY") != given:
        warn("--api-key on the command line is visible to other local users in `ps`; prefer --api-key-file "
             "or $TIERMEM_API_KEY")
    return given


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server_version = f"tiermem/{VERSION}"
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    timeout = IDLE_TIMEOUT  # applied to the socket: a silent client is dropped, its thread freed
    app: MemoryServer

    def setup(self) -> None:
        super().setup()
        if self.connection.family in (socketlib.AF_INET, socketlib.AF_INET6):
            # An answer is written as headers, then body: with Nagle's algorithm the body waits for
            # the client to acknowledge the headers, which it delays by up to 40 ms (delayed ACK):
            # 44 ms per served call instead of 0.7 ms, measured on loopback.
            self.connection.setsockopt(socketlib.IPPROTO_TCP, socketlib.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def address_string(self) -> str:
        return str(self.client_address[0]) if isinstance(self.client_address, tuple) else "unix"

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away, stayed silent, or was hung up on: nothing to answer

    def handle_one_request(self) -> None:
        # The whole request (waiting for it included, on a kept-alive connection) is due
        # within the timeout; a body gets more below, by its length.
        self.server.expect_by(self.request, time.monotonic() + self.timeout)  # type: ignore[attr-defined]
        super().handle_one_request()

    def _head_done(self, authorized: bool) -> None:
        if authorized:
            self.server.proven(self.request)  # type: ignore[attr-defined]

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, kind: str, message: str, *, close: bool = False) -> None:
        if close:
            self.close_connection = True  # a body left unread must not be taken for the next request
        self._send(status, {"error": {"type": kind, "message": message}})

    def _authorized(self) -> bool:
        key = self.app.api_key
        if key is None:
            return True
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())

    def _stopping(self) -> bool:
        if self.app.stopping:
            self._error(503, "ServerStopping", "this server is shutting down; connect again", close=True)
        return self.app.stopping

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self._stopping():
            return
        if self.path.rstrip("/") != "/v1/health":
            self._error(404, "NotFound", "GET serves /v1/health only; methods are POST /v1/<method>")
            return
        if not self._authorized():
            self._error(401, "Unauthorized", "missing or wrong API key (Authorization: Bearer <key>)")
            return
        self._head_done(True)
        self.server.expect_by(self.request, None)  # type: ignore[attr-defined]
        self._send(200, {"result": self.app.health()})

    def do_POST(self) -> None:  # noqa: N802
        if self._stopping():
            return
        if not self.path.startswith("/v1/"):
            self._error(404, "NotFound", "methods are POST /v1/<method>", close=True)
            return
        if not self._authorized():
            self._error(401, "Unauthorized", "missing or wrong API key (Authorization: Bearer <key>)", close=True)
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(411, "LengthRequired", "send a Content-Length", close=True)
            return
        if int(length) > self.app.max_body:
            if int(length) <= DRAIN_LIMIT:  # read and drop it, so the client gets to read this answer
                self._drain(int(length))
            self._error(413, "PayloadTooLarge", f"request body is {length} bytes; the limit is {self.app.max_body}",
                        close=True)
            return
        self._head_done(True)
        # A body at 64 kB/s at least: a slow drip of a large one is cut like a slow head.
        self.server.expect_by(self.request, time.monotonic() + self.timeout + int(length) / 65536)  # type: ignore[attr-defined]
        raw = self.rfile.read(int(length))
        self.server.expect_by(self.request, None)  # type: ignore[attr-defined]
        name = self.path[4:].strip("/")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:  # bad JSON, a 5,000-digit number, deep nesting
            self._error(400, "InvalidInput", f"the body is not JSON this server reads: {str(exc)[:200]}")
            return
        try:
            with telemetry.served(name, dict(self.headers.items()), self.app.url):
                result = self.app.call(name, decode_args(name, body), self.headers.get(KEY_HEADER))
        except TieredMemoryError as exc:
            self._error(STATUS.get(type(exc).__name__, 500), type(exc).__name__, str(exc))
        except (TypeError, ValueError, RecursionError, OverflowError) as exc:  # arguments of the wrong shape
            self._error(400, "InvalidInput", f"{name}: {str(exc)[:500]}")
        except Exception as exc:  # noqa: BLE001 - the server stays up; the log has the traceback
            logger.exception("tiermem serve: %s failed", name)
            self._error(500, "InternalError", f"{type(exc).__name__}: {exc}")
        else:
            self._send(200, {"result": result})

    def _drain(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)


_BUSY = json.dumps({"error": {"type": "Busy", "message": "too many connections; try again in a moment"}}).encode()


class _Capped:
    """At most `max_connections` live connections, none of them held by a client that never
    finishes a request:

    - a request's head and body must arrive within a deadline for the whole of them (a
      slow drip of one byte at a time gets no more time than silence: nginx's
      `client_header_timeout`), checked by one reaper thread;
    - past the cap, a new connection takes the place of the oldest one that has not yet
      presented the API key (has not completed a request, when there is no key), so keyless
      slow clients cannot lock out clients with the key; when every connection has, the new
      one is answered 503 Busy and closed.
    """

    max_connections = MAX_CONNECTIONS

    def _start_guard(self) -> None:
        self._guard_stop = threading.Event()
        self._connections = 0
        self._connections_lock = threading.Lock()
        self._unproven: dict[Any, None] = {}  # connections that have not presented the key, oldest first
        self._deadlines: dict[Any, float] = {}  # connections inside a request: when it must be in
        threading.Thread(target=self._reap, daemon=True, name="tiermem-serve-reaper").start()

    def _count(self, change: int) -> int:
        with self._connections_lock:
            self._connections += change
            return self._connections

    def proven(self, request: Any) -> None:
        with self._connections_lock:
            self._unproven.pop(request, None)

    def expect_by(self, request: Any, deadline: float | None) -> None:
        with self._connections_lock:
            if deadline is None:
                self._deadlines.pop(request, None)
            else:
                self._deadlines[request] = deadline

    def server_close(self) -> None:
        self._guard_stop.set()
        super().server_close()  # type: ignore[misc]

    def _reap(self) -> None:
        while not self._guard_stop.wait(0.25):
            now = time.monotonic()
            with self._connections_lock:
                late = [r for r, deadline in self._deadlines.items() if deadline < now]
                for request in late:
                    self._deadlines.pop(request, None)
            for request in late:
                _hang_up(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._count(+1) > self.max_connections:
            with self._connections_lock:
                victim = next(iter(self._unproven), None)
                if victim is not None:
                    self._unproven.pop(victim)
            if victim is None:
                self._count(-1)
                try:
                    request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                    b"Connection: close\r\nContent-Length: " + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)
                finally:
                    self.shutdown_request(request)  # type: ignore[attr-defined]
                return
            _hang_up(victim)  # its thread ends and gives its slot back
        with self._connections_lock:
            self._unproven[request] = None
        super().process_request(request, client_address)  # type: ignore[misc]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            with self._connections_lock:
                self._unproven.pop(request, None)
                self._deadlines.pop(request, None)
            self._count(-1)


def _hang_up(request: Any) -> None:
    try:
        request.shutdown(socketlib.SHUT_RDWR)
    except OSError:
        pass  # already gone


class _TCPServer(_Capped, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        self._start_guard()
        super().__init__(*args)


class _UnixServer(_Capped, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        self._start_guard()
        super().__init__(*args)


def claim_socket_path(path: Path) -> None:
    """Make `path` free for our socket: a stale socket of a dead server is removed; a live
    one (another server answers on it) or anything that is not a socket is left alone, and
    the start refused."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; choose another --socket path (nothing was deleted)")
    probe = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody answers: a dead server's leftover
        return
    finally:
        probe.close()
    raise ConfigError(f"another server answers on {path}; stop it or choose another --socket path")


class MemoryServer:
    """Serves one Memory. `start()` runs it in a daemon thread, `serve_forever()` in this one.

    Args:
        memory: the Memory this process owns.
        host / port: where to listen (port 0 picks a free one); or `socket`: a Unix socket path.
        api_key: required of every request when set; mandatory off loopback.
        max_body: the largest request body in bytes.
        idle_timeout: seconds a connection may stay silent before it is closed.
        max_connections: live connections served at once; past it a new one gets 503 Busy.
    """

    def __init__(self, memory: Any, *, host: str = "127.0.0.1", port: int = 8765, socket: str | os.PathLike[str] | None = None,
                 api_key: str | None = None, max_body: int = MAX_BODY, idle_timeout: float = IDLE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS):
        if socket is None and not is_loopback(host) and not api_key:
            raise ConfigError(f"serving on {host} (not loopback) needs an API key: $TIERMEM_API_KEY or --api-key-file")
        if not isinstance(max_body, int) or max_body < 1024:
            raise InvalidInput(f"max_body must be at least 1024 bytes, got {max_body!r}")
        if not isinstance(idle_timeout, int | float) or idle_timeout <= 0:
            raise InvalidInput(f"idle_timeout must be a positive number of seconds, got {idle_timeout!r}")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise InvalidInput(f"max_connections must be a positive integer, got {max_connections!r}")
        self.memory = memory
        self.api_key = api_key
        self.max_body = max_body
        handler = type("Handler", (_Handler,), {"app": self, "timeout": float(idle_timeout)})
        self.socket_path = Path(socket) if socket is not None else None
        if self.socket_path is not None:
            claim_socket_path(self.socket_path)
            self.httpd: Any = _UnixServer(str(self.socket_path), handler)
            os.chmod(self.socket_path, 0o600)
            self.url = f"unix://{self.socket_path}"
        else:
            self.httpd = _TCPServer((host, port), handler)
            bound_port = self.httpd.server_address[1]
            self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
        self.httpd.max_connections = max_connections
        self._thread: threading.Thread | None = None
        self.stopping = False

    def health(self) -> dict[str, Any]:
        return {**self.memory.health(), "api": VERSION, "url": self.url}

    def call(self, name: str, args: dict[str, Any], key: str | None = None) -> Any:
        if name == "health":
            return self.health()
        if key is None or name not in RECORDED or not hasattr(self.memory, "session"):
            return dump_result(name, getattr(self.memory, name)(**args))
        if not isinstance(key, str) or not 8 <= len(key) <= 128:
            raise InvalidInput(f"{KEY_HEADER} must be 8 to 128 characters")
        session = self.memory.session
        seen = session.seen_request(key)
        if seen is not None and seen.result is not None:
            return json.loads(seen.result)  # answered before: the first answer again
        token = request_key.set(key)
        try:
            result = dump_result(name, getattr(self.memory, name)(**args))
        finally:
            request_key.reset(token)
        user = args.get("user_id") if isinstance(args.get("user_id"), str) else None
        if name != "forget_user":  # the erasure dropped this user's answers: keep none that quotes them
            session.answer_request(key, name, json.dumps(result), self.memory.clock(), user_id=user)
        return result

    def start(self) -> MemoryServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="tiermem-serve")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop accepting; connections kept alive get 503 ServerStopping from now on."""
        self.stopping = True
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
