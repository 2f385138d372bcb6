"""Integrations with agent frameworks: thin translators between a framework's types and
tiermem's, with no storage logic of their own.

- `tiermem.adapters.anthropic`: `MemoryClient` around the Anthropic SDK, Claude's memory tool.
- `tiermem.adapters.langgraph`: `TiermemStore` (a LangGraph `BaseStore`), memory nodes and tools.
- `tiermem.adapters.mem0`: mem0's `Memory` / `AsyncMemory` API over tiermem.

(MCP and the HTTP server live in `tiermem.serve`.)
"""

__all__: list[str] = []
