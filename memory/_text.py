"""Pure text helpers shared by extraction, dedup and sparse retrieval."""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import zlib
from collections import Counter

import Stemmer  # PyStemmer: Snowball's C stemmers

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further had hadn't has hasn't have haven't having he he'd
    he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into
    is isn't it it's its itself let's me more most mustn't my myself no nor not of off on once only or
    other ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so
    some such than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's whom why
    why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
    also just really so yeah yes oh ok okay will would get got gonna wanna lot lots much many thing
    things something anything everything one ones s t
    """.split()
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=16384)  # reconciliation normalizes the same stored texts again and again
def normalize(text: str) -> str:
    """Lowercase, collapse whitespace and strip punctuation: the key for exact duplicates."""
    return " ".join(_WORD.findall(text.lower()))


def norm_hash(text: str) -> str:
    return hashlib.sha1(normalize(text).encode()).hexdigest()


def clean_spaces(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


_STEMMERS = threading.local()  # a PyStemmer object is not thread-safe: one per thread


def stem(word: str) -> str:
    """Snowball's English stemmer (the one Lucene, Elasticsearch and fastembed's BM25 use):
    'live', 'lives', 'lived' and 'living' all become 'live'. Expects a lower-case word."""
    return _stemmer().stemWord(word.removesuffix("'s"))


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:
        stemmer = _STEMMERS.english = Stemmer.Stemmer("english")
    return stemmer


def content_tokens(text: str) -> list[str]:
    """Stemmed, stopword-free tokens: what BM25 scores and what 'small talk' lacks."""
    words = [w.removesuffix("'s") for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]
    return _stemmer().stemWords(words)


def token_id(token: str) -> int:
    # A stable 31-bit id (Python's hash() is salted per process).
    return zlib.crc32(token.encode()) & 0x7FFFFFFF


SparseVec = tuple[list[int], list[float]]

BM25_K = 1.2
BM25_B = 0.75
BM25_AVG_LEN = 12.0  # facts are one sentence: ~12 content tokens


def sparse_document(text: str) -> SparseVec:
    """BM25 term-frequency weights; the index applies IDF (Qdrant's Idf modifier)."""
    tokens = content_tokens(text)
    counts = Counter(token_id(t) for t in tokens)
    length_norm = 1 - BM25_B + BM25_B * len(tokens) / BM25_AVG_LEN
    indices = sorted(counts)
    values = [counts[i] * (BM25_K + 1) / (counts[i] + BM25_K * length_norm) for i in indices]
    return indices, values


def sparse_query(text: str) -> SparseVec:
    indices = sorted({token_id(t) for t in content_tokens(text)})
    return indices, [1.0] * len(indices)

