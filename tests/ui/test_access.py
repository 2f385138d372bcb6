"""Who may look: the API key (as `tiermem serve` asks it), loopback names only without one,
the `tiermem ui` command, and the same pages over a served memory."""

from __future__ import annotations

import html
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tiermem import HashEmbedder, Memory
from tiermem.serve import MemoryServer
from tiermem.ui import create_app, loopback_hosts

from .conftest import fill_demo

KEY = "a-key-of-enough-length"


@pytest.fixture
def memory(tmp_path: Path):
    with Memory.open(tmp_path / "home", embedder=HashEmbedder(64), share=False) as m:
        fill_demo(m)
        yield m


def test_a_key_is_asked_once_then_kept_in_a_cookie(memory: Memory) -> None:
    client = TestClient(create_app(memory, api_key=KEY), base_url="http://127.0.0.1", follow_redirects=False)
    first = client.get("/user?u=ana")
    assert first.status_code == 303 and first.headers["location"].startswith("/login")
    assert "Ana" not in first.text
    wrong = client.post("/login?next=/user", data={"key": "not-the-key-at-all"})
    assert wrong.status_code == 401 and "tiermem_ui" not in wrong.cookies
    signed = client.get("/user?u=ana&key=" + KEY)  # the link `tiermem ui` prints
    assert signed.status_code == 303 and signed.headers["location"] == "/user?u=ana"  # the key leaves the address
    cookie = signed.cookies["tiermem_ui"]
    assert KEY not in cookie
    assert client.get("/user?u=ana").status_code == 200  # the cookie does from now on
    other = TestClient(create_app(memory, api_key=KEY), base_url="http://127.0.0.1", follow_redirects=False)
    assert other.get("/", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert other.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 303
    # the login page never sends anyone to another site
    assert other.post("/login?next=//evil.example/", data={"key": KEY}).headers["location"] == "/"


def test_without_a_key_only_loopback_names_are_answered(memory: Memory) -> None:
    app = create_app(memory, allowed_hosts=loopback_hosts("127.0.0.1"))
    assert TestClient(app, base_url="http://127.0.0.1:8765").get("/").status_code == 200
    assert TestClient(app, base_url="http://localhost:8765").get("/").status_code == 200
    # a page on another site that points its own name at 127.0.0.1 (DNS rebinding) gets nothing
    rebound = TestClient(app, base_url="http://attacker.example:8765").get("/user?u=ana")
    assert rebound.status_code == 400 and "Ana" not in rebound.text


def test_pages_say_what_is_wrong_without_a_stack_trace(memory: Memory) -> None:
    client = TestClient(create_app(memory), base_url="http://127.0.0.1")
    missing = client.get("/user?u=nobody")
    assert missing.status_code == 404 and "no user 'nobody'" in html.unescape(missing.text)
    assert client.get("/user").status_code == 400
    bad = client.get("/search?u=ana&q=x&limit=many")
    assert bad.status_code == 400 and "limit must be a whole number" in bad.text
    assert client.get("/context?u=ana&message=hi&model=gpt-9").status_code == 400
    assert client.get("/fact?u=ana&id=nope").status_code == 404
    headers = client.get("/").headers
    assert "script-src" not in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]


def test_the_same_pages_over_a_served_memory(memory: Memory) -> None:
    server = MemoryServer(memory, port=0, api_key=KEY).start()
    try:
        remote = Memory.open(url=server.url, api_key=KEY)
        client = TestClient(create_app(remote), base_url="http://127.0.0.1")
        local = TestClient(create_app(memory), base_url="http://127.0.0.1")
        for path in ("/user?u=ana", "/turns?u=ana", "/context?u=ana&message=what+should+I+pack&budget=2000"):
            served, here = client.get(path), local.get(path)
            assert served.status_code == here.status_code == 200
            # the same facts, turns and numbers (the footer says where memory lives)
            assert served.text.split("<footer>")[0] == here.text.split("<footer>")[0], path
        lisbon = next(f for f in memory.facts(user_id="ana", include_invalid=True) if "Lisbon" in f.text)
        assert "I live in Lisbon" in client.get(f"/fact?u=ana&id={lisbon.id}").text
    finally:
        server.stop()


def _tiermem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tiermem", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": ""})


def test_the_command_serves_a_home_on_loopback_and_refuses_other_addresses_without_a_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Memory.open(home, embedder=HashEmbedder(64), share=False) as m:
        fill_demo(m)
    refused = _tiermem("ui", "--home", str(home), "--host", "0.0.0.0", "--embedder", "hash")
    assert refused.returncode == 1 and "needs an API key" in refused.stderr
    assert _tiermem("ui", "--home", str(tmp_path / "typo")).returncode == 1
    ui = subprocess.Popen([sys.executable, "-m", "tiermem", "ui", "--home", str(home), "--port", "0", "--embedder", "hash"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": ""})
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        assert "read-only" in line, (line, ui.stderr.read() if ui.poll() is not None and ui.stderr else "")
        url = line.split(" at ")[1].split(";")[0].strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "user?u=ana", timeout=30) as response:
            page = response.read().decode()
        assert "Ana lives in Lisbon." in page and 'data-valid="false"' in page
        with urllib.request.urlopen(url, timeout=30) as response:
            assert "disk" in response.read().decode().lower()  # a local home: disk per tier
    finally:
        ui.terminate()
        ui.wait(30)
