"""What a statement is about, and how two statements relate: pure functions over text.

A fact like "Ana's aunt Rosa teaches piano in Lyon." has a *subject* ("Ana's aunt Rosa": a
person described by the holder's relation and a name), a *predicate* (teaches piano in) and
*values* (Lyon). Reconciliation needs all three: a change needs the same subject and the same
predicate, and a statement about another subject is another fact, always ("Ana's uncle Karl
teaches piano in Bern." replaces nothing). Embedding similarity cannot tell these apart:
the two sentences above sit at cosine ~0.8.

The parse is shallow on purpose (the statements are short, third-person sentences that the
extractors write): the subject is the noun phrase before the first verb, the predicate is
the verb and the content words after it, the values are the names, numbers and codes in it.
When the parse is unsure the answer is "unsure", and unsure means both facts stay valid: a
wrong invalidation loses a fact, a missed one leaves a stale fact that history, recency and
`as_of` still order.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ._text import STOPWORDS, stem

Relation = Literal["same", "refines", "replaces", "different", "unsure"]

_AUX = frozenset(
    """is are was were am be been being has have had does do did will would can could should may might must gonna
    wanna gotta
    isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't can't cannot couldn't
    shouldn't mustn't""".split()
)
_NEGATIONS = frozenset("not never no n't isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't "
                       "won't wouldn't can't cannot couldn't shouldn't mustn't nobody nothing none neither nor".split())
# Adverbs that sit between a subject and its verb ('Ana still lives', 'Ana no longer eats').
_VERB_ADVERBS = frozenset(
    """still also just always never usually often now recently finally really already sometimes currently actually
    rarely mostly no longer even only ever mainly generally normally regularly occasionally seldom hardly barely
    totally definitely absolutely truly kind sort of nowadays again first""".split()
)
# Words that carry no content of the predicate (beyond what STOPWORDS drops).
_FILLER = frozenset(
    """still really also just currently actually always usually totally definitely absolutely truly very quite
    moment present time these days nowadays lately recently right now anymore longer even again instead
    new current already so much lot lots kind sort bit huge massive enormous real true total complete absolute
    genuine""".split()
)
# Common verbs, base forms: what ends a subject noun phrase. Words that are mostly nouns
# ('plan', 'work', 'run' as heads of 'Ana's plans') are still verbs here: the first word
# after a possessive is always taken as a noun, so 'Ana's plans are...' parses right.
_VERBS = frozenset(
    """love like enjoy want need think feel know hope work live play believe prefer hate miss plan try remember wish
    get make take see use find keep read write paint run teach study volunteer mean care guess agree appreciate
    start spend call go do have collect cook bake swim draw sing dance visit own drive ride practice practise dream
    wonder struggle admire adore value support eat drink sleep wear buy sell walk talk speak listen watch travel
    climb hike bike cycle knit sew garden fish surf ski skate train learn stay rent share meet help lead manage
    build fix grow raise attend avoid follow open close begin end finish ship leave arrive join quit stop
    switch change move smoke vote weigh measure cost pay owe earn save lose win need seem look sound taste smell
    become remain prefer commute date marry divorce adopt hire fire retire graduate come give bring send tell
    say ask answer show hold sit stand lie set put let celebrate host organize organise plant pick cancel resign
    unsubscribe split drop reschedule postpone relocate raise increase decrease reduce lower rise fall jump climb
    replace succeed subscribe""".split()
)
_IRREGULAR = {
    "went": "go", "goes": "go", "gone": "go", "was": "be", "were": "be", "is": "be", "are": "be", "am": "be",
    "been": "be", "has": "have", "had": "have", "did": "do", "does": "do", "done": "do", "made": "make",
    "took": "take", "taken": "take", "saw": "see", "seen": "see", "met": "meet", "bought": "buy", "gave": "give",
    "given": "give", "came": "come", "left": "leave", "began": "begin", "begun": "begin", "became": "become",
    "found": "find", "felt": "feel", "ran": "run", "wrote": "write", "written": "write", "read": "read",
    "won": "win", "lost": "lose", "told": "tell", "said": "say", "thought": "think", "brought": "bring",
    "built": "build", "taught": "teach", "sold": "sell", "spent": "spend", "knew": "know", "known": "know",
    "drove": "drive", "driven": "drive", "rode": "ride", "swam": "swim", "sang": "sing", "ate": "eat",
    "eaten": "eat", "drank": "drink", "drunk": "drink", "slept": "sleep", "kept": "keep", "sent": "send",
    "heard": "hear", "held": "hold", "stood": "stand", "wore": "wear", "worn": "wear", "chose": "choose",
    "fell": "fall", "flew": "fly", "grew": "grow", "grown": "grow", "led": "lead", "meant": "mean",
    "paid": "pay", "quit": "quit", "spoke": "speak", "spoken": "speak", "got": "get", "gotten": "get",
    "gave up": "give up", "broke": "break", "forgot": "forget", "sat": "sit", "lay": "lie",
}
_COPULA = frozenset({"be", "become", "remain", "seem", "cost"})  # 'costs 45 a month' says what 'is 45 a month' says
# Wording that says an earlier state is over ('stopped drinking coffee', 'no longer lives').
_ENDED = re.compile(
    r"\b(?:stopped|stops|quit|quits|gave up|gives up|given up|no longer|any ?more|used to|ceased|"
    r"broke up|split up|sold|got rid of|retired|resigned|stepped down|left|cancell?ed|cancels|ended|"
    r"unsubscribed|dropped out|moved out|done with|finished with|through with|passed away|died|divorced|separated)\b", re.I)
# Wording that says a value changed ('now', 'these days', 'switched to', 'new').
_CHANGED = re.compile(
    r"\b(?:now|these days|nowadays|any ?more|no longer|switched|changed|moved|instead|"
    r"from now on|since then|has become|became|actually|correction|after all)\b", re.I)
# Verbs of having and liking: a new object is one more, not another value ('Ana now has a
# puppy' does not take her cat away). Only an ended state or 'from X to Y' replaces there.
_MANY_VALUED_VERBS = frozenset(
    """have own like love enjoy adore know speak play read watch visit meet see collect learn hate""".split()
)
_ONE_ATTRIBUTE = 5  # content words of a predicate that states one attribute ('takes oat milk in their coffee')
# Verbs of ending: 'sold X', 'cancelled X', 'gave up X' say X is no longer had or done.
_DISPOSAL = frozenset({"sell", "leave", "quit", "retire", "break", "get", "give", "stop", "cancel", "end", "resign",
                       "unsubscribe", "split", "finish"})
# The ending words themselves, left out of what an ending is about ('gave up the piano' is about the piano).
_ENDING_STEMS = frozenset(stem(w) for w in """stop quit give gave up cancel cancell end left leav sold sell retir resign
    unsubscrib split broke finish done through longer anymore""".split())
# Verbs of feeling and knowing: an ending ('left the beach') does not end them; only their
# negation does ('no longer loves the beach').
_FEELING_VERBS = frozenset("like love enjoy adore hate prefer know want need think feel miss hope wish believe".split())
# Words of a time adverbial: 'gave up the piano last month', 'quit the choir in the spring'.
_TIME_WORDS = frozenset(stem(w) for w in """spring summer autumn fall winter month months week weeks year years day days
    morning evening night weekend weekends ago last past recent while time christmas holidays""".split())
_ADDITIVE = re.compile(r"\b(?:also|too|as well|another|additionally|besides|second)\b", re.I)
_FROM_TO = re.compile(r"\bfrom (?:an? |the |their |his |her )?([\w+#.'-]+(?: [A-Z][\w'-]*)*) to\b", re.I)
_LEAD_IN = re.compile(r"^(?:(?:remember|note|noted|fyi|just so you know|for the record|don't forget)"
                      r"(?: that)?[,:]?\s+)", re.I)
_REPORTED = ("says", "said", "mentions", "mentioned", "thinks", "believes", "notes", "noted", "adds", "added")
_LEADING_ADVERBIAL = frozenset(
    """these those every each last this next on in at since after before when yesterday today tonight now
    nowadays currently lately recently sometimes usually often still then so and but well also by around
    during most actually correction anyway honestly btw""".split()
)
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_DETERMINERS = frozenset("the a an this that these those some any their his her its our your my every each".split())
_TOKEN = re.compile(r"[A-Za-z0-9][\w'@+./&#-]*[\w+#-]|[A-Za-z0-9][+-]?")
# Attribute nouns that hold one value at a time: a new value replaces the old one.
_SINGLE_VALUED = frozenset(
    """name age birthday address email e-mail phone number pin password code blood type size height weight job
    occupation profession employer manager boss doctor dentist therapist landlord landlady partner wife husband
    spouse boyfriend girlfriend fiance fiancee hometown nationality diet religion salary rent favourite favorite
    car school team captain coach owner status username handle title role rank grade score level""".split()
)
# Nouns of relations people hold several of: 'Ana's friend is Tom' does not make Carla not her friend.
_MULTI_VALUED = frozenset(
    """friend friends cousin colleague coworker co-worker neighbour neighbor classmate child children kid kids son
    daughter brother sister sibling pet dog cat hobby hobbies interest interests skill skills language languages
    client customer student teammate relative uncle aunt nephew niece grandchild grandchildren
    book books song songs movie movies show shows""".split()
)


@dataclass(frozen=True)
class Claim:
    """One statement, parsed: who it is about, what it says, and how it is worded."""

    owner: str  # the holder's key ('@' for the tenant, else a name): whose statement it is
    subject: frozenset[str]  # key words of the subject, the holder as its key: {'ana', 'aunt', 'rosa'}
    named: frozenset[str]  # the names and numbers in the subject: {'rosa'}, {'3'}
    head: str  # the subject's head noun stem ('aunt', 'type', '@')
    verb: str  # the main verb's base form ('teach', 'be', 'drink')
    frame: frozenset[str]  # content stems of the predicate, values and cue words left out
    values: frozenset[str]  # names, numbers, codes and dates of the predicate
    complement: str  # for 'X is Y': Y, normalized; '' otherwise
    negated: bool
    ended: bool  # the state is over ('stopped', 'no longer', 'used to', 'sold')
    changed: bool  # a new value is announced ('now', 'these days', 'switched', 'new')
    additive: bool  # 'also', 'too', 'another': beside what is known, not instead of it
    plural: bool  # the subject's head is plural ('Ana's kids')
    from_value: frozenset[str]  # 'switched from X to Y': the words of X
    parsed: bool  # a subject and a verb were found
    obj: frozenset[str] = frozenset()  # content stems of the predicate up to the first clause or time adverbial
    where: str = ""  # how a copula's complement sits: 'in' (a place), 'on' (a day), '' (a value itself)
    rewritten: bool = False  # told by a verb of changing ('moved X to Y'), read as 'X is now Y'
    counted: frozenset[tuple[str, str]] = frozenset()  # (number, noun stem) of a count: 'two cats' -> ('2', 'cat')
    ceased: bool = False  # 'no longer', 'not ... anymore': the negation says the state is over

    @property
    def single_valued(self) -> bool:
        """Whether the subject's attribute holds one value at a time ('Ana's blood type is ...')."""
        return self.verb in _COPULA and self.owner in self.subject and self.head not in _MULTI_VALUED_STEMS \
            and (self.head in _SINGLE_VALUED_STEMS or bool(self.subject & _ONE_OF_STEMS))


_SINGLE_VALUED_STEMS = frozenset(stem(w) for w in _SINGLE_VALUED)
# Modifiers that make any attribute one-valued: 'Ana's preferred editor', 'Ana's go-to breakfast'.
_ONE_OF_STEMS = frozenset(stem(w) for w in "favourite favorite preferred go-to usual main primary default".split())
_MULTI_VALUED_STEMS = frozenset(stem(w) for w in _MULTI_VALUED)


def _lemma(word: str) -> str:
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w in _VERBS:
        return w
    for suffix, add in (("ies", "y"), ("ied", "y"), ("ying", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"),
                        ("ing", ""), ("ing", "e"), ("d", "")):
        if w.endswith(suffix) and (w[: -len(suffix)] + add) in _VERBS:
            return w[: -len(suffix)] + add
        if suffix in ("ed", "ing") and w.endswith(suffix) and len(w) > len(suffix) + 2 and w[-len(suffix) - 1] == \
                w[-len(suffix) - 2] and w[: -len(suffix) - 1] in _VERBS:
            return w[: -len(suffix) - 1]  # 'stopped' -> 'stop', 'swimming' -> 'swim'
    return stem(w)  # a verb the lexicon lacks: 'jogs', 'jogged' and 'jogging' alike


def _is_verb(word: str) -> bool:
    w = word.lower()
    return w in _AUX or w in _IRREGULAR or _lemma(w) in _VERBS or w in ("gave", "used")


_STARTS_OBJECT = frozenset("a an the in on at to with for from every her his their its our about by into".split())


def _verb_by_position(tokens: list[str], i: int, subject: list[str]) -> bool:
    """A verb the lexicon lacks, told by where it stands: an -s/-ed word after a bare name
    ('Tom jogs', 'Ana smokes.') or before what starts an object ('Ana's sister jogs in ...')."""
    word = tokens[i]
    if not word.isalpha() or not word.islower() or not subject or not word.endswith(("s", "ed")) or word.endswith("ss"):
        return False
    previous = tokens[i - 1]
    if len(subject) == 1 and previous[:1].isupper() and not previous.lower().endswith(("'s", "s'", "ly")):
        return True
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    return bool(following) and (following.lower() in _STARTS_OBJECT or following[:1].isupper() or following[:1].isdigit())


def _value_form(token: str) -> str:
    t = token.lower().rstrip(".")
    return _NUMBER_WORDS.get(t, t)


def _is_value(token: str, first: bool) -> bool:
    """A name, a number or a code: the part of a statement that differs between two facts."""
    bare = token.rstrip(".")
    if any(c.isdigit() for c in bare) or bare.lower() in _NUMBER_WORDS:
        return True
    if re.search(r"[+@#]|-$", bare) or (len(bare) <= 3 and bare.isupper() and len(bare) > 1):
        return True  # 'A+', 'O-', 'ana@x.org', 'C#', 'MIT'
    if bare[:1].islower() and any(c.isupper() for c in bare[1:]):
        return True  # 'iPhone', 'eBay'
    return bare[:1].isupper() and not first and bare.lower() not in STOPWORDS


def _strip_frame(text: str, holder: str) -> str:
    """The statement itself: lead-ins ('Remember that'), a reporting frame ('Ana says that')
    and a leading adverbial ('These days Ana ...') removed."""
    s = _LEAD_IN.sub("", text.strip().replace("\u2019", "'"))
    for verb in _REPORTED:
        prefix = f"{holder} {verb} "
        if s.lower().startswith(prefix.lower()):
            s = s[len(prefix):]
            s = re.sub(r"^that\s+", "", s, flags=re.I)
            break
    words = s.split()
    # 'These days Ana drinks it black', 'On Mondays Ana swims': the subject comes after.
    if words and words[0].lower().strip(",") in _LEADING_ADVERBIAL:
        for i in range(1, min(len(words), 6)):
            if words[i].rstrip(",").removesuffix("'s") == holder.split()[-1] or words[i - 1].endswith(","):
                start = i - 1 if holder.split()[0] != holder.split()[-1] and words[i - 1] == holder.split()[0] else i
                # the adverbial goes last: 'Ana works from home on Fridays' either way
                moved = [w.rstrip(",") for w in words[:start]]
                moved[0] = moved[0] if moved[0][1:].lower() != moved[0][1:] else moved[0].lower()  # was sentence-initial
                return " ".join(words[start:] + moved)
    return s


_FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "i'm", "i've", "i'd", "i'll"})
# 'Ana changed their wifi password to pear456' says 'Ana's wifi password is now pear456'.
_CHANGED_TO = re.compile(r"^(?:\w+ )?(?:changed|updated|switched|set|renamed|reset) ((?:their|his|her|my|the) [\w' -]+?) "
                         r"(from [^,;]+? )?to (.+)$", re.I)
