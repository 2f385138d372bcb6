"""`tiermem serve` under clients that misbehave or lose answers: a resent write is applied
once, idle sockets cannot starve the server, malformed bodies get a 400, and a socket path
is never taken from something that is not a dead server's socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tiermem import Busy, HashEmbedder, Memory, OutcomeUnknown, StoreUnavailable
from tiermem._errors import ConfigError, InvalidInput
from tiermem.serve import MemoryServer, RemoteMemory
from tiermem.serve._server import claim_socket_path


@contextmanager
def served(tmp_path: Path, **options) -> Iterator[tuple[Memory, MemoryServer]]:
    with Memory.open(tmp_path / "home", embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, port=0, **options).start()
        try:
            yield mem, server
        finally:
            server.stop()


def _raw(url: str, request: bytes, timeout: float = 10.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length")), b"0"))
                if len(body) >= length:
                    break
        return b"".join(chunks)


def _post(url: str, method: str, args: dict, key: str | None = None) -> tuple[int, dict]:
    body = json.dumps(args).encode()
    headers = f"POST /v1/{method} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if key:
        headers += f"Idempotency-Key: {key}\r\n"
    answer = _raw(url, headers.encode() + b"Connection: close\r\n\r\n" + body)
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_a_write_resent_with_its_key_is_applied_once_and_answered_alike(tmp_path):
    with served(tmp_path) as (mem, server):
        add = {"messages": [{"role": "user", "content": "I moved to Porto last spring"}], "user_id": "ana",
               "session_id": "s1"}
        first = _post(server.url, "add", add, key="k-add-000001")
        again = _post(server.url, "add", add, key="k-add-000001")
        assert first[0] == again[0] == 200 and first[1] == again[1]
        assert len(mem.turns(user_id="ana", session_id="s1", limit=10_000)) == 1
        _post(server.url, "add", add, key="k-add-000002")  # another key is another request
        assert len(mem.turns(user_id="ana", session_id="s1", limit=10_000)) == 2

        remember = {"text": "Ana's cat is called Miso", "user_id": "ana"}
        assert _post(server.url, "remember", remember, key="k-rem-000001") == _post(
            server.url, "remember", remember, key="k-rem-000001")
        assert sum("Miso" in f.text for f in mem.facts(user_id="ana")) == 1

        status, body = _post(server.url, "remember", remember, key="short")
        assert status == 400 and "Idempotency-Key" in body["error"]["message"]


def test_erasing_a_user_drops_their_recorded_answers(tmp_path):
    with served(tmp_path) as (mem, server):
        _post(server.url, "remember", {"text": "Ana's PIN is 4242", "user_id": "ana"}, key="k-pin-000001")
        _post(server.url, "remember", {"text": "Bo likes chess", "user_id": "bo"}, key="k-bo-0000001")
        mem.forget_user("ana")
        assert mem.session.seen_request("k-pin-000001") is None  # the answer quoted her fact
        assert mem.session.seen_request("k-bo-0000001") is not None


class _LossyProxy:
    """A TCP proxy that forwards requests to the server but, while `drop` is set, closes the
    client's connection instead of relaying the answer: the write happened, its answer is lost."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.drop = True
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        try:
            while data := upstream.recv(65536):
                if self.drop:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (client, upstream):
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked on it; close alone would not
                except OSError:
                    pass
                conn.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


def test_a_lost_answer_raises_outcome_unknown_and_resend_applies_the_write_once(tmp_path):
    with served(tmp_path) as (mem, server):
        proxy = _LossyProxy(server.url)
        try:
            client = RemoteMemory(proxy.url, timeout=10)
            with pytest.raises(OutcomeUnknown, match="resend") as lost:
                client.remember("Ana's sister is Marta", user_id="ana")
            assert [f.text for f in mem.facts(user_id="ana")] == ["Ana's sister is Marta"]  # it was stored
            proxy.drop = False
            result = client.resend(lost.value.key)
            assert result.events[0].fact.text == "Ana's sister is Marta"
            assert len(mem.facts(user_id="ana")) == 1  # and not again
            with pytest.raises(InvalidInput, match="no unanswered request"):
                client.resend(lost.value.key)  # answered now: nothing left to resend
        finally:
            proxy.close()


