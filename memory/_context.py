"""Building one request (`Memory.context`): reads the tiers, then hands values to `inject`.

context() writes nothing (access stats aside, recorded off the hot path): the window roll
and the profile bake happen on the write path, so a model-backed summarizer never runs
here and an erasure cannot race with a request re-creating what it erased.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
        """Plan the budget, page facts in, fit the tiers into the budget, report."""
        profile = self.profile(user_id)
        window, summary_text = self.window(user_id, session_id)
        summary_tokens = self.count_tokens(summary_block(summary_text)) if summary_text else 0
        plan = self._plan(message, system, profile, budget, summary_tokens)
        draft = self._draft([t for t in window if t.id not in exclude], summary_text, documents, message, plan)
        room = self._memory_room(draft, plan)
        draft.hits, paging_notes = self.page_in(message, user_id, set(profile.fact_ids), {t.ref for t in draft.history}, room)
        draft.dropped += paging_notes
        draft.set_block(*memory_block([s.fact for s in draft.hits], room, self.count_tokens))
        self._fit(draft, plan, documents, message)
        return self._assemble(draft, plan, message, system, profile)

    # -- the steps --------------------------------------------------------------------------
    def _plan(self, message: str, system: str | None, profile: Profile, budget: int, summary_tokens: int) -> _Plan:
        """Each tier's budget. The system prompt, the profile and the new message are never
        dropped; the other tiers share what they leave, each with a budget of its own:
        documents and the memory block their shares, the summary its stored size, the
        recent turns the rest. A tier that needs less hands the difference on (documents and
        memory to the turns, the turns back to memory, then documents), so no tier overruns
        its budget while another is cut. Only when the fixed parts and the summary leave too
        little do the tiers give back in the documented degrade order: lowest-priority
        documents, the memory block, older turns, the summary."""
        count, b = self.count_tokens, self.budget
        reserve = min(b.reply_reserve, budget // 8)
        available = budget - reserve - (count(system or "") + count(profile.text) + count(message))
        room = max(available, 0)
        documents_cap = min(int(budget * b.documents_share), room)
        memory_cap = min(int(budget * b.memory_share), b.memory_max_tokens, room - documents_cap)
        return _Plan(budget, reserve, available, room, documents_cap, memory_cap, summary_tokens)

    def _draft(self, window: list[Turn], summary_text: str, documents: Sequence[Document], message: str,
               plan: _Plan) -> _Draft:
        """The request before fitting: the window (old tool results stubbed), the summary,
        the documents placed in their share."""
        count = self.count_tokens
        history, stubbed = self._elide_old_tool_results(window)  # all of the window: older turns go after memory
        placed, doc_notes = fit_documents(documents, plan.documents_cap, count, message)
        return _Draft(count=count, history=history, cost={t.id: self._shown(t) for t in history}, stubbed=stubbed,
                      summary_text=summary_text, summary_tokens=plan.summary_tokens, placed=placed, doc_notes=doc_notes)

    def _memory_room(self, draft: _Draft, plan: _Plan) -> int:
        """The memory block's room: its own budget, plus what the turns will leave of theirs
        (known before paging: their costs are). Paging in and fitting then run once, for no
        more facts than can be shown."""
        left = plan.room - draft.summary_tokens - sum(draft.cost.values()) - draft.documents_tokens()
        return min(self.budget.memory_max_tokens, max(plan.memory_cap, left))

    def _fit(self, draft: _Draft, plan: _Plan, documents: Sequence[Document], message: str) -> None:
        """Fit the tiers into the budget: the turns take their own budget and what documents
        and memory left unused (a big recent tool result becomes a stub before an older turn
        goes); what the turns leave flows back to memory, then documents; over even so, the
        degrade order."""
        count, b, d = self.count_tokens, self.budget, draft
        history_room = plan.room - d.summary_tokens - d.block_tokens - d.documents_tokens()
        if d.history_tokens() > history_room and d.history:
            big = [i for i, t in enumerate(d.history) if t.kind == "tool_result" and d.cost[t.id] > b.tool_result_stub_over]
            for i in sorted(big, key=lambda i: -d.cost[d.history[i].id]):
                if d.history_tokens() <= history_room:
                    break
                turn, stub = self._stub(d.history[i], "over this request's budget")
                d.stubbed.append(stub)
                d.history[i] = turn
                d.cost[turn.id] = self._shown(turn)
        if d.history_tokens() > max(history_room, 0) and d.history:
            d.history, d.hidden = plan_window(d.history, max(history_room, 0), 1.0, lambda t: d.cost[t.id])
        spare = -d.excess(plan.room)
        if spare > 0 and d.over and d.block_tokens < b.memory_max_tokens:
            d.set_block(*memory_block([s.fact for s in d.hits], min(b.memory_max_tokens, d.block_tokens + spare), count))
            spare = -d.excess(plan.room)
        if spare > 0 and d.doc_notes:
            d.placed, d.doc_notes = fit_documents(documents, d.documents_tokens() + spare, count, message)
        d.dropped += d.over
        if d.excess(plan.room) > 0 and d.placed:
            d.placed, d.doc_notes = shrink_documents(d.placed, d.excess(plan.room), count, message)
        if d.excess(plan.room) > 0 and d.block:
            d.set_block(*memory_block([s.fact for s in d.hits], max(0, d.block_tokens - d.excess(plan.room)), count))
            d.dropped += [x.model_copy(update={"why": "memory block shrunk: the request was over budget"}) for x in d.over]
        if d.excess(plan.room) > 0 and d.history:
            d.history, more_hidden = plan_window(d.history, max(0, d.history_tokens() - d.excess(plan.room)), 1.0,
                                                 lambda t: d.cost[t.id])
            d.hidden = more_hidden + d.hidden
        if d.excess(plan.room) > 0 and d.summary_text:
            d.dropped.append(Dropped(what="session summary", why="over this request's budget (dropped last)",
                                     tokens=d.summary_tokens))
            d.summary_text, d.summary_tokens = "", 0

    def _assemble(self, d: _Draft, plan: _Plan, message: str, system: str | None, profile: Profile) -> Context:
        """The request and its report, from the fitted draft."""
        count = self.count_tokens
        if d.hidden:
            d.dropped.append(Dropped(what=f"{len(d.hidden)} older turns", why="over this request's history budget",
                                     tokens=sum(d.cost[t.id] for t in d.hidden)))
        shown_ids = {t.id for t in d.history}
        d.dropped += [note for turn_id, note in d.stubbed if turn_id in shown_ids]
        d.dropped += [Dropped(what=f"document {doc.label}", why=why, tokens=tokens) for doc, why, tokens in d.doc_notes]
        paged_ids = {f.id for f in d.paged}
        paged_hits = [s.hit() for s in d.hits if s.fact_id in paged_ids]
        # Stats of stored facts, recorded off the hot path (a recalled answer is not one).
        self.record_access([f for f in d.paged if f.extractor != SAID])

        stable = [p.block for p in d.placed if p.doc.stable]
        volatile = [p.block for p in d.placed if not p.doc.stable]
        messages, alternation = build_messages(d.history, d.block, message, order_for_attention(volatile))
        d.dropped += alternation
        system_blocks = build_system(system, profile.text, d.summary_text, stable)
        final = messages[-1]["content"][len(volatile):-1]  # after the documents, before the message
        history_tokens = sum(count(c["text"]) for msg in messages[:-1] for c in msg["content"])
        history_tokens += sum(count(c["text"]) for c in final if not (d.block and c["text"] == d.block))
        tokens = {
            "system": count(system or ""),
            "profile": count(profile.text),
            "documents": sum(block_tokens(doc, count) for doc in stable + volatile),
            "summary": count(summary_block(d.summary_text)) if d.summary_text else 0,
            "memory": d.block_tokens,
            "history": history_tokens,
            "message": count(message),
        }
        prefix = tokens["system"] + tokens["profile"] + sum(block_tokens(doc, count) for doc in stable)
        minimum = cache_min_tokens(self.model)
        notes = []
        if prefix < minimum:
            notes.append(f"stable prefix is {prefix} tokens, below {self.model}'s cache minimum of {minimum}: "
                         "it will be sent uncached")
        if plan.available < 0:
            notes.append(f"system prompt, profile and new message alone take {plan.budget - plan.reserve - plan.available} "
                         f"tokens, over the budget less the reply reserve ({plan.budget - plan.reserve}); nothing else "
                         "was added")
        report = ContextReport(
            tokens=tokens,
            budget={"total": plan.budget, "reply_reserve": plan.reserve, "memory": plan.memory_cap,
                    "documents": plan.documents_cap, "summary": d.summary_tokens, "history": plan.history_cap},
            dropped=d.dropped,
            prefix_tokens=prefix,
            cache_min_tokens=minimum,
            cacheable=prefix >= minimum,
            profile_epoch=profile.epoch,
            profile_facts=list(profile.fact_ids),
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


@dataclass(frozen=True)
class _Plan:
    """A request's budgets, before anything is fitted."""

    budget: int
    reserve: int  # for the reply
    available: int  # after the parts never dropped (negative: they alone are over)
    room: int  # what the other tiers share
    documents_cap: int
    memory_cap: int
    summary_tokens: int  # the stored summary's size (the fit may still drop it)

    @property
    def history_cap(self) -> int:
        """The recent turns' own budget: what the other tiers' budgets leave."""
        return max(0, self.room - self.documents_cap - self.memory_cap - self.summary_tokens)


@dataclass
class _Draft:
    """The request while it is fitted: what each tier holds now, and what was dropped."""

    count: TokenCounter
    history: list[Turn]
    cost: dict[str, int]  # each turn's tokens, as the request shows it
    stubbed: list[tuple[str, Dropped]]
    summary_text: str
    summary_tokens: int
    placed: list[Any]
    doc_notes: list[Any]
    hits: list[Scored] = field(default_factory=list)
    block: str = ""
    block_tokens: int = 0
    paged: list[Fact] = field(default_factory=list)
    over: list[Dropped] = field(default_factory=list)
    hidden: list[Turn] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def set_block(self, block: str, paged: list[Fact], over: list[Dropped]) -> None:
        self.block, self.paged, self.over = block, paged, over
        self.block_tokens = self.count(block)  # counted once per block, not at every check

    def history_tokens(self) -> int:
        return sum(self.cost[t.id] for t in self.history)

    def documents_tokens(self) -> int:
        return sum(p.tokens for p in self.placed)

    def excess(self, room: int) -> int:
        return self.summary_tokens + self.history_tokens() + self.block_tokens + self.documents_tokens() - room