# A change of value told by a verb of moving or changing with "to" (a sentence shape, not a
# list of phrasings): the value is now what follows "to".
#   transitive:   '[they|the bank] moved|raised|put|changed ... the school play [up|back] to Monday'
#   intransitive: 'Ana's rent went|rose|dropped|was raised|got rescheduled [up] to 1,340'
_CHANGE_VERBS = (r"moved|rescheduled|pushed|postponed|brought|put|raised|increased|decreased|cut|reduced|lowered|"
                 r"bumped|hiked|dropped|changed|switched|shifted|updated|relocated|went|gone|rose|risen|fell|fallen|"
                 r"jumped|climbed|doubled|halved")
_POSSESSED = r"(?:the|their|his|her|my|our|its|[A-Z][\w-]*'s) [\w' -]+?"
_CHANGE_TAIL = r"(?: (?:up|down|back|forward|over|out))?(?: from [^,;]+?)? (?:to|until) (?P<value>(?:[^,;]|,(?=\d))+)$"
_CHANGED_VERB_TO = [
    re.compile(rf"^(?:[\w' ]{{1,40}}? )?(?P<verb>{_CHANGE_VERBS}) (?P<attr>{_POSSESSED}){_CHANGE_TAIL}", re.I),
    re.compile(rf"^(?P<attr>{_POSSESSED}) (?:(?:has|have|had) )?(?:(?:was|were|got|been|is|are|is being|has been) )?"
               rf"(?P<verb>{_CHANGE_VERBS}){_CHANGE_TAIL}", re.I),
]
# 'Lena was replaced by Ivo as Ana's coach', 'Ivo took over from Lena as Ana's coach', 'Ana
# switched to Ivo as their coach': the role's holder is now the new one.
_REPLACED_AS = [
    re.compile(r"^.+? (?:was|got|has been|had been) (?:replaced|succeeded) by (?P<value>.+?) as (?P<attr>.+?)\.?$", re.I),
    re.compile(r"^(?P<value>.+?) (?:replaced|took over from|succeeded|has replaced) .+? as (?P<attr>.+?)\.?$", re.I),
    re.compile(r"^(?:[\w' ]{1,40}? )?(?:switched|changed|moved) to (?P<value>.+?) as (?P<attr>.+?)\.?$", re.I),
]
# 'Ana is up to three cats': a count that changed.
_MOTION = frozenset({"moved", "relocated", "shifted", "went", "gone"})
_UP_TO = re.compile(r"\b(?:is|are|am|'s|'re|'m) (?:now )?(?:up|down) to (?=\S)", re.I)
_DAY_OR_DATE = re.compile(r"^(?:(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b|(?:\d{1,2}(?:st|nd|rd|th)? )?"
                          r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\d{1,2}(?:st|nd|rd|th)\b)",
                          re.I)


