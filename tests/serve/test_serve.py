"""`tiermem serve` and `Memory.open(url=...)`: the same program gives the same results and
the same errors in-process and served; keys, limits, and several processes on one home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tiermem import HashEmbedder, Memory
from tiermem._errors import ConfigError, FactNotFound, InvalidInput, StoreUnavailable, UnknownUser
from tiermem.serve import MemoryServer, RemoteMemory, SharedMemory

T0 = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)


def program(mem: Any) -> list[Any]:
    """A user program: every served method, and its errors, as plain values."""
    out: list[Any] = []
    added = mem.add([{"role": "user", "content": "I moved to Lisbon and I am allergic to peanuts"}], user_id="ana",
                    session_id="s1", at=T0)
    out.append(sorted(e.fact.text for e in added.events if e.fact))
    remembered = mem.remember("Ana's sister is Marta", user_id="ana", at=T0)
    fact_id = remembered.events[0].fact_id
    out.append([h.fact.text for h in mem.search("where does Ana live?", user_id="ana", limit=3)])
    out.append(len(mem.facts(user_id="ana")))
    out.append(mem.get(fact_id, user_id="ana").text)
    out.append(mem.update(fact_id, "Ana's sister is Marta Silva", user_id="ana").fact.text)
    out.append(mem.update(fact_id, metadata={"checked": True}, user_id="ana").fact.metadata)
    out.append([e.op for e in mem.history(fact_id)])
    out.append(mem.retract(fact_id, user_id="ana").op)
    out.append(mem.restore(fact_id, user_id="ana").op)
    ctx = mem.context("what should I cook?", user_id="ana", session_id="s1", system="You help.", budget=2000)
    out.append((len(ctx.system), ctx.messages[-1]["content"][-1]["text"], ctx.report.total > 0))
    out.append(mem.usage(user_id="ana").total.calls)
    mem.add([{"role": "user", "content": "I'm planning a hike in the Moncayo park", "id": "m1"},
             {"role": "assistant", "content": "Take the GR-90 trail through the Moncayo park.", "id": "m2"}],
            user_id="ana", session_id="s2", at=T0)
    out.append([(h.fact.extractor, h.fact.text, h.fact.sources, h.explain.get("said_rank"))
                for h in mem.search("which trail did you recommend in the Moncayo park?", user_id="ana", limit=3)])
    for call in (lambda: mem.search("", user_id="ana"), lambda: mem.get("nope", user_id="ana"),
                 lambda: mem.facts(user_id="nobody"), lambda: mem.search("x", user_id="ana", limit=0),
                 lambda: mem.get(fact_id, user_id="bob"), lambda: mem.update(fact_id, user_id="ana")):
        try:
            call()
            out.append("no error")
        except Exception as exc:  # noqa: BLE001 - the error's class and message are the result
            out.append((type(exc).__name__, str(exc).replace(fact_id, "<id>")))
    out.append(mem.forget(fact_id, user_id="ana").op)
    out.append(mem.forget_user("ana").removed["tm_turns"])
    return out


def test_the_same_program_gives_the_same_results_in_process_and_served(tmp_path):
    with Memory.open(tmp_path / "a", embedder=HashEmbedder(64), clock=lambda: T0) as local:
        expected = program(local)
    with Memory.open(tmp_path / "b", embedder=HashEmbedder(64), clock=lambda: T0) as served:
        server = MemoryServer(served, port=0).start()
        try:
            remote = Memory.open(url=server.url)
            assert isinstance(remote, RemoteMemory)
            assert program(remote) == expected
            recalled = next(r for r in expected if isinstance(r, list) and r and isinstance(r[0], tuple))
            assert recalled[0][:3] == ("said", "The assistant said: Take the GR-90 trail through the Moncayo park.", ["m2"])
        finally:
            server.stop()


def test_errors_keep_their_class(tmp_path):
    with Memory.open(tmp_path, embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, port=0).start()
        try:
            remote = RemoteMemory(server.url)
            with pytest.raises(InvalidInput, match="query"):
                remote.search("", user_id="ana")
            with pytest.raises(UnknownUser):
                remote.facts(user_id="nobody")
            with pytest.raises(FactNotFound):
                remote.get("x")
            with pytest.raises(TypeError, match="colour"):  # the contract's signature, as in-process
                remote.search("x", user_id="ana", colour="red")
            with pytest.raises(InvalidInput, match="takes no argument"):  # the server checks what a raw call sends
                remote.call("search", query="x", user_id="ana", colour="red")
            with pytest.raises(InvalidInput, match="no method"):
                remote.call("drop_everything")
        finally:
            server.stop()


def _post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_key_body_limit_and_bad_json(tmp_path):
    with Memory.open(tmp_path, embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, port=0, api_key="s3cret", max_body=2048).start()
        try:
            assert _post(server.url, "/v1/health", b"{}")[0] == 401
            assert _post(server.url, "/v1/health", b"{}", {"Authorization": "Bearer wrong"})[0] == 401
            status, body = _post(server.url, "/v1/health", b"{}", {"Authorization": "Bearer s3cret"})
            assert status == 200 and body["result"]["ok"] is True
            status, body = _post(server.url, "/v1/remember", b"x" * 4096, {"Authorization": "Bearer s3cret"})
            assert status == 413 and body["error"]["type"] == "PayloadTooLarge"
            status, body = _post(server.url, "/v1/remember", b"{not json", {"Authorization": "Bearer s3cret"})
            assert status == 400 and body["error"]["type"] == "InvalidInput"
            status, body = _post(server.url, "/v1/remember", b'{"text": "x"}', {"Authorization": "Bearer s3cret"})
            assert status == 400 and "user_id" in body["error"]["message"]
            assert RemoteMemory(server.url, api_key="s3cret").health()["ok"]
            assert mem.session.users() == []  # nothing stored by the refused requests
        finally:
            server.stop()
        with pytest.raises(ConfigError, match="API key"):
            MemoryServer(mem, host="0.0.0.0", port=0)


def test_unix_socket(tmp_path):
    with Memory.open(tmp_path / "h", embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, socket=tmp_path / "tm.sock").start()
        try:
            remote = Memory.open(url=f"unix://{tmp_path / 'tm.sock'}")
            remote.remember("Ana likes tea", user_id="ana")
            assert [h.fact.text for h in remote.search("tea", user_id="ana")] == ["Ana likes tea"]
        finally:
            server.stop()


def test_unreachable_server_says_so():
    with pytest.raises(StoreUnavailable, match="tiermem serve"):
        RemoteMemory("http://127.0.0.1:9").health()


def test_shared_home_in_one_process_owner_and_follower(tmp_path):
    first = SharedMemory(tmp_path, embedder=HashEmbedder(64))
    second = SharedMemory(tmp_path, embedder=HashEmbedder(64))
    try:
        first.remember("Ana likes tea", user_id="ana")  # positional, as in-process (R16)
        assert first.owner and not second.owner
        assert [h.fact.text for h in second.search("tea", user_id="ana")] == ["Ana likes tea"]
        first.close()  # the owner leaves: the follower takes over on its next call
        second.remember(text="Ana plays chess", user_id="ana")
        assert second.owner
        assert len(second.facts(user_id="ana")) == 2
    finally:
        first.close()
        second.close()


WORKER = """
import sys, json
from tiermem import HashEmbedder
from tiermem.serve import SharedMemory
shared = SharedMemory(sys.argv[1], embedder=HashEmbedder(64))
for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd["op"] == "remember":
            result = shared.remember(text=cmd["text"], user_id="ana").events[0].fact_id
        else:
            result = [h.fact.text for h in shared.search(query=cmd["text"], user_id="ana", limit=50)]
        print(json.dumps({"ok": result, "owner": shared.owner}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": repr(exc)}), flush=True)
"""


class Worker:
    def __init__(self, home: Path):
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(home)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def ask(self, op: str, text: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, "text": text}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_processes_share_a_home_and_survive_a_killed_owner(tmp_path):
    a, b = Worker(tmp_path), Worker(tmp_path)
    try:
        assert "ok" in a.ask("remember", "Ana likes tea")
        assert "ok" in b.ask("remember", "Ana plays chess")
        owner, follower = (a, b) if a.ask("search", "tea")["owner"] else (b, a)
        assert sorted(follower.ask("search", "Ana")["ok"]) == ["Ana likes tea", "Ana plays chess"]
        for i in range(5):
            assert "ok" in owner.ask("remember", f"Ana visited city number {i}")
        owner.proc.send_signal(signal.SIGKILL)
        owner.proc.wait(10)
        time.sleep(0.2)
        answer = follower.ask("search", "Ana visited city")
        assert answer["owner"] is True  # it took over
        assert sum("visited city" in t for t in answer["ok"]) == 5  # every acknowledged write is there
        assert "ok" in follower.ask("remember", "Ana likes jazz")
    finally:
        a.stop()
        b.stop()


async def test_async_twins_served(tmp_path):
    with Memory.open(tmp_path, embedder=HashEmbedder(64)) as mem:
        server = MemoryServer(mem, port=0).start()
        try:
            remote = Memory.open(url=server.url)
            await remote.aremember("Ana likes tea", user_id="ana")
            assert [h.fact.text for h in await remote.asearch("tea", user_id="ana")] == ["Ana likes tea"]
            assert await remote.aflush(5) is True
            ctx = await remote.acontext("tea?", user_id="ana")
            assert ctx.messages[-1]["content"][-1]["text"] == "tea?"
        finally:
            server.stop()


def _tiermem(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tiermem", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": "", **(env or {})})


def test_the_cli_and_a_plain_open_work_beside_tiermem_serve(tmp_path):
    home = tmp_path / "home"
    key_file = tmp_path / "key"
    key_file.write_text("a-key-of-enough-length\n")
    served = subprocess.Popen([sys.executable, "-m", "tiermem", "serve", "--home", str(home), "--port", "0", "--embedder",
                               "hash", "--api-key-file", str(key_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": ""})
    try:
        assert served.stdout is not None
        line = served.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        RemoteMemory(url, api_key="a-key-of-enough-length").remember("Ana likes green tea", user_id="ana")

        found = _tiermem("search", "tea", "--user", "ana", "--home", str(home), "--embedder", "hash", "--json")
        assert found.returncode == 0, found.stderr
        assert [h["text"] for h in json.loads(found.stdout)] == ["Ana likes green tea"]
        # context beside the owner: this process has no stores; the profile comes from the request
        context = _tiermem("context", "what does Ana drink", "--user", "ana", "--home", str(home), "--embedder", "hash",
                           "--json")
        assert context.returncode == 0, context.stderr
        report = json.loads(context.stdout)
        sent = [f["text"] for f in report["facts"]] + ([report["profile"]["text"]] if report["profile"] else [])
        assert any("green tea" in text for text in sent), report
        listed = _tiermem("facts", "list", "--user", "ana", "--home", str(home), "--json")
        assert listed.returncode == 0 and "Ana likes green tea" in listed.stdout, listed.stderr
        stats = _tiermem("stats", "--home", str(home), "--json")
        assert json.loads(stats.stdout)["owner"]["pid"] == served.pid
        refused = _tiermem("reindex", "--home", str(home), "--embedder", "hash")
        assert refused.returncode == 1 and f"owned by pid {served.pid}" in refused.stderr

        plain = (f"from tiermem import Memory, HashEmbedder\nm = Memory.open({str(home)!r}, embedder=HashEmbedder(64))\n"
                 "m.remember('Ana plays chess', user_id='ana')\nprint(type(m).__name__, len(m.facts(user_id='ana')))")
        joined = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, timeout=120)
        assert joined.stdout.split() == ["SharedMemory", "2"], joined.stderr
    finally:
        served.terminate()
        served.wait(30)


def test_serve_takes_its_key_from_a_file_or_the_environment_and_refuses_weak_or_missing_ones(tmp_path):
    exposed = _tiermem("serve", "--home", str(tmp_path), "--host", "0.0.0.0", "--port", "0", "--embedder", "hash")
    assert exposed.returncode == 1 and "--api-key-file" in exposed.stderr
    short = tmp_path / "short"
    short.write_text("abc\n")
    weak = _tiermem("serve", "--home", str(tmp_path), "--api-key-file", str(short), "--embedder", "hash")
    assert weak.returncode == 1 and "at least 16 characters" in weak.stderr
    missing = _tiermem("serve", "--home", str(tmp_path), "--api-key-file", str(tmp_path / "nope"), "--embedder", "hash")
    assert missing.returncode == 1 and "cannot read it" in missing.stderr
    typed = subprocess.Popen([sys.executable, "-m", "tiermem", "serve", "--home", str(tmp_path / "h"), "--port", "0",
                              "--embedder", "hash", "--api-key", "typed-on-the-command-line"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": ""})
    try:
        assert typed.stderr is not None and "visible to other local users" in typed.stderr.readline()
    finally:
        typed.terminate()
        typed.wait(30)


OPENER = """
import json, sys, time
from tiermem import HashEmbedder, Memory
me = sys.argv[2]
mem = Memory.open(sys.argv[1], embedder=HashEmbedder(64))
mem.remember(f"Ana's friend {me} plays the cello", user_id="ana")
deadline = time.monotonic() + 90
while len(mem.facts(user_id="ana")) < 3 and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps({"type": type(mem).__name__, "facts": len(mem.facts(user_id="ana"))}), flush=True)
sys.stdin.readline()  # stay until every opener has answered
mem.close()
"""


def test_three_processes_open_one_home_at_once_and_all_work(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, str(tmp_path), name], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name in ("Kofi", "Lena", "Mirko")]
    try:
        answers = [json.loads(p.stdout.readline() or "{}") for p in procs if p.stdout]
        assert [a.get("facts") for a in answers] == [3, 3, 3], [p.stderr.read() for p in procs if p.poll() is not None]
        assert sorted(a["type"] for a in answers) == ["Memory", "SharedMemory", "SharedMemory"]
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            p.wait(60)
    assert all(p.returncode == 0 for p in procs)
