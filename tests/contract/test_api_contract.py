"""One contract, three memories: `Memory`, `RemoteMemory` and `SharedMemory` answer the same
methods with the same signatures; the served table and the MCP tools are derived from it."""

from __future__ import annotations

import inspect
import typing

import pytest

from tiermem import Memory, MemoryAPI
from tiermem._contract import CONTRACT
from tiermem.serve import RemoteMemory, SharedMemory, methods
from tiermem.serve.mcp_server import TOOL_ARGUMENTS, TOOLS


def test_every_contract_method_is_served_and_every_served_method_is_on_the_contract() -> None:
    public = {name for name, value in vars(MemoryAPI).items()
              if callable(value) and not name.startswith("_") and not inspect.iscoroutinefunction(value)}
    assert set(CONTRACT) == public - {"close"}  # close() is local to each object
    assert set(methods()) == set(CONTRACT)


@pytest.mark.parametrize("name", CONTRACT)
def test_memory_implements_each_method_with_the_contracts_signature(name: str) -> None:
    ours, contract = inspect.signature(getattr(Memory, name)), inspect.signature(getattr(MemoryAPI, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in contract.parameters.values()], name
    assert getattr(Memory, name) is not getattr(MemoryAPI, name)  # real work, not the forwarding body


@pytest.mark.parametrize("client", [RemoteMemory, SharedMemory])
def test_clients_inherit_every_method_so_they_cannot_drift(client: type) -> None:
    assert issubclass(client, MemoryAPI)
    for name in CONTRACT:
        assert getattr(client, name) is getattr(MemoryAPI, name), f"{client.__name__}.{name} redefines the contract"


def test_memory_open_is_typed_for_each_kind() -> None:
    overloads = typing.get_overloads(Memory.open.__func__)  # type: ignore[attr-defined]
    returns = {inspect.signature(o.__func__).return_annotation for o in overloads}
    assert returns == {"Memory", "Memory | SharedMemory", "RemoteMemory"}  # share=False, a home, a url


def test_each_mcp_tool_wraps_a_contract_method_that_takes_its_arguments() -> None:
    from tiermem.serve.mcp_server import build_server

    class Recorder(MemoryAPI):
        def _call(self, name, arguments):
            raise AssertionError("not called")

    server = build_server(Recorder())
    tools = {t.name: t for t in server._tool_manager.list_tools()}
    assert set(tools) == set(TOOLS)
    for tool_name, method in TOOLS.items():
        assert method in CONTRACT
        takes = set(inspect.signature(getattr(MemoryAPI, method)).parameters) - {"self"}
        arguments = {TOOL_ARGUMENTS.get(a, a) for a in tools[tool_name].parameters.get("properties", {})}
        assert arguments <= takes, (tool_name, arguments - takes)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_served_method_has_an_async_twin_with_its_signature(name: str) -> None:
    twin = getattr(MemoryAPI, f"a{name}")
    assert inspect.iscoroutinefunction(twin) and twin.__name__ == f"a{name}"
    assert inspect.signature(getattr(Memory, f"a{name}")) == inspect.signature(twin)


async def test_a_twin_runs_the_subclass_s_own_method_with_the_arguments_given() -> None:
    seen = []

    class Recorder(MemoryAPI):
        def _call(self, name, arguments):
            seen.append((name, arguments))
            return name

    # the forwarding body names every parameter, defaults included, however it was called
    assert await Recorder().asearch("tea", user_id="ana", limit=3) == "search"
    assert Recorder().forget("f1", user_id="ana") == "forget"
    assert seen == [("search", {"query": "tea", "user_id": "ana", "limit": 3, "as_of": None, "kinds": None}),
                    ("forget", {"fact_id": "f1", "user_id": "ana", "redact_turns": False})]
    with pytest.raises(TypeError):
        Recorder().search("tea", user="ana")  # a wrong keyword fails here, not on the server
