"""RuleExtractor: fact statements from turns without a model.

Each informative sentence of a turn becomes one self-contained statement: first person is
resolved to the speaker's name, relative dates to absolute ones, and a few well-known
attribute patterns ('I live in X', 'my favorite Y is Z') get a subject/attribute/value so
that a later contradiction invalidates the old fact instead of piling up beside it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, time

from .._claims import parse
from .._forgetting import RETRACTS, RETRACTS_PREVIOUS, forget_target
from .._models import Candidate, Fact, Turn
from .._sentences import is_question, is_small_talk, split_sentences
from .._text import STOPWORDS, clean_spaces, content_tokens, normalize
from ._dates import resolve_dates

logger = logging.getLogger("tiermem")
_ADVERBS = (
    r"(?:(?:really|also|just|still|always|never|usually|often|actually|totally|definitely|truly|absolutely|"
    r"sometimes|now|recently|finally|even|especially|mostly|already|kinda|kind of|sort of|so|all|no longer|"
    r"rarely|seldom|hardly|barely|occasionally|regularly|normally|generally|currently|mainly|only|each|both) )*"
)
_PRESENT_VERBS = frozenset(
    """love like enjoy want need think feel know hope work live play believe prefer hate miss plan try
    remember wish get make take see use find keep read write paint run teach study volunteer mean care
    guess agree appreciate start spend call go do have collect cook bake swim draw sing dance visit own
    drive ride practice practise dream wonder struggle admire adore cherish value support eat drink sleep
    wear buy sell walk talk speak listen watch travel climb hike bike cycle knit sew garden fish surf ski
    skate train learn teach stay rent share meet help lead manage build fix grow raise take attend
    avoid follow go""".split()
)
# Forms that are already right after a third-person subject (past tense, modals).
_KEEP_FORMS = frozenset(
    """can could will would shall should may might must went was were had did got made took saw met bought
    gave came left began became found felt ran wrote read won lost told said thought brought built caught
    taught sold spent knew drove rode swam sang ate drank slept kept sent heard held stood understood wore
    chose fell flew forgot grew hid hung lay led lit meant paid put quit set shut sat spoke stole struck
    threw woke broke bit blew dug fed fought fled forgave froze hit hurt let lent rang rose sank shook shot
    sought spun stuck tore wound cut cost used ought""".split()
)
# Facts a person would never want missed: they get top importance, count as semantic (so
# they join the cached profile) and force a profile re-bake.
_CRITICAL = re.compile(
    r"\b(?:allerg\w*|anaphyla\w*|epipen|intoleran\w*|celiac|coeliac|gluten[- ]free|lactose|nut[- ]free|"
    r"diabet\w*|insulin|asthma\w*|epilep\w*|seizures?|heart condition|blood pressure|hypertension|pregnan\w*|"
    r"medications?|diagnosed|disorder|chronic|migraines?|vegan|vegetarian|pescatarian|halal|kosher|"
    r"(?:can't|cannot|can not|don't|do not|doesn't|does not|never|shouldn't|must not) eat|dietary|"
    r"wheelchair|crutches|mobility|blind|deaf|hard of hearing|hearing aids?|visually impaired|low vision|"
    r"screen reader|dyslexi\w*|adhd|autis\w*|colou?r ?blind)\b",
    re.I,
)
CRITICAL_IMPORTANCE = 0.95
_PAST_MARKERS = re.compile(
    r"\b(?:went|was|were|had|did|got|made|took|saw|met|bought|gave|came|left|began|became|found|felt|"
    r"ran|wrote|read|won|lost|told|said|thought|brought|built|caught|taught|sold|spent|joined|\w{3,}ed)\b"
)
# 'is based in', 'are married', 'is interested in': a state described with a participle, not an event.
_STATIVE = re.compile(r"\b(?:is|are|am|'s|'re|'m|be|been|being|get|gets|feels?|seems?) (?:\w+ly )?\w{3,}ed\b|"
                      r"\b(?:named|called|nicknamed|based|located|related|interested|married|retired)\b", re.I)
# 'stopped', 'no longer', 'used to': a statement of what is no longer true is about now.
_ENDED_STATE = re.compile(r"\b(?:stopped|quit|gave up|no longer|any ?more|used to|switched|changed)\b", re.I)


def _is_event(text: str) -> bool:
    return not _ENDED_STATE.search(text) and bool(_PAST_MARKERS.search(_STATIVE.sub(" ", text)))


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


# 'Remember that my passport...', 'FYI: I'm...': a request to remember is the statement it carries.
_REQUEST = re.compile(
    r"^(?:(?:please|pls|oh|and|also|btw|by the way),?\s+)*(?:remember|note|keep in mind|bear in mind|don't forget|"
    r"add (?:to (?:your )?(?:memory|notes) )?that|save (?:to (?:your )?(?:memory|notes) )?that|"
    r"do not forget|never forget|make a note|take note|fyi|for the record|just so you know|for your information|"
    r"for future reference)(?: that| this)?[,:]?\s+(?=\S)", re.I)


# Advice and wishes to the other person ('Keep going and never give up!', 'Enjoy your day!'):
# nothing about the speaker to remember.
_IMPERATIVE = re.compile(
    r"^(?:don't|do not|never (?:give|stop|forget|quit)|please|let's|let us|keep (?:going|it up|up|at it|pushing|trying)|"
    r"stay (?:safe|strong|positive|tuned)|try (?:it|to|not)|check (?:it|this|that|them|'em) out|enjoy|take care|"
    r"make sure|hang in|believe in yourself|go for it|be (?:careful|safe|proud|kind|strong)|have (?:fun|a (?:great|good|nice))|"
    r"good luck|tell me|let me know|show me|send me|give it a|imagine|trust me|spill the beans|create those)\b", re.I)


# A task for the assistant ('Write a cover letter for ...', 'Fix this function', 'Remove the
# salary column from the query'): a verb of making, changing or telling, in the imperative,
# with what it works on after it. What the user wants done is in the session tier; it says
# nothing about the user to remember.
_TASK = re.compile(
    r"^(?:(?:ok(?:ay)?|so|now|also|and|then|next|hey|hi),?\s+)*(?:(?:please|pls|kindly)\s+)?(?:just\s+)?"
    r"(?:write|rewrite|explain|give me|show me|tell me|help me|add|fix|create|summari[sz]e|translate|list|compare|"
    r"describe|calculate|compute|outline|review|edit|refactor|debug|implement|draft|generate|convert|delete|remove|"
    r"erase|format|rename|suggest|recommend|proofread|simplify|shorten|expand|optimi[sz]e|insert|replace|update|"
    r"change|sort|clean up)\s+(?=[\w\"'`(])(?!of\b|out\b|up\b(?!\s))", re.I)


# "I need ideas for my meal prep, can you suggest some?": a question that opens with a
# statement about the speaker states that much. The question after the comma is dropped.
# Two plain searches, not one pattern with a lazy lead: that one backtracks quadratically
# on a long run-on question (a message may hold 400,000 characters).
_SPEAKER_START = re.compile(r"(?:I|I'm|I've|I'd|I'll|My)\b")
_QUESTION_AFTER = re.compile(r"(?:,|;|\s-+|\s—)\s+(?:(?:so|and|but)\s+)?"
                             r"(?:can|could|would|will|do|does|did|is|are|any|what|which|how|where|should|have|has|may|got)\b")


def _statement_before_question(sentence: str) -> str | None:
    """The statement a question opens with ("I need ideas for my meal prep"), if it opens with
    one about the speaker; `sentence` is known to be a question."""
    text = sentence.strip()
    speaker = _SPEAKER_START.match(text)
    if speaker is None:
        return None
    tail = _QUESTION_AFTER.search(text, speaker.end() + 8)  # a statement of a few words at least
    if tail is None or "?" in text[:tail.start()]:
        return None
    return text[:tail.start()].strip() + "."


def _without_request(sentence: str) -> str:
    rest = _REQUEST.sub("", sentence, count=1)
    return rest[:1].upper() + rest[1:] if rest != sentence else sentence


_PAST_START = re.compile(r"^(?:(?:just|finally|also|recently|already|still|then) )?"
                         r"(?:[a-z]{3,}ed|went|got|made|took|saw|met|bought|had|did|ran|won|lost|found|spent)\b")
_PROGRESSIVE_START = re.compile(r"^(?:off|back|home|heading|going|loving|enjoying|working|training|planning|"
                                r"thinking|getting|starting|trying|learning|reading|watching)\b")


def _with_subject(sentence: str, name: str) -> str:
    """A subjectless sentence about the speaker gets them as its subject: 'Off to Paris
    next week!' -> 'Ana is off to Paris next week!', 'Went hiking.' -> 'Ana went hiking.'"""
    lowered = sentence[:1].lower() + sentence[1:]
    if _PROGRESSIVE_START.match(lowered):
        return f"{name} is {lowered}"
    if _PAST_START.match(lowered):
        return f"{name} {lowered}"
    return sentence


