from collections.abc import Iterator

import pytest

from tests.claude.conftest import _no_key  # noqa: F401
from tiermem.claude import model_info
from tiermem.testing import FakeAnthropic, Reply


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    """The caching fake with each model's own cache minimum (from the model table)."""
    with FakeAnthropic(lambda body: Reply("ok"), cache_minimum=lambda model: model_info(model).cache_min_tokens) as server:
        yield server
