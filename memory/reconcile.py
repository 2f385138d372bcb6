"""Dedup and reconcile: decide what each candidate fact does to what is already stored.

A pure function over values: it takes candidates with their vectors and each candidate's
neighbours, and returns events. No client, no I/O; `Memory.add` gathers the neighbours.
Nothing is hard-deleted here: a contradicted fact is invalidated and keeps its history.

Order of the checks for a candidate:
1. an exact repeat (same normalized text, same event day) merges into the stored fact;
2. a new value for the same subject and attribute ("lives in") is a conflict;
3. each similar stored statement is compared with it as a claim (`_claims`): who or what it
   is about, its predicate and values. A statement about another subject is another fact,
   always. About the same subject: a negation, an ended state, a new value of a one-valued
   attribute or an announced change replaces the stored fact (a conflict); the same
   statement merges; the same with more detail refines it (same id, the new text); anything
   else is stored beside it ("when unsure, keep both").
In a conflict, time decides which value is current: the statement said later (`valid_from`)
wins, so backfilled older messages land as already-superseded history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from ._claims import clauses, holder_key, parse, relate
from ._forgetting import RETRACTS, named_share, target_words
from ._models import Candidate, Fact, FactEvent, new_id
from ._text import normalize

ENDS = "ends"  # Fact.metadata key: the text of the statement this one says is over
FORGOTTEN_ON_REQUEST = "forgotten at the user's request"  # the reason of an invalidation a request made


@dataclass(frozen=True)
class ReconcilePolicy:
    """Cosine thresholds (embedder-specific; measured with MiniLM on `bench.reconcile`)."""

    rephrased: float = 0.93  # same subject, values and half the predicate's words: a rephrasing
    related: float = 0.6  # facts added earlier in the same batch are compared from this cosine up
    comparable: float = 0.5  # stored neighbours below this cosine are neither duplicates nor contradictions
    # A request to forget that names no stored statement by its words ('my medication' for
    # 'takes sertraline') names the nearest one when it is this close and clearly the nearest.
    forget_similar: float = 0.6
    forget_margin: float = 0.1


@dataclass
class Neighbour:
    fact: Fact
    similarity: float | None  # cosine to the candidate; None when found by hash or key


@dataclass(frozen=True)
class Verdict:
    """A judge's decision on a candidate the rules would add beside similar facts:
    "same" (a repeat of `fact_id`), "update" (a refinement of it: same id, new text),
    "contradicts" (it replaces it: the old one is invalidated, with the reason), "ends" (it
    says the stored state is over: the same, and the news is indexed with what it ended) or
    "unrelated" (a new fact after all)."""

    decision: str
    fact_id: str | None = None
    reason: str = ""
    seen: str | None = None  # the fact's text when it was judged: a verdict on another version is dropped


# Asked, for a candidate the rules would add as new, with the similar stored facts the rules
# could not decide on; returns a Verdict, or None to let the rules stand.
Judge = Callable[[int, Candidate, Sequence[Neighbour]], "Verdict | None"]


Verdicts = Mapping[int, Verdict]  # a judge's decisions, by candidate position


class Reconciler(Protocol):
    """Decides what each candidate does to the stored facts (add/update/invalidate/noop).

    Two steps, so that a slow judge never runs where reads wait: `judge()` may ask a model
    about the neighbours the rules cannot decide (the write path calls it outside its lock);
    `reconcile()` is fast and pure and applies the verdicts to the neighbours as they are
    under the lock (a verdict naming a fact that is no longer among them is dropped, and the
    rules decide). `uses_model` says whether `judge()` does anything at all.
    """

    name: str
    uses_model: bool

    def judge(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime,
    ) -> Verdicts: ...

    def reconcile(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime, verdicts: Verdicts | None = None,
    ) -> list[FactEvent]: ...


class RuleReconciler:
    """`reconcile()` behind the `Reconciler` interface: the rules alone, no judge."""

    name = "rules"
    uses_model = False

    def __init__(self, policy: ReconcilePolicy | None = None):
        self.policy = policy or ReconcilePolicy()

    def judge(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime,
    ) -> Verdicts:
        return {}

    def reconcile(
        self, user_id: str, candidates: Sequence[Candidate], vectors: Sequence[Sequence[float]],
        neighbours: Sequence[Sequence[Neighbour]], *, now: datetime, verdicts: Verdicts | None = None,
    ) -> list[FactEvent]:
        return reconcile(user_id, candidates, vectors, neighbours, now=now, policy=self.policy,
                         judge=(lambda i, c, s: verdicts.get(i)) if verdicts else None)


def _same_event_day(a: Candidate | Fact, b: Fact) -> bool:
    day_a = a.event_at.date() if a.event_at else None
    day_b = b.event_at.date() if b.event_at else None
    return day_a == day_b


def _merged(existing: Fact, candidate: Candidate) -> Fact:
    sources = existing.sources + [s for s in candidate.sources if s not in existing.sources]
    return existing.model_copy(
        update={
            "sources": sources,
            "mentions": existing.mentions + 1,
            "importance": max(existing.importance, candidate.importance),
            "metadata": {**existing.metadata, **candidate.metadata},
        }
    )


def _new_fact(candidate: Candidate, user_id: str, now: datetime) -> Fact:
    return Fact(
        id=new_id(),
        user_id=user_id,
        created_at=now,
        **candidate.model_dump(exclude={"operation"}),
    )


def reconcile(
    user_id: str,
    candidates: Sequence[Candidate],
    vectors: Sequence[Sequence[float]],
    neighbours: Sequence[Sequence[Neighbour]],
    *,
    now: datetime,
    policy: ReconcilePolicy = ReconcilePolicy(),
    judge: Judge | None = None,
) -> list[FactEvent]:
    """Turn candidates into add / update / invalidate / noop events.

    Candidates are handled in order, and each one also sees the facts that earlier
    candidates of the same batch added or changed.

    Args:
        user_id: the tenant every fact belongs to.
        candidates: extracted candidates.
        vectors: one unit vector per candidate.
        neighbours: per candidate, stored facts that may duplicate or conflict with it.
        now: record time of the change.
        judge: asked about candidates the rules would add beside similar stored facts
            (`ClaudeReconciler`); without one the rules decide alone.

    Returns:
        The events, in order; a fact may appear in several (add then update).

    Example:
        >>> events = reconcile("ana", [cand], [vec], [[Neighbour(old_fact, 0.97)]], now=now)
    """
    events: list[FactEvent] = []
    current: dict[str, Fact] = {}  # latest version of every fact touched in this batch
    batch = _BatchFacts(len(vectors[0]) if len(vectors) else 0)

    def latest(f: Fact) -> Fact:
        return current.get(f.id, f)

    for i, (candidate, vector, near) in enumerate(zip(candidates, vectors, neighbours, strict=True)):
        pool = [Neighbour(latest(n.fact), n.similarity) for n in near]
        pool += [Neighbour(latest(f), sim) for f, sim in batch.related(candidate, vector, policy.related)]
        pool = [n for n in pool if n.fact.is_valid]
        if candidate.operation == "forget":
            forgotten = _forget(user_id, candidate, pool, now, policy)
            events.extend(forgotten)
            current.update((e.fact_id, e.fact) for e in forgotten if e.fact is not None)
            continue
        event = _decide(user_id, candidate, pool, now, policy)
        if judge is not None and event[0].op == "add" and event[0].reason == "new":
            similar = [n for n in pool if n.similarity is not None and n.similarity >= policy.related]
            verdict = judge(i, candidate, similar) if similar else None
            if verdict is not None:
                event = _judged(user_id, candidate, similar, verdict, now) or event
        events.extend(event)
        for e in event:
            if e.fact is not None:
                current[e.fact.id] = e.fact
            if e.op == "add" and e.fact is not None:
                batch.add(e.fact, vector)
    return events


class _BatchFacts:
    """Facts added earlier in the same batch, findable by key, attribute or similarity
    without comparing every pair in Python. Like stored neighbours, only the `nearest` most
    similar are compared, so a batch of n candidates costs O(n) comparisons, not O(n²)."""

    def __init__(self, dims: int, nearest: int = 8):
        self.facts: list[Fact] = []
        self.nearest = nearest
        self._vectors = np.zeros((64, dims), dtype=np.float32)  # grown by doubling, not copied per fact
        self.by_key: dict[str, list[int]] = {}
        self.by_attribute: dict[tuple[str, str], list[int]] = {}

    def add(self, fact: Fact, vector: Sequence[float]) -> None:
        i = len(self.facts)
        if i == len(self._vectors):
            self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])
        self.facts.append(fact)
        self._vectors[i] = np.asarray(vector, dtype=np.float32)
        self.by_key.setdefault(normalize(fact.text), []).append(i)
        if fact.attribute:
            self.by_attribute.setdefault((fact.subject.lower(), fact.attribute), []).append(i)

    def related(self, candidate: Candidate, vector: Sequence[float], threshold: float) -> list[tuple[Fact, float]]:
        if not self.facts:
            return []
        sims = self._vectors[: len(self.facts)] @ np.asarray(vector, dtype=np.float32)
        hits = set(self.by_key.get(normalize(candidate.text), []))
        if candidate.attribute:
            hits.update(self.by_attribute.get((candidate.subject.lower(), candidate.attribute), []))
        above = np.nonzero(sims >= threshold)[0]
        if len(above) > self.nearest:
            above = above[np.argpartition(-sims[above], self.nearest - 1)[: self.nearest]]
        hits.update(int(i) for i in above)
        return [(self.facts[i], float(sims[i])) for i in sorted(hits)]


def _decide(
    user_id: str, candidate: Candidate, pool: Sequence[Neighbour], now: datetime, policy: ReconcilePolicy
) -> list[FactEvent]:
    key = normalize(candidate.text)
    subject = candidate.subject.lower()
    # What the assistant said and what the user said are never one claim: neither updates,
    # merges into or replaces the other.
    said_by = candidate.metadata.get("said_by")
    pool = [n for n in pool if n.fact.metadata.get("said_by") == said_by]

    def changed(existing: Fact, reason: str) -> list[FactEvent]:
        if set(candidate.sources) <= set(existing.sources) and candidate.metadata.items() <= existing.metadata.items():
            return [FactEvent(op="noop", fact_id=existing.id, user_id=user_id, fact=existing, at=now, reason=reason)]
        return [
            FactEvent(op="update", fact_id=existing.id, user_id=user_id, fact=_merged(existing, candidate),
                      previous=existing, at=now, reason=reason)
        ]

    for n in pool:
        if normalize(n.fact.text) == key and _same_event_day(candidate, n.fact):
            return changed(n.fact, "exact duplicate")
    if said_by is not None:  # the assistant's words are kept as said: no claim of theirs is updated
        fact = _new_fact(candidate, user_id, now)
        return [FactEvent(op="add", fact_id=fact.id, user_id=user_id, fact=fact, at=now, reason="new")]

    if candidate.attribute:
        for n in pool:
            f = n.fact
            if f.subject.lower() != subject or f.attribute != candidate.attribute:
                continue
            if normalize(f.value or "") == normalize(candidate.value or ""):
                return changed(f, f"same {candidate.attribute}")
            return _conflict(user_id, candidate, f, now, f"{candidate.attribute} changed from {f.value!r} to {candidate.value!r}")

    # What each statement is about decides the rest: a statement about another person, item
    # or event is another fact whatever the cosine. The floor only spares comparing
    # statements that share almost nothing.
    claim = parse(candidate.text, candidate.subject, user_id)
    # Each clause of a compound statement may replace on its own ('Lena left, Ivo is my
    # coach now'); merging and refining stay with the whole statement.
    parts = [parse(part, candidate.subject, user_id) for part in clauses(candidate.text)]
    # A clause is compared with every neighbour: the whole statement's cosine says little
    # about one clause of it ('Lena retired, Ivo coaches me now' / 'My coach is Lena').
    comparable = [n for n in pool if n.similarity is None or n.similarity >= policy.comparable or parts]
    comparable.sort(key=lambda n: -(n.similarity or 0.0))
    relations = []
    for n in comparable:
        event = n.fact.kind == "episodic" or (candidate.kind == "episodic" and not (claim.ended or claim.changed))
        relation, why = "different", "not comparable"
        if n.similarity is None or n.similarity >= policy.comparable:
            relation, why = relate(parse(n.fact.text, n.fact.subject, user_id), claim, similarity=n.similarity,
                                   episodic=event, rephrased=policy.rephrased)
        if relation in ("same", "refines") and not _same_event_day(candidate, n.fact):
            relation, why = "different", "another day"
        if relation != "replaces" and not event:
            for part in parts:
                part_relation, part_why = relate(parse(n.fact.text, n.fact.subject, user_id), part,
                                                 similarity=n.similarity, rephrased=policy.rephrased)
                # A clause replaces by structure only (a slot's new value, a count, an ending,
                # a role's holder gone), never by 'now' and a shared word: one clause of a
                # long chat line says little about a whole stored statement.
                if part_relation == "replaces" and not part_why.startswith(("a new value", "negation")):
                    relation, why = part_relation, f"{part_why}, in a clause"
                    break
        relations.append((n, relation, why))
    for n, relation, why in relations:
        if relation == "replaces":
            # The news of an ending ('quit the food bank') answers what the ended statement
            # answered ('where do I volunteer?'): it is indexed with it.
            ended = claim.ended or any(p.ended for p in parts)
            return _conflict(user_id, candidate, n.fact, now, f"superseded ({why})", ends=ended)
    for n, relation, why in relations:
        if relation == "same":
            return changed(n.fact, why if n.similarity is None else f"{why}; cosine {n.similarity:.3f}")
        if relation == "refines":
            return [FactEvent(op="update", fact_id=n.fact.id, user_id=user_id, fact=_refined(n.fact, candidate),
                              previous=n.fact, at=now, reason=f"refined ({why})")]

    fact = _new_fact(candidate, user_id, now)
    return [FactEvent(op="add", fact_id=fact.id, user_id=user_id, fact=fact, at=now, reason="new")]


def _forget(user_id: str, candidate: Candidate, pool: Sequence[Neighbour], now: datetime,
            policy: ReconcilePolicy) -> list[FactEvent]:
    """A request to forget: every valid fact it names is invalidated (kept in the journal as
    history, never paged in or searched again); the request itself is no fact. It names a
    fact by its words (all of the target's content words are in it), or, when no fact has
    them, the one nearest fact that is clearly nearest. The speaker's own things ('my
    passport') never name a statement about someone else."""
    def retract(facts: Sequence[Fact]) -> list[FactEvent]:
        return [FactEvent(op="invalidate", fact_id=f.id, user_id=user_id, previous=f, at=now, reason=FORGOTTEN_ON_REQUEST,
                          fact=f.model_copy(update={"invalid_at": candidate.valid_from, "expired_at": now}))
                for f in facts]

    pool = [n for n in pool if n.fact.metadata.get("said_by") is None]  # what the user said, not the assistant
    retracted = candidate.metadata.get(RETRACTS)  # 'scratch that': the message it takes back
    if retracted is not None:
        return retract([n.fact for n in pool if retracted in n.fact.sources])
    holder = holder_key(candidate.subject, user_id)
    holder_words = frozenset(w.lower() for w in candidate.subject.split())
    words = target_words(candidate.text) - {holder}
    own = candidate.text.lower().startswith(candidate.subject.lower() + "'s")  # 'my passport', as the extractor wrote it
    facts = {n.fact.id: n for n in pool}

    def about_others(fact: Fact) -> bool:
        claim = parse(fact.text, fact.subject, user_id)
        return own and claim.owner not in claim.subject

    shares = {i: named_share(words, n.fact.text, holder_words) for i, n in facts.items() if not about_others(n.fact)}
    best = max(shares.values(), default=0.0)
    # All of the target's words name a fact; failing that, the facts that hold most of them
    # ('the job hunting' / 'applying for jobs'), when they hold at least half.
    if best >= 0.5:
        return retract([facts[i].fact for i, share in shares.items() if share == best])
    # No fact holds its words ('my medication' / 'takes sertraline'): the nearest, when it is
    # clearly the nearest.
    cosines = sorted(((n.similarity, i) for i, n in facts.items() if n.similarity is not None), reverse=True)
    if words and cosines and cosines[0][1] in shares and cosines[0][0] >= policy.forget_similar \
            and (len(cosines) == 1 or cosines[0][0] - cosines[1][0] >= policy.forget_margin):
        return retract([facts[cosines[0][1]].fact])
    return []


def _refined(target: Fact, candidate: Candidate) -> Fact:
    """`target` restated with more detail: its id and sources, the candidate's text."""
    return _merged(target, candidate).model_copy(update={
        "text": candidate.text, "kind": candidate.kind, "attribute": candidate.attribute or target.attribute,
        "value": candidate.value or target.value, "event_at": candidate.event_at or target.event_at,
        "extractor": candidate.extractor or target.extractor})


def _judged(user_id: str, candidate: Candidate, similar: Sequence[Neighbour], verdict: Verdict,
            now: datetime) -> list[FactEvent] | None:
    """A judge's verdict as events; None when it names no fact it was shown (rules stand)."""
    if verdict.decision == "unrelated":
        return None
    target = next((n.fact for n in similar if n.fact.id == verdict.fact_id), None)
    if target is None or (verdict.seen is not None and target.text != verdict.seen):
        return None
    why = f"judged {verdict.decision} by the model" + (f": {verdict.reason}" if verdict.reason else "")
    if verdict.decision == "same":
        if set(candidate.sources) <= set(target.sources):
            return [FactEvent(op="noop", fact_id=target.id, user_id=user_id, fact=target, at=now, reason=why)]
        return [FactEvent(op="update", fact_id=target.id, user_id=user_id, fact=_merged(target, candidate),
                          previous=target, at=now, reason=why)]
    if verdict.decision == "update":
        return [FactEvent(op="update", fact_id=target.id, user_id=user_id, fact=_refined(target, candidate),
                          previous=target, at=now, reason=why)]
    if verdict.decision in ("contradicts", "ends"):
        return _conflict(user_id, candidate, target, now, why, ends=verdict.decision == "ends")
    return None


def _conflict(user_id: str, candidate: Candidate, stored: Fact, now: datetime, why: str,
              ends: bool = False) -> list[FactEvent]:
    """The later statement is current; the other is kept as history (never deleted). `ends`:
    the new statement says the stored one is over, and is indexed with what it ended."""
    new = _new_fact(candidate, user_id, now)
    if ends and candidate.valid_from >= stored.valid_from:
        new = new.model_copy(update={"metadata": {**new.metadata, ENDS: stored.text}})
    if candidate.valid_from < stored.valid_from:
        # Backfilled history: it was true until the stored (newer) statement was made.
        old = new.model_copy(update={"invalid_at": stored.valid_from, "expired_at": now, "superseded_by": stored.id})
        return [FactEvent(op="add", fact_id=old.id, user_id=user_id, fact=old, at=now,
                          reason=f"{why}; older than {stored.id}, stored as history")]
    invalidated = stored.model_copy(update={"invalid_at": candidate.valid_from, "expired_at": now, "superseded_by": new.id})
    return [
        FactEvent(op="invalidate", fact_id=stored.id, user_id=user_id, fact=invalidated, previous=stored, at=now, reason=why),
        FactEvent(op="add", fact_id=new.id, user_id=user_id, fact=new, at=now, reason=f"supersedes {stored.id}"),
    ]
