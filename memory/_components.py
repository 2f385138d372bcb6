"""Choosing the extractor, reconciler and summarizer from names or the environment
(TIERMEM_EXTRACTOR / TIERMEM_RECONCILER / TIERMEM_SUMMARIZER): the offline ones by default,
Claude's when asked. The Claude pieces share one model caller (one breaker, one usage log)."""

from __future__ import annotations

import os
from typing import Any

from ._errors import ConfigError

_OFFLINE = {"extractor": "rules", "reconciler": "rules", "summarizer": "extractive"}
_ENV = {"extractor": "TIERMEM_EXTRACTOR", "reconciler": "TIERMEM_RECONCILER", "summarizer": "TIERMEM_SUMMARIZER"}


def choose(role: str, given: Any) -> Any:
    """The object given, else its name from the argument or the environment ("rules"/"claude")."""
    if given is not None and not isinstance(given, str):
        return given
    name = (given or os.environ.get(_ENV[role]) or _OFFLINE[role]).strip().lower()
    if name not in (_OFFLINE[role], "claude"):
        source = f"{role}=" if given else f"{_ENV[role]}="
        raise ConfigError(f"{source}{name!r} is not a {role}; use {_OFFLINE[role]!r} (offline) or 'claude'")
    return name


def build(names: dict[str, Any], *, anthropic_client: Any = None, claude_model: str | None = None,
          count_tokens: Any = None) -> dict[str, Any]:
    """Objects for the roles named 'claude'; the offline names become None (the defaults)."""
    out: dict[str, Any] = {role: (None if value == _OFFLINE[role] else value) for role, value in names.items()}
    wanted = [role for role, value in names.items() if value == "claude"]
    if not wanted:
        return out
    from .claude import ClaudeExtractor, ClaudeReconciler, ClaudeSummarizer, claude_caller

    caller = claude_caller(anthropic_client, model=claude_model, purpose=f"{wanted[0]}='claude'")
    makers = {"extractor": lambda: ClaudeExtractor(caller), "reconciler": lambda: ClaudeReconciler(caller),
              "summarizer": lambda: ClaudeSummarizer(caller, **({"count_tokens": count_tokens} if count_tokens else {}))}
    for role in wanted:
        out[role] = makers[role]()
    return out
