"""Embedders: MiniLM for real use, a deterministic hash embedder for tests."""

from ._base import Embedder
from ._hash import HashEmbedder
from ._minilm import MiniLMEmbedder

__all__ = ["Embedder", "HashEmbedder", "MiniLMEmbedder"]
