from datetime import UTC, datetime

from tiermem import Fact, Turn, approx_tokens
from tiermem.inject import (
    bake_profile,
    build_messages,
    build_system,
    cache_min_tokens,
    memory_block,
    order_for_attention,
    plan_window,
)

AT = datetime(2024, 5, 2, tzinfo=UTC)


def turn(seq: int, role: str, text: str) -> Turn:
    return Turn(user_id="u", session_id="s", seq=seq, role=role, content=text, token_count=approx_tokens(text), created_at=AT)


def fact(text: str, importance: float = 0.8, kind: str = "semantic") -> Fact:
    return Fact(user_id="u", kind=kind, text=text, subject="Ana", importance=importance, valid_from=AT)


def test_messages_alternate_start_with_user_and_end_with_the_new_message() -> None:
    history = [turn(1, "assistant", "welcome"), turn(2, "user", "a"), turn(3, "user", "b"), turn(4, "assistant", "c"), turn(5, "user", "d")]
    messages, dropped = build_messages(history, "<memories>m</memories>", "new")
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "user"]
    assert all(x != y for x, y in zip(roles, roles[1:], strict=False))
    assert messages[0]["content"][0]["text"] == "a\nb"  # merged, not dropped
    last = [b["text"] for b in messages[-1]["content"]]
    assert last == ["<memories>m</memories>", "d", "new"]  # the new message is last
    assert dropped and "start with a user turn" in dropped[0].why
    assert messages[1]["content"][-1]["cache_control"] == {"type": "ephemeral"}  # history breakpoint


def test_window_keeps_everything_until_it_overflows_then_drops_to_low_water() -> None:
    turns = [turn(i, "user" if i % 2 else "assistant", "x" * 40) for i in range(1, 11)]  # 10 tokens each
    kept, evicted = plan_window(turns, 100, 0.6)
    assert len(kept) == 10 and evicted == []
    kept, evicted = plan_window(turns, 90, 0.6)
    assert sum(t.token_count for t in kept) <= 60 and kept[0].role == "user"
    assert evicted + kept == turns


def test_profile_is_deterministic_and_capped() -> None:
    facts = [fact(f"Ana fact number {i}", importance=0.7 + i / 100) for i in range(30)] + [fact("low", 0.2), fact("ep", 0.9, "episodic")]
    one, ids = bake_profile("ana", facts, 120, approx_tokens, 0.7)
    two, _ = bake_profile("ana", list(reversed(facts)), 120, approx_tokens, 0.7)
    assert one == two and approx_tokens(one) <= 120
    assert "low" not in one and "- ep" not in one and ids


def test_memory_block_fits_budget_and_puts_the_best_at_the_edges() -> None:
    facts = [fact(f"fact {i}") for i in range(10)]
    text, kept, dropped = memory_block(facts, 60, approx_tokens)
    assert approx_tokens(text) <= 60 and dropped and len(kept) + len(dropped) == 10
    lines = text.splitlines()[1:-1]
    assert "fact 0" in lines[0] and "fact 1" in lines[-1]
    assert order_for_attention([1, 2, 3, 4, 5]) == [1, 3, 5, 4, 2]


def test_system_blocks_close_the_stable_prefix_with_a_breakpoint() -> None:
    blocks = build_system("sys", "<user_profile>p</user_profile>", "")
    # the system prompt has its own breakpoint: a re-baked profile leaves it cached
    assert [b.get("cache_control") for b in blocks] == [{"type": "ephemeral"}, {"type": "ephemeral"}]
    everything = build_system("sys", "<user_profile>p</user_profile>", "summary",
                              [{"type": "text", "text": "doc a"}, {"type": "text", "text": "doc b"}])
    marks = ["cache_control" in b for b in everything]
    assert marks == [True, True, False, False, True]  # 3 at most: with the history's, Anthropic's 4
    assert build_system("sys", "", "")[0]["cache_control"] == {"type": "ephemeral"}
    assert cache_min_tokens("claude-haiku-4-5-20251001") == 4096 and cache_min_tokens("claude-sonnet-4-5") == 1024