def _as_changed(body: str) -> str:
    """A statement of a changed value in the one shape the claim reads ('X is now V'): the
    verb-with-"to" shapes above, a replacement in a role, and the older 'changed X to Y'."""
    text = body.rstrip(" .!")
    for pattern in _REPLACED_AS:
        m = pattern.match(text)
        if m:
            return f"{m['attr']} is now {m['value']}"
    for pattern in _CHANGED_VERB_TO:
        m = pattern.match(text)
        if m:
            value = m["value"]
            # Where the value sits: a day or a date is 'on', a place one moves to is 'in'.
            place = "on " if _DAY_OR_DATE.match(value) else \
                "in " if m["verb"].lower() in _MOTION and value[:1].isupper() else ""
            return f"{m['attr']} is now {place}{value}"
    return _UP_TO.sub("has now ", _CHANGED_TO.sub(r"\1 is now \3", body))


# One word for each relative ('Ana's mom' is 'Ana's mother').
_KIN = {"mom": "mother", "mum": "mother", "mommy": "mother", "mummy": "mother", "mama": "mother", "dad": "father",
        "daddy": "father", "papa": "father", "grandma": "grandmother", "granny": "grandmother", "nana": "grandmother",
        "grandpa": "grandfather", "granddad": "grandfather", "hubby": "husband", "bro": "brother", "sis": "sister",
        "bf": "boyfriend", "gf": "girlfriend", "kid": "child", "kids": "children"}
