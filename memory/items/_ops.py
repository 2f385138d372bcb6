"""The item tier's operations and results, as values (the shapes of LangGraph's store ops,
owned by tiermem so that they travel over a served home as JSON).

A namespace is a list of labels; a label is a non-empty string without "." or NUL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Distance = Literal["cosine", "l2", "inner_product"]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIndexSpec(_Value):
    """The vectors a store's items are indexed with: their size and how they compare."""

    dims: int
    distance: Distance = "cosine"


class IndexText(_Value):
    """One field of an item to embed: its path, its text, and its vector when the caller
    embeds with a model of its own (else the memory's embedder does)."""

    field: str
    text: str
    vector: list[float] | None = None


class GetItem(_Value):
    op: Literal["get"] = "get"
    namespace: list[str]
    key: str
    refresh_ttl: bool = False  # restart the item's TTL (the store's refresh_on_read)
    omit_expired: bool = False


class PutItem(_Value):
    """Write an item (`value=None` deletes it, and erases its text from every tier)."""

    op: Literal["put"] = "put"
    namespace: list[str]
    key: str
    value: dict[str, Any] | None
    ttl: float | None = None  # minutes
    texts: list[IndexText] = Field(default_factory=list)  # what to index (nothing: not searchable by meaning)
    owner: str | None = None  # the user the item belongs to: `forget_user(owner)` erases it (None: nobody's)


class SearchItems(_Value):
    op: Literal["search"] = "search"
    namespace_prefix: list[str]
    query: str | None = None
    vector: list[float] | None = None  # the query's vector, when the caller embeds
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    refresh_ttl: bool = False
    omit_expired: bool = False
    ranking: Literal["cosine", "hybrid"] = "cosine"


class ListNamespaces(_Value):
    op: Literal["namespaces"] = "namespaces"
    conditions: list[tuple[Literal["prefix", "suffix"], list[str]]] = Field(default_factory=list)  # "*" matches any label
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0
    omit_expired: bool = False


class SweepItems(_Value):
    """Delete the expired items (documents and vectors); the result is how many."""

    op: Literal["sweep"] = "sweep"


class PendingItems(_Value):
    """Items whose vectors never reached the index (a crash between the two writes), with
    their texts: embedded again by whoever embeds them (the caller's model, or the memory's)."""

    op: Literal["pending"] = "pending"
    limit: int = 256


ItemOp = Annotated[GetItem | PutItem | SearchItems | ListNamespaces | SweepItems | PendingItems, Field(discriminator="op")]


class ItemRecord(_Value):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    score: float | None = None  # searches by meaning: the similarity of the best-matching field
    texts: list[IndexText] | None = None  # PendingItems only


ItemResult = ItemRecord | list[ItemRecord] | list[list[str]] | int | None
