"""Integrations with agent frameworks (LangGraph, Anthropic, mem0, MCP).

Adapters only translate between a framework's types and tiermem's; they hold no storage
logic. None ships yet: see the open issues.
"""

__all__: list[str] = []