def _self_introduction(text: str, name: str) -> bool:
    """'Hi! I'm Ana.' said by Ana: 'Ana is Ana.' tells nothing."""
    plain, own = normalize(text), normalize(name)
    return plain in (f"{own} is {own}", f"{own}'s name is {own}", f"{own} is called {own}", f"{own} here")


def _fragment(sentence: str, name: str) -> bool:
    """A few words with no verb ('Mostly pastries.', 'Luna and Oliver!'): an answer that
    means nothing without its question."""
    return len(sentence.split()) <= 3 and not parse(sentence, name).verb \
        and not re.search(r"\b(?:I|I'm|my|My)\b", sentence)


def _last_question(turn: Turn) -> str | None:
    """The question a turn ends with, if it ends with one."""
    sentences = split_sentences(turn.content)
    return sentences[-1] if sentences and is_question(sentences[-1]) else None


def _third_person(verb: str) -> str:
    if verb == "have":
        return "has"
    if verb in ("do", "go") or re.search(r"(?:s|sh|ch|x|z)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def _agree(word: str) -> str:
    """The verb after a third-person subject: 'eat' -> 'eats'; past tense and modals stay."""
    lowered = word.lower()
    if lowered in _PRESENT_VERBS:
        return _third_person(lowered)
    past = lowered.endswith("ed") and not lowered.endswith("eed")  # 'planted', but 'need', 'succeed'
    already = lowered.endswith("s") and not lowered.endswith("ss")  # 'Ana loves' (a repeated subject)
    if lowered in _KEEP_FORMS or past or already:
        return word
    return _third_person(lowered)


_COORDINATED = re.compile(
    rf"\b(and|but|or) ({_ADVERBS})({'|'.join(sorted(_PRESENT_VERBS))})\b"
    r"(?= (?:(?:the|a|an|it|them|this|that|these|those|to|in|on|at|with|for|about|every|some|more|lots)\b|\x00))"
)
_POSSESSIVE = "\x00poss\x00"
_OBJECT = "\x00obj\x00"
_REFLEXIVE = "\x00self\x00"


def to_third_person(sentence: str, name: str) -> str:
    """Rewrite first person as the speaker: 'I really love my dog' -> 'Ana really loves their dog'.

    The first mention is the name; later possessives are 'their' (the name is already
    there), so the sentence stays self-contained and grammatical.
    """
    s = sentence
    subs: list[tuple[str, str]] = [
        (r"\bI'm not\b", f"{name} is not"),
        (r"\bI am not\b", f"{name} is not"),
        (r"\b(?:I'm|I am)\b", f"{name} is"),
        (r"\b(?:I've|I have) (been|got|gotten|had|done|seen|made|taken|started|finished|never|always|just|already|recently|also)\b",
         f"{name} has \\1"),
        (r"\bI've\b", f"{name} has"),
        (r"\bI haven't\b", f"{name} hasn't"),
        (r"\bI'd (been|gone|done|seen|had|never|already)\b", f"{name} had \\1"),
        (r"\bI'd\b", f"{name} would"),
        (r"\bI'll\b", f"{name} will"),
        (r"\bI don't\b", f"{name} doesn't"),
        (r"\bI do not\b", f"{name} does not"),
        (r"\bI was\b", f"{name} was"),
        (r"\bmyself\b", _REFLEXIVE),
        (r"\b[Mm]y\b", _POSSESSIVE),
        (r"\b[Mm]ine\b", _POSSESSIVE),
    ]
    for pattern, repl in subs:
        s = re.sub(pattern, repl, s)

    def verb(m: re.Match[str]) -> str:
        adverbs, word = m.group(1), m.group(2)
        return f"{name} {adverbs}{_agree(word)}"

    # 'I really can't stand it': a modal keeps its form after the name.
    s = re.sub(rf"\bI ({_ADVERBS})((?:can|won|wouldn|couldn|shouldn|didn|mustn|needn)'t|cannot)\b",
               lambda m: f"{name} {m.group(1)}{m.group(2)}", s)
    s = re.sub(rf"\bI ({_ADVERBS})([A-Za-z]+)\b(?!')", verb, s)
    s = re.sub(r"\bI\b", name, s)
    s = re.sub(r"(?:(?<=\s)|^)me\b(?![-'])", _OBJECT, s)  # not 'me-time'
    # 'I sold the car and no longer drive it': the second verb agrees with the same subject.
    # Only a known verb, followed by what starts an object or complement ('and love theme'
    # is a noun phrase, 'and love the theme' a verb phrase).
    if name in s:
        s = _COORDINATED.sub(lambda m: f"{m.group(1)} {m.group(2)}{_third_person(m.group(3))}", s)
    return _resolve_pronouns(s, name)


def _resolve_pronouns(s: str, name: str) -> str:
    """Placeholders to words: the name where it is the first mention, a pronoun after it."""
    out: list[str] = []
    mentioned = False
    for part in re.split(f"({re.escape(_POSSESSIVE)}|{re.escape(_OBJECT)}|{re.escape(_REFLEXIVE)})", s):
        if part == _POSSESSIVE:
            out.append("their" if mentioned else f"{name}'s")
        elif part == _OBJECT:
            out.append("them" if mentioned else name)
        elif part == _REFLEXIVE:
            out.append("themselves" if mentioned else name)
        else:
            out.append(part)
            mentioned = mentioned or name in part
            continue
        mentioned = True
    text = "".join(out)
    if name.startswith("The "):  # 'the user' inside a sentence
        text = text[:1] + text[1:].replace(name, name.lower())
    return text


_LEADING_DATE = re.compile(r"^((?:on|in|during|since|around)\b[^,.!?]*?\b\d{4}),?\s+(?=\S)", re.I)


def _date_last(text: str) -> str:
    """'On 9 May 2024 Ana ran ...' -> 'Ana ran ... on 9 May 2024.': the subject first."""
    m = _LEADING_DATE.match(text)
    if not m:
        return text
    rest = text[m.end():].rstrip()
    end = re.search(r"[.!?]*$", rest).group(0)  # type: ignore[union-attr]
    rest = rest[:len(rest) - len(end)]
    return f"{rest[:1].upper()}{rest[1:]} {m.group(1)[:1].lower()}{m.group(1)[1:]}{end}"


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


def _importance(text: str, name: str, attribute: str | None, dated: bool) -> float:
    if _CRITICAL.search(text):
        return CRITICAL_IMPORTANCE
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
    return round(min(0.9, score), 2)  # above 0.9 is for the critical facts alone


class RuleExtractor:
    """Extract facts with rules. Deterministic, offline, ~0.35 ms per one-sentence turn (cProfile
    of `bench.scale`'s load).

    Args:
        roles: which roles' turns yield facts. The assistant is the model whatever its name
            (agent frameworks name their agents: `{"role": "assistant", "name": "Planner"}`):
            its words are advice, not facts about a person. People talking to each other are
            `user` turns with names, and each one's statements are about them.
        assistant_said: also keep what an unnamed assistant said, sentence by sentence,
            as low-importance episodic facts ('The assistant said: "..."'), so "what was
            the restaurant you recommended?" finds its answer. They are never compared
            with the user's facts (see `reconcile`): what the assistant said does not
            update what the user said. Off by default: search() and context() already
            recall the assistant's stored answers when a question asks what it said
            (`tiermem._said`), at no cost to ingest; kept as facts, long answers crowd the
            user's own facts out of every other question and ingest embeds 2.5x more
            (BENCHMARKS.md §1b).
    """

    name = "rules"
    uses_known = False  # rules phrase nothing against stored facts: skip fetching them

    def __init__(self, roles: Sequence[str] = ("user",), *, assistant_said: bool = False):
        self.roles = tuple(roles)
        self.assistant_said = assistant_said

    def extract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        out: list[Candidate] = []
        previous: Turn | None = None
        for turn in turns:
            if turn.kind != "text":
                continue  # tool calls and results are what tools said, not what the user said
            asked = _last_question(previous) if previous is not None and previous.speaker != turn.speaker else None
            said_before = set(content_tokens(previous.content)) if previous is not None else set()
            previous = turn
            if turn.role not in self.roles:
                if turn.role == "assistant" and self.assistant_said:
                    out += _assistant_said(turn, said_before)
                continue
            name = turn.name or ("The user" if turn.role == "user" else "The assistant")
            for i, sentence in enumerate(split_sentences(turn.content)):
                candidate = self._sentence(sentence, turn, name, asked if i == 0 else None)
                if candidate is not None and candidate.metadata.get(RETRACTS) == RETRACTS_PREVIOUS:
                    # 'scratch that': said just before in this batch, it is never stored; said in an
                    # earlier message, the write path finds that message and reconcile retracts it
                    if out and out[-1].subject == name and out[-1].operation == "state":
                        out.pop()
                    else:
                        out.append(candidate)
                    continue
                if candidate is not None:
                    out.append(candidate)
        return out

    async def aextract(self, turns: Sequence[Turn], *, known: Sequence[Fact] = ()) -> list[Candidate]:
        return self.extract(turns, known=known)

    def _verbatim(self, sentence: str, turn: Turn, name: str) -> Candidate:
        """A sentence the English rules cannot rewrite: kept word for word, with its speaker."""
        logger.info("tiermem: a non-English sentence is kept verbatim (rules rewrite English only)")
        text = f'{name} said: "{sentence.strip()}"'
        return Candidate(kind="semantic", text=text, subject=name, importance=_importance(sentence, name, None, False),
                         sources=[turn.ref], valid_from=turn.created_at, metadata={"verbatim": True})

    def _sentence(self, sentence: str, turn: Turn, name: str, asked: str | None = None) -> Candidate | None:
        """One sentence as a candidate, or None. `asked`: the question the turn answers
        (the other speaker's last sentence), which a bare fragment needs to mean anything."""
        if not looks_english(sentence):
            return self._verbatim(sentence, turn, name)
        target = forget_target(sentence)
        if target is not None:  # a request to forget is no fact; reconcile retracts what it names
            # 'scratch that' names what the speaker said just before (RETRACTS_PREVIOUS).
            return Candidate(kind="semantic", text=_as_statement(to_third_person(target, name)) if target else sentence,
                             subject=name, operation="forget", importance=0.0, sources=[turn.ref],
                             valid_from=turn.created_at, metadata={} if target else {RETRACTS: RETRACTS_PREVIOUS})
        sentence = _without_request(sentence)
        if is_question(sentence):
            sentence = _statement_before_question(sentence) or sentence
        if _IMPERATIVE.match(sentence) or _TASK.match(sentence):
            return None
        attribute = _attribute(sentence)
        if attribute is None and is_small_talk(sentence):
            return None
        if _fragment(sentence, name):
            if asked is None:
                return None
            return Candidate(kind="semantic", text=f'Asked "{asked}", {name} answered: "{sentence.strip()}"', subject=name,
                             importance=0.4, sources=[turn.ref], valid_from=turn.created_at)
        dated, event_day = resolve_dates(_with_subject(sentence, name), turn.local_time)
        text = _date_last(clean_spaces(to_third_person(dated, name)))
        if _self_introduction(text, name):
            return None
        if name.lower() not in text.lower():
            text = f"{name} says {_mid_sentence(text)}"
        text = _as_statement(text)
        critical = bool(_CRITICAL.search(text))
        episodic = attribute is None and not critical and (event_day is not None or _is_event(text))
        event_at = datetime.combine(event_day, time(), tzinfo=UTC) if event_day else None
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


ASSISTANT_SAID = "assistant"  # Candidate.metadata["said_by"] of what an unnamed assistant said
_SAID_MIN_WORDS = 4  # content words a sentence needs to be worth keeping ("Noted!", "Sure, happy to help" are not)
_SAID_MAX_CHARS = 400  # a run-on list is kept in pieces of this size


def _assistant_said(turn: Turn, said_before: set[str]) -> list[Candidate]:
    """What an unnamed assistant said that may be asked about later: its statements (no
    questions, no pleasantries, no echo of the turn before: "Vegetarian, Japanese food,
    mountain hikes." adds no word to what the user said), word for word."""
    out = []
    for sentence in split_sentences(turn.content):
        for start in range(0, len(sentence), _SAID_MAX_CHARS):
            piece = sentence[start:start + _SAID_MAX_CHARS].strip()
            words = set(content_tokens(piece))
            if is_question(piece) or is_small_talk(piece) or len(words) < _SAID_MIN_WORDS or _echo(piece, words, said_before):
                continue
            out.append(Candidate(kind="episodic", text=f'The assistant said: "{piece}"', subject="the assistant",
                                 importance=0.2, sources=[turn.ref], valid_from=turn.created_at,
                                 metadata={"said_by": ASSISTANT_SAID}))
    return out


def _echo(sentence: str, words: set[str], said_before: set[str]) -> bool:
    """The assistant restating the turn before ("Noted: vegetarian, Japanese food, mountain
    hikes."): at most a third of its words are new, and none of them is a name or a number
    (what it recommends, "Roscioli", "GR-90", is)."""
    new = words - said_before
    if len(new) * 3 > len(words):
        return False
    marked = {w for token in re.findall(r"\w[\w'-]*", sentence)[1:] if token[:1].isupper() or any(c.isdigit() for c in token)
              for w in content_tokens(token)}
    return not new & marked


def _mid_sentence(text: str) -> str:
    """A sentence's first word as it reads after 'Ana says': lower case unless it is a name
    ('Rosa teaches...') or an acronym."""
    first = text.split(" ", 1)[0]
    if first[1:2].isupper() or (first[:1].isupper() and first.lower().strip(",.") not in _COMMON_STARTS):
        return text
    return text[:1].lower() + text[1:]


# Words that start sentences and are no names (what 'Ana says' lower-cases).
_COMMON_STARTS = STOPWORDS | frozenset(
    """mostly maybe perhaps sometimes usually often today tomorrow yesterday tonight everyone everybody someone
    somebody nobody people there here still nothing something anything everything last next every each
    great good bad nice cool lovely""".split()
)


def _as_statement(text: str) -> str:
    """Capitalized, ending in one full stop: a fact is stated, not exclaimed."""
    text = text[:1].upper() + text[1:]
    text = re.sub(r"[!.\s]*!+[!.\s]*$", ".", text.rstrip())
    text = re.sub(r"\.{2,}$", ".", text)
    if not text.endswith((".", "?")):
        text += "."
    return text


_SUBJECT_VERBS = frozenset(
    "is was has had lives lived works worked likes liked loves loved went goes wants needs prefers hates enjoys "
    "plays owns uses eats drinks drives can will would does did visited moved got".split()
)


def statement(
    text: str, *, user_id: str, at: datetime, kind: str | None = None, metadata: dict | None = None
) -> Candidate:
    """A caller's own statement as a candidate (`Memory.remember`): the text as given, with
    the subject, attribute, kind and importance the rules can tell from it (a statement in
    the first person is the user's: reconciliation treats 'my' as the user)."""
    words = text.split()
    first = words[0].removesuffix("'s") if words else ""
    possessive = bool(words) and words[0].endswith("'s")
    subject = user_id
    if first[:1].isupper() and (possessive or len(words) > 1 and words[1].lower() in _SUBJECT_VERBS) and first != "I":
        subject = first
    if text.startswith(("The user", "the user")):
        subject = "The user"
    first_person = re.sub(rf"^{re.escape(subject)}'s\b", "My", text) if possessive else text
    first_person = re.sub(rf"^{re.escape(subject)} (is|lives|works|moved)\b",
                          lambda m: {"is": "I am", "lives": "I live", "works": "I work", "moved": "I moved"}[m.group(1)],
                          first_person)
    attribute = _attribute(first_person)
    critical = bool(_CRITICAL.search(text))
    if kind is None:
        kind = "semantic" if attribute or critical or not _is_event(text) else "episodic"
    return Candidate(
        kind=kind,  # type: ignore[arg-type]
        text=text,
        subject=subject,
        attribute=attribute[0] if attribute else None,
        value=attribute[1] if attribute else None,
        importance=_importance(text, subject, attribute and attribute[0], False),
        sources=[],
        valid_from=at,
        metadata=metadata or {},
    )


def looks_english(sentence: str) -> bool:
    """Whether the English rules can rewrite a sentence. Not when most of its letters are
    of another script, or when it has more function words of another European language
    than English ones ('Vivo en Madrid y me encanta...': rewriting 'me' would give
    half-translated nonsense)."""
    letters = [c for c in sentence if c.isalpha()]
    if not letters:
        return True
    if sum(c.isascii() or "\u00c0" <= c <= "\u024f" for c in letters) < 0.7 * len(letters):
        return False  # mostly another script: CJK, Arabic, Cyrillic, ...
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", sentence.lower())
    foreign = sum(w in _FOREIGN_FUNCTION_WORDS for w in words)
    english = sum(w in _ENGLISH_FUNCTION_WORDS for w in words)
    return foreign < 2 or english >= foreign


# Frequent function words of the European languages people mix into chats, none of them
# an English word as well.
_FOREIGN_FUNCTION_WORDS = frozenset(
    """y el la los las es en que de del con por para una un muy pero yo estoy tengo vivo soy está mis sus
    ich und der die das ist nicht mit bei wohne arbeite mein meine ein eine auch aber sehr bin habe wir
    je et le les est suis avec pour dans mon ma mes nous vous une très mais j'ai c'est qui
    il non sono ho della che per gli sei molto anche
    eu não você com muito uma os às
    het een niet ben heb ook maar zijn""".split()
)
_ENGLISH_FUNCTION_WORDS = frozenset(
    """the a an i my me is am are was were to and of in it you we for on with at have has that this be do not
    but so just like love really our your they them he she his her our""".split()
)


__all__ = ["RuleExtractor", "STOPWORDS", "is_small_talk", "split_sentences", "to_third_person"]
