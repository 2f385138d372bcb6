"""agents/chat.py --offline: memory per user across runs, and the tiers shown each turn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def chat(home: Path, user: str, lines: str) -> str:
    env = {**os.environ, "TIERMEM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("ANTHROPIC_API_KEY", None)
    done = subprocess.run([sys.executable, str(ROOT / "agents" / "chat.py"), "--user", user, "--offline"], input=lines,
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    return done.stdout


@pytest.mark.minilm
def test_offline_chat_remembers_across_runs_and_users(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = chat(home, "ana", "I moved to Lisbon last month and I am allergic to peanuts.\n")
    assert "[tokens] system" in first and "[cache]" in first
    second = chat(home, "ana", "What am I allergic to?\n")
    assert "From memory: The user is allergic to peanuts." in second
    other = chat(home, "ben", "What am I allergic to?\n")
    assert "peanuts" not in other and "I don't remember that." in other
