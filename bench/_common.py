"""Shared benchmark plumbing: the token counter, timing, result files, progress bars."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from tiermem import approx_tokens

T = TypeVar("T")
RESULTS = Path(__file__).parent / "results"
count_tokens = approx_tokens  # one counter for every system compared


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@contextmanager
def timer(into: list[float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into.append((time.perf_counter() - start) * 1000)


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    """A tqdm bar on a terminal; elsewhere (no tqdm, a log, CI) a line on stderr per item, so
    a long run is never silent."""
    if sys.stderr.isatty() and os.environ.get("CI") != "true":
        try:
            from tqdm import tqdm

            return tqdm(items, total=total, desc=desc)  # type: ignore[no-any-return]
        except ImportError:
            pass
    return _lines(items, total if total is not None else len(items) if isinstance(items, Sized) else None, desc)


def _lines(items: Iterable[T], total: int | None, desc: str, every: float = 5.0) -> Iterator[T]:
    started = last = time.perf_counter()
    for n, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if n == 1 or n == total or now - last >= every:
            print(f"{desc}: {n}{f'/{total}' if total else ''} done ({now - started:.0f} s)", file=sys.stderr, flush=True)
            last = now


def environment() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit or None,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.platform()}",
        "versions": {p: version(p) for p in ("tiermem", "qdrant-edge-py", "qdrant-client", "sentence-transformers", "torch", "mem0ai")},
    }


def write_results(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2, default=str))
    return path


def save(name: str, payload: dict[str, Any], out_dir: Path | None, plot: Callable[[dict[str, Any], Path], None]) -> Path:
    """Write the JSON, then the PNG chart beside it (if matplotlib is installed)."""
    path = write_results(name, payload, out_dir)
    try:
        plot(payload, path.with_suffix(".png"))
    except ImportError:
        print("matplotlib not installed: no chart (pip install 'tiermem[bench]')")
    print(f"results: {path}")
    return path


MAX_SOURCES = 3  # source turns a packed item is credited with


def pack(items: Iterable[tuple[str, Sequence[str]]], budget: int) -> tuple[list[str], set[str], int]:
    """First-fit packing in rank order, the same rule for every system.

    Returns the texts kept, the union of their sources, and the tokens used. Each item is
    credited with its first `MAX_SOURCES` sources only: a fact said again in twenty turns
    keeps all twenty as provenance, but it must not count as having packed all twenty.
    """
    texts: list[str] = []
    sources: set[str] = set()
    used = 0
    for text, item_sources in items:
        cost = count_tokens(text)
        if used + cost > budget:
            continue
        texts.append(text)
        sources.update(list(item_sources)[:MAX_SOURCES])
        used += cost
        if budget - used < 8:
            break
    return texts, sources, used


def embedder_named(name: str) -> Any:
    """The benchmarks' `--embedder` choice: "minilm" (the default's model) or "hash" (smoke runs)."""
    from tiermem import HashEmbedder, MiniLMEmbedder

    return HashEmbedder(64) if name == "hash" else MiniLMEmbedder()
