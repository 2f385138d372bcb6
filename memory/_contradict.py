"""Telling a contradiction from a near-duplicate.

Embeddings put "Ana is allergic to peanuts" and "Ana is not allergic to peanuts" at cosine
0.96, and "PIN 1234" next to "PIN 5678": similarity alone merges statements whose whole
point is the part that differs. Two statements are compared on what makes them different
facts: negation, numbers, dates and named entities. Pure functions over text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ._text import content_tokens, stem

_NEGATION = re.compile(
    r"\b(?:no longer|any ?more|not|no|never|none|nobody|nothing|neither|nor|without|cannot)\b|n't\b", re.I
)
_NUMBER = re.compile(r"\w*\d[\w.,:/-]*")  # 1234, 3pm, 555-1234, tulip42
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred thousand "
    "first second third fourth fifth".split()
)
_DATE_WORDS = frozenset(
    """monday tuesday wednesday thursday friday saturday sunday january february march april may june july
    august september october november december yesterday today tomorrow tonight morning afternoon evening
    weekend spring summer autumn fall winter""".split()
)
_REPORTING = frozenset({"say", "says", "said", "tell", "tells", "told"})
_CAPITALIZED = re.compile(r"\b[A-Z][\w'-]*")
_IGNORED_CAPS = frozenset({"I", "The", "A", "An", "On", "In", "At", "My"})


@dataclass(frozen=True)
class Difference:
    """How two statements about the same subject differ.

    replaced: something (a number, date or name) on one side stands where the other side
        has another one: the statements disagree about a value.
    negated: one side is negated and the other is not.
    added: one side only adds detail (a name, a number) the other lacks.
    """

    negated: bool = False
    replaced: tuple[tuple[str, str], ...] = ()  # (kind: "number" | "date" | "name", "old -> new")
    added: tuple[str, ...] = ()
    frame_similarity: float = 1.0  # content-word overlap once the differing values are set aside

    @property
    def replaced_kinds(self) -> frozenset[str]:
        return frozenset(kind for kind, _ in self.replaced)

    def contradicts(self, episodic: bool = False, same_known_day: bool = False) -> bool:
        """Whether the two statements cannot both be true.

        For events, only a negation, or another number or date for an event of the same
        known day: two undated events that differ in a value are two events, and two
        events of one day may name different places or people (both happened).
        """
        if self.frame_similarity < 0.6:
            return False
        if not episodic:
            return self.negated or bool(self.replaced_kinds)
        return self.negated or same_known_day and bool(self.replaced_kinds - {"name"})

    @property
    def same(self) -> bool:
        return not (self.negated or self.replaced or self.added)

    def describe(self) -> str:
        parts = []
        if self.negated:
            parts.append("negation")
        if self.replaced:
            parts.append(", ".join(f"{kind} {change}" for kind, change in self.replaced))
        return " and ".join(parts) or "detail"


def _negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


@lru_cache(maxsize=16384)  # reconcile compares each stored fact with many candidates
def _values(text: str, subject: str) -> dict[str, frozenset[str]]:
    """The parts of a statement that make it a different fact when they change."""
    subject_words = {w.lower() for w in re.findall(r"\w+", subject)}
    words = re.findall(r"[A-Za-z']+", text)
    lowered = [w.lower() for w in words]
    numbers = {n.lower().rstrip(".,:;-/") for n in _NUMBER.findall(text)} | {w for w in lowered if w in _NUMBER_WORDS}
    dates = {w for w in lowered if w in _DATE_WORDS}
    names = set()
    for match in _CAPITALIZED.finditer(text):
        word = match.group(0).removesuffix("'s")
        if match.start() == 0 or word in _IGNORED_CAPS or word.lower() in subject_words | _DATE_WORDS:
            continue  # the first word is capitalized whatever it is
        names.add(word.lower())
    return {"number": frozenset(numbers), "date": frozenset(dates), "name": frozenset(names)}


@lru_cache(maxsize=16384)
def _frame(text: str, subject: str) -> tuple[frozenset[str], frozenset[str], bool]:
    """(content tokens, the stems of its values, negated) of one statement: computed once
    per text, since reconcile compares each stored fact with many candidates."""
    values = set().union(*_values(text, subject).values())
    stems = frozenset(values | {stem(v) for v in values})
    shared = {stem(w.lower()) for w in re.findall(r"\w+", subject)} | _REPORTING
    tokens = {_fold(t) for t in content_tokens(_NEGATION.sub(" ", text))}
    return frozenset(tokens) - {_fold(t) for t in shared}, frozenset(_fold(t) for t in stems), _negated(text)


def _fold(token: str) -> str:
    """One more step than the BM25 stemmer, for comparing frames only: it leaves 'like'
    but makes 'likes' 'lik'."""
    return token[:-1] if len(token) > 3 and token.endswith("e") else token


def compare(a: str, b: str, subject: str = "") -> Difference:
    """How statement `b` differs from statement `a` (both about `subject`)."""
    va, vb = _values(a, subject), _values(b, subject)
    (tokens_a, stems_a, neg_a), (tokens_b, stems_b, neg_b) = _frame(a, subject), _frame(b, subject)
    if va == vb and neg_a == neg_b:
        return Difference()  # nothing that makes them different facts (the common case)
    replaced: list[tuple[str, str]] = []
    added: list[str] = []
    for kind in ("number", "date", "name"):
        only_a, only_b = va[kind] - vb[kind], vb[kind] - va[kind]
        if only_a and only_b:
            replaced.append((kind, f"{', '.join(sorted(only_a))} -> {', '.join(sorted(only_b))}"))
        elif only_a or only_b:
            added.append(f"{kind} {', '.join(sorted(only_a | only_b))}")
    # The frame is what the statement says about its subject, its values set aside (the
    # subject itself and the reporting verb are shared by construction and left out).
    valued = stems_a | stems_b
    frame_a, frame_b = tokens_a - valued, tokens_b - valued
    union = frame_a | frame_b
    frame = len(frame_a & frame_b) / len(union) if union else 1.0
    return Difference(negated=neg_a != neg_b, replaced=tuple(replaced), added=tuple(added), frame_similarity=frame)