class SlowOnCue(HashEmbedder):
    """Our embedder, slow on texts that ask for it: a write that outlasts the client's timeout."""

    def embed(self, texts):
        if any("slowly" in t for t in texts):
            time.sleep(1.5)
        return super().embed(texts)


def test_a_timed_out_write_is_reported_truthfully_and_the_client_keeps_working(tmp_path):
    with Memory.open(tmp_path / "home", embedder=SlowOnCue(64)) as mem:
        server = MemoryServer(mem, port=0).start()
        try:
            client = RemoteMemory(server.url, timeout=0.5)
            with pytest.raises(OutcomeUnknown, match="may have been stored") as timed_out:
                client.remember("Ana learns the cello slowly", user_id="ana")
            client.remember("Ana likes tea", user_id="ana")  # the same thread, a fresh connection
            assert [h.fact.text for h in client.search("tea", user_id="ana", limit=1)] == ["Ana likes tea"]
            deadline = time.monotonic() + 30  # the timed-out write finishes on the server
            while not any("cello" in f.text for f in mem.facts(user_id="ana")) and time.monotonic() < deadline:
                time.sleep(0.1)
            client.timeout = 30  # a loaded CI machine: the answer, not its speed, is under test
            assert client.resend(timed_out.value.key).events[0].fact.text == "Ana learns the cello slowly"
            assert sum("cello" in f.text for f in mem.facts(user_id="ana")) == 1  # stored once
        finally:
            server.stop()


def test_idle_sockets_neither_starve_the_server_nor_live_forever(tmp_path):
    with served(tmp_path, idle_timeout=1.0, max_connections=64) as (mem, server):
        host, port = server.url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(40)]
        try:
            client = RemoteMemory(server.url, timeout=5)
            started = time.monotonic()
            client.remember("Ana likes tea", user_id="ana")
            assert [h.fact.text for h in client.search("tea", user_id="ana")] == ["Ana likes tea"]
            assert time.monotonic() - started < 5
            idle[0].sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\n")  # headers begun, never ended
            idle[0].settimeout(5)
            assert idle[0].recv(1024) == b""  # closed by the server after the idle timeout
        finally:
            for conn in idle:
                conn.close()


def test_past_the_connection_cap_a_new_connection_is_told_busy(tmp_path):
    """Past the cap, a new connection takes the place of one that never completed a request;
    when every connection has (kept alive after a request), it is told Busy (Q15: a body of
    the length it says, read by the client as `Busy`)."""
    with served(tmp_path, max_connections=8) as (mem, server):
        host, port = server.url.removeprefix("http://").split(":")
        silent = [socket.create_connection((host, int(port))) for _ in range(8)]
        try:
            time.sleep(0.2)  # let the server count them
            assert RemoteMemory(server.url).health()["ok"]  # it took a silent one's place
        finally:
            for conn in silent:
                conn.close()
        time.sleep(0.3)
        held = []
        try:
            for _ in range(8):  # connections that completed a request and stay open
                conn = socket.create_connection((host, int(port)))
                conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert b" 200 " in conn.recv(65536).split(b"\r\n")[0]
                held.append(conn)
            answer = _raw(server.url, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b" 503 " in head.split(b"\r\n")[0] and json.loads(body)["error"]["type"] == "Busy"
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            assert length == len(body)
            with pytest.raises(Busy, match="too many connections"):
                RemoteMemory(server.url).health()
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.3)
        assert RemoteMemory(server.url).health()["ok"]


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"query": ' + b"9" * 5000 + b"}",
                                  b"\xff\xfe not utf-8", b'{"query": "x", "user_id": ["not", "a", "string"]}'])
