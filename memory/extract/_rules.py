"""RuleExtractor: fact statements from turns without a model.

Each informative sentence of a turn becomes one self-contained statement: first person is
resolved to the speaker's name, relative dates to absolute ones, and a few well-known
attribute patterns ('I live in X', 'my favorite Y is Z') get a subject/attribute/value so
that a later contradiction invalidates the old fact instead of piling up beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timezone

from .._models import Candidate, Fact, Turn
from .._text import STOPWORDS, clean_spaces, content_tokens
from ._dates import resolve_dates

SMALL_TALK = frozenset(
    """thank thanks hey hi hello bye goodbye wow cool awesome great nice amazing glad lol haha
    congrat congrats congratulation congratulations sound sounds good totally agree sure definitely
    absolutely hear heard see talk soon later care take chat catch luck appreciate mean means
    wonderful fantastic incredible sweet fun yay omg gosh welcome true exactly right hope keep
    cheer cheers glad happy proud inspiring awesome super tell know feel thought think
    yep yup nope hmm aww ooh oops""".split()
)
SMALL_TALK_STEMS = frozenset(content_tokens(" ".join(SMALL_TALK)))

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_ADVERBS = r"(?:(?:really|also|just|still|always|never|usually|often|actually|totally|definitely|truly|absolutely|sometimes|now|recently|finally|even|especially|mostly|already|kinda|kind of|sort of|so|all) )*"
_PRESENT_VERBS = frozenset(
    """love like enjoy want need think feel know hope work live play believe prefer hate miss plan try
    remember wish get make take see use find keep read write paint run teach study volunteer mean care
    guess agree appreciate start spend call go do have collect cook bake swim draw sing dance visit own
    drive ride practice practise dream wonder struggle admire adore cherish value support""".split()
)
_PAST_MARKERS = re.compile(
    r"\b(?:went|was|were|had|did|got|made|took|saw|met|bought|gave|came|left|began|became|found|felt|"
    r"ran|wrote|read|won|lost|told|said|thought|brought|built|caught|taught|sold|spent|joined|\w{3,}ed)\b"
)
_ATTRIBUTES: list[tuple[re.Pattern[str], str, int]] = [
    (re.compile(r"\bi(?:'m| am)? ?(?:now |currently )?(?:live|living) in ([^,.;!?]+)", re.I), "lives in", 1),
    (re.compile(r"\bi(?:'ve| have)? ?(?:just |recently |finally )?(?:moved|relocated) to ([^,.;!?]+)", re.I), "lives in", 1),
    (re.compile(r"\bi (?:now |currently )?work (?:at|for) ([^,.;!?]+)", re.I), "works at", 1),
    (re.compile(r"\bi(?:'m| am) (?:now |currently )?working (?:at|for) ([^,.;!?]+)", re.I), "works at", 1),
    (re.compile(r"\bi (?:now )?work as (?:an? )?([^,.;!?]+)", re.I), "occupation", 1),
    (re.compile(r"\bmy (?:job|profession|occupation) is (?:an? )?([^,.;!?]+)", re.I), "occupation", 1),
    (re.compile(r"\bmy (?:all[- ]time )?favou?rite ([a-z ]{2,30}?) (?:is|are) ([^,.;!?]+)", re.I), "favorite {0}", 2),
    (re.compile(r"\bi(?:'m| am) (\d{1,3}) (?:years old|yrs old)", re.I), "age", 1),
    (re.compile(r"\bmy name is ([^,.;!?]+)", re.I), "name", 1),
    (re.compile(r"\bi(?:'m| am) (?:now )?(married|single|engaged|divorced|widowed|in a relationship)\b", re.I), "relationship status", 1),
    (re.compile(r"\bi(?:'m| am) (?:now )?(?:an? )?(vegetarian|vegan|pescatarian)\b", re.I), "diet", 1),
    (re.compile(r"\bmy (wife|husband|partner|boyfriend|girlfriend|dog|cat|son|daughter)(?:'s name is| is named| is called) ([A-Z][a-z]+)", re.I), "{0}'s name", 2),
]
_VALUE_END = re.compile(
    r"\s+(?:and|but|because|since|so|with|for|after|before|when|while|where|which|who|last|next|this|"
    r"yesterday|today|tomorrow|now|recently|in \d|on |at the|a few|two|three|\d+ (?:days|weeks|months|years))\b.*",
    re.I,
)


# A new first-person clause starts a new statement: 'I live in Lisbon and I work as a
# designer' is two facts, so invalidating where Ana lives cannot take her job with it.
_CLAUSE = re.compile(r"(?:,\s*|;\s*|\s+)(?:and|but|so|plus)\s+(?=(?:I|I'm|I've|I'll|I'd|my|My)\b)|;\s+")
_LEAD_IN = re.compile(r"^(?:[A-Z][a-z]+(?: [a-z]+){0,2}): (?=\S)")  # 'Big news: I moved...'
# Discourse markers carry nothing: 'Well, I'm off to...' is the fact 'I'm off to...'.
_FILLER = re.compile(
    r"^(?:(?:well|yeah|yes|yep|yup|oh|wow|so|hey|hi|haha|lol|aww|ah|ok|okay|um|hmm|honestly|anyway|by the way)"
    r"(?-i: [A-Z][a-z]+)?[,!.]+\s+)+(?=\S)",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        for clause in _CLAUSE.split(sentence or ""):
            clause = _FILLER.sub("", _LEAD_IN.sub("", clause.strip()))
            if clause:
                out.append(clause[0].upper() + clause[1:])
    return out


def _third_person(verb: str) -> str:
    if verb in ("have",):
        return "has"
    if verb in ("do", "go"):
        return verb + "es"
    if re.search(r"(?:s|sh|ch|x|z)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def to_third_person(sentence: str, name: str) -> str:
    """Rewrite first person as the speaker's name: 'I love my dog' -> 'Ana loves Ana's dog'."""
    s = sentence
    subs: list[tuple[str, str]] = [
        (r"\bI'm not\b", f"{name} is not"),
        (r"\bI am not\b", f"{name} is not"),
        (r"\b(?:I'm|I am)\b", f"{name} is"),
        (r"\b(?:I've|I have) (been|got|gotten|had|done|seen|made|taken|started|finished|never|always|just|already|recently|also)\b", f"{name} has \\1"),
        (r"\bI've\b", f"{name} has"),
        (r"\bI'd (been|gone|done|seen|had|never|already)\b", f"{name} had \\1"),
        (r"\bI'd\b", f"{name} would"),
        (r"\bI'll\b", f"{name} will"),
        (r"\bI don't\b", f"{name} doesn't"),
        (r"\bI do not\b", f"{name} does not"),
        (r"\bI was\b", f"{name} was"),
        (r"\bmyself\b", name),
        (r"\b[Mm]y\b", f"{name}'s"),
        (r"\b[Mm]ine\b", f"{name}'s"),
    ]
    for pattern, repl in subs:
        s = re.sub(pattern, repl, s)

    def verb(m: re.Match[str]) -> str:
        adverbs, word = m.group(1), m.group(2)
        if word.lower() in _PRESENT_VERBS:
            word = _third_person(word.lower())
        return f"{name} {adverbs}{word}"

    s = re.sub(rf"\bI ({_ADVERBS})([A-Za-z]+)", verb, s)
    s = re.sub(r"\bI\b", name, s)
    s = re.sub(r"(?<=\s)me\b|^me\b", name, s)
    return s


def _attribute(sentence: str) -> tuple[str, str] | None:
    for regex, template, value_group in _ATTRIBUTES:
        m = regex.search(sentence)
        if not m:
            continue
        value = _VALUE_END.sub("", m.group(value_group)).strip(" '\"")
        if not value or len(value) > 60:
            continue
        attribute = template.format(*(g.lower().strip() for g in m.groups()))
        return attribute, value
    return None


def is_small_talk(sentence: str) -> bool:
    if sentence.rstrip().endswith("?"):
        return True  # a question states nothing
    meaningful = [t for t in content_tokens(sentence) if t not in SMALL_TALK_STEMS]
    return len(meaningful) < 2


def _importance(text: str, name: str, attribute: str | None, dated: bool) -> float:
    score = 0.8 if attribute else 0.4
    lowered = text.lower()
    if re.search(r"\b(?:loves?|likes?|enjoys?|prefers?|hates?|favou?rite|allergic|always|never|dream)\b", lowered):
        score += 0.15
    if dated:
        score += 0.1
    words = text.split()[1:]
    if any(w[:1].isupper() and w.strip(".,!'s") not in (name, "I") for w in words):
        score += 0.1
    if re.search(r"\d", text):
        score += 0.05
    return round(min(1.0, score), 2)


class RuleExtractor:
    """Extract facts with rules. Deterministic, offline, ~0.1 ms per turn.

    Args:
        roles: which roles' turns yield facts. An unnamed assistant's words are advice,
            not facts about the user; named speakers of either role (a chat between two
            people) always count.
    """

    name = "rules"

    def __init__(self, roles: Sequence[str] = ("user",)):
        self.roles = tuple(roles)

    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        out: list[Candidate] = []
        for turn in turns:
            if turn.role not in self.roles and turn.name is None:
                continue
            name = turn.name or ("The user" if turn.role == "user" else "The assistant")
            for sentence in split_sentences(turn.content):
                candidate = self._sentence(sentence, turn, name)
                if candidate is not None:
                    out.append(candidate)
        return out

    def _sentence(self, sentence: str, turn: Turn, name: str) -> Candidate | None:
        attribute = _attribute(sentence)
        if attribute is None and is_small_talk(sentence):
            return None
        dated, event_day = resolve_dates(sentence, turn.created_at)
        text = clean_spaces(to_third_person(dated, name))
        if name not in text:
            text = f"{name} says {text[:1].lower() + text[1:] if not text[:2].isupper() else text}"
        text = text[:1].upper() + text[1:]
        if not text.endswith((".", "!", "?")):
            text += "."
        episodic = attribute is None and (event_day is not None or bool(_PAST_MARKERS.search(text)))
        event_at = datetime.combine(event_day, time(), tzinfo=timezone.utc) if event_day else None
        return Candidate(
            kind="episodic" if episodic else "semantic",
            text=text,
            subject=name,
            attribute=attribute[0] if attribute else None,
            value=attribute[1] if attribute else None,
            importance=_importance(text, name, attribute and attribute[0], event_day is not None),
            sources=[turn.ref],
            valid_from=turn.created_at,
            event_at=event_at,
        )


__all__ = ["RuleExtractor", "STOPWORDS", "is_small_talk", "split_sentences", "to_third_person"]
