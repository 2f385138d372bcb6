"""Per-model facts (context window, cache minimum, prices) kept as data in `models.json`.

Prices and cache minimums move; they live in a JSON table rather than in code so that a
release can update them, and a user can override or extend them with TIERMEM_MODEL_TABLE.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .._errors import ConfigError

logger = logging.getLogger("tiermem")
PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Prices:
    """USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class ModelInfo:
    name: str
    context_window: int = 200_000
    max_output: int = 64_000
    cache_min_tokens: int = 1024
    structured_output: bool = True
    price: Prices | None = None
    known: bool = True

    def cost(
        self, *, input_tokens: int = 0, output_tokens: int = 0, cache_write_5m: int = 0, cache_write_1h: int = 0,
        cache_read: int = 0, batch: bool = False,
    ) -> float | None:
        """The list price of a call in USD, or None when the table has no price for the model."""
        if self.price is None:
            return None
        p = self.price
        usd = (input_tokens * p.input + output_tokens * p.output + cache_write_5m * p.cache_write_5m
               + cache_write_1h * p.cache_write_1h + cache_read * p.cache_read) / PER_MILLION
        return usd * (_table()["batch_discount"] if batch else 1.0)


@functools.cache
def _table() -> dict[str, Any]:
    table = json.loads(resources.files("tiermem.claude").joinpath("models.json").read_text("utf-8"))
    override = os.environ.get("TIERMEM_MODEL_TABLE")
    if override:
        try:
            extra = json.loads(open(override, encoding="utf-8").read())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"TIERMEM_MODEL_TABLE={override!r} cannot be read as a JSON model table: {exc}") from None
        table["models"].update(extra.get("models", {}))
        table["batch_discount"] = extra.get("batch_discount", table["batch_discount"])
    return table


@functools.lru_cache(maxsize=256)  # context() asks for the cache minimum on every call
def model_info(model: str) -> ModelInfo:
    """The table's entry for `model`: an exact name, else the longest name it starts with
    ('claude-haiku-4-5-20251001' is 'claude-haiku-4-5'); an unknown model gets defaults and
    no price (reports then say the cost is unknown instead of guessing)."""
    models = _table()["models"]
    for name in sorted(models, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            entry = dict(models[name])
            price = entry.pop("price", None)
            return ModelInfo(name=model, price=Prices(**price) if price else None, **entry)
    _warn_unknown(model)
    return ModelInfo(name=model, price=None, known=False)


@functools.cache
def _warn_unknown(model: str) -> None:
    logger.warning("tiermem: %r is not in the model table; its cost is reported as unknown "
                   "(add it with TIERMEM_MODEL_TABLE)", model)