_INSIDE_PHRASE = frozenset({"and", "of", "from", "at", "with", "for", "in", "to", "on", "near", "about", "new", "current",
                            "present"})


def quoted_values(text: str, holder: str = "") -> list[str]:
    """What would identify a statement where another text repeats it: its names, numbers and
    codes ('qzpass5512', '4417', 'Marguerite'), the holder's own name left out."""
    own = {w.lower() for w in re.findall(r"\w+", holder)}
    out = []
    for i, token in enumerate(_TOKEN.findall(text)):
        bare = token.rstrip(".").removesuffix("'s")
        if len(bare) >= 3 and bare.lower() not in own and _is_value(bare, i == 0) and bare.lower() not in _DAY_WORDS:
            out.append(bare)
    return out


def holder_key(holder: str, tenant: str = "") -> str:
    """How a statement's holder appears in a claim's subject: '@' for the tenant itself
    (the user id, 'The user', first person), else the holder's name."""
    name = holder.strip().lower()
    return "@" if name in ("", "the user", "user", tenant.lower()) else name


@lru_cache(maxsize=16384)  # reconcile compares each stored fact with many candidates
@functools.lru_cache(maxsize=8192)  # a stored fact is parsed once per candidate it is compared with
def parse(text: str, holder: str = "", tenant: str = "") -> Claim:
    """The claim a statement makes about its subject.

    Args:
        text: a third-person statement ("Ana's blood type is A+.").
        holder: who the statement is by or about, as it names them ("Ana", "The user").
        tenant: the user id whose memory it is in ('I' and 'my' are that user).

    Example:
        >>> sorted(parse("Ana's aunt Rosa teaches piano in Lyon.", "Ana").subject)
        ['aunt', 'ana', 'rosa']
    """
    stripped = _strip_frame(text, holder)
    body = _as_changed(stripped)
    said = _LEAD_IN.sub("", text.strip().replace("\u2019", "'"))  # cue words may sit before the subject
    key = holder_key(holder, tenant)
    holder_words = {w.lower() for w in re.findall(r"\w+", holder)} - {"the"}
    tokens = [re.sub(r"in'$", "ing", t) for t in _TOKEN.findall(body)]  # 'livin'' is 'living'
    subject, named, head, i, positional = _subject_phrase(tokens, key, holder_words)
    renewed = any(t.lower() in ("new", "current") for t in tokens[:i])  # 'Ana's new manager is ...'
    heads = [t.lower() for t in tokens[:i] if stem(t.lower()) == head]
    plural = bool(heads) and heads[-1].endswith("s") and heads[-1] != head and not heads[-1].endswith("ss")
    # -- the predicate --------------------------------------------------------------------------
    verb_tokens: list[str] = []
    while i < len(tokens) and (tokens[i].lower() in _AUX or tokens[i].lower() in _VERB_ADVERBS
                               or tokens[i].lower() in ("not", "to", "longer", "up")):
        verb_tokens.append(tokens[i].lower())
        i += 1
    main, i = _main_verb(tokens, i, positional)
    aux = [t for t in verb_tokens if t in _AUX]
    verb = _lemma(main) if main else (_lemma(aux[-1]) if aux else "")
    rest = tokens[i:]
    if verb in ("move", "relocate") and rest[:1] == ["to"]:
        verb, rest = "live", ["in", *rest[1:]]  # 'moved to Milan': where they live now
    elif verb == "work" and rest[:1] == ["as"]:
        verb, main, rest = "be", "", rest[1:]  # 'works as a nurse' says 'is a nurse'
    if verb in _COPULA and not main and rest and rest[0].lower().removesuffix("'s") in holder_words | {"their", "my"}:
        # 'Tom is Ana's best friend' says what 'Ana's best friend is Tom' says.
        head_phrase = tokens[:len(tokens) - len(rest) - len(verb_tokens)]
        return parse(" ".join(rest) + " is " + " ".join(head_phrase), holder, tenant)
    complement = ""
    if verb in _COPULA and not main:
        complement = " ".join(_value_form(t) for t in rest if t.lower() not in _FILLER and t.lower() != "now")
    ignored = holder_words | _FIRST_PERSON
    frame = frozenset(
        stem(t.lower().removesuffix("'s")) for t in rest
        if not _is_value(t, False) and t.lower() not in STOPWORDS and t.lower() not in _FILLER
        and t.lower().removesuffix("'s") not in ignored and t.lower() not in _NEGATIONS and len(t) > 1
    ) | ({verb} if verb and verb not in _COPULA and verb != "have" else frozenset())
    from_to = _FROM_TO.search(body)
    lowered = " ".join(tokens).lower()
    # Negation of the main clause only: 'loves the beach because it never rains' is not negated.
    main_clause = re.split(r"\b(?:because|but|although|though|when|if|since|so|which|who|while|and)\b|[,;]", lowered)[0]
    negated = any(t in _NEGATIONS or t.endswith("n't") for t in verb_tokens) or bool(
        re.search(r"\b(?:no longer|never|not|\w+n't)\b|\b(?:has|have) no\b", main_clause))
    return Claim(
        owner=key, subject=frozenset(subject), named=frozenset(named), head=head, verb=verb, frame=frame,
        values=frozenset(_value_form(t) for t in rest if _is_value(t, False)), complement=complement,
        negated=negated, ended=bool(_ENDED.search(said)),
        changed=bool(_CHANGED.search(said)) or body != stripped or renewed,
        additive=bool(_ADDITIVE.search(said)), plural=plural,
        from_value=frozenset(_value_form(t) for t in _TOKEN.findall(from_to.group(1))) if from_to else frozenset(),
        parsed=bool(subject and verb), obj=_object(rest, ignored), where=_where(complement), rewritten=body != stripped,
        counted=_counted(rest), ceased=bool(re.search(r"\b(?:no longer|any ?more)\b", said, re.I)),
    )


