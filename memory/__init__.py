"""tiermem: tiered persistent memory for LLM agents.

    from tiermem import Memory
    with Memory.open() as mem:
        mem.add([{"role": "user", "content": "I moved to Berlin last week"}], user_id="ana")
        ctx = mem.context("what should I pack?", user_id="ana", system="You are a travel assistant.")
"""

from ._erasure import ErasureReceipt
from ._errors import (
    ConfigError,
    ContextOverflow,
    EmbeddingMismatch,
    FactNotFound,
    IndexCorrupted,
    IndexLocked,
    InvalidInput,
    MemoryClosed,
    MissingDependency,
    StoreUnavailable,
    TieredMemoryError,
    UnknownUser,
)
from ._memory import Memory
from ._models import (
    AddResult,
    Candidate,
    Context,
    ContextReport,
    Dropped,
    ExtractionFailure,
    Fact,
    FactEvent,
    Hit,
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
    "MemoryClosed",
    "MiniLMEmbedder",
    "MissingDependency",
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
    "UsageTotals",
    "approx_tokens",
    "reconcile",
]
