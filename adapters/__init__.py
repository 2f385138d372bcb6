"""Integrations with agent frameworks: thin translators between a framework's types and
tiermem's, with no storage logic of their own.

- `tiermem.adapters.anthropic`: `MemoryClient` around the Anthropic SDK, Claude's memory tool.
- `tiermem.adapters.langgraph`: `TiermemStore` (a LangGraph `BaseStore`), memory nodes and tools.
- `tiermem.adapters.mem0`: mem0's `Memory` / `AsyncMemory` API over tiermem.
- `tiermem.adapters.openai_agents`: `TiermemSession` (the Agents SDK's `Session`), memory in the
  instructions, function tools.
- `tiermem.adapters.pydantic_ai`: `TiermemConversationStore` (Pydantic AI's `ConversationStore`),
  memory in the instructions, a history window, a toolset.

(MCP and the HTTP server live in `tiermem.serve`.)
"""

__all__: list[str] = []
