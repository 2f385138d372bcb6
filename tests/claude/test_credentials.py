"""A Claude path given a client without a key is refused when it is set up, naming the fix,
instead of falling back to the rules on every batch."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from tiermem import ConfigError, HashEmbedder, Memory
from tiermem.adapters.anthropic import AsyncMemoryClient, MemoryClient


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_a_keyless_client_is_refused_up_front_and_nothing_is_created(no_key, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY.*FakeAnthropic"):
        Memory.open(tmp_path, embedder=HashEmbedder(64), extractor="claude", anthropic_client=anthropic.Anthropic(),
                    share=False)
    assert not (tmp_path / "tiermem.db").exists()
    with pytest.raises(ConfigError, match="needs an Anthropic API key"):
        Memory.open(tmp_path, embedder=HashEmbedder(64), summarizer="claude", share=False)


def test_the_memory_clients_refuse_a_keyless_client(no_key, tmp_path: Path) -> None:
    with Memory.open(tmp_path, embedder=HashEmbedder(64), share=False) as mem:
        with pytest.raises(ConfigError, match="MemoryClient: the Anthropic client has no API key"):
            MemoryClient(anthropic.Anthropic(), mem)
        with pytest.raises(ConfigError, match="AsyncMemoryClient"):
            AsyncMemoryClient(anthropic.AsyncAnthropic(), mem)
        MemoryClient(anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9"), mem)  # a key: fine
