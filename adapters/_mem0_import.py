"""Read a mem0 store through mem0ai's own API and turn it into tiermem import records.

Each memory becomes a fact with its id (as UUID hex; the mem0 adapter shows the hyphenated
form again), its scope (the tenant of `tenant_of`, the scope keys in its metadata, as the
adapter keeps them), its metadata, its creation time, and its history as journal rows (ADD,
then each UPDATE). Deleted memories are not imported. The records go through the same
idempotent import as `tiermem import file.jsonl`, so running it twice imports nothing twice.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tiermem import ConfigError, Fact, FactEvent, MissingDependency, StoreUnavailable
from tiermem.extract import statement

from ._mem0_shapes import PROMOTED_KEYS, SCOPE_KEYS
from .mem0 import tenant_of

LISTING_LIMIT = 10_000_000  # mem0's list() pages by top_k: ask for every point at once


def mem0_records(config: Mapping[str, Any]) -> tuple[list[tuple[str, Any, dict[str, Any]]], int]:
    """Import records for every memory of a mem0 store, and how many memories it holds."""
    memory = _open_mem0(config)
    try:
        items = _all_memories(memory)
        facts: list[Fact] = []
        events: list[FactEvent] = []
        for item in items:
            fact, history = _fact_of(item, memory.history(item["id"]))
            facts.append(fact)
            events.extend(history)
    finally:
        memory.close()
    records: list[tuple[str, Any, dict[str, Any]]] = [("fact", f, {}) for f in facts]
    records += [("event", e, {}) for e in events]
    return records, len(items)


def _open_mem0(config: Mapping[str, Any]) -> Any:
    if not isinstance(config, Mapping):
        raise ConfigError("the mem0 config must be a JSON object (mem0's MemoryConfig as a dict)")
    os.environ["MEM0_TELEMETRY"] = "False"  # before mem0 is imported: tiermem never phones home
    try:
        from mem0 import Memory as Mem0Memory
    except ImportError:
        raise MissingDependency("reading a mem0 store needs mem0ai: pip install 'tiermem[mem0]'") from None
    settings = dict(config)
    # Listing and history neither embed nor call a model: stand-ins that need no key or
    # network replace whatever the config names, so that opening the store cannot fail on them.
    settings["embedder"] = {"provider": "openai", "config": {"api_key": "unused-by-tiermem-import"}}
    settings["llm"] = {"provider": "openai", "config": {"api_key": "unused-by-tiermem-import"}}
    settings.pop("reranker", None)
    try:
        return Mem0Memory.from_config(settings)
    except RuntimeError as exc:  # qdrant's local mode: the folder is open in another process
        raise StoreUnavailable(f"cannot open the mem0 store: {exc} (stop the program using it first)") from exc
    except ValueError as exc:
        raise ConfigError(f"mem0 refused the config: {exc}") from exc


def _all_memories(memory: Any) -> list[dict[str, Any]]:
    """Every memory, read with get_all() per scope; the scopes are found by listing the
    vector store (mem0 has no call that lists its users)."""
    listed = memory.vector_store.list(filters=None, top_k=LISTING_LIMIT)
    points = listed[0] if isinstance(listed, tuple | list) and listed and isinstance(listed[0], list) else listed
    scopes = set()
    for point in points or []:
        payload = getattr(point, "payload", None) or {}
        if payload.get("data") is None:
            continue
        scopes.add(tuple((k, payload[k]) for k in SCOPE_KEYS if payload.get(k)))
    seen: dict[str, dict[str, Any]] = {}
    for scope in sorted(scopes):
        if not scope:
            continue
        for item in memory.get_all(filters=dict(scope), top_k=LISTING_LIMIT, show_expired=True)["results"]:
            seen.setdefault(item["id"], item)
    return sorted(seen.values(), key=lambda i: (i.get("created_at") or "", i["id"]))


def _fact_of(item: Mapping[str, Any], history: list[Mapping[str, Any]]) -> tuple[Fact, list[FactEvent]]:
    scope = {k: item[k] for k in SCOPE_KEYS if item.get(k)}
    tenant = tenant_of(scope)
    metadata = {**(item.get("metadata") or {}), **{k: item[k] for k in PROMOTED_KEYS if k in item}}
    created = _when(item.get("created_at")) or datetime.now(UTC)
    fact_id = _fact_id(item["id"])

    def version(text: str) -> Fact:
        candidate = statement(text, user_id=tenant, at=created, kind=None, metadata=metadata)
        return Fact(**candidate.model_dump(exclude={"valid_from", "extractor", "operation"}), id=fact_id, user_id=tenant,
                    valid_from=created, created_at=created, extractor="mem0")

    current = version(item["memory"])
    events: list[FactEvent] = []
    previous: Fact | None = None
    for row in history:
        if row.get("event") not in ("ADD", "UPDATE") or row.get("new_memory") is None:
            continue
        fact = version(row["new_memory"])
        at = _when(row.get("updated_at")) or _when(row.get("created_at")) or created
        if previous is None:
            events.append(FactEvent(op="add", fact_id=fact_id, user_id=tenant, fact=fact, at=at, reason="imported from mem0"))
        else:
            events.append(FactEvent(op="update", fact_id=fact_id, user_id=tenant, fact=fact, previous=previous, at=at,
                                    reason="imported from mem0 (its history)"))
        previous = fact
    if previous is None:  # no history table: the memory as it is now
        events.append(FactEvent(op="add", fact_id=fact_id, user_id=tenant, fact=current, at=created,
                                reason="imported from mem0"))
    elif previous.text != current.text or previous.metadata != current.metadata:
        events.append(FactEvent(op="update", fact_id=fact_id, user_id=tenant, fact=current, previous=previous,
                                at=_when(item.get("updated_at")) or created, reason="imported from mem0"))
    return current, events


def _fact_id(memory_id: str) -> str:
    try:
        return uuid.UUID(str(memory_id)).hex
    except ValueError:
        return str(memory_id)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
