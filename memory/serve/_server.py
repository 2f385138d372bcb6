"""`tiermem serve`: one process owns a home and serves its Memory over HTTP (stdlib only).

Threads serve requests in parallel; Memory is thread-safe. Requests are `POST /v1/<method>`
(`GET /v1/health` too); bodies are JSON objects of at most `max_body` bytes. A server bound
to anything but loopback must have an API key (`Authorization: Bearer <key>`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .._errors import ConfigError, InvalidInput, TieredMemoryError
from ._api import STATUS, VERSION, decode_args, dump_result

logger = logging.getLogger("tiermem.serve")
MAX_BODY = 4 * 1024 * 1024


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
    app: MemoryServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def address_string(self) -> str:
        return str(self.client_address[0]) if isinstance(self.client_address, tuple) else "unix"

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send(status, {"error": {"type": kind, "message": message}})

    def _authorized(self) -> bool:
        key = self.app.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), key.encode())

    def _stopping(self) -> bool:
        if self.app.stopping:
            self.close_connection = True
            self._error(503, "ServerStopping", "this server is shutting down; connect again")
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
        self._send(200, {"result": self.app.health()})

    def do_POST(self) -> None:  # noqa: N802
        if self._stopping():
            return
        if not self.path.startswith("/v1/"):
            self._error(404, "NotFound", "methods are POST /v1/<method>")
            return
        if not self._authorized():
            self._error(401, "Unauthorized", "missing or wrong API key (Authorization: Bearer <key>)")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(411, "LengthRequired", "send a Content-Length")
            return
        if int(length) > self.app.max_body:
            self.close_connection = True  # the body is not read
            self._error(413, "PayloadTooLarge", f"request body is {length} bytes; the limit is {self.app.max_body}")
            return
        raw = self.rfile.read(int(length))
        name = self.path[4:].strip("/")
        try:
            body = json.loads(raw or b"{}")
            result = self.app.call(name, decode_args(name, body))
        except json.JSONDecodeError as exc:
            self._error(400, "InvalidInput", f"the body is not JSON: {exc}")
        except TieredMemoryError as exc:
            self._error(STATUS.get(type(exc).__name__, 500), type(exc).__name__, str(exc))
        except TypeError as exc:  # a required argument missing, or one of the wrong shape
            self._error(400, "InvalidInput", f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the server stays up; the log has the traceback
            logger.exception("tiermem serve: %s failed", name)
            self._error(500, "InternalError", f"{type(exc).__name__}: {exc}")
        else:
            self._send(200, {"result": result})


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class MemoryServer:
    """Serves one Memory. `start()` runs it in a daemon thread, `serve_forever()` in this one.

    Args:
        memory: the Memory this process owns.
        host / port: where to listen (port 0 picks a free one); or `socket`: a Unix socket path.
        api_key: required of every request when set; mandatory off loopback.
        max_body: the largest request body in bytes.
    """

    def __init__(self, memory: Any, *, host: str = "127.0.0.1", port: int = 8765, socket: str | os.PathLike[str] | None = None,
                 api_key: str | None = None, max_body: int = MAX_BODY):
        if socket is None and not is_loopback(host) and not api_key:
            raise ConfigError(f"serving on {host} (not loopback) needs an API key: --api-key or $TIERMEM_API_KEY")
        if not isinstance(max_body, int) or max_body < 1024:
            raise InvalidInput(f"max_body must be at least 1024 bytes, got {max_body!r}")
        self.memory = memory
        self.api_key = api_key
        self.max_body = max_body
        handler = type("Handler", (_Handler,), {"app": self})
        self.socket_path = Path(socket) if socket is not None else None
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
            self.httpd: Any = _UnixServer(str(self.socket_path), handler)
            os.chmod(self.socket_path, 0o600)
            self.url = f"unix://{self.socket_path}"
        else:
            self.httpd = ThreadingHTTPServer((host, port), handler)
            self.httpd.daemon_threads = True
            bound_host, bound_port = self.httpd.server_address[:2]
            self.url = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
        self._thread: threading.Thread | None = None
        self.stopping = False

    def health(self) -> dict[str, Any]:
        return {**self.memory.health(), "api": VERSION, "url": self.url}

    def call(self, name: str, args: dict[str, Any]) -> Any:
        if name == "health":
            return self.health()
        return dump_result(name, getattr(self.memory, name)(**args))

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
