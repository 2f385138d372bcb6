"""MiniLM on onnxruntime: tokenize (HF `tokenizers`), run the encoder, mean-pool, normalize.

The same computation as sentence-transformers' Transformer -> Pooling(mean) -> Normalize
modules, without importing torch (`python -m bench.scale --part embedders`: the first
embedding 0.25 s after start, against 4.5 s with torch).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import MissingDependency
from ._models import MAX_SEQ_LENGTH


class OnnxEncoder:
    """Sentence vectors from an exported MiniLM.

    Args:
        model: the .onnx file (inputs input_ids, attention_mask, token_type_ids; output
            last_hidden_state).
        tokenizer: the model's tokenizer.json.
        threads: intra-op threads (default: the machine's cores, at most 4).
        batch_size: texts per run; texts are grouped by length so padding stays short.
    """

    def __init__(self, model: Path, tokenizer: Path, *, threads: int | None = None, batch_size: int = 64):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependency(f"the MiniLM embedder needs the embed extra: pip install 'tiermem[embed]' ({exc})") from exc
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        pad = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=pad if pad is not None else 0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between runs: spinning intra-op threads would hold both cores of a
        # small machine while the search that follows an embedding runs in Python.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for i, vector in zip(chunk, self._run([texts[i] for i in chunk]), strict=True):
                out[i] = vector
        return np.vstack(out)

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)
