"""The UI under test: a real uvicorn on 127.0.0.1 (port 0) in a thread, over a real home, and
Debian's Chromium driven by Playwright. Screenshots go to $TIERMEM_TEST_ARTIFACTS (default
test-artifacts/ui in the checkout)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tiermem import Memory
from tiermem.cli.demo import load_script

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("TIERMEM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1 with uvicorn in a thread; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def fill_demo(memory: Memory, user: str = "ana") -> None:
    """The demo's conversation (Ana in Lisbon, then Berlin), as `tiermem demo` stores it."""
    script = load_script()
    for session in script["sessions"]:
        memory.add(session["turns"], user_id=user, session_id=session["session_id"],
                   at=datetime.fromisoformat(session["at"]))


# Per module: Playwright's sync API keeps its event loop marked as running in this thread while
# it is open, which would stop every later asyncio test of the run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        message = "no Chromium: apt-get install chromium (.ci/run does), or set TIERMEM_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing browser is a broken run, not a skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    page.requests = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests.append(r.url))  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("TIERMEM_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


T_DEMO = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