_CLAUSE_END = frozenset("because but although though when if since so which who while and after before until as".split())


def _object(rest: list[str], ignored: set[str]) -> frozenset[str]:
    """What the predicate is about, up to the first clause or time adverbial: 'gave up the
    piano last month' -> {'piano'}, 'quit the choir, it was too late' -> {'choir'}."""
    words: list[str] = []
    for t in rest:
        low = t.lower()
        if low in _CLAUSE_END or stem(low) in _TIME_WORDS:
            break
        words.append(low)
    return frozenset(stem(w.removesuffix("'s")) for w in words
                     if w not in STOPWORDS and w not in _FILLER and w.removesuffix("'s") not in ignored
                     and w not in _NEGATIONS and len(w) > 1 and not any(c.isdigit() for c in w)) - _ENDING_STEMS


def _counted(rest: list[str]) -> frozenset[tuple[str, str]]:
    """The counts a predicate states: a number before a plural noun ('three cats', '12
    houseplants'), not a number that names ('notebook number 19', 'flat 3')."""
    out = set()
    for number, noun in zip(rest, rest[1:], strict=False):
        value = _value_form(number)
        if value.isdigit() and noun.isalpha() and noun.islower() and noun.endswith("s") and not noun.endswith("ss") \
                and noun not in STOPWORDS:
            out.add((value, stem(noun)))
    return frozenset(out)


