"""The retriever: embedder, index and ranking policy behind one object, shared by the read
path (search, context) and the write path (neighbours for dedup, vectors for the index)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from . import telemetry
from ._models import Fact, Turn, as_utc
from ._said import SaidRecall, asks_what_was_said, merge
from ._text import sparse_document, sparse_query
from .embed import Embedder
from .index import FactIndex, IndexedFact, IndexHit, IndexQuery
from .retrieve import RetrievalPolicy, Scored, fuse

TURN_VECTORS = 4096  # recent turns' vectors kept for the contextual vectors of later facts


class Retriever:
    """Hybrid dense + BM25 retrieval over one tenant's facts.

    Args:
        embedder: makes query and document vectors.
        index: the long-term tier.
        policy: fusion weights and thresholds.
        clock: "now" for recency and validity.
        passages: for each fact, the texts of the turns it came from and of the turn before
            each (the session tier's `source_passages`); its contextual vector is the
            normalized sum of its own vector and theirs. None: a fact's context is itself.
        assistant_turns: the session tier's `assistant_turns`: a question about what the
            assistant said also ranks passages of them (`_said`). None: facts only.

    Reads take no lock of the memory's: the index guards itself, call by call, so a write
    in progress (a model call included) never holds up a search.
    """

    def __init__(self, embedder: Embedder, index: FactIndex, policy: RetrievalPolicy, clock: Callable[[], datetime],
                 passages: Callable[[Sequence[Fact]], list[list[str]]] | None = None,
                 assistant_turns: Callable[..., list[Turn]] | None = None):
        self.embedder = embedder
        self.index = index
        self.policy = policy
        self.clock = clock
        self.passages = passages
        self.said = SaidRecall(assistant_turns, self.embed, policy.min_relevance) if assistant_turns is not None else None
        # Turn vectors by text: a turn is the source of several facts, and the turn before
        # the next add's; each is embedded once while it is recent.
        self._turn_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._turn_lock = threading.Lock()
        # Span names and attributes, made once: the read path builds nothing for a tracer
        # that is not there (GenAI `embeddings`, database `query`).
        self._embed_span = f"embeddings {embedder.name}"
        self._embed_attrs = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": embedder.name,
                             "gen_ai.embeddings.dimension.count": embedder.dims}
        engine = getattr(index, "db_system", "qdrant")
        self._query_attrs = {"db.system.name": engine, "db.operation.name": "query", "db.collection.name": "tiermem.facts"}
        self._nearest_attrs = {**self._query_attrs, "db.operation.name": "nearest"}

    def scored(
        self, query: str, user_id: str, limit: int, as_of: datetime | None = None, kinds: Sequence[str] | None = None,
        *, settle: int | None = None,
    ) -> list[Scored]:
        """Every candidate for `query`, ranked, with its explanation (not cut to `limit`).
        Arguments are the facade's, already checked. `settle`: how many leading candidates
        the caller keeps in this order (default `limit`; ties further down stay unordered)."""
        with telemetry.span(self._embed_span, self._embed_attrs):
            vector = self.embedder.embed_query(query)
        request = IndexQuery(
            user_id=user_id,
            dense=vector,
            sparse=sparse_query(query),
            limit=max(limit, self.policy.candidates),
            as_of=as_utc(as_of) if as_of else None,
            kinds=tuple(kinds) if kinds else None,
        )
        with telemetry.span("query tiermem.facts", self._query_attrs):
            result = self.index.query(request)
        scored = fuse(result, vector, now=as_utc(as_of) if as_of else self.clock(), policy=self.policy,
                      settle=limit if settle is None else settle)
        if self.said is not None and not kinds and asks_what_was_said(query):
            scored = merge(scored, self.said.scored(query, vector, user_id, as_of))
        return scored

    def nearest(self, user_id: str, vectors: Sequence[Sequence[float]], limit: int) -> list[list[IndexHit]]:
        with telemetry.span("nearest tiermem.facts", self._nearest_attrs):
            return self.index.nearest(user_id, vectors, limit)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with telemetry.span(self._embed_span, self._embed_attrs):
            return self.embedder.embed(list(texts))

    def indexed(self, facts: Sequence[Fact], vectors: Sequence[Sequence[float]] | None = None) -> list[IndexedFact]:
        """Index points for facts: dense vectors (embedded here unless given), contextual
        vectors and BM25 weights."""
        if vectors is None:
            vectors = self.embed([f.index_text for f in facts])
        contexts = self.contexts(facts, vectors)
        return [IndexedFact(f, v, sparse_document(f.index_text), c)
                for f, v, c in zip(facts, vectors, contexts, strict=True)]

    def contexts(self, facts: Sequence[Fact], vectors: Sequence[Sequence[float]]) -> list[list[float] | None]:
        """Each fact's contextual vector: normalize(its vector + its passages' vectors)."""
        if self.passages is None or not facts:
            return [None] * len(facts)
        passages = self.passages(facts)
        turn_vectors = self._embed_turns({text for texts in passages for text in texts})
        out: list[list[float] | None] = []
        for vector, texts in zip(vectors, passages, strict=True):
            if not texts:
                out.append(None)
                continue
            total = np.asarray(vector, dtype=np.float32) + sum(turn_vectors[t] for t in texts)
            norm = float(np.linalg.norm(total))
            out.append((total / norm).tolist() if norm > 0 else None)
        return out

    def forget_turn_vectors(self) -> None:
        """Drop what is cached of turns, their vectors and passages (a turn was redacted or
        had a statement forgotten, a session or a user was erased)."""
        with self._turn_lock:
            self._turn_vectors.clear()
        if self.said is not None:
            self.said.forget()

    def _embed_turns(self, texts: set[str]) -> dict[str, np.ndarray]:
        with self._turn_lock:
            found = {t: self._turn_vectors[t] for t in texts if t in self._turn_vectors}
            for text in found:
                self._turn_vectors.move_to_end(text)
        missing = sorted(texts - found.keys())
        for text, vector in zip(missing, self.embed(missing), strict=True):
            found[text] = np.asarray(vector, dtype=np.float32)
        with self._turn_lock:
            self._turn_vectors.update((t, found[t]) for t in missing)
            while len(self._turn_vectors) > TURN_VECTORS:
                self._turn_vectors.popitem(last=False)
        return found