def test_malformed_bodies_get_400_and_the_server_lives_on(tmp_path, body):
    with served(tmp_path, max_body=1 << 20) as (mem, server):
        request = (f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\n\r\n").encode() + body
        answer = _raw(server.url, request)
        assert b" 400 " in answer.split(b"\r\n")[0], answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["type"] == "InvalidInput"
        assert RemoteMemory(server.url).health()["ok"]


def test_a_socket_path_is_only_taken_from_a_dead_servers_socket(tmp_path):
    regular = tmp_path / "not-a-socket"
    regular.write_text("precious")
    with pytest.raises(ConfigError, match="not a socket"):
        claim_socket_path(regular)
    assert regular.read_text() == "precious"

    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()  # the file stays behind, nobody listens
    claim_socket_path(stale)
    assert not stale.exists()

    live = tmp_path / "live.sock"
    with Memory.open(tmp_path / "home", embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, socket=live).start()
        try:
            with pytest.raises(ConfigError, match="another server answers"):
                MemoryServer(mem, socket=live)
            assert RemoteMemory(f"unix://{live}").health()["ok"]
        finally:
            server.stop()


def _slowloris(host: str, port: int, stop: threading.Event, held: list) -> None:
    """One keyless client that opens connections and drips a header byte every half second,
    reconnecting whenever it is hung up on (bounded by `stop`)."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = socket.create_connection((host, port), timeout=2)
                held.append(conn)
                conn.sendall(b"POST /v1/search HTTP/1.1\r\n")
            conn.sendall(b"X")
        except OSError:
            conn = None
        stop.wait(0.5)


def test_keyless_slow_clients_cannot_lock_out_a_client_with_the_key(tmp_path):
    """Q9: 3x the connection cap of keyless connections dripping header bytes; a client with
    the key still gets through (a new connection takes the place of the oldest one that has
    not shown the key; a request head has a deadline as a whole)."""
    key = "k" * 32
    with served(tmp_path, api_key=key, max_connections=16, idle_timeout=2.0) as (mem, server):
        host, port = server.url.removeprefix("http://").split(":")
        stop, held = threading.Event(), []
        attackers = [threading.Thread(target=_slowloris, args=(host, int(port), stop, held), daemon=True)
                     for _ in range(48)]
        for t in attackers:
            t.start()
        try:
            time.sleep(1.0)
            client = RemoteMemory(server.url, api_key=key, timeout=5)
            ok = 0
            for i in range(30):
                try:
                    client.remember(f"Ana note {i}", user_id="ana")
                    ok += 1
                except StoreUnavailable:
                    client = RemoteMemory(server.url, api_key=key, timeout=5)
                time.sleep(0.05)
            assert ok >= 27, ok  # >= 90%
        finally:
            stop.set()
            for t in attackers:
                t.join(timeout=3)
            for conn in held:
                conn.close()


def test_a_request_dripped_a_byte_at_a_time_is_cut_at_its_deadline(tmp_path):
    with served(tmp_path, idle_timeout=1.0) as (mem, server):
        host, port = server.url.removeprefix("http://").split(":")
        conn = socket.create_connection((host, int(port)), timeout=0.3)
        started = time.monotonic()
        try:
            conn.sendall(b"POST /v1/search HTTP/1.1\r\n")
            while time.monotonic() - started < 4:
                conn.sendall(b"X")  # one byte every 0.3 s: never silent for the idle timeout
                try:
                    if conn.recv(1024) == b"":
                        break  # hung up on
                except TimeoutError:
                    continue
            else:
                pytest.fail("the server kept a dripping request open past its deadline")
        except OSError:
            pass  # reset: hung up on
        finally:
            conn.close()
        assert time.monotonic() - started < 3.0  # cut near the 1 s deadline (the reaper looks every 0.25 s)
