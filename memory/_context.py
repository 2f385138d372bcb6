"""Building one request (`Memory.context`): reads the tiers, then hands values to `inject`."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from ._models import Context, ContextReport, Dropped, Summary
from .inject import (
    ContextBudget,
    bake_profile,
    build_messages,
    build_system,
    cache_min_tokens,
    memory_block,
    plan_window,
)
from .retrieve import Scored, drop_near_duplicates, has_content, is_relevant
from .summarize import extractive_summary

if TYPE_CHECKING:
    from ._memory import Memory


class ContextBuilder:
    def __init__(self, memory: Memory, budget: ContextBudget, model: str):
        self.memory = memory
        self.budget = budget
        self.model = model
        self._baking = threading.Lock()  # one bake per user at a time in this process

    def profile(self, user_id: str) -> tuple[str, set[str], int]:
        """The baked profile, re-baked when stale or after enough semantic changes."""
        store = self.memory.session
        row = store.get_profile(user_id)
        if row is None or row.stale or row.changes_since >= self.budget.rebake_every:
            with self._baking:
                row = store.get_profile(user_id)  # another thread may have baked it meanwhile
                if row is None or row.stale or row.changes_since >= self.budget.rebake_every:
                    facts = store.list_facts(user_id, kind="semantic")
                    text, ids = bake_profile(user_id, facts, self.budget.profile_tokens, self.memory.count_tokens,
                                             self.budget.profile_min_importance)
                    row = store.save_profile(user_id, text, ids, self.memory.clock())
        return row.text, set(json.loads(row.fact_ids)), row.epoch

    def window(self, user_id: str, session_id: str) -> tuple[list[Any], str, list[Dropped]]:
        """The session's window of recent turns and its summary.

        Rolling the oldest turns into the summary is stored state, decided by the fixed
        window size, never by one call's budget (`build` hides what a call cannot fit).
        """
        b = self.budget
        store = self.memory.session
        summary = store.latest_summary(user_id, session_id)
        turns = store.turns(user_id, session_id, after_seq=summary.covers_seq if summary else 0)
        kept, evicted = plan_window(turns, b.window_tokens, b.window_low_water)
        text = summary.text if summary else ""
        dropped: list[Dropped] = []
        if evicted:
            text = extractive_summary(text, evicted, b.summary_tokens)
            store.save_summary(Summary(user_id=user_id, session_id=session_id, covers_seq=evicted[-1].seq, text=text))
            dropped.append(Dropped(what=f"{len(evicted)} turns", why="rolled from the window into the summary",
                                   tokens=sum(t.token_count for t in evicted)))
        return kept, text, dropped

    def page_in(
        self, message: str, user_id: str, profile_ids: set[str], in_window: set[str], memory_budget: int
    ) -> tuple[list[Scored], list[Dropped]]:
        """Relevant facts worth the memory block, best first; and why the others were left out."""
        m = self.memory
        if not has_content(message):
            return [], [Dropped(what="memory", why="message has no content words; nothing paged in")]
        dropped: list[Dropped] = []
        scored = m._scored(message, user_id, 0, None, None)
        relevant = [s for s in scored if is_relevant(s, m.retrieval)]
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
            used += m.count_tokens(str(s.hit_.payload.get("text", ""))) + 8
        kept, near = drop_near_duplicates(fitting, m.retrieval.mmr_duplicate)
        dropped += [Dropped(what=f"fact {s.fact_id}", why="near duplicate of a paged-in fact") for s in near]
        if len(fitting) < len(fresh):
            dropped.append(Dropped(what=f"{len(fresh) - len(fitting)} facts", why="memory budget"))
        return kept, dropped

    def build(self, message: str, user_id: str, session_id: str, system: str | None, budget: int) -> Context:
        m = self.memory
        count = m.count_tokens
        b = self.budget
        profile_text, profile_ids, epoch = self.profile(user_id)
        reserve = min(b.reply_reserve, budget // 8)
        # The system prompt, the profile and the new message are never dropped; the rest
        # shares what they leave, so the request never exceeds the budget unless those three
        # alone do. The summary is the last thing to go (DESIGN.md's degrade order); the memory block keeps
        # its share of the budget, and recent turns get the rest, newest first.
        available = budget - reserve - count(system or "") - count(profile_text) - count(message)
        window, summary_text, dropped = self.window(user_id, session_id)
        if count(summary_text) > max(available, 0):
            dropped.append(Dropped(what="session summary", why="over this request's budget", tokens=count(summary_text)))
            summary_text = ""
        summary_budget = count(summary_text)
        memory_budget = max(0, min(int(budget * b.memory_share), available - summary_budget))
        history_budget = max(0, available - summary_budget - memory_budget)
        history, hidden = plan_window(window, history_budget, 1.0)
        if hidden:
            dropped.append(Dropped(what=f"{len(hidden)} older turns", why="over this request's history budget",
                                   tokens=sum(t.token_count for t in hidden)))

        hits, paging_notes = self.page_in(message, user_id, profile_ids, {t.ref for t in history}, memory_budget)
        dropped += paging_notes
        block, paged, over = memory_block([s.fact for s in hits], memory_budget, count)
        dropped += over
        paged_ids = {f.id for f in paged}
        paged_hits = [s.hit() for s in hits if s.fact_id in paged_ids]
        m._in_background(m.session.record_access, paged, m.clock())  # stats, not worth a write on the hot path

        messages, alternation = build_messages(history, block, message)
        dropped += alternation
        system_blocks = build_system(system, profile_text, summary_text)
        history_tokens = sum(count(c["text"]) for msg in messages[:-1] for c in msg["content"])
        tokens = {
            "system": count(system or ""),
            "profile": count(profile_text),
            "summary": count(summary_text),
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
