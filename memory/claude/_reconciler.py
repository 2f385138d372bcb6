"""ClaudeReconciler: the rules decide what they can; Claude is asked only about candidates
the rules would store beside similar facts (neither an exact repeat, nor an attribute
conflict, nor a contradiction the rules see). One call per batch for all such candidates.
A contradicted fact is invalidated with the model's reason, never deleted; when the call
fails the rules' decision stands."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .._models import Candidate, FactEvent
from ..reconcile import Neighbour, ReconcilePolicy, Verdict, reconcile
from ._calls import ModelCaller, ModelCallFailed
from ._extractor import Malformed, _payload

logger = logging.getLogger("tiermem")
MAX_NEIGHBOURS = 3

INSTRUCTIONS = """You maintain a memory of facts about a person. For each NEW statement you are shown the most similar STORED facts. Decide, for each new statement, how it relates to the stored facts:
- "same": it states the same thing as one stored fact (wording aside). Name that fact.
- "update": it refines or extends one stored fact (more detail, a newer count, a corrected detail) so that the stored fact should be replaced by it. Name that fact.
- "contradicts": it gives a new value for what one stored fact says (a new amount, date, day, place, person or count for the same thing: "the rent went up to 1,340", "they moved the play to Monday", "Lena left, Ivo coaches me now"), or reverses it. Name that fact.
- "ends": it says what one stored fact describes is over (sold, quit, gave up, stopped, cancelled, left, retired, broke up, no longer, not ... anymore). Name that fact.
- "unrelated": it is about something else, or both can be true side by side. Name no fact.
Two events on different dates are not the same and do not contradict. A preference and a different preference can both be true. A statement about another person (a relative, a friend, a neighbour) never changes a fact about the person whose memory this is. Be conservative: choose "unrelated" when unsure.
Answer with one JSON object: {"decisions": [{"candidate": <number>, "decision": "...", "fact": "<fact id or null>", "reason": "<a few words>"}]}, one decision per new statement."""

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["decisions"],
    "properties": {"decisions": {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["candidate", "decision", "fact", "reason"],
        "properties": {"candidate": {"type": "integer"},
                       "decision": {"type": "string", "enum": ["same", "update", "contradicts", "ends", "unrelated"]},
                       "fact": {"type": ["string", "null"]}, "reason": {"type": "string"}}}}},
}


class _Decision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    candidate: int
    decision: Literal["same", "update", "contradicts", "ends", "unrelated"]
    fact: str | None = None
    reason: str = ""


class _Decisions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    decisions: list[_Decision]


class ClaudeReconciler:
    """The `Reconciler` interface: rules first, Claude for what they cannot decide."""

    name = "claude"

    def __init__(self, caller: ModelCaller, policy: ReconcilePolicy | None = None, max_questions: int = 40):
        self.caller = caller
        self.policy = policy or ReconcilePolicy()
        self.max_questions = max_questions
        self.stats: Counter[str] = Counter()

    uses_model = True

    def judge(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime,
    ) -> dict[int, Verdict]:
        """The rules' pass finds the candidates they leave open; Claude is asked about those,
        in one call. Returns the verdicts by candidate position ({} when nothing was open or
        the call failed: the rules stand)."""
        questions: dict[int, tuple[Candidate, list[Neighbour]]] = {}

        def ask_later(i: int, candidate: Candidate, similar: Sequence[Neighbour]) -> None:
            if len(questions) < self.max_questions:
                questions[i] = (candidate, sorted(similar, key=lambda n: -(n.similarity or 0))[:MAX_NEIGHBOURS])
            return None

        reconcile(user_id, candidates, vectors, neighbours, now=now, policy=self.policy, judge=ask_later)
        return self._ask(user_id, questions) if questions else {}

    def reconcile(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime, verdicts: Mapping[int, Verdict] | None = None,
    ) -> list[FactEvent]:
        return reconcile(user_id, candidates, vectors, neighbours, now=now, policy=self.policy,
                         judge=(lambda i, c, s: verdicts.get(i)) if verdicts else None)

    def _ask(self, user_id: str, questions: dict[int, tuple[Candidate, list[Neighbour]]]) -> dict[int, Verdict]:
        blocks, fact_ids, texts = [], {}, {}
        for number, (candidate, similar) in enumerate(questions.values(), start=1):
            lines = [f"NEW {number}: {candidate.text}"]
            for j, n in enumerate(similar, start=1):
                short = f"f{number}.{j}"
                fact_ids[short] = n.fact.id
                texts[n.fact.id] = n.fact.text
                lines.append(f"  STORED {short}: {n.fact.text}")
            blocks.append("\n".join(lines))
        numbers = {number: i for number, i in enumerate(questions, start=1)}
        params: dict[str, Any] = {
            "max_tokens": 200 + 80 * len(questions),
            "system": [{"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "\n\n".join(blocks)}],
        }
        if self.caller.info.structured_output:
            params["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
        try:
            message = self.caller.create(purpose="reconcile", user_id=user_id, **params)
            if message.stop_reason in ("refusal", "max_tokens"):
                raise Malformed(message.stop_reason)
            decisions = _Decisions.model_validate(_payload(message)).decisions
        except (ModelCallFailed, Malformed, ValidationError, json.JSONDecodeError) as exc:
            self.stats["failed"] += 1
            logger.warning("tiermem: Claude reconciliation failed (%s); the rules decide", exc)
            return {}
        verdicts: dict[int, Verdict] = {}
        for d in decisions:
            if d.candidate not in numbers:
                self.stats["unknown_candidate"] += 1
                continue
            fact_id = fact_ids.get((d.fact or "").strip("[] "))
            if d.decision != "unrelated" and fact_id is None:
                self.stats["unknown_fact"] += 1  # a fact id it was not shown: the rules stand
                continue
            self.stats[d.decision] += 1
            verdicts[numbers[d.candidate]] = Verdict(d.decision, fact_id, d.reason.strip()[:200],
                                                     seen=texts.get(fact_id) if fact_id else None)
        return verdicts
