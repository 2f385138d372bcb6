"""A mem0 config dict, read as tiermem options.

What maps: the Qdrant `path` becomes the tiermem home (tiermem's files sit beside mem0's,
under other names), a Qdrant `url` / `host`+`port` / `api_key` the Qdrant server, an
Anthropic LLM the Claude extractor (model, key, base URL). What does not is ignored with one
logged note per entry: other LLM providers (extraction runs offline with tiermem's rules),
embedders other than all-MiniLM-L6-v2 (tiermem embeds with MiniLM, offline), the history
database (tiermem's history is its journal), rerankers and custom instructions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tiermem import ConfigError

logger = logging.getLogger("tiermem.adapters.mem0")

KNOWN_KEYS = frozenset({"vector_store", "llm", "embedder", "history_db_path", "reranker", "version",
                        "custom_instructions", "graph_store"})


def tiermem_options(config: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Memory.open() keyword arguments for a mem0 config, and the notes on what was not mapped."""
    if config is None:
        config = {}
    if hasattr(config, "model_dump") and not isinstance(config, Mapping):  # mem0's MemoryConfig object
        config = config.model_dump()
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict (mem0's MemoryConfig as a dict), got {type(config).__name__}")
    options: dict[str, Any] = {}
    notes: list[str] = [f"config key {key!r} is not a mem0 config key: ignored" for key in config if key not in KNOWN_KEYS]
    _vector_store(_section(config, "vector_store"), options, notes)
    _llm(_section(config, "llm"), options, notes)
    _embedder(_section(config, "embedder"), notes)
    if config.get("history_db_path"):
        notes.append("history_db_path ignored: tiermem keeps each memory's history in its own journal (tiermem.db in the home)")
    if config.get("reranker"):
        notes.append("reranker ignored: tiermem ranks with its own hybrid (dense + BM25) retrieval")
    if config.get("custom_instructions"):
        notes.append("custom_instructions ignored: tiermem's extractors take no free-form instructions")
    if config.get("graph_store"):
        notes.append("graph_store ignored: tiermem has no graph store")
    for note in notes:
        logger.warning("tiermem.adapters.mem0: %s", note)
    return options, notes


def _section(config: Mapping[str, Any], name: str) -> tuple[str | None, dict[str, Any]]:
    section = config.get(name)
    if section is None:
        return None, {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"config[{name!r}] must be a dict with 'provider' and 'config', got {type(section).__name__}")
    inner = section.get("config") or {}
    if not isinstance(inner, Mapping):
        raise ConfigError(f"config[{name!r}]['config'] must be a dict, got {type(inner).__name__}")
    provider = section.get("provider")
    return (str(provider) if provider is not None else None), dict(inner)


def _vector_store(section: tuple[str | None, dict[str, Any]], options: dict[str, Any], notes: list[str]) -> None:
    provider, cfg = section
    if provider is None and not cfg:
        notes.append("no vector_store: the tiermem home is $TIERMEM_HOME, else ./.tiermem (mem0 would use /tmp/qdrant)")
        return
    provider = provider or "qdrant"
    url = cfg.get("url") or (f"http://{cfg['host']}:{cfg['port']}" if cfg.get("host") and cfg.get("port") else None)
    if provider == "qdrant" and url:
        options["qdrant_url"] = url
        if cfg.get("api_key"):
            options["qdrant_api_key"] = cfg["api_key"]
        # mem0's own collection has another layout: never write into it.
        options["collection"] = f"{cfg.get('collection_name') or 'mem0'}_tiermem"
        if cfg.get("path"):
            options["home"] = Path(cfg["path"])
        return
    if cfg.get("path"):
        options["home"] = Path(cfg["path"])
        if provider != "qdrant":
            notes.append(f"vector_store provider {provider!r}: its path is used as the tiermem home, "
                         "and tiermem stores its vectors in embedded Qdrant there")
        return
    if provider == "qdrant" and cfg.get("client") is not None:
        raise ConfigError("vector_store.config.client (a QdrantClient object) cannot be used by tiermem: "
                          "give its url (and api_key) or a local path instead")
    notes.append(f"vector_store provider {provider!r} has no path or Qdrant url tiermem can use: "
                 "the tiermem home is $TIERMEM_HOME, else ./.tiermem")


def _llm(section: tuple[str | None, dict[str, Any]], options: dict[str, Any], notes: list[str]) -> None:
    provider, cfg = section
    if provider in ("anthropic", "claude"):
        if not (cfg.get("api_key") or os.environ.get("ANTHROPIC_API_KEY")):
            notes.append("llm provider 'anthropic' has no api_key (nor ANTHROPIC_API_KEY): facts are extracted "
                         "offline by tiermem's rules")
            return
        options["extractor"] = "claude"
        options["reconciler"] = "claude"
        if cfg.get("model"):
            options["claude_model"] = cfg["model"]
        if cfg.get("api_key") or cfg.get("anthropic_base_url"):
            options["anthropic_client_args"] = {k: v for k, v in (("api_key", cfg.get("api_key")),
                                                                  ("base_url", cfg.get("anthropic_base_url"))) if v}
        return
    if provider is None and not cfg:
        return  # mem0's default is OpenAI; tiermem's is offline extraction, said nowhere louder than the README
    notes.append(f"llm provider {provider or 'openai'!r} is not used: facts are extracted offline by tiermem's rules "
                 "(configure provider 'anthropic' to extract with Claude)")


def _embedder(section: tuple[str | None, dict[str, Any]], notes: list[str]) -> None:
    provider, cfg = section
    model = str(cfg.get("model") or "")
    if provider is None and not cfg:
        return
    if provider == "huggingface" and (not model or "all-minilm-l6-v2" in model.lower().replace("_", "-")):
        return  # the model tiermem embeds with anyway
    notes.append(f"embedder {provider!r}{f' ({model})' if model else ''} is not used: tiermem embeds with "
                 "all-MiniLM-L6-v2, offline")
