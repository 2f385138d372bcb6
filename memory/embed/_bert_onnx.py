"""A BERT encoder as an ONNX graph, built from its safetensors weights with `onnx`'s helpers:
no torch, no tracing. The graph is the computation of Hugging Face's `BertModel` (eager
attention) up to `last_hidden_state`; pooling and normalizing stay in numpy (`_onnx.py`).

Inputs input_ids, attention_mask, token_type_ids ([batch, sequence], int64); output
last_hidden_state ([batch, sequence, hidden], float32). Checked against sentence-transformers
by `tiermem models export` (cosine >= 0.9999 on the check sentences).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError, MissingDependency

OPSET = 17  # LayerNormalization is an operator from 17 on


def build_bert_onnx(weights_folder: Path) -> bytes:
    """The serialized ONNX model of the BERT in `weights_folder` (config.json + model.safetensors)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise MissingDependency(f"building the MiniLM model needs the embed extra: pip install 'tiermem[embed]' ({exc})") from exc
    config = json.loads((weights_folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ConfigError(f"{weights_folder} is not a BERT with GELU activations; cannot build it")
    weights = load_file(str(weights_folder / "model.safetensors"))
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim, eps = hidden // heads, float(config["layer_norm_eps"])

    nodes: list[Any] = []
    initializers: list[Any] = []

    def const(name: str, value: Any) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, inputs, [name], name=name, **attrs))
        return name

    def weight(key: str, transpose: bool = False) -> str:
        value = weights[key].astype(np.float32)
        return const(key, value.T if transpose else value)

    def dense(x: str, prefix: str, out: str) -> str:
        projected = op("MatMul", [x, weight(f"{prefix}.weight", transpose=True)], f"{out}/matmul")
        return op("Add", [projected, weight(f"{prefix}.bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return op("LayerNormalization", [x, weight(f"{prefix}.weight"), weight(f"{prefix}.bias")], out, axis=-1, epsilon=eps)

    # Embeddings: words + positions + token types, then LayerNorm.
    one = const("one", np.array(1.0, dtype=np.float32))
    length = op("Shape", ["input_ids"], "seq_len", start=1, end=2)  # [sequence], 1-D
    zero, axis0 = const("zero_i", np.array([0], dtype=np.int64)), const("axis0", np.array([0], dtype=np.int64))
    words = op("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"], "emb/words")
    where = op("Slice", [weight("embeddings.position_embeddings.weight"), zero, length, axis0], "emb/positions")
    kinds = op("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"], "emb/types")
    summed = op("Add", [op("Add", [words, where], "emb/sum1"), kinds], "emb/sum")
    x = layer_norm(summed, "embeddings.LayerNorm", "emb/out")

    # Padding: an additive bias of a very negative number where the mask is 0, [batch, 1, 1, seq].
    mask = op("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    mask = op("Unsqueeze", [mask, const("axes12", np.array([1, 2], dtype=np.int64))], "mask/4d")
    bias = op("Mul", [op("Sub", [one, mask], "mask/inverted"), const("min", np.array(np.finfo(np.float32).min, dtype=np.float32))],
              "mask/bias")
    split_heads = const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    root2 = const("root2", np.array(math.sqrt(2.0), dtype=np.float32))

    def heads_of(x: str, i: int, name: str, perm: list[int]) -> str:
        """[batch, seq, hidden] projected, as [batch, heads, seq, head_dim] (keys: [.., head_dim, seq])."""
        projected = dense(x, f"encoder.layer.{i}.attention.self.{name}", f"l{i}/{name}")
        return op("Transpose", [op("Reshape", [projected, split_heads], f"l{i}/{name}/split")], f"l{i}/{name}/heads", perm=perm)

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        query = heads_of(x, i, "query", [0, 2, 1, 3])
        key = heads_of(x, i, "key", [0, 2, 3, 1])
        value = heads_of(x, i, "value", [0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [query, key], f"l{i}/qk"), scale], f"l{i}/scaled"), bias], f"l{i}/scores")
        probs = op("Softmax", [scores], f"l{i}/probs", axis=-1)
        context = op("MatMul", [probs, value], f"l{i}/context")
        context = op("Reshape", [op("Transpose", [context], f"l{i}/context/t", perm=[0, 2, 1, 3]), merge_heads], f"l{i}/context/merged")
        attended = dense(context, f"{p}.attention.output.dense", f"l{i}/attn_out")
        x = layer_norm(op("Add", [attended, x], f"l{i}/attn_res"), f"{p}.attention.output.LayerNorm", f"l{i}/attn_norm")
        inner = dense(x, f"{p}.intermediate.dense", f"l{i}/inter")
        erf = op("Erf", [op("Div", [inner, root2], f"l{i}/gelu/scaled")], f"l{i}/gelu/erf")
        gelu = op("Mul", [op("Mul", [inner, half], f"l{i}/gelu/half"), op("Add", [erf, one], f"l{i}/gelu/plus1")], f"l{i}/gelu")
        out = dense(gelu, f"{p}.output.dense", f"l{i}/out")
        x = layer_norm(op("Add", [out, x], f"l{i}/out_res"), f"{p}.output.LayerNorm", f"l{i}/out_norm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))

    ids = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])
    graph = helper.make_graph(nodes, "bert", ids, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tiermem")
    model.ir_version = 8  # readable by every onnxruntime the embed extra allows
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
