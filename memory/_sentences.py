"""Sentences and small talk: the text units that extraction, summaries and page-in share."""

from __future__ import annotations

import re

from ._text import content_tokens

SMALL_TALK = frozenset(
    """thank thanks hey hi hello bye goodbye wow cool awesome great nice amazing glad lol haha
    congrat congrats congratulation congratulations sound sounds good totally agree sure definitely
    absolutely hear heard see talk soon later care take chat catch luck appreciate mean means
    wonderful fantastic incredible sweet fun yay omg gosh welcome true exactly right hope keep
    cheer cheers glad happy proud inspiring awesome super tell know feel thought think
    yep yup nope hmm aww ooh oops fine sorry well here back ready excited curious done busy""".split()
)
SMALL_TALK_STEMS = frozenset(content_tokens(" ".join(SMALL_TALK)))

# A sentence ends at . ! ? before a capital, but not after a title ('Dr. Lopez').
_SENTENCE_END = re.compile(
    r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bMrs\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bProf\.)(?<!\bvs\.)"
    r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+"
)
# A new first-person clause starts a new statement: 'I live in Lisbon and I work as a
# designer' is two facts, so invalidating where Ana lives cannot take her job with it.
_CLAUSE = re.compile(r"(?:,\s*|;\s*|\s+)(?:and|but|so|plus)\s+(?=(?:I|I'm|I've|I'll|I'd|my|My)\b)|;\s+")
# 'I switched dentists, my dentist is now Dr. Ng': a comma between two first-person clauses.
_FIRST_PERSON = re.compile(r"^(?:I|I'm|I've|I'd|I'll|My|my)\b")
_COMMA_CLAUSE = re.compile(r",\s+(?=(?:I|I'm|I've|I'd|I'll|my|My)\s)")
_LEAD_IN = re.compile(r"^(?:[A-Z][a-z]+(?: [a-z]+){0,2}): (?=\S)")  # 'Big news: I moved...'
# Discourse markers carry nothing: 'Well, I'm off to...' is the fact 'I'm off to...'.
_FILLER = re.compile(
    r"^(?:(?:well|yeah|yes|yep|yup|oh|wow|so|hey|hi|haha|lol|aww|ah|ok|okay|um|hmm|honestly|anyway|by the way)"
    r"(?-i: [A-Z][a-z]+)?[,!.]+\s+)+(?=\S)",
    re.IGNORECASE,
)


_SUBORDINATE = re.compile(r"^(?:when|if|because|although|though|after|before|since|while|as|once|until|unless|"
                          r"whenever|in|on|at|by|during|last|this|next|every)\b", re.I)


def _splits_at_comma(part: str) -> bool:
    """'I switched dentists, my dentist is now Dr. Ng', 'Karen left, my boss is now Steve':
    two statements. Not 'When I was young, I lived in Paris' (one, with its condition)."""
    if _FIRST_PERSON.match(part):
        return True
    head = part.split(",", 1)[0]
    return bool(_COMMA_CLAUSE.search(part)) and len(head.split()) <= 4 and not _SUBORDINATE.match(head)


def _joint_subject(before: str, joint: str) -> bool:
    """'Sam and I broke up', 'my partner and I moved': 'and I' joins a short noun phrase at
    the start into one subject; it starts no new statement."""
    words = before.split()
    return joint.strip() == "and" and 0 < len(words) <= 3 and not any(p in before for p in ",;")


def split_sentences(text: str) -> list[str]:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence or ""
        for a, b in _pieces(sentence, 0, len(sentence), _CLAUSE):
            part = sentence[a:b].strip()
            for clause in _COMMA_CLAUSE.split(part) if _splits_at_comma(part) else [part]:
                clause = _FILLER.sub("", _LEAD_IN.sub("", clause.strip()))
                if clause:
                    out.append(clause[0].upper() + clause[1:])
    return out


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Where each statement of `text` sits (start, end offsets): the sentences and clauses
    that `split_sentences` yields, located in the original text."""
    spans: list[tuple[int, int]] = []
    for sentence in _pieces(text, 0, len(text), _SENTENCE_END):
        for part in _pieces(text, *sentence, _CLAUSE):
            inner = text[part[0]:part[1]]
            comma = _COMMA_CLAUSE if _splits_at_comma(inner.lstrip()) else None
            spans += _pieces(text, *part, comma) if comma else [part]
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _pieces(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    out, at = [], start
    for m in separator.finditer(text, start, end):
        if separator is _CLAUSE and _joint_subject(text[at:m.start()], m.group(0)):
            continue
        out.append((at, m.start()))
        at = m.end()
    out.append((at, end))
    return out


# A question, however it ends: a '?' before closing quotes or an aside ("near me? (again)"),
# or a wh-word and an auxiliary with the '?' left off ("what are good places near me").
_QUESTION = re.compile(
    r"\?[\s\"')\]]*(?:\([^()]*\)[\s.!]*)?$"
    r"|^(?:what|which|where|when|who|whom|whose|why|how)(?:\s+(?!(?:i|we|he|she|they|it|my|our|his|her|their)\b)\w+){0,2}"
    r"\s+(?:is|are|was|were|do|does|did|can|could|should|would|will|have|has)\b",
    re.IGNORECASE)


def is_question(sentence: str) -> bool:
    return bool(_QUESTION.search(sentence.strip()))


def is_small_talk(sentence: str) -> bool:
    if is_question(sentence):
        return True  # a question states nothing
    meaningful = [t for t in content_tokens(sentence) if t not in SMALL_TALK_STEMS]
    if len(meaningful) == 1 and re.search(r"\b(?:I|my|My)\b", sentence):
        return False  # 'I own a Tesla', 'My PIN is 4711', 'I have a dog', 'I smoke': one word about the speaker
    return len(meaningful) < 2
