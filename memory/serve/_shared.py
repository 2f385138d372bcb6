"""Several processes on one home: one owns the Memory and serves it, the others call it.

The embedded index admits one process. `SharedMemory(home)` elects an owner with a lock
file (`serve.lock`, held for the owner's lifetime; the OS releases it when the process
dies, however it dies): the owner opens the Memory, serves it on a Unix socket inside the
home (`serve.sock`; 127.0.0.1 where there can be none) with a random key, and writes `serve.json` (url, key, pid; mode 0600). Every other process reads
`serve.json` and calls the owner. When the owner is gone, the next call that cannot reach
it runs the election again: one process takes over, the rest follow it. Writes are
committed by the owner before it answers, so a write that was acknowledged is on disk
whichever process is killed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import socket as socketlib
import threading
import time
from pathlib import Path
from typing import Any

import portalocker

from .._config import INFO_FILE, LOCK_FILE
from .._contract import MemoryAPI
from .._errors import InvalidInput, OutcomeUnknown, StoreUnavailable
from ._api import encode_args, load_result
from ._client import RemoteMemory
from ._server import MemoryServer

logger = logging.getLogger("tiermem.serve")
SOCKET_FILE = "serve.sock"
MAX_SOCKET_PATH = 100  # a Unix socket's path holds 104 bytes on macOS, 108 on Linux


class SharedMemory(MemoryAPI):
    """The memory of a home shared by several processes: every `MemoryAPI` method. The
    first call elects the owner; `close()` hands ownership on.

    Args:
        home: the memory folder.
        memory_options: passed to `Memory.open` by whichever process becomes the owner.
        wait: seconds to wait for an owner to appear before giving up.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, wait: float = 60.0, **memory_options: Any):
        from .._config import resolve

        self.home = resolve(home, None, None).home
        self.home.mkdir(parents=True, exist_ok=True)
        self.memory_options = memory_options
        self.wait = wait
        self._lock = threading.Lock()
        self._lock_file: Any = None
        self._owned: Any = None  # (memory, server) while this process owns the home
        self._remote: RemoteMemory | None = None
        self._unanswered: dict[str, tuple[str, dict[str, Any]]] = {}  # OutcomeUnknown writes, for resend()

    @property
    def location(self) -> str:
        return f"{self.home} (shared by several processes)"

    @property
    def owner(self) -> bool:
        return self._owned is not None

    def _try_own(self) -> tuple[str, str | None] | None:
        owned = own_home(self.home, self.memory_options, generate_key=True, socket=home_socket(self.home))
        if owned is None:
            return None
        self._lock_file, memory, server = owned
        self._owned = (memory, server)
        return server.url, server.api_key

    def _find_owner(self) -> tuple[str, str | None] | None:
        try:
            info = json.loads((self.home / INFO_FILE).read_text())
        except (OSError, ValueError):
            return None
        probe = RemoteMemory(info["url"], api_key=info["key"], timeout=5)
        try:
            probe.call("health")
        except Exception:  # noqa: BLE001 - a stale file: the owner is gone or not up yet
            return None
        finally:
            probe.close()
        return info["url"], info["key"]

    def _elect(self) -> tuple[str, str | None]:
        """Become the owner, or find the one who is; waits up to `wait` seconds."""
        deadline = time.monotonic() + self.wait
        while True:
            found = self._try_own() or self._find_owner()
            if found:
                return found
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"no process serves {self.home} and this one could not take over within "
                                       f"{self.wait:.0f} s; is another program holding its index (IndexLocked)?")
            time.sleep(0.05)

    def _backend(self) -> Any:
        with self._lock:
            if self._owned is not None:
                return self._owned[0]
            if self._remote is None:
                url, key = self._elect()
                if self._owned is not None:
                    return self._owned[0]
                self._remote = RemoteMemory(url, api_key=key, reconnect=self._reconnect)
            return self._remote

    def _reconnect(self) -> tuple[str, str | None]:
        with self._lock:
            return self._elect()

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        backend = self._backend()
        if isinstance(backend, RemoteMemory):
            try:
                result = backend.call(name, **arguments)
            except OutcomeUnknown as exc:
                if exc.key is not None:
                    self._unanswered[exc.key] = (name, arguments)
                while len(self._unanswered) > 100:
                    self._unanswered.pop(next(iter(self._unanswered)))
                raise
            if self._owned is not None:  # this process took over during the call
                self._remote = None
            return result
        if name == "health":
            return self._owned[1].health()
        return getattr(backend, name)(**arguments)

    def call(self, name: str, **kwargs: Any) -> Any:
        """A contract method by name (what `tiermem mcp` and tests use)."""
        return self._call(name, kwargs)

    def resend(self, key: str) -> Any:
        """Send again the write that raised `OutcomeUnknown` with this key, to whichever
        process owns the home now (this one, if it took over): answered with the first result
        if the write was stored, stored now if it was not."""
        if key not in self._unanswered:
            raise InvalidInput(f"no unanswered request with key {key!r} in this process")
        name, arguments = self._unanswered[key]
        backend = self._backend()
        if isinstance(backend, RemoteMemory):
            result = backend.call_with_key(name, key, **arguments)
        else:
            result = load_result(name, self._owned[1].call(name, encode_args(arguments), key))
        del self._unanswered[key]
        return result

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop serving (if this process owns the home) and let another process take over."""
        with self._lock:
            if self._remote is not None:
                self._remote.close()
                self._remote = None
            if self._owned is not None:
                memory, server = self._owned
                self._owned = None
                server.stop()
                memory.close()
                release_home(self.home, self._lock_file, server)

    def __enter__(self) -> SharedMemory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def live_owner(home: Path) -> dict[str, Any] | None:
    """The process serving a home, if `serve.json` names one that answers."""
    info = served_home(home)
    if not info or "url" not in info:
        return None
    probe = RemoteMemory(info["url"], api_key=info.get("key"), timeout=5)
    try:
        probe.call("health")
    except Exception:  # noqa: BLE001 - a stale file: the owner is gone
        return None
    finally:
        probe.close()
    return info


def open_home(home: Path, memory_options: dict[str, Any], *, wait: float = 30.0) -> Any:
    """`Memory.open(home)`: the home's Memory if this process can own it (and then it serves
    it to the others on a Unix socket in the home, with a key in `serve.json`), else a `SharedMemory` that
    follows the process that does (and takes over if it goes)."""
    from .._errors import IndexLocked

    home.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        info = live_owner(home)
        if info is not None:
            if info.get("pid") == os.getpid():
                raise IndexLocked(f"{home} is already open in this process; share that Memory (it is thread-safe) "
                                  "or close it before opening the home again")
            return SharedMemory(home, wait=wait, **memory_options)
        owned = own_home(home, memory_options, generate_key=True, socket=home_socket(home))
        if owned is not None:
            handle, memory, server = owned
            memory.on_close(server.stop, before=True)  # no request reaches a closing memory
            memory.on_close(functools.partial(release_home, home, handle, server))  # the next owner can open the index now
            return memory
        if time.monotonic() > deadline:  # someone holds serve.lock but never answers
            holder = served_home(home) or {}
            raise IndexLocked(f"{home} is being opened by another process (pid {holder.get('pid', 'unknown')}) that "
                              f"does not serve it after {wait:.0f} s; stop it, or call it with Memory.open(url=...)")
        time.sleep(0.05)


def release_home(home: Path, handle: Any, server: MemoryServer) -> None:
    """Stop serving a home and let another process own it (after its Memory closed)."""
    if not server.stopping:
        server.stop()
    try:
        if (served_home(home) or {}).get("pid") == os.getpid():
            (home / INFO_FILE).unlink()
    except OSError:
        pass
    portalocker.unlock(handle)
    handle.close()


def home_socket(home: Path) -> str | None:
    """Where a library owner listens for the other processes of this machine: a Unix socket
    inside the home (0600, like the key in `serve.json`), so that opening memory opens no TCP
    port (and a served call costs ~0.7 ms less than over loopback TCP). None where a socket
    cannot be had (no AF_UNIX, or a home path too long for one): then 127.0.0.1 serves."""
    import socketserver

    if not hasattr(socketlib, "AF_UNIX") or not hasattr(socketserver, "UnixStreamServer"):
        return None  # Windows: a Unix socket family but no stdlib server for it
    path = str(Path(home).absolute() / SOCKET_FILE)
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def own_home(home: Path, memory_options: dict[str, Any], *, host: str = "127.0.0.1", port: int = 0,
             api_key: str | None = None, generate_key: bool = False, socket: str | None = None,
             **server_options: Any) -> tuple[Any, Any, MemoryServer] | None:
    """Become the owner of `home`: take `serve.lock`, open its Memory, serve it, publish
    `serve.json`. Returns (lock handle, memory, server), or None if another process owns it.
    With `generate_key` the server gets a random key: `serve.json` (0600) is how this user's
    other processes learn it, and other local users cannot read it."""
    from .._memory import Memory

    handle = open(home / LOCK_FILE, "a+")  # noqa: SIM115 - held while we own the home
    try:
        portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
    except portalocker.LockException:
        handle.close()
        return None
    try:
        memory = Memory.open(home, share=False, **memory_options)  # IndexLocked: a process that does not share holds it
        try:
            key = api_key or (secrets.token_urlsafe(24) if generate_key else None)
            server = MemoryServer(memory, host=host, port=port, api_key=key, socket=socket, **server_options).start()
        except BaseException:
            memory.close()
            raise
    except BaseException:
        portalocker.unlock(handle)
        handle.close()
        raise
    info = home / INFO_FILE
    tmp = info.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": server.url, "key": server.api_key, "pid": os.getpid()}))
    os.chmod(tmp, 0o600)
    os.replace(tmp, info)
    logger.info("tiermem: this process (pid %d) owns %s and serves it at %s", os.getpid(), home, server.url)
    return handle, memory, server


def served_home(home: Path) -> dict[str, Any] | None:
    """The owner of a home as `serve.json` states it (not checked)."""
    try:
        return json.loads((home / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