def _where(complement: str) -> str:
    first = complement.split(" ", 1)[0]
    return "in" if first in ("in", "at", "near") else "on" if first == "on" else ""


def _subject_phrase(tokens: list[str], key: str, holder_words: set[str]) -> tuple[list[str], list[str], str, int, int]:
    """The noun phrase before the first verb: (its key words, the names and numbers in it,
    its head, where the predicate starts, where a verb the lexicon lacks was found or -1)."""
    subject: list[str] = []
    named: list[str] = []
    head = ""
    end, positional = len(tokens), -1
    forced_noun = True  # the first word, and the word after a possessive, are nouns
    for i, tok in enumerate(tokens):
        low = tok.lower()
        bare = low.removesuffix("'s").removesuffix("'")
        # 'the school play is ...': a word that could be a verb but stands right before an
        # auxiliary ends the noun phrase, it does not start the predicate.
        before_aux = i + 1 < len(tokens) and tokens[i + 1].lower() in _AUX and low not in _AUX and low not in _VERB_ADVERBS
        if not forced_noun and (_is_verb(low) or low in _VERB_ADVERBS) and not before_aux:
            end = i
            break
        if not forced_noun and _verb_by_position(tokens, i, subject):
            end = positional = i
            break
        forced_noun = low.endswith(("'s", "s'")) or (low in _DETERMINERS and not subject)
        if bare in holder_words or bare in ("their", "our"):
            subject.append(key)
            head = key
        elif bare in _FIRST_PERSON:
            subject.append("@")
            head = "@"
        elif low in _DETERMINERS or low in _INSIDE_PHRASE:
            pass  # 'Ana's new manager' is the one 'Ana's manager' was about ('new' says it changed)
        else:
            numeric = (_is_value(tok, False) and not tok[:1].isalpha()) or bare in _NUMBER_WORDS
            word = _value_form(bare) if numeric else stem(_KIN.get(bare, bare))
            # A name: a number, a code or a capitalized word inside the phrase. The first word
            # is capitalized whatever it is ('Flat 3', 'Tom'): it names only when alone; the
            # word right after a possessive is the head ('Ana's PIN').
            after_possessive = i > 0 and tokens[i - 1].lower().endswith(("'s", "s'"))
            listed = i == 0 and tok[:1].isupper() and i + 1 < len(tokens) and tokens[i + 1].lower() in ("and", "&")
            if numeric or listed or (_is_value(tok, False) and subject and not after_possessive):
                named.append(word)
            else:
                head = word
            subject.append(word)
    if len(subject) == 1 and head not in ("", "@", key) and not named and tokens and tokens[0][:1].isupper():
        named.append(head)  # 'Tom lives in Oslo': a capitalized word alone is a name
    return subject, named, head, end, positional


def _main_verb(tokens: list[str], i: int, positional: int) -> tuple[str, int]:
    """The main verb at `i` (and where its complement starts); for 'stopped drinking
    coffee', 'gave up smoking' or 'used to live', the verb that stopped."""
    main = ""
    if i < len(tokens) and (_is_verb(tokens[i]) or i == positional) and tokens[i].lower() not in _AUX:
        main = tokens[i].lower()
        i += 1
    while main and _lemma(main) in ("stop", "quit", "give", "use", "start", "begin", "keep", "switch") \
            and i < len(tokens) and (tokens[i].lower() in ("up", "to") or tokens[i].lower().endswith("ing")):
        if tokens[i].lower() in ("up", "to"):
            i += 1
            if i >= len(tokens):
                break
        if not _is_verb(tokens[i]):
            break
        main = tokens[i].lower()
        i += 1
    return main, i


