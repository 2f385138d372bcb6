"""Every ```python block of README.md runs as a test, alone (a fresh namespace, as a reader
would paste it) and in a fresh empty folder (its `./.tiermem-*` homes land there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser


def _run_alone(example: Any) -> None:
    source = "\n" * example.line + example.parsed  # line numbers in tracebacks match the README
    exec(compile(source, str(example.path), "exec"), {"__name__": "__readme__"})


@pytest.fixture
def readme_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TIERMEM_HOME", raising=False)


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser(language="python", evaluator=_run_alone)],
    patterns=["README.md"],
    fixtures=["readme_folder"],
).pytest()
