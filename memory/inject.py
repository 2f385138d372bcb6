"""Assembling tier 0 (the request) from the tiers below: pure functions over values.

Layout of a request, stable parts first so the provider's prompt cache can serve them:

    system[0]  the system prompt                      ┐ breakpoint 1 (on the last of these)
    system[1]  the user's core profile (tier 1)       ┘ byte-stable until the next epoch
    system[2]  rolling summary of evicted turns       ─ breakpoint 2: changes only on a roll
    messages   recent turns, alternating roles        ─ breakpoint 3 on the last history turn
    last user  [memory block, new message]            ─ per turn, never cached
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._models import Dropped, Fact, Turn
from ._tokens import TokenCounter

EPHEMERAL = {"type": "ephemeral"}

def cache_min_tokens(model: str) -> int:
    """The shortest prefix `model` will cache (from the model table, `tiermem.claude`)."""
    from .claude._catalog import model_info

    return model_info(model).cache_min_tokens


@dataclass(frozen=True)
class ContextBudget:
    """How a request's token budget is shared, and the sizes of the persistent tier-2 state.

    The profile, the rolling summary and the window that rolls into it have fixed sizes,
    not shares of a call's budget: they are stored state, and a call with a small budget
    must not shrink them for every later call (nor move the cached prefix). A call only
    decides how much of them it can show.
    """

    reply_reserve: int = 1024
    profile_tokens: int = 400
    memory_share: float = 0.25  # of the call's budget, for the memory block
    # ...and never more than this: the block changes every turn, so it is never cached, and a
    # request sized to a whole context window would otherwise pay for up to 50k tokens of it
    memory_max_tokens: int = 2000
    window_tokens: int = 3000  # recent turns kept verbatim before the oldest roll into the summary
    window_low_water: float = 0.6  # after a roll, the window refills from this share of window_tokens
    summary_tokens: int = 600  # size of the rolling summary
    profile_min_importance: float = 0.7
    rebake_every: int = 50  # semantic changes before the profile is re-baked
    documents_share: float = 0.3  # of the call's budget, for caller documents
    tool_result_recent_turns: int = 4  # tool results among the last N turns are shown whole
    tool_result_stub_over: int = 500  # older tool results larger than this become a stub


def bake_profile(user_id: str, facts: Sequence[Fact], max_tokens: int, count: TokenCounter, min_importance: float) -> tuple[str, list[str]]:
    """The core profile: the user's most important semantic facts, in a stable order."""
    chosen = sorted(
        (f for f in facts if f.kind == "semantic" and f.importance >= min_importance and f.is_valid),
        key=lambda f: (-f.importance, f.created_at, f.id),
    )
    # The user id is not pasted into the prompt: it may be an email address (sent to the
    # provider with every request) or carry text written to break out of the tag.
    header, footer = "<user_profile>", "</user_profile>"
    used = count(header) + count(footer)
    lines: list[str] = []
    ids: list[str] = []
    for fact in chosen:
        line = f"- {fact.text}"
        cost = count(line) + 1
        if used + cost > max_tokens:
            continue
        lines.append(line)
        ids.append(fact.id)
        used += cost
    if not lines:
        return "", []
    return "\n".join([header, *sorted(lines), footer]), ids


def order_for_attention(items: Sequence[Any]) -> list[Any]:
    """Best first, second best last, and so on inward: nothing important sits mid-block."""
    front: list[Any] = []
    back: list[Any] = []
    for i, item in enumerate(items):
        (front if i % 2 == 0 else back).append(item)
    return front + back[::-1]


def memory_line(fact: Fact) -> str:
    return f"- [{fact.valid_from:%Y-%m-%d}] {fact.text}"


def memory_block(facts: Sequence[Fact], budget: int, count: TokenCounter) -> tuple[str, list[Fact], list[Dropped]]:
    """Fit ranked facts into the memory budget; report what did not fit."""
    header, footer = "<memories>", "</memories>"
    used = count(header) + count(footer)
    kept: list[Fact] = []
    dropped: list[Dropped] = []
    for fact in facts:
        cost = count(memory_line(fact)) + 1
        if used + cost > budget:
            # Built without validation: one per candidate that does not fit, on the hot path.
            dropped.append(Dropped.model_construct(what=f"fact {fact.id}", why="memory budget", tokens=cost))
            continue
        kept.append(fact)
        used += cost
    if not kept:
        return "", [], dropped
    lines = [memory_line(f) for f in order_for_attention(kept)]
    return "\n".join([header, *lines, footer]), kept, dropped