def same_subject(a: Claim, b: Claim) -> Literal["same", "maybe", "different"]:
    """Whether two claims are about the same person or thing.

    'maybe' when one names what the other only describes ('Ana's sister' / 'Ana's sister
    Eva'): such a pair may merge, but never replaces one another.
    """
    if a.subject == b.subject:
        return "same"
    if a.named and b.named and a.named != b.named:
        return "different"  # Rosa is not Karl, flat 3 is not flat 9
    small, large = sorted((a, b), key=lambda c: len(c.subject))
    if small.subject < large.subject and (large.subject - small.subject) <= large.named:
        return "maybe"
    return "different"


_DAY_WORDS = frozenset("""monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays
    fridays saturdays sundays january february march april may june july august september october november december
    """.split())


def _kinds(values: frozenset[str]) -> set[str]:
    """What sort of values a statement holds: numbers, dates or names."""
    return {"number" if any(c.isdigit() for c in v) else "date" if v in _DAY_WORDS else "name" for v in values}


def _counts(values: frozenset[str]) -> frozenset[str]:
    return frozenset(v for v in values if v.isdigit())


def _same_slot(old: Claim, new: Claim) -> bool:
    """The same copular slot of one subject with another value of the same kind."""
    return old.verb in _COPULA and new.verb in _COPULA and old.where == new.where and bool(old.values) \
        and bool(new.values) and old.values != new.values and _kinds(old.values) == _kinds(new.values)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;:]|\s-+|\s—)\s+(?:(?:and|but|so|then|now)\s+)?|\s+(?:and|but|so|while|whereas)\s+(?=[A-Z])")


def clauses(text: str) -> list[str]:
    """The clauses of a compound statement that read as statements on their own ('Lena left,
    Ivo is Ana's coach now' -> both); [] for a simple one."""
    parts = [p.strip(" .!") for p in _CLAUSE_SPLIT.split(text.strip())]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts if len(parts) > 1 else []


