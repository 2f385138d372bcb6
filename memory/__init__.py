"""tiermem: tiered persistent memory for LLM agents.

    from tiermem import Memory
    with Memory.open() as mem:
        mem.add([{"role": "user", "content": "I moved to Berlin last week"}], user_id="ana")
        ctx = mem.context("what should I pack?", user_id="ana", system="You are a travel assistant.")
"""

import sys
import types
from typing import TYPE_CHECKING

from ._errors import (
    Busy,
    ConfigError,
    ContextOverflow,
    EmbeddingMismatch,
    FactNotFound,
    IndexCorrupted,
    IndexLocked,
    InvalidInput,
    MemoryClosed,
    MissingDependency,
    OutcomeUnknown,
    StoreUnavailable,
    TieredMemoryError,
    UnknownUser,
    WriteConflict,
)
from ._lazy import lazy_exports

# Everything else loads on first use (PEP 562): `import tiermem` stays cheap, so a process
# that only needs a little of it (`tiermem mcp` answering `initialize`, the CLI's reading
# commands) does not pay for SQLAlchemy, numpy and the stores up front.
_LAZY = {
    "ErasureReceipt": "._erasure", "Memory": "._memory", "approx_tokens": "._tokens",
    **dict.fromkeys(["MemoryAPI", "MessagesIn"], "._contract"), "check_id": "._messages",
    **dict.fromkeys(["AddResult", "CallUsage", "Candidate", "Context", "ContextReport", "Dropped", "ExtractionFailure",
                     "Fact", "FactEvent", "Hit", "MemoryFile", "Profile", "Summary", "Turn", "UsageReport", "UsageTotals"],
                    "._models"),
    **dict.fromkeys(["Embedder", "HashEmbedder", "MiniLMEmbedder"], ".embed"),
    **dict.fromkeys(["Extractor", "RuleExtractor"], ".extract"),
    **dict.fromkeys(["EdgeFactIndex", "FactIndex", "QdrantFactIndex"], ".index"),
    "ContextBudget": ".inject",
    **dict.fromkeys(["ReconcilePolicy", "Reconciler", "RuleReconciler", "reconcile"], ".reconcile"),
    "RetrievalPolicy": ".retrieve", "SessionStore": ".session",
    **dict.fromkeys(["ExtractiveSummarizer", "Summarizer"], ".summarize"),
}


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """`tiermem.reconcile` is both a submodule and the function this package exports under
    that name; importing the submodule (which happens lazily now) must not replace the function."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "reconcile" and isinstance(value, types.ModuleType):
            value = value.reconcile
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:
    from ._contract import MemoryAPI, MessagesIn
    from ._erasure import ErasureReceipt
    from ._memory import Memory
    from ._messages import check_id
    from ._models import (
        AddResult,
        CallUsage,
        Candidate,
        Context,
        ContextReport,
        Dropped,
        ExtractionFailure,
        Fact,
        FactEvent,
        Hit,
        MemoryFile,
        Profile,
        Summary,
        Turn,
        UsageReport,
        UsageTotals,
    )
    from ._tokens import approx_tokens
    from .embed import Embedder, HashEmbedder, MiniLMEmbedder
    from .extract import Extractor, RuleExtractor
    from .index import EdgeFactIndex, FactIndex, QdrantFactIndex
    from .inject import ContextBudget
    from .reconcile import ReconcilePolicy, Reconciler, RuleReconciler, reconcile
    from .retrieve import RetrievalPolicy
    from .session import SessionStore
    from .summarize import ExtractiveSummarizer, Summarizer

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "Busy",
    "CallUsage",
    "Candidate",
    "ConfigError",
    "ContextOverflow",
    "Context",
    "ContextBudget",
    "ContextReport",
    "Dropped",
    "EdgeFactIndex",
    "Embedder",
    "EmbeddingMismatch",
    "ErasureReceipt",
    "ExtractionFailure",
    "ExtractiveSummarizer",
    "Extractor",
    "Fact",
    "FactEvent",
    "FactIndex",
    "FactNotFound",
    "HashEmbedder",
    "Hit",
    "IndexCorrupted",
    "IndexLocked",
    "InvalidInput",
    "Memory",
    "MemoryAPI",
    "MemoryClosed",
    "MemoryFile",
    "MessagesIn",
    "MiniLMEmbedder",
    "MissingDependency",
    "OutcomeUnknown",
    "Profile",
    "QdrantFactIndex",
    "ReconcilePolicy",
    "Reconciler",
    "RetrievalPolicy",
    "RuleExtractor",
    "RuleReconciler",
    "SessionStore",
    "StoreUnavailable",
    "Summarizer",
    "Summary",
    "TieredMemoryError",
    "Turn",
    "UnknownUser",
    "UsageReport",
    "WriteConflict",
    "UsageTotals",
    "approx_tokens",
    "check_id",
    "reconcile",
]
