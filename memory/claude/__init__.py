"""Claude in the write path: the model-call layer, extraction, reconciliation, summaries.

Nothing here imports `anthropic` until a call is made, so the offline paths never pay for it.

    from tiermem import Memory
    mem = Memory.open(extractor="claude")   # needs ANTHROPIC_API_KEY, or anthropic_client=
"""

from .._models import CallUsage
from ._calls import (
    CircuitBreaker,
    CircuitOpen,
    ModelCaller,
    ModelCallFailed,
    PromptTooLong,
    RateLimiter,
    RetryPolicy,
    classify,
    request_tokens,
)
from ._catalog import ModelInfo, model_info
from ._config import DEFAULT_MODEL, claude_caller, require_credentials
from ._extractor import ClaudeExtractor
from ._reconciler import ClaudeReconciler
from ._report import usage_report
from ._summarizer import ClaudeSummarizer

__all__ = [
    "DEFAULT_MODEL",
    "CallUsage",
    "CircuitBreaker",
    "CircuitOpen",
    "ClaudeExtractor",
    "ClaudeReconciler",
    "ClaudeSummarizer",
    "ModelCallFailed",
    "ModelCaller",
    "ModelInfo",
    "PromptTooLong",
    "RateLimiter",
    "RetryPolicy",
    "request_tokens",
    "classify",
    "claude_caller",
    "require_credentials",
    "model_info",
    "usage_report",
]
