import pytest


@pytest.fixture(autouse=True)
def _no_agents_trace_export(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's own tracing would export to OpenAI's API; offline, always.
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
