"""`Memory.turns()`: a user's stored turns through the public contract (what the UI's source
turns and the adapters read), in process and served."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tiermem import HashEmbedder, Memory
from tiermem._errors import InvalidInput, UnknownUser
from tiermem.serve import MemoryServer

from ..conftest import T0, say


def _fill(m: Memory) -> None:
    m.add([say("I live in Lisbon", id="m-1"), say("Noted.", role="assistant", name="Claude")], user_id="ana",
          session_id="s1", at=T0)
    m.add([say("I moved to Berlin", id="m-2")], user_id="ana", session_id="s2", at=T0 + timedelta(days=3))
    m.add([say("I keep bees", id="b-1")], user_id="bo", session_id="s1", at=T0)


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "served"])
def test_turns_by_session_time_ref_and_page(tmp_path: Path, served: bool) -> None:
    with Memory.open(tmp_path / "home", embedder=HashEmbedder(64), share=False) as local:
        _fill(local)
        server = MemoryServer(local, port=0).start() if served else None
        m = Memory.open(url=server.url) if server else local
        try:
            assert [t.content for t in m.turns(user_id="ana")] == ["I live in Lisbon", "Noted.", "I moved to Berlin"]
            assert [t.content for t in m.turns(user_id="ana", session_id="s1")] == ["I live in Lisbon", "Noted."]
            (last,) = m.turns(user_id="ana", limit=1, newest_first=True)
            assert last.content == "I moved to Berlin" and last.created_at == T0 + timedelta(days=3)
            assert [t.content for t in m.turns(user_id="ana", limit=2, offset=1)] == ["Noted.", "I moved to Berlin"]
            noted = m.turns(user_id="ana", session_id="s1")[1]
            # refs: the caller's message ids, or the turn's own id where none was given; in the order asked
            by_ref = m.turns(user_id="ana", refs=["m-2", noted.id, "m-1", "nothing"])
            assert [t.content for t in by_ref] == ["I moved to Berlin", "Noted.", "I live in Lisbon"]
            assert m.turns(user_id="ana", refs=["b-1"]) == []  # another user's turn is never read
            assert [t.ref for t in m.turns(user_id="ana", refs=["m-1", "m-2"], session_id="s2")] == ["m-2"]
            with pytest.raises(UnknownUser):
                m.turns(user_id="nobody")
            with pytest.raises(InvalidInput, match="limit"):
                m.turns(user_id="ana", limit=0)
            with pytest.raises(InvalidInput, match="offset"):
                m.turns(user_id="ana", offset=-1)
        finally:
            if server is not None:
                server.stop()
