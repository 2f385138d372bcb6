"""Building one request (`Memory.context`): reads the tiers, then hands values to `inject`.

context() writes nothing (access stats aside, recorded off the hot path): the window roll
and the profile bake happen on the write path, so a model-backed summarizer never runs
here and an erasure cannot race with a request re-creating what it erased.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ._documents import Document, block_tokens
from ._documents import fit as fit_documents
from ._documents import without as shrink_documents
from ._models import Context, ContextReport, Dropped, Fact, Profile, Turn
from ._retriever import Retriever
from ._said import SAID
from ._tokens import TokenCounter
from .inject import (
    ContextBudget,
    build_messages,
    build_system,
    cache_min_tokens,
    memory_block,
    order_for_attention,
    plan_window,
    render_turn,
    summary_block,
    tool_result_stub,
)
from .retrieve import Scored, drop_near_duplicates, has_content, is_relevant, settle_ties
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
        # A statement forgotten in a turn (a fact forgotten, a request to forget) is not sent.
        return [t.extractable for t in turns], summary.text if summary else ""

    def page_in(
        self, message: str, user_id: str, profile_ids: set[str], in_window: set[str], memory_budget: int
    ) -> tuple[list[Scored], list[Dropped]]:
        """Relevant facts worth the memory block, best first; and why the others were left out."""
        policy = self.retriever.policy
        if not has_content(message):
            return [], [Dropped(what="memory", why="message has no content words; nothing paged in")]
        dropped: list[Dropped] = []
        scored = self.retriever.scored(message, user_id, 0, settle=0)
        relevant = [s for s in scored if is_relevant(s, policy)]
        settle_ties(relevant, len(relevant))  # only the order of what can be paged in matters
        if len(relevant) < len(scored):
            dropped.append(Dropped(what=f"{len(scored) - len(relevant)} candidate facts", why="below relevance threshold"))
        def already_visible(s: Scored) -> bool:
            if s.fact_id in profile_ids:
                return True
            if not in_window:  # nothing recent to be seen in: no payload opened to find out
                return False
            sources = set(s.hit_.payload.get("sources") or ())
            return bool(sources) and sources <= in_window

        # Only what can fit is worth opening, building Facts for and comparing: the budget, not
        # the candidate count, bounds the work (with slack for the near-duplicates dropped next).
        fitting, used, visible, examined = [], 0, 0, 0
        for s in relevant:
            if used > memory_budget * 1.3:
                break
            examined += 1
            if already_visible(s):
                visible += 1
                continue
            fitting.append(s)
            used += self.count_tokens(str(s.hit_.payload.get("text", ""))) + 8
        if visible:
            dropped.append(Dropped(what=f"{visible} facts", why="already in the cached profile or in the recent turns"))
        kept, near = drop_near_duplicates(fitting, policy.mmr_duplicate)
        dropped += [Dropped.model_construct(what=f"fact {s.fact_id}", why="near duplicate of a paged-in fact", tokens=0)
                    for s in near]
        if examined < len(relevant):
            dropped.append(Dropped(what=f"{len(relevant) - examined} facts", why="memory budget"))
        return kept, dropped

    def build(
        self, message: str, user_id: str, session_id: str, system: str | None, budget: int,
        documents: Sequence[Document] = (), exclude: frozenset[str] = frozenset(),
    ) -> Context:
        count = self.count_tokens
        b = self.budget
        profile = self.profile(user_id)
        reserve = min(b.reply_reserve, budget // 8)
        # The system prompt, the profile and the new message are never dropped; the other
        # tiers share what they leave, each with a budget of its own: documents and the
        # memory block their shares, the summary its stored size, the recent turns the rest.
        # A tier that needs less hands the difference on (documents and memory to the turns,
        # the turns back to memory, then documents), so no tier overruns its budget while
        # another is cut. Only when the fixed parts and the summary leave too little do the
        # tiers give back in the documented degrade order: lowest-priority documents, the
        # memory block, older turns, the summary.
        fixed = count(system or "") + count(profile.text) + count(message)
        available = budget - reserve - fixed
        room = max(available, 0)
        window, summary_text = self.window(user_id, session_id)
        if exclude:
            window = [t for t in window if t.id not in exclude]
        dropped: list[Dropped] = []

        summary_tokens = count(summary_block(summary_text)) if summary_text else 0
        history, stubbed = self._elide_old_tool_results(window)  # all of the window: older turns go after memory
        hidden: list[Turn] = []
        cost = {t.id: self._shown(t) for t in history}  # each turn counted once, as the request shows it
        documents_cap = min(int(budget * b.documents_share), room)
        memory_cap = min(int(budget * b.memory_share), b.memory_max_tokens, room - documents_cap)
        history_cap = max(0, room - documents_cap - memory_cap - summary_tokens)
        placed, doc_notes = fit_documents(documents, documents_cap, count, message)
        # The memory block's room: its own budget, plus what the turns will leave of theirs
        # (known before paging: their costs are). Paging in and fitting then run once, for
        # no more facts than can be shown.
        history_total = sum(cost.values())
        memory_room = min(b.memory_max_tokens, max(memory_cap, room - summary_tokens - history_total
                                                   - sum(p.tokens for p in placed)))
        hits, paging_notes = self.page_in(message, user_id, set(profile.fact_ids), {t.ref for t in history}, memory_room)
        dropped += paging_notes
        block, paged, over = memory_block([s.fact for s in hits], memory_room, count)

        def history_tokens_() -> int:
            return sum(cost[t.id] for t in history)

        def excess() -> int:
            return summary_tokens + history_tokens_() + count(block) + sum(p.tokens for p in placed) - room

        # The turns take their own budget and what documents and memory left unused.
        history_room = room - summary_tokens - count(block) - sum(p.tokens for p in placed)
        if history_tokens_() > history_room and history:
            # A recent tool result too big for its room becomes a stub before any older
            # turn goes: otherwise one 40k-token result would push the whole conversation out.
            big = [i for i, t in enumerate(history) if t.kind == "tool_result" and cost[t.id] > b.tool_result_stub_over]
            for i in sorted(big, key=lambda i: -cost[history[i].id]):
                if history_tokens_() <= history_room:
                    break
                turn, stub = self._stub(history[i], "over this request's budget")
                stubbed.append(stub)
                history[i] = turn
                cost[turn.id] = self._shown(turn)
        if history_tokens_() > max(history_room, 0) and history:
            history, hidden = plan_window(history, max(history_room, 0), 1.0, lambda t: cost[t.id])
        # What the turns left unused after stubbing tool results flows back: to the memory
        # block, then to documents.
        spare = -excess()
        if spare > 0 and over and count(block) < b.memory_max_tokens:
            block, paged, over = memory_block([s.fact for s in hits], min(b.memory_max_tokens, count(block) + spare), count)
            spare = -excess()
        if spare > 0 and doc_notes:
            placed, doc_notes = fit_documents(documents, sum(p.tokens for p in placed) + spare, count, message)
        dropped += over
        # Over even so (the fixed parts and the summary leave too little): the degrade order.
        if excess() > 0 and placed:
            placed, given_back = shrink_documents(placed, excess(), count, message)
            doc_notes = given_back
        if excess() > 0 and block:
            block, paged, over = memory_block([s.fact for s in hits], max(0, count(block) - excess()), count)
            dropped += [d.model_copy(update={"why": "memory block shrunk: the request was over budget"}) for d in over]
        if excess() > 0 and history:
            history, more_hidden = plan_window(history, max(0, history_tokens_() - excess()), 1.0, lambda t: cost[t.id])
            hidden = more_hidden + hidden
        if excess() > 0 and summary_text:
            dropped.append(Dropped(what="session summary", why="over this request's budget (dropped last)", tokens=summary_tokens))
            summary_text, summary_tokens = "", 0
        if hidden:
            dropped.append(Dropped(what=f"{len(hidden)} older turns", why="over this request's history budget",
                                   tokens=sum(cost[t.id] for t in hidden)))
        shown_ids = {t.id for t in history}
        dropped += [d for turn_id, d in stubbed if turn_id in shown_ids]
        dropped += [Dropped(what=f"document {d.label}", why=why, tokens=tokens) for d, why, tokens in doc_notes]

        paged_ids = {f.id for f in paged}
        paged_hits = [s.hit() for s in hits if s.fact_id in paged_ids]
        # Stats of stored facts, recorded off the hot path (a recalled answer is not one).
        self.record_access([f for f in paged if f.extractor != SAID])

        stable = [p.block for p in placed if p.doc.stable]
        volatile = [p.block for p in placed if not p.doc.stable]
        messages, alternation = build_messages(history, block, message, order_for_attention(volatile))
        dropped += alternation
        system_blocks = build_system(system, profile.text, summary_text, stable)
        final = messages[-1]["content"][len(volatile):-1]  # after the documents, before the message
        history_tokens = sum(count(c["text"]) for msg in messages[:-1] for c in msg["content"])
        history_tokens += sum(count(c["text"]) for c in final if not (block and c["text"] == block))
        tokens = {
            "system": count(system or ""),
            "profile": count(profile.text),
            "documents": sum(block_tokens(d, count) for d in stable + volatile),
            "summary": count(summary_block(summary_text)) if summary_text else 0,
            "memory": count(block),
            "history": history_tokens,
            "message": count(message),
        }
        prefix = tokens["system"] + tokens["profile"] + sum(block_tokens(d, count) for d in stable)
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
            budget={"total": budget, "reply_reserve": reserve, "memory": memory_cap,
                    "documents": documents_cap, "summary": summary_tokens, "history": history_cap},
            dropped=dropped,
            prefix_tokens=prefix,
            cache_min_tokens=minimum,
            cacheable=prefix >= minimum,
            profile_epoch=profile.epoch,
            notes=notes,
        )
        return Context(system=system_blocks, messages=messages, facts=paged_hits, report=report)

    def _shown(self, turn: Turn) -> int:
        return self.count_tokens(render_turn(turn)) + 1  # +1: the newline that joins same-role turns

    def _elide_old_tool_results(self, turns: Sequence[Turn]) -> tuple[list[Turn], list[tuple[str, Dropped]]]:
        """Large tool results stay whole while among the last few turns; older ones are
        replaced by a stub in the request (the full text stays in the session tier)."""
        old = len(turns) - self.budget.tool_result_recent_turns
        out: list[Turn] = []
        stubbed: list[tuple[str, Dropped]] = []
        for i, turn in enumerate(turns):
            if i < old and turn.kind == "tool_result" and self.count_tokens(turn.content) > self.budget.tool_result_stub_over:
                turn, note = self._stub(turn, "outside the recent turns")
                stubbed.append(note)
            out.append(turn)
        return out, stubbed

    def _stub(self, turn: Turn, why: str) -> tuple[Turn, tuple[str, Dropped]]:
        """A tool result shown as a stub, and the report's note of what it saved."""
        size = self.count_tokens(turn.content)
        stub = tool_result_stub(turn, size)
        note = Dropped(what=f"tool result {turn.id}", why=f"{why}: replaced by a stub ({size:,} tokens)",
                       tokens=size - self.count_tokens(stub))
        return turn.model_copy(update={"content": stub}), (turn.id, note)
