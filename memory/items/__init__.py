"""The item tier: JSON documents under namespaces, searchable by meaning (what LangGraph's
store keeps; `tiermem.adapters.langgraph.TiermemStore` is its translator)."""

from ._ops import (
    GetItem,
    IndexText,
    ItemIndexSpec,
    ItemOp,
    ItemRecord,
    ItemResult,
    ListNamespaces,
    PendingItems,
    PutItem,
    SearchItems,
    SweepItems,
)
from ._tier import ItemTier, check_namespace

__all__ = [
    "GetItem",
    "IndexText",
    "ItemIndexSpec",
    "ItemOp",
    "ItemRecord",
    "ItemResult",
    "ItemTier",
    "ListNamespaces",
    "PendingItems",
    "PutItem",
    "SearchItems",
    "SweepItems",
    "check_namespace",
]