def plan_window(
    turns: Sequence[Turn], budget: int, low_water: float, cost: Callable[[Turn], int] | None = None
) -> tuple[list[Turn], list[Turn]]:
    """Split a session's unsummarized turns into (kept, evicted).

    Nothing is evicted while the turns fit. Once they overflow, the oldest go until the
    rest fit in `low_water` of the budget, so the window (and its cached prefix) then
    stays put for several turns instead of sliding every call. The kept window starts on
    a user turn, so roles keep alternating. `cost` counts a turn as the request will show
    it (default: its stored token count).
    """
    cost = cost or (lambda t: t.token_count)
    costs = [cost(t) for t in turns]
    total = sum(costs)
    if total <= budget:
        return list(turns), []
    target = int(budget * low_water)
    start = 0
    while start < len(turns) and total > target:
        total -= costs[start]
        start += 1
    while start < len(turns) and turns[start].role != "user":
        start += 1
    return list(turns[start:]), list(turns[:start])


def render_turn(turn: Turn) -> str:
    """A turn as the request shows it: the speaker's name first where there is one."""
    return f"{turn.name}: {turn.content}" if turn.name else turn.content


def tool_result_stub(turn: Turn, tokens: int) -> str:
    first = turn.content.split("\n", 1)[0]  # '[tool result <id>]'
    return f"{first.removesuffix(']')} of {tokens:,} tokens elided]"


def build_messages(
    history: Sequence[Turn], memory_text: str, message: str, documents: Sequence[dict[str, Any]] = ()
) -> tuple[list[dict[str, Any]], list[Dropped]]:
    """Strictly alternating messages, starting with the user and ending with the new message.

    The last user message holds, in order: the caller's documents (before the question,
    the most relevant first and last), the memory block, an unanswered user turn if any,
    and the new message.
    """
    merged: list[dict[str, Any]] = []
    dropped: list[Dropped] = []
    for turn in history:
        if not merged and turn.role == "assistant":
            dropped.append(Dropped(what=f"turn {turn.id}", why="history must start with a user turn", tokens=turn.token_count))
            continue
        if merged and merged[-1]["role"] == turn.role:
            merged[-1]["text"] += "\n" + render_turn(turn)
        else:
            merged.append({"role": turn.role, "text": render_turn(turn)})
    final_blocks: list[dict[str, Any]] = []
    if merged and merged[-1]["role"] == "user":
        # An unanswered user turn joins the new message rather than breaking alternation.
        final_blocks.append({"type": "text", "text": merged.pop()["text"]})
    messages = [{"role": m["role"], "content": [{"type": "text", "text": m["text"]}]} for m in merged]
    if messages:
        messages[-1]["content"][-1]["cache_control"] = EPHEMERAL
    if memory_text:
        final_blocks.insert(0, {"type": "text", "text": memory_text})
    final_blocks[0:0] = [dict(d) for d in documents]
    final_blocks.append({"type": "text", "text": message})
    messages.append({"role": "user", "content": final_blocks})
    return messages, dropped


def summary_block(summary: str) -> str:
    return f"<earlier_in_this_session>\n{summary}\n</earlier_in_this_session>"


def build_system(
    system: str | None, profile: str, summary: str, stable_documents: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """System blocks, most stable first, each closed by a breakpoint: the system prompt; the
    profile (re-baked now and then: the system prompt stays cached when it is); stable
    documents; the summary. At most 3 here, so that with the one on the last history turn
    there are never more than Anthropic's 4: when all four parts are there, the documents'
    breakpoint goes (the summary's, right after them, still caches them while it holds)."""
    blocks: list[dict[str, Any]] = []
    if system:
        blocks.append({"type": "text", "text": system, "cache_control": EPHEMERAL})
    if profile:
        blocks.append({"type": "text", "text": profile, "cache_control": EPHEMERAL})
    if stable_documents:
        blocks += [dict(d) for d in stable_documents]
        blocks[-1]["cache_control"] = EPHEMERAL
    if summary:
        blocks.append({"type": "text", "text": summary_block(summary), "cache_control": EPHEMERAL})
    marked = [b for b in blocks if "cache_control" in b]
    while len(marked) > 3:
        marked.pop(-2).pop("cache_control")
    return blocks
