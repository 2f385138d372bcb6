"""mem0's `Memory` and `AsyncMemory`, backed by tiermem: switch by changing one import.

    # from mem0 import Memory
    from tiermem.adapters.mem0 import Memory

    m = Memory.from_config(config)          # the same mem0 config dict
    m.add("I'm allergic to peanuts", user_id="alice")
    m.search("what can't alice eat?", filters={"user_id": "alice"})

The methods, arguments, results (`{"results": [...]}` items with `id`, `memory`, `hash`,
`metadata`, `score`, `created_at`, `updated_at` and the scope keys at the top level; events
`ADD`, `UPDATE`, `DELETE`, `NONE`) and exceptions are mem0 2.x's. Where tiermem does better,
on purpose:

- `delete()` / `delete_all()` / `reset()` erase: the text leaves every file, history
  included (mem0 keeps it in its history table).
- A contradiction is journaled: the old memory comes back as a `DELETE` event and stays in
  `history()` (mem0 2.x stores the new memory beside the old one).
- A repeat is recognised (`NONE`, with the existing id), not stored twice, also with
  `infer=False`.
- Extraction runs offline (tiermem's rules) unless the config names an Anthropic LLM.

Scopes: a memory's tiermem tenant is its `user_id`; memories with no user belong to the
tenant "agent <id>" (or "run <id>"), a name no mem0 id can have (mem0 ids hold no
whitespace). The scope keys are kept in the fact's metadata, so a read filtered by
`agent_id` or `run_id` alone finds that agent's memories across users, as in mem0.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tiermem import Fact, FactEvent, FactNotFound, InvalidInput, UnknownUser

from ._mem0_config import tiermem_options
from ._mem0_shapes import (
    IDENTITY_KEYS,
    RESERVED_KEYS,
    SCOPE_KEYS,
    MemoryError,
    ValidationError,
    add_scope,
    as_messages,
    check_filters,
    entity_id,
    expiration,
    id_spellings,
    is_expired,
    iso,
    matches,
    memory_item,
    public_id,
    read_filters,
    search_params,
    search_query,
)

logger = logging.getLogger("tiermem.adapters.mem0")

EVENTS = {"add": "ADD", "update": "UPDATE", "invalidate": "DELETE", "noop": "NONE"}
_UNSET: Any = object()


def tenant_of(scope: Mapping[str, Any]) -> str:
    """The tiermem tenant of a mem0 scope (see the module docstring)."""
    if scope.get("user_id"):
        return str(scope["user_id"])
    if scope.get("agent_id"):
        return f"agent {scope['agent_id']}"
    return f"run {scope['run_id']}"


class Memory:
    """mem0's `Memory` API over a tiermem `Memory`.

    Args:
        config: a mem0 config dict (see `from_config`), or None for the default home.
        memory: an open `tiermem.Memory` to use instead (its owner closes it).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, memory: Any = None):
        self.notes: list[str] = []
        if memory is not None:
            self.config: dict[str, Any] = dict(config or {})
            self._memory, self._owned = memory, False
            return
        from tiermem import Memory as TiermemMemory

        options, self.notes = tiermem_options(config)
        self.config = dict(config or {})
        client_args = options.pop("anthropic_client_args", None)
        if client_args is not None:
            import anthropic

            options["anthropic_client"] = anthropic.Anthropic(**client_args)
        # mem0 returns what add() did: extraction runs inline, never in the background.
        self._memory, self._owned = TiermemMemory.open(extraction="inline", **options), True

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> Memory:
        """Open tiermem from a mem0 config dict: the Qdrant `path` is the home; what cannot
        be mapped is logged (see `tiermem.adapters._mem0_config`)."""
        return cls(config_dict)

    @property
    def tiermem(self) -> Any:
        """The `tiermem.Memory` underneath (context(), usage(), forget_user(), ...)."""
        return self._memory

    # -- writing ----------------------------------------------------------------------------
    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
            metadata: dict[str, Any] | None = None, timestamp: Any = None, expiration_date: Any = None,
            infer: bool = True, memory_type: str | None = None, prompt: str | None = None) -> dict[str, Any]:
        """Store messages: with `infer`, extract facts from them (reconciled with what is
        stored); without, store each non-system message as a memory, as given."""
        if timestamp is not None:
            raise ValueError("timestamp is a mem0 platform parameter, not supported by the open-source API; "
                             "put the time in the message or in metadata")
        expires = expiration(expiration_date)
        scope = add_scope(user_id, agent_id, run_id)
        if memory_type is not None:
            raise ValidationError(
                message="Invalid 'memory_type': procedural memories are not supported by tiermem.",
                error_code="VALIDATION_002",
                details={"provided_type": memory_type},
                suggestion="Leave memory_type out.",
            )
        if prompt is not None:
            logger.warning("tiermem.adapters.mem0: add(prompt=...) ignored: tiermem's extractors take no custom prompt")
        payload = _caller_metadata(metadata)
        payload.update(scope)
        if expires is not None:
            payload["expiration_date"] = expires
        tenant = tenant_of(scope)
        items = as_messages(messages)
        if not infer:
            return {"results": self._remember_each(items, tenant, payload)}
        turns = [m for m in items if not (isinstance(m, Mapping) and m.get("role") == "system")]
        if not turns:
            return {"results": []}
        result = self._memory.add(turns, user_id=tenant, session_id=scope.get("run_id", "default"), metadata=payload)
        if result.error:
            logger.warning("tiermem.adapters.mem0: extraction failed and will be retried: %s", result.error)
        return {"results": [_event_item(e) for e in result.events if e.op in EVENTS]}

    def _remember_each(self, messages: Sequence[Any], tenant: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") is None or message.get("content") is None:
                logger.warning("Skipping invalid message format: %r", message)
                continue
            if message["role"] == "system":
                continue
            if isinstance(message["content"], str) and not message["content"].strip():
                logger.warning("Skipping an empty message: there is nothing to remember in it")
                continue
            meta = {**payload, "role": message["role"]}
            actor = message.get("name")
            if actor:
                meta["actor_id"] = actor
            result = self._memory.remember(message["content"], user_id=tenant, metadata=meta)
            for event in result.events:
                if event.op in EVENTS:
                    out.append({**_event_item(event), "actor_id": actor or None, "role": message["role"]})
        return out

    def update(self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None,
               expiration_date: Any = _UNSET, data: str | None = None) -> dict[str, str]:
        """Change a memory's text and/or metadata (merged into the old; the scope keys cannot
        change). The old version stays in `history()`."""
        if data is not None and text is None:
            text = data
        if text is None and metadata is None and expiration_date is _UNSET:
            raise ValueError("At least one of text, metadata, or expiration_date must be provided.")
        fact = self._fact(memory_id)
        if fact is None or not fact.is_valid:  # a contradicted memory is a deleted one to mem0
            raise ValueError(f"Memory with id {memory_id} not found. Please provide a valid 'memory_id'")
        new_metadata = None
        if metadata is not None or expiration_date is not _UNSET:
            new_metadata = dict(fact.metadata)
            for key, value in (metadata or {}).items():
                if key in IDENTITY_KEYS:
                    if value != fact.metadata.get(key):
                        logger.warning("update(): ignoring metadata[%r] - identity fields cannot be set through metadata", key)
                elif key not in RESERVED_KEYS:
                    new_metadata[key] = value
            if expiration_date is not _UNSET:
                new_metadata["expiration_date"] = expiration(expiration_date)
        self._memory.update(fact.id, text, metadata=new_metadata)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, str]:
        """Erase a memory and its history from every tier."""
        fact = self._fact(memory_id)
        if fact is None:
            raise ValueError(f"Memory with id {memory_id} not found")
        self._memory.forget(fact.id, redact_turns=True)  # the message it came from goes too
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:
        """Erase every memory of a scope. A whole tenant (a user, or an agent's or run's own
        memories) is erased with its turns and summaries too."""
        scope = {k: v for k, v in (("user_id", entity_id(user_id, "user_id")),
                                   ("agent_id", entity_id(agent_id, "agent_id")),
                                   ("run_id", entity_id(run_id, "run_id"))) if v}
        if not scope:
            raise ValueError("At least one filter is required to delete all memories. "
                             "If you want to delete all memories, use the `reset()` method.")
        whole_tenant = tenant_of(scope) if len(scope) == 1 else None
        for tenant in self._tenants(scope):
            if tenant == whole_tenant:
                if self._has_user(tenant):
                    self._memory.forget_user(tenant)
                continue
            for fact in self._facts(tenant, include_invalid=True):
                if matches(fact.metadata, scope):
                    self._memory.forget(fact.id, redact_turns=True)
            if scope.get("run_id") and self._has_user(tenant):  # a run is a session: its messages go too
                self._memory.forget_session(str(scope["run_id"]), user_id=tenant)
        return {"message": "Memories deleted successfully!"}

    def reset(self) -> None:
        """Erase everything in this home (every user's memories, turns and history)."""
        logger.warning("Resetting all memories")
        for tenant, _, _ in self._memory.users():
            self._memory.forget_user(tenant)

    # -- reading ----------------------------------------------------------------------------
    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None (also for a deleted or contradicted one)."""
        fact = self._fact(memory_id)
        if fact is None or not fact.is_valid:
            return None
        return self._items([fact], with_score=True)[0]

    def get_all(self, *, filters: dict[str, Any] | None = None, top_k: int = 20, show_expired: bool = False,
                **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
        """The memories of a scope (`filters` must name user_id, agent_id or run_id), oldest first."""
        search_params(None, top_k)
        wanted = read_filters(filters, kwargs, "get_all")
        check_filters(wanted)
        found: list[Fact] = []
        for tenant in self._tenants(wanted):
            for fact in self._facts(tenant):
                if matches(fact.metadata, wanted) and (show_expired or not is_expired(fact.metadata)):
                    found.append(fact)
        found.sort(key=lambda f: (f.created_at, f.id))
        return {"results": self._items(found[:top_k], with_score=False)}

    def search(self, query: str, *, top_k: int = 20, filters: dict[str, Any] | None = None, threshold: float = 0.1,
               rerank: bool = False, explain: bool = False, reference_date: Any = None, show_expired: bool = False,
               **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
        """tiermem's hybrid search within a scope, in its order. `score` is the cosine
        similarity that `threshold` gates (mem0's semantic score)."""
        if reference_date is not None:
            raise ValueError("reference_date is a mem0 platform parameter, not supported by the open-source API")
        search_params(threshold, top_k)
        query = search_query(query)
        wanted = read_filters(filters, kwargs, "search")
        check_filters(wanted)
        if top_k == 0:
            return {"results": []}
        gate = 0.1 if threshold is None else float(threshold)
        ranked: list[tuple[float, float, Fact, dict[str, float]]] = []
        for tenant in self._tenants(wanted):
            hits = self._memory.search(query, user_id=tenant, limit=max(top_k * 4, 60))
            for hit in hits:
                cosine = max(0.0, min(1.0, float(hit.explain.get("dense", 0.0))))
                meta = hit.fact.metadata
                if cosine >= gate and matches(meta, wanted) and (show_expired or not is_expired(meta)):
                    ranked.append((hit.score, cosine, hit.fact, hit.explain))
        ranked.sort(key=lambda r: -r[0])  # one tenant: tiermem's order; several: merged by it
        ranked = ranked[:top_k]
        items = self._items([r[2] for r in ranked], with_score=True)
        for item, (_, cosine, _, how) in zip(items, ranked, strict=True):
            item["score"] = cosine
            if explain:
                item["score_details"] = {"semantic_score": cosine, "tiermem": how, "threshold": gate}
        return {"results": items}

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """A memory's changes, oldest first, in mem0's history row shape ([] for an unknown
        or deleted one: deletion erases the history too)."""
        fact = self._fact(memory_id)
        if fact is None:
            return []
        return [_history_row(fact, e) for e in self._memory.history(fact.id) if e.op in EVENTS and e.op != "noop"]

    def chat(self, query: str) -> Any:
        raise NotImplementedError("Chat function not implemented yet.")

    def close(self) -> None:
        if self._owned and self._memory is not None:
            self._memory.close()
        self._memory = None

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------
    def _fact(self, memory_id: Any) -> Fact | None:
        if memory_id is None or not str(memory_id).strip():
            return None
        for spelling in id_spellings(memory_id):
            try:
                return self._memory.get(spelling)
            except (FactNotFound, InvalidInput):
                continue
        return None

    def _facts(self, tenant: str, *, include_invalid: bool = False) -> list[Fact]:
        try:
            return self._memory.facts(user_id=tenant, include_invalid=include_invalid)
        except UnknownUser:
            return []

    def _has_user(self, tenant: str) -> bool:
        return any(user == tenant for user, _, _ in self._memory.users())

    def _tenants(self, scope: Mapping[str, Any]) -> list[str]:
        """The tenants a scope's memories live in: the user's; else the agent's or run's own
        tenant and every user tenant holding a memory of that agent or run."""
        if scope.get("user_id"):
            return [str(scope["user_id"])]
        keys = {k: scope[k] for k in SCOPE_KEYS if scope.get(k)}
        own = tenant_of(keys)
        return [tenant for tenant, _, _ in self._memory.users()
                if tenant == own or any(matches(f.metadata, keys) for f in self._facts(tenant))]

    def _items(self, facts: Sequence[Fact], *, with_score: bool) -> list[dict[str, Any]]:
        return [memory_item(f.id, f.text, f.metadata, f.created_at, f.updated_at or f.created_at, with_score=with_score)
                for f in facts]


class AsyncMemory:
    """mem0's `AsyncMemory`: the same methods as coroutines (run on a worker thread, since
    the embedded stores block)."""

    def __init__(self, config: Mapping[str, Any] | None = None, *, memory: Any = None):
        self._sync = Memory(config, memory=memory)
        self.config = self._sync.config
        self.notes = self._sync.notes

    @classmethod
    def from_config(cls, config_dict: Mapping[str, Any]) -> AsyncMemory:
        return cls(config_dict)

    @property
    def tiermem(self) -> Any:
        return self._sync.tiermem

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._sync.add, messages, **kwargs)

    async def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._sync.search, query, **kwargs)

    async def get(self, memory_id: str) -> dict[str, Any] | None:
        return await self._run(self._sync.get, memory_id)

    async def get_all(self, **kwargs: Any) -> dict[str, Any]:
        return await self._run(self._sync.get_all, **kwargs)

    async def update(self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> dict[str, str]:
        return await self._run(self._sync.update, memory_id, text, metadata, **kwargs)

    async def delete(self, memory_id: str) -> dict[str, str]:
        return await self._run(self._sync.delete, memory_id)

    async def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                         run_id: str | None = None) -> dict[str, str]:
        return await self._run(self._sync.delete_all, user_id, agent_id, run_id)

    async def history(self, memory_id: str) -> list[dict[str, Any]]:
        return await self._run(self._sync.history, memory_id)

    async def reset(self) -> None:
        await self._run(self._sync.reset)

    async def chat(self, query: str) -> Any:
        raise NotImplementedError("Chat function not implemented yet.")

    def close(self) -> None:
        self._sync.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def _caller_metadata(metadata: Any) -> dict[str, Any]:
    """Caller metadata as mem0 stores it: the scope comes from the ids, never from metadata."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(message="metadata must be a dict", error_code="VALIDATION_004",
                              details={"provided_type": type(metadata).__name__}, suggestion="Pass metadata as a dict.")
    out = {}
    for key, value in metadata.items():
        if key in IDENTITY_KEYS:
            logger.warning("add(): ignoring metadata[%r] - identity fields cannot be set through metadata", key)
        elif key in RESERVED_KEYS:
            logger.warning("add(): ignoring metadata[%r] - mem0 keeps that key for itself", key)
        else:
            out[key] = value
    return out


def _event_item(event: FactEvent) -> dict[str, Any]:
    fact = event.fact
    op = EVENTS[event.op]
    if event.op == "update" and event.previous is not None and fact is not None and event.previous.text == fact.text:
        op = "NONE"  # a repeat: only its sources were merged; to mem0 nothing changed
    item = {"id": public_id(event.fact_id), "memory": fact.text if fact else "", "event": op}
    if op == "UPDATE" and event.previous is not None and fact is not None and event.previous.text != fact.text:
        item["previous_memory"] = event.previous.text
    return item


def _history_row(fact: Fact, event: FactEvent) -> dict[str, Any]:
    before = event.previous.text if event.previous is not None else None
    after = event.fact.text if event.fact is not None else None
    deleted = event.op == "invalidate"
    meta = (event.fact or fact).metadata
    return {
        # mem0 gives history rows ids of their own: one per journal row, stable across calls.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tiermem:{fact.id}:{event.seq}")),
        "memory_id": public_id(fact.id),
        "old_memory": None if event.op == "add" else (before if before is not None else after),
        "new_memory": None if deleted else after,
        "event": EVENTS[event.op],
        "created_at": iso(fact.created_at),
        "updated_at": iso(event.at),
        "is_deleted": deleted,
        "actor_id": meta.get("actor_id"),
        "role": meta.get("role"),
    }


__all__ = ["AsyncMemory", "Memory", "MemoryError", "ValidationError", "tenant_of"]
