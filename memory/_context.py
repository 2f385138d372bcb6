"""Building one request (`Memory.context`): reads the tiers, then hands values to `inject`.

context() writes nothing (access stats aside, recorded off the hot path): the window roll
and the profile bake happen on the write path, so a model-backed summarizer never runs
here and an erasure cannot race with a request re-creating what it erased.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ._models import Context, ContextReport, Dropped, Fact, Profile, Turn
from ._retriever import Retriever
from ._tokens import TokenCounter
from .inject import (
    ContextBudget,
    build_messages,
    build_system,
    cache_min_tokens,
    memory_block,
    plan_window,
    render_turn,
    summary_block,
)
from .retrieve import Scored, drop_near_duplicates, has_content, is_relevant
from .session import SessionStore


class ContextBuilder:
    """Assembles tier 0 from the stored tiers.

    Args:
        session: turns, summaries and the baked profile.
        retriever: facts for the memory block.
        budget: shares and sizes.
        model: the model the request is for (its cache minimum).
        count_tokens: the one token counter of every budget and report.
        record_access: called with the facts paged in (off the hot path).
    """

    def __init__(
        self,
        session: SessionStore,
        retriever: Retriever,
        budget: ContextBudget,
        model: str,
        count_tokens: TokenCounter,
        clock: Callable[[], datetime],
        record_access: Callable[[Sequence[Fact]], None] = lambda facts: None,
    ):
        self.session = session
        self.retriever = retriever
        self.budget = budget
        self.model = model
        self.count_tokens = count_tokens
        self.clock = clock
        self.record_access = record_access

    def profile(self, user_id: str) -> Profile:
        """The profile as last baked on the write path (empty for a user with none yet)."""
        return self.session.get_profile(user_id) or Profile(user_id=user_id)

    def window(self, user_id: str, session_id: str) -> tuple[list[Turn], str]:
        """The session's turns not yet rolled into its summary, oldest first, and the summary."""
        summary = self.session.latest_summary(user_id, session_id)
        turns = self.session.turns(user_id, session_id, after_seq=summary.covers_seq if summary else 0)
        return turns, summary.text if summary else ""

    def page_in(
        self, message: str, user_id: str, profile_ids: set[str], in_window: set[str], memory_budget: int
    ) -> tuple[list[Scored], list[Dropped]]:
        """Relevant facts worth the memory block, best first; and why the others were left out."""
        policy = self.retriever.policy
        if not has_content(message):
            return [], [Dropped(what="memory", why="message has no content words; nothing paged in")]
        dropped: list[Dropped] = []
        scored = self.retriever.scored(message, user_id, 0)
        relevant = [s for s in scored if is_relevant(s, policy)]
        if len(relevant) < len(scored):
            dropped.append(Dropped(what=f"{len(scored) - len(relevant)} candidate facts", why="below relevance threshold"))
        def already_visible(s: Scored) -> bool:
            sources = set(s.hit_.payload.get("sources") or ())
            return s.fact_id in profile_ids or bool(sources) and sources <= in_window

        fresh = [s for s in relevant if not already_visible(s)]
        if len(fresh) < len(relevant):
            dropped.append(Dropped(what=f"{len(relevant) - len(fresh)} facts",
                                   why="already in the cached profile or in the recent turns"))
        # Only what can fit is worth building Facts for and comparing: the budget, not the
        # candidate count, bounds the work (with slack for the near-duplicates dropped next).
        fitting, used = [], 0
        for s in fresh:
            if used > memory_budget * 1.3:
                break
            fitting.append(s)
            used += self.count_tokens(str(s.hit_.payload.get("text", ""))) + 8
        kept, near = drop_near_duplicates(fitting, policy.mmr_duplicate)
        dropped += [Dropped(what=f"fact {s.fact_id}", why="near duplicate of a paged-in fact") for s in near]
        if len(fitting) < len(fresh):
            dropped.append(Dropped(what=f"{len(fresh) - len(fitting)} facts", why="memory budget"))
        return kept, dropped

    def build(self, message: str, user_id: str, session_id: str, system: str | None, budget: int) -> Context:
        count = self.count_tokens
        b = self.budget
        profile = self.profile(user_id)
        profile_text, profile_ids, epoch = profile.text, set(profile.fact_ids), profile.epoch
        reserve = min(b.reply_reserve, budget // 8)
        # The system prompt, the profile and the new message are never dropped; the rest
        # shares what they leave, so the request never exceeds the budget unless those three
        # alone do. The summary is the last thing to go (DESIGN.md's degrade order); the memory block keeps
        # its share of the budget, and recent turns get the rest, newest first.
        available = budget - reserve - count(system or "") - count(profile_text) - count(message)
        window, summary_text = self.window(user_id, session_id)
        dropped: list[Dropped] = []
        summary_budget = count(summary_block(summary_text)) if summary_text else 0
        if summary_budget > max(available, 0):
            dropped.append(Dropped(what="session summary", why="over this request's budget", tokens=summary_budget))
            summary_text, summary_budget = "", 0
        memory_budget = max(0, min(int(budget * b.memory_share), available - summary_budget))
        history_budget = max(0, available - summary_budget - memory_budget)

        def shown(turn: Turn) -> int:
            return count(render_turn(turn)) + 1  # +1: the newline that joins same-role turns

        history, hidden = plan_window(window, history_budget, 1.0, shown)
        if hidden:
            dropped.append(Dropped(what=f"{len(hidden)} older turns", why="over this request's history budget",
                                   tokens=sum(shown(t) for t in hidden)))

        hits, paging_notes = self.page_in(message, user_id, profile_ids, {t.ref for t in history}, memory_budget)
        dropped += paging_notes
        block, paged, over = memory_block([s.fact for s in hits], memory_budget, count)
        dropped += over
        paged_ids = {f.id for f in paged}
        paged_hits = [s.hit() for s in hits if s.fact_id in paged_ids]
        self.record_access(paged)  # stats, recorded off the hot path

        messages, alternation = build_messages(history, block, message)
        dropped += alternation
        system_blocks = build_system(system, profile_text, summary_text)
        final = messages[-1]["content"]
        history_tokens = sum(count(c["text"]) for msg in messages[:-1] for c in msg["content"])
        history_tokens += sum(count(c["text"]) for c in final[:-1] if not (block and c["text"] == block))
        tokens = {
            "system": count(system or ""),
            "profile": count(profile_text),
            "summary": count(summary_block(summary_text)) if summary_text else 0,
            "memory": count(block),
            "history": history_tokens,
            "message": count(message),
        }
        prefix = tokens["system"] + tokens["profile"]
        minimum = cache_min_tokens(self.model)
        notes = []
        if prefix < minimum:
            notes.append(f"stable prefix is {prefix} tokens, below {self.model}'s cache minimum of {minimum}: "
                         "it will be sent uncached")
        if available < 0:
            notes.append(f"system prompt, profile and new message alone take {budget - reserve - available} tokens, "
                         f"over the budget less the reply reserve ({budget - reserve}); nothing else was added")
        report = ContextReport(
            tokens=tokens,
            budget={"total": budget, "reply_reserve": reserve, "memory": memory_budget,
                    "summary": summary_budget, "history": history_budget},
            dropped=dropped,
            prefix_tokens=prefix,
            cache_min_tokens=minimum,
            cacheable=prefix >= minimum,
            profile_epoch=epoch,
            notes=notes,
        )
        return Context(system=system_blocks, messages=messages, facts=paged_hits, report=report)
