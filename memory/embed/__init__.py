"""Embedders: MiniLM for real use, a deterministic hash embedder for tests."""

from ._base import Embedder
from ._hash import HashEmbedder
from ._minilm import MiniLMEmbedder

EMBEDDER_NAMES = ("minilm", "sentence-transformers", "hash")


def embedder_named(name: str) -> Embedder:
    """The embedder a command line names: "minilm" (onnxruntime), "sentence-transformers"
    (torch), or "hash" (tests). No model is loaded until the first embedding."""
    from .._errors import ConfigError

    if name not in EMBEDDER_NAMES:
        raise ConfigError(f"--embedder must be one of {', '.join(EMBEDDER_NAMES)}, got {name!r}")
    if name == "hash":
        return HashEmbedder()
    return MiniLMEmbedder("sentence-transformers" if name == "sentence-transformers" else None)


__all__ = ["EMBEDDER_NAMES", "Embedder", "HashEmbedder", "MiniLMEmbedder", "embedder_named"]
