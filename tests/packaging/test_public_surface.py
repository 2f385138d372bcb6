"""The integrations stand on the public contract only: no module of `adapters/` or `agents/`
imports a private module of the core or reaches into a memory's collaborators (so each one
works the same over `Memory.open(url=...)`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLABORATORS = {"session", "writes", "sync", "retriever", "item_tier", "file_writes", "contexts"}


def _sources() -> list[Path]:
    return sorted(p for folder in ("adapters", "agents") for p in (ROOT / folder).rglob("*.py"))


def test_no_integration_imports_a_private_module_of_the_core() -> None:
    private = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "tiermem" and any(p.startswith("_") for p in parts[1:]) and parts[1:2] != ["adapters"]:
                    private.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert private == []


def test_no_integration_reaches_into_a_memorys_collaborators() -> None:
    reach_ins = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr in COLLABORATORS:
                inner = node.value.value
                if isinstance(inner, ast.Name) and inner.id in ("mem", "memory") or \
                        isinstance(inner, ast.Attribute) and inner.attr in ("mem", "memory", "_memory", "tiermem"):
                    reach_ins.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.value.attr}.{node.attr}")
    assert reach_ins == []
