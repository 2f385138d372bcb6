"""Recall of what the assistant said: "which trail did you recommend?", "remind me of the ratio
you told me".

Facts are what the user said about their world; the assistant's own answers are not
extracted (kept as facts they crowd the user's out of every search, and embedding every
sentence of long answers costs several times the ingest). They stay verbatim in the session
tier, and a question that asks what the assistant said reads them there: the user's assistant
turns (the newest `SCAN_TURNS`) are cut into passages of a few sentences, ranked by BM25
with statistics of these passages, the best `RERANK` are embedded and ranked again by their
cosine to the query, and the two rankings are fused. Questions that do not ask what the
assistant said never pay for this.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from ._models import Fact, Turn
from ._text import BM25_B, BM25_K, content_tokens
from .index import IndexHit
from .index._base import to_payload
from .retrieve import Scored

SCAN_TURNS = 2000  # the newest assistant turns a recall reads; older answers are out of its reach
RERANK = 16  # passages embedded per recall
KEEP = 4  # passages a recall adds to the ranking at most
PASSAGE_CHARS = 250  # ~60 tokens: a passage is a few sentences, cheap to page in
SAID_PREFIX = "The assistant said: "
SAID = "said"  # the `extractor` of a recalled passage: a Fact that is not stored
# Sentence ends within a line (answers are lists and paragraphs: lines are split first); a
# passage only needs to start and stop between sentences, not to know every abbreviation.
_BREAK = re.compile(r"(?<=[.!?:])(?<!\b\d\.)(?<!\b\d\d\.)\s+")  # not after a list's "2."
CACHED_TURNS = 4000  # turns whose passages and tokens are kept between recalls
CACHED_CHARS = 16_000_000  # and at most this much passage text (a few long answers must not hold gigabytes)
TURN_ENDS = 6000  # of a longer answer a recall reads its first and last this many characters (`assistant_turns`)

# "you recommended", "you'd suggested", "the list you gave me", "our previous conversation",
# "remind me", "what we discussed": the question may be about the assistant's own words.
# "Can you suggest..." is not (present tense). A question about the user that fires it
# ("remind me where I parked") loses little: at most `KEEP` passages, each above the
# relevance threshold, go ahead of its facts; one that should fire and does not loses all.
_ASKS = re.compile(
    r"""\byou(?:'d|'ve)?(?:\s+[\w']+){0,3}?\s+(?:said|told|recommended|suggested|mentioned|gave|given|provided|
        listed|shared|wrote|written|made|created|proposed|advised|explained|described|named|offered|showed|
        shown|sent|generated|compiled|came\s+up\s+with|put\s+together|pointed\s+out|talked\s+about|quoted|
        cited|played|picked|chose|chosen|included|answered|replied|warned|helped|taught|walked\s+me\s+through|
        went\s+over|discussed|covered|called)\b
      |\bdid\s+you\s+(?:say|tell|recommend|suggest|mention|give|provide|list|share|write|make|create|propose|
        advise|explain|describe|name|offer|show|send|generate|compile|come\s+up\s+with|put\s+together|point\s+out|
        quote|cite|pick|choose|include|call)\b(?!.*\b(?:now|today|instead)\b)
      |\b(?:our|the|that|your)\s+(?:previous|last|earlier|past|prior|former)\s+(?:chat|conversation|discussion|
        session|talk|exchange|game|answer|response|reply|message|list|suggestion|recommendation)s?\b
      |\byour\s+(?:earlier\s+|previous\s+|last\s+)?(?:answer|response|reply|suggestion|recommendation|advice|
        explanation)s?\s+(?:about|on|to|for|regarding)\b
      |\bremind\s+me\b|\b(?:tell|show|give)\s+me\s+again\b|\btrying\s+to\s+(?:recall|remember)\b
      |\bdo\s+you\s+(?:remember|recall)\b
      |\bwe\s+(?:discussed|talked\s+about|went\s+over|covered|chatted\s+about|came\s+up\s+with|worked\s+on|
        brainstormed)\b""",
    re.IGNORECASE | re.VERBOSE,
)


def asks_what_was_said(query: str) -> bool:
    """Whether a question is about the assistant's own earlier words. A long message (a
    pasted document, then the question) is read at its two ends only: the gate stays cheap."""
    return bool(_ASKS.search(query if len(query) <= 2000 else f"{query[:1000]} \n {query[-1000:]}"))


def passages(text: str) -> list[str]:
    """Consecutive sentences joined up to `PASSAGE_CHARS` (a longer sentence is its own passage,
    cut at a word boundary)."""
    out: list[str] = []
    current = ""
    for sentence in (part for line in text.splitlines() for part in _BREAK.split(line.strip()) if part):
        while len(sentence) > PASSAGE_CHARS:
            cut = sentence.rfind(" ", 0, PASSAGE_CHARS)
            cut = cut if cut > PASSAGE_CHARS // 2 else PASSAGE_CHARS
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > PASSAGE_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return [p for p in out if p]


class SaidRecall:
    """Ranks passages of one user's assistant turns for a question.

    Args:
        turns: the session tier's `assistant_turns` (user, before, limit), newest first.
        embed: document embedding of the rerank candidates.
        min_relevance: the cosine to the question below which a passage is not returned (the
            page-in threshold of facts): a question about something the assistant never
            said gets no passages, not the four least unrelated.
    """

    def __init__(self, turns: Callable[..., list[Turn]], embed: Callable[[Sequence[str]], list[list[float]]],
                 min_relevance: float):
        self.turns = turns
        self.embed = embed
        self.min_relevance = min_relevance
        # A turn's passages, their tokens and token counts, by (turn id, text): the text is part
        # of the key, so a turn with a statement forgotten since is cut again. `forget()` empties it.
        self._cache: OrderedDict[tuple[str, int, int], list[tuple[str, Counter[str], int]]] = OrderedDict()
        self._cached_chars = 0
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every cached passage (a turn was redacted or a user erased)."""
        with self._lock:
            self._cache.clear()
            self._cached_chars = 0

    def _passages(self, turn: Turn) -> list[tuple[str, Counter[str], int]]:
        key = (turn.id, len(turn.content), hash(turn.content))  # not the text itself: the cache keeps no answer alive
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        made = [(text, Counter(tokens), len(tokens)) for text in passages(turn.content)
                for tokens in (content_tokens(text),)]
        with self._lock:
            if key not in self._cache:
                self._cache[key] = made
                self._cached_chars += sum(len(text) for text, *_ in made)
            while len(self._cache) > CACHED_TURNS or (self._cached_chars > CACHED_CHARS and len(self._cache) > 1):
                _, dropped = self._cache.popitem(last=False)
                self._cached_chars -= sum(len(text) for text, *_ in dropped)
        return made

    def scored(self, query: str, query_vector: Sequence[float], user_id: str, as_of: datetime | None) -> list[Scored]:
        """The best passages, best first, as ranked candidates (each a `Fact` that is not
        stored: id `said-…`, kind episodic, its source the turn, `extractor` "said")."""
        wanted = set(content_tokens(query))
        if not wanted:
            return []
        units = [(turn, n, text, counts, size)
                 for turn in self.turns(user_id, before=as_of, limit=SCAN_TURNS, ends=TURN_ENDS)
                 for n, (text, counts, size) in enumerate(self._passages(turn))]
        if not units:
            return []
        # BM25 with statistics of these passages: a word every answer uses weighs little.
        frequency: Counter[str] = Counter()
        for *_, counts, _ in units:
            frequency.update(t for t in counts if t in wanted)
        total = len(units)
        average = sum(u[4] for u in units) / total or 1.0
        idf = {t: math.log(1 + (total - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        bm25: list[tuple[float, int]] = []
        for i, (*_, counts, size) in enumerate(units):
            length = 1 - BM25_B + BM25_B * size / average
            score = sum(w * counts[t] * (BM25_K + 1) / (counts[t] + BM25_K * length) for t, w in idf.items() if t in counts)
            if score > 0:
                bm25.append((score, i))
        bm25.sort(key=lambda x: (-x[0], x[1]))
        chosen = bm25[:RERANK]
        if not chosen:
            return []
        vectors = np.asarray(self.embed([units[i][2] for _, i in chosen]), dtype=np.float32)
        cosines = vectors @ np.asarray(query_vector, dtype=np.float32)
        dense_order = sorted(range(len(chosen)), key=lambda k: (-float(cosines[k]), k))
        dense_rank = {k: r + 1 for r, k in enumerate(dense_order)}
        top = chosen[0][0]
        fused = sorted(((1 / (10 + k + 1) + 1 / (10 + dense_rank[k]), k) for k in range(len(chosen))
                        if cosines[k] >= self.min_relevance), key=lambda x: (-x[0], x[1]))
        out = []
        for value, k in fused[:KEEP]:  # facts are made for the passages returned only
            score, i = chosen[k]
            turn, n, text, *_ = units[i]
            explain = {"sparse": round(score, 4), "sparse_norm": round(score / top, 4),
                       "dense": round(float(cosines[k]), 4), "said_fusion": round(value, 6)}
            out.append(Scored(self._hit(turn, n, text, user_id, vectors[k]), value, explain, vectors[k]))
        return out

    @staticmethod
    def _hit(turn: Turn, n: int, text: str, user_id: str, vector: np.ndarray) -> IndexHit:
        digest = hashlib.sha1(f"{turn.id}:{n}".encode()).hexdigest()[:16]
        fact = Fact.model_construct(  # the other fields take their defaults
            id=f"said-{digest}", user_id=user_id, kind="episodic", text=SAID_PREFIX + text, subject="the assistant",
            sources=[turn.ref], event_at=turn.created_at, metadata={"said": True, "session_id": turn.session_id},
            extractor=SAID, valid_from=turn.created_at, created_at=turn.created_at)
        hit = IndexHit(to_payload(fact), 0.0, vector.tolist())
        hit._cached = fact
        return hit


def merge(facts: list[Scored], said: list[Scored]) -> list[Scored]:
    """The said passages interleaved ahead of the facts (passage 1, fact 1, passage 2, ...):
    the question asked for the assistant's words, and the user's facts still answer the rest
    of it. Each passage takes a score just above the fact it precedes."""
    if not said:
        return facts
    out: list[Scored] = []
    for r, passage in enumerate(said):
        passage.score = facts[r].score + 1e-6 if r < len(facts) else (out[-1].score if out else 0.0) - 1e-6
        passage.explain["score"] = round(passage.score, 6)
        passage.explain["said_rank"] = r + 1
        out.append(passage)
        if r < len(facts):
            out.append(facts[r])
    out.extend(facts[len(said):])
    return out
