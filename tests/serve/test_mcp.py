"""`tiermem mcp` driven by the official MCP SDK's client over stdio: tools, scoping, errors
as isError results, persistence, and two servers on one home."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tiermem.serve._shared import served_home


@asynccontextmanager
async def mcp_server(home: Path, *args: str):
    params = StdioServerParameters(command=sys.executable, args=["-m", "tiermem", "mcp", "--home", str(home),
                                                                 "--embedder", "hash", *args],
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    async with Client(params, read_timeout_seconds=60) as client:
        yield client


async def call(client: Any, tool: str, **arguments: Any) -> tuple[bool, Any]:
    result = await client.call_tool(tool, arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        return True, text
    return False, result.structured_content if result.structured_content is not None else json.loads(text)


def unwrap(value: Any) -> Any:
    """Structured results of non-object returns come as {"result": ...}."""
    return value["result"] if isinstance(value, dict) and set(value) == {"result"} else value


async def test_tools_are_described_and_annotated(tmp_path):
    async with mcp_server(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"remember", "search", "list_memories", "forget", "get_context"}
    for tool in tools.values():
        assert tool.description and "user_id" in tool.input_schema["required"]
        for name, spec in tool.input_schema["properties"].items():
            assert spec.get("description"), (tool.name, name)
    assert tools["search"].annotations.read_only_hint is True
    assert tools["forget"].annotations.destructive_hint is True
    assert tools["remember"].annotations.read_only_hint is False


async def test_remember_search_list_forget_and_scoping(tmp_path):
    async with mcp_server(tmp_path) as client:
        err, made = await call(client, "remember", text="Ana is allergic to peanuts", user_id="ana")
        assert not err and made["op"] == "add"
        await call(client, "remember", text="Ana's sister is called Marta", user_id="ana")
        await call(client, "remember", text="Bob is allergic to cats", user_id="bob")
        err, hits = await call(client, "search", query="peanuts", user_id="ana")
        assert not err and unwrap(hits)[0]["id"] == made["id"]
        err, hits = await call(client, "search", query="what is Ana allergic to?", user_id="ana")
        assert unwrap(hits)[0]["text"] == "Ana is allergic to peanuts"
        assert all("Bob" not in h["text"] for h in unwrap(hits))
        err, page = await call(client, "list_memories", user_id="ana", limit=1)
        assert len(page["memories"]) == 1 and page["next_offset"] == 1
        err, page2 = await call(client, "list_memories", user_id="ana", limit=1, offset=1)
        assert page2["next_offset"] is None and page2["memories"][0]["id"] != page["memories"][0]["id"]
        err, context = await call(client, "get_context", message="what should I cook?", user_id="ana")
        assert "peanuts" in context["context"]
        err, msg = await call(client, "forget", id=made["id"], user_id="bob")  # not bob's
        assert err and "id" in msg
        err, done = await call(client, "forget", id=made["id"], user_id="ana")
        assert not err and done["forgotten"]
        err, hits = await call(client, "search", query="peanuts", user_id="ana")
        assert all(h["id"] != made["id"] for h in unwrap(hits))
        err, hits = await call(client, "search", query="anything", user_id="nobody")
        assert not err and unwrap(hits) == []


async def test_bad_arguments_are_error_results_and_the_server_lives_on(tmp_path):
    async with mcp_server(tmp_path) as client:
        for tool, args in [("remember", {"text": "   ", "user_id": "ana"}), ("search", {"query": "", "user_id": "ana"}),
                           ("search", {"query": "x", "user_id": "ana", "limit": 0}), ("remember", {"text": "x"}),
                           ("forget", {"id": "no-such-id", "user_id": "ana"}), ("remember", {"text": "x", "user_id": ""})]:
            err, message = await call(client, tool, **args)
            assert err, (tool, args)
        assert "text" in (await call(client, "remember", text="   ", user_id="ana"))[1]
        err, made = await call(client, "remember", text="Ana likes jazz", user_id="ana")
        assert not err


async def test_a_fixed_user_and_persistence_across_restarts(tmp_path):
    async with mcp_server(tmp_path, "--user", "ana") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "user_id" not in tools["remember"].input_schema["properties"]
        await call(client, "remember", text="Ana lives in Porto")
    async with mcp_server(tmp_path, "--user", "ana") as client:
        err, hits = await call(client, "search", query="where does Ana live")
        assert unwrap(hits)[0]["text"] == "Ana lives in Porto"
    async with mcp_server(tmp_path, "--user", "bob") as client:
        assert unwrap((await call(client, "search", query="where does Ana live"))[1]) == []


async def test_two_servers_on_one_home_share_memory_and_survive_a_killed_owner(tmp_path):
    async with mcp_server(tmp_path) as first, mcp_server(tmp_path) as second:
        await asyncio.gather(call(first, "remember", text="Ana likes tea", user_id="ana"),
                             call(second, "remember", text="Ana plays chess", user_id="ana"))
        assert {h["text"] for h in unwrap((await call(second, "search", query="tea", user_id="ana"))[1])} >= {"Ana likes tea"}
        assert {h["text"] for h in unwrap((await call(first, "search", query="chess", user_id="ana"))[1])} >= {"Ana plays chess"}
        for i in range(3):
            assert not (await call(first, "remember", text=f"Ana visited city number {i}", user_id="ana"))[0]
        owner = served_home(tmp_path)["pid"]
        os.kill(owner, signal.SIGKILL)
        # The killed owner's client fails; the other process takes over and has every
        # acknowledged write.
        alive = []
        for client in (first, second):
            try:
                err, page = await asyncio.wait_for(call(client, "list_memories", user_id="ana", limit=50), 30)
            except Exception:  # noqa: BLE001 - the killed process's client
                continue
            assert not err, page
            texts = [m["text"] for m in page["memories"]]
            assert "Ana likes tea" in texts and "Ana plays chess" in texts
            assert sum("visited city" in t for t in texts) == 3
            alive.append(client)
        assert len(alive) == 1
        assert served_home(tmp_path)["pid"] != owner
        assert not (await call(alive[0], "remember", text="Ana likes jazz", user_id="ana"))[0]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_http_needs_the_key_when_one_is_set_and_off_loopback_always(tmp_path):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    key_file = tmp_path / "key"
    key_file.write_text("k" * 24 + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TIERMEM_API_KEY": ""}
    refused = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tiermem", "mcp", "--http", "--host", "0.0.0.0", "--home", str(tmp_path / "h"),
        "--embedder", "hash", env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(refused.communicate(), 60)
    assert refused.returncode == 1 and b"needs an API key" in err

    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tiermem", "mcp", "--http", "--port", str(port), "--home", str(tmp_path / "h"),
        "--embedder", "hash", "--api-key-file", str(key_file), env=env)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with httpx2.AsyncClient() as raw:
            for _ in range(300):
                try:
                    answer = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.1)
            assert answer.status_code == 401 and answer.json()["error"]["type"] == "Unauthorized"
        http = create_mcp_http_client(headers={"Authorization": "Bearer " + "k" * 24})
        async with http, Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as client:
            assert not (await call(client, "remember", text="Ana likes tea", user_id="ana"))[0]
            hits = unwrap((await call(client, "search", query="tea", user_id="ana"))[1])
            assert [h["text"] for h in hits] == ["Ana likes tea"]
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