def relate(old: Claim, new: Claim, *, similarity: float | None = None, episodic: bool = False,
           rephrased: float = 0.93) -> tuple[Relation, str]:
    """How a new statement bears on a stored one, with the reason.

    same: it says the same thing (merge). refines: it says the same and more (the stored
    fact takes the new text). replaces: the stored fact is no longer true (a negation, an
    ended state, a new value of a one-valued attribute, an announced change). different:
    another subject or another predicate. unsure: keep both.

    Args:
        similarity: cosine of the two statements' vectors, when known.
        episodic: either statement is an event: two events that differ are two events.
        rephrased: the cosine above which the same claim in other words is a restatement.
    """
    if not (old.parsed and new.parsed):
        return "unsure", "not parsed"
    subject = same_subject(old, new)
    # The holder of a one-valued role is gone: 'Ana's coach is Lena' / 'Lena retired'.
    if subject == "different" and new.ended and new.named and new.named <= old.values and new.subject == new.named \
            and old.verb in _COPULA and old.owner in old.subject and not old.plural and not old.negated \
            and old.head not in _MULTI_VALUED_STEMS and not new.negated:
        return "replaces", f"{' '.join(sorted(new.named))} is no longer {old.head}"
    if subject == "different":
        return "different", "another subject"
    if old.negated == new.negated and old.values == new.values and not (new.ended and not old.ended) \
            and not (new.changed and (old.frame != new.frame or old.complement != new.complement)):
        if old.frame == new.frame and old.verb == new.verb:
            return "same", "same statement"
        if new.frame > old.frame and new.verb == old.verb:
            return "refines", "adds detail"
        if old.frame > new.frame and new.verb == old.verb:
            return "same", "says less"
        # Other words for the same claim ('adores' / 'loves'): only at a cosine where 'red
        # wine' / 'white wine' (0.91 with MiniLM) are still apart.
        if similarity is not None and similarity >= rephrased \
                and _overlap(old.frame - {old.verb}, new.frame - {new.verb}) >= 0.5:
            return "same", f"rephrased (cosine {similarity:.2f})"
    if old.negated == new.negated and new.verb == old.verb and old.frame <= new.frame and old.values < new.values \
            and not new.changed:
        return "refines", "adds a name or number"
    # 'Sam and Ana broke up' / 'Ana is in a relationship with Sam': the two of them ended it.
    if subject == "maybe" and new.ended and new.named and new.named <= old.values and new.owner in new.subject \
            and new.subject - new.named == {new.owner} and old.subject == {old.owner} and not old.negated:
        return "replaces", f"{old.owner if old.owner != '@' else 'the user'} and {' '.join(sorted(new.named))} ended it"
    # A change told by a verb of changing ('moved my flight to 6 July') presupposes the known
    # thing, even when the stored statement names it more fully ('my flight to Rome').
    if subject == "maybe" and new.changed and new.rewritten and _same_slot(old, new) and not old.negated \
            and not new.negated and old.owner in old.subject:
        return "replaces", f"{old.head} moved from {', '.join(sorted(old.values))} to {', '.join(sorted(new.values))}"
    if subject == "maybe":
        return "unsure", "one names what the other describes"
    # A scheduled thing moved to another day ('the school play is on Friday' / 'is now on
    # Monday'): events of one subject, but the same slot with a new value of the same kind.
    if episodic and not (new.changed and _same_slot(old, new)):
        return "unsure", "events"
    shared = (old.frame & new.frame) - {new.verb}
    # A negation of the same predicate: 'is allergic to peanuts' / 'is not allergic to peanuts'.
    if old.negated != new.negated and (old.verb == new.verb or not new.verb) and old.values <= new.values | old.values \
            and _overlap(old.frame, new.frame) >= 0.5:
        return "replaces", "negation"
    # A count of the same thing: 'has two cats at home' / 'has three cats at home'.
    if old.verb == new.verb and old.frame == new.frame and len(old.counted) == 1 and len(new.counted) == 1 \
            and {n for _, n in old.counted} == {n for _, n in new.counted} and old.counted != new.counted \
            and old.values - _counts(old.values) == new.values - _counts(new.values) \
            and not new.additive and old.negated == new.negated and not new.ended:
        return "replaces", f"count changed from {min(old.counted)[0]} to {min(new.counted)[0]}"
    # An ending of what the stored statement holds or does: 'is learning the piano' / 'gave
    # up the piano', 'has a gym membership' / 'cancelled the gym membership', 'doesn't go to
    # the gym anymore'. What ended must be what the statement is about (its object's words
    # all in it), and feelings end only by their negation.
    # ('won't quit', 'never gave up' end nothing: only a negation that says 'no longer' does.)
    if new.ended and (not new.negated or new.ceased) and not old.ended and not old.negated \
            and old.verb not in _FEELING_VERBS and new.obj and new.obj - {new.verb} <= old.frame | {stem(v) for v in old.values} \
            and (new.obj - {new.verb}) & (old.frame - {old.verb}):
        return "replaces", "the state ended"
    # An ended state: 'drinks coffee every morning' / 'stopped drinking coffee'.
    if new.ended and not old.ended and not old.negated and not new.negated and new.verb == old.verb \
            and (new.frame - {new.verb} <= old.frame or shared or new.values & old.values):
        return "replaces", "the state ended"
    # 'switched from vim to emacs': whatever said vim.
    if new.from_value and all(w in old.values or stem(w) in old.frame for w in new.from_value):
        return "replaces", f"changed from {' '.join(sorted(new.from_value))}"
    # 'sold the Honda', 'quit the job at Google', 'left Acme': what was given up.
    if new.ended and new.verb in _DISPOSAL and not old.negated and not new.negated and old.verb not in _FEELING_VERBS \
            and (old.values & new.values or shared - _DISPOSAL):
        return "replaces", "given up"
    # A one-valued attribute with another value: 'blood type is A+' / 'blood type is O-'.
    if old.single_valued and new.single_valued and old.complement and new.complement \
            and old.complement != new.complement and not new.additive and not old.negated and not new.negated:
        return "replaces", f"{old.head} changed from {old.complement!r} to {new.complement!r}"
    # The same slot of one thing with another value of the same kind: 'Ana's flight is on
    # Monday' / '... on Tuesday', 'Ana's daughter is 7 years old' / '... 8 years old'. Of a
    # relation people have several of, only a number changes ('Ana's sister is a doctor' /
    # '... a lawyer' may be two sisters).
    if old.verb in _COPULA and new.verb in _COPULA and old.owner in old.subject and not old.plural \
            and old.frame == new.frame and old.where == new.where and old.values and new.values and old.values != new.values \
            and _kinds(old.values) == _kinds(new.values) and not new.additive and not old.negated and not new.negated \
            and (old.head not in _MULTI_VALUED_STEMS or _kinds(old.values) == {"number"}):
        return "replaces", f"{old.head} changed from {', '.join(sorted(old.values))} to {', '.join(sorted(new.values))}"
    # An announced change of the same predicate: 'takes oat milk in their coffee' / 'these
    # days takes their coffee black'.
    # Of a verb of having or liking, only the same object with something else said of it
    # ('likes their coffee strong' / 'these days likes their coffee mild').
    # Only of short statements of one attribute: in chat, 'now' and a shared word between two
    # long sentences ('... the studio ...') say nothing about one replacing the other.
    many = new.verb in _MANY_VALUED_VERBS and not (shared and old.values == new.values)
    if new.changed and not new.additive and not new.ended and old.verb == new.verb and not old.negated and not many \
            and not new.negated and (old.values != new.values or old.frame != new.frame) \
            and len(old.frame) <= _ONE_ATTRIBUTE and len(new.frame) <= _ONE_ATTRIBUTE \
            and (shared or old.values & new.values or (old.values and new.values and not old.values <= new.values)
                 or (old.verb in _COPULA and old.complement and new.complement and old.head != old.owner)) \
            and (old.verb not in _COPULA or old.where == new.where):
        return "replaces", "a new value"
    return "unsure", "related"
