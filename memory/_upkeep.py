"""Session upkeep on the write path: rolling a session's window into its summary, and
re-baking a user's cached profile. context() only ever reads what these store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from ._models import Profile, Summary, Turn
from ._tokens import TokenCounter
from .inject import ContextBudget, bake_profile, plan_window, render_turn, tool_result_stub
from .session import SessionStore
from .summarize import Summarizer


class Roll(NamedTuple):
    """Turns of a session to fold into its summary, and the summary they extend."""

    user_id: str
    session_id: str
    after: int  # the seq the current summary covers (0: none)
    previous: str
    evicted: list[Turn]


class SessionUpkeep:
    def __init__(
        self, session: SessionStore, budget: ContextBudget, count_tokens: TokenCounter, summarizer: Summarizer,
        clock: Callable[[], datetime],
    ):
        self.session = session
        self.budget = budget
        self.count_tokens = count_tokens
        self.summarizer = summarizer
        self.clock = clock

    def turn_cost(self, turn: Turn) -> int:
        """A turn's weight in the window. A large tool result weighs what its stub does: it
        is shown whole only while recent, so it must not push the conversation out."""
        cost = self.count_tokens(render_turn(turn))
        if turn.kind == "tool_result" and cost > self.budget.tool_result_stub_over:
            return self.count_tokens(tool_result_stub(turn, cost))
        return cost

    def plan_roll(self, user_id: str, session_id: str) -> Roll | None:
        """Once a session's unsummarized turns pass the window size, the oldest to fold into
        its summary (down to the low-water mark); None when there is nothing to roll."""
        b = self.budget
        summary = self.session.latest_summary(user_id, session_id)
        after = summary.covers_seq if summary else 0
        stored_tokens = self.session.window_tokens(user_id, session_id, after)
        # Measured: loading the window on every add() was a third of a small add()'s time.
        # A turn's stored count is what the request shows (speaker prefix included), or
        # more (a large tool result weighs its stub), so the sum decides when to look.
        if stored_tokens <= b.window_tokens:
            return None
        turns = [t.extractable for t in self.session.turns(user_id, session_id, after_seq=after)]  # forgotten spans left out
        _, evicted = plan_window(turns, b.window_tokens, b.window_low_water, self.turn_cost)
        if not evicted:
            return None
        return Roll(user_id, session_id, after, summary.text if summary else "", evicted)

    def summarize(self, roll: Roll) -> str:
        """The new summary text (a model call with the Claude summarizer: run it where no
        lock is held)."""
        return self.summarizer.summarize(roll.previous, roll.evicted, self.budget.summary_tokens)

    def save_roll(self, roll: Roll, text: str) -> bool:
        """Store the summary, unless another writer rolled the session since `roll` was
        planned (then its summary stands). Returns whether it was stored."""
        latest = self.session.latest_summary(roll.user_id, roll.session_id)
        if (latest.covers_seq if latest else 0) != roll.after:
            return False
        self.session.save_summary(Summary(user_id=roll.user_id, session_id=roll.session_id,
                                          covers_seq=roll.evicted[-1].seq, text=text, created_at=self.clock()))
        return True

    def rebake_profile(self, user_id: str, *, force: bool = False) -> Profile:
        """Bake the profile when there is none, it states something no longer true, or
        enough semantic facts changed since (the epoch rule that keeps the prefix cached)."""
        current = self.session.get_profile(user_id)
        if not force and current is not None and not current.stale and current.changes_since < self.budget.rebake_every:
            return current
        facts = self.session.list_facts(user_id, kind="semantic")
        text, ids = bake_profile(user_id, facts, self.budget.profile_tokens, self.count_tokens,
                                 self.budget.profile_min_importance)
        return self.session.save_profile(user_id, text, ids, self.clock())
