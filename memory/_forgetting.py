"""Requests to forget: which sentences ask the assistant to forget something, and which stored
facts they name. Pure functions over text.

A request is told by its shape, not its words: a verb of forgetting addressed to the
assistant ("forget X", "can you forget about X?"), a verb of removing with the assistant's
memory as where from ("delete X from your memory", "wipe what you know about X", "scratch
what I said about X"), or a verb of keeping, negated ("don't keep anything about X", "stop
remembering X", "I'd rather you didn't remember X"). A verb of removing without the memory
("delete the passport field from the form") is a task, not a request to forget; "don't
forget to ...", "I'll never forget ..." and "remember that ..." are the opposite.

What a request names is matched against stored facts by the content words of its target
("my passport number" names "Ana's passport number is X1234567.", "the spider thing" names
"Ana has a phobia of spiders.", "my passport" names every statement about the passport);
the request's own filler ("the ... thing", "anything about") names nothing.
"""

from __future__ import annotations

import re

from ._text import content_tokens

# What may come before the verb: interjections, politeness, and the ways of asking someone to.
_LEAD = (r"^(?:(?:ok(?:ay)?|so|also|and|oh|hey|actually|right|now|hmm|well|btw|by the way|one more thing),?\s+)*"
         r"(?:(?:please|pls|kindly)\s+)?"
         r"(?:(?:can|could|would|will) you(?: please| kindly)?\s+|i(?:'d| would) like you to\s+|i (?:want|need) you to\s+|"
         r"you (?:should|can|may|could)\s+|(?:please\s+)?make sure (?:you|to)\s+|go ahead and\s+)?(?:please\s+)?(?:just\s+)?")
# A verb of forgetting: the request itself ('forget it' alone means 'never mind').
_FORGET = re.compile(_LEAD + r"(?:forget|unlearn|disregard)(?: all)?(?: about)?\s+(?!to\b|it\b\W*$|it,)(?P<target>.+)$", re.I)
# Where something is removed from that makes it the assistant's memory.
_MEMORY = (r"(?:from|out of|off)\s+(?:your\s+|the\s+|my\s+)?(?:memory|memories|mind|head|notes|records|"
           r"saved (?:info|information|facts|notes))\b")
_REMOVE_VERBS = (r"(?:delete|remove|erase|wipe|clear|purge|scrub|drop|discard|scratch|strike|get rid of|"
                 r"throw (?:away|out)|take out|cross out|lose)")
# 'what you know about X', 'what I said about X', 'the information about X', 'that about X'.
_ABOUT = (r"(?:(?:what|everything|anything|all|whatever)\s+(?:you\s+(?:know|have|remember|stored|saved|noted|keep|learned|"
          r"learnt)(?:\s+(?:stored|saved|noted|down))?|i\s+(?:said|told you|mentioned|shared|wrote|gave you)|"
          r"you\s+(?:have\s+)?(?:stored|saved|noted))\s+(?:about|on|regarding|of)\s+|"
          r"(?:the|any|all|my|that)\s+(?:info|information|notes?|details?|memor(?:y|ies)|records?|facts?|data|stuff|bits?|"
          r"parts?)\s+(?:about|on|regarding|of)\s+|that\s+(?:about|on|regarding)\s+)")
_REMOVE = [
    re.compile(_LEAD + _REMOVE_VERBS + r"\s+" + _ABOUT + r"(?P<target>.+)$", re.I),
    re.compile(_LEAD + _REMOVE_VERBS + r"\s+(?P<target>.+?)\s+" + _MEMORY + r".*$", re.I),
    # 'erase my phone number': the speaker's own thing, removed from nowhere else.
    re.compile(_LEAD + _REMOVE_VERBS + r"\s+(?P<target>my\s[^,;]+?)(?:,?\s*(?:please|thanks|thank you))?[.!]*$", re.I),
]
# A verb of keeping, negated: 'don't keep anything about X', 'stop remembering X'.
_NOT_KEEP = re.compile(
    _LEAD + r"(?:don't|do not|never|no need to|there's no need to|you don't (?:need|have) to|stop|quit|"
    r"i (?:don't|do not) want you to|i(?:'d| would) (?:rather|prefer) (?:you|that you) (?:didn't|did not|not)|"
    r"i(?:'d| would) prefer (?:you|that you) (?:not|didn't))\s+"
    r"(?:keep|store|save|retain|record|remember|hold on to|note|log|track)(?:ing)?\s+(?P<target>.+)$", re.I)
# Filler of a request that names nothing: 'anything about', 'the ... thing', 'please'.
_TARGET_LEAD = re.compile(r"^(?:(?:anything|everything|any|all|things|stuff|info|information|details|notes)\s+"
                          r"(?:about|on|regarding|of)\s+|about\s+|that\s+(?=i\b|my\b))", re.I)
_TARGET_TAIL = re.compile(r"(?:,|;|\s-+\s|\s—\s|\s+(?:because|since|as|i shouldn't|i should not)\b).*$|"
                          r"\s+(?:please|for me|for good|completely|entirely|altogether|now|too|as well)\s*$|[.!?\s]+$", re.I)
_ANAPHORA = frozenset({"that", "this", "it", "what i just said", "what i said", "my last message", "the last thing i said",
                       "the last thing", "that last bit", "that last part"})
# Words of a target that name no content: 'the spider thing', 'my ex stuff'.
_VAGUE = frozenset(content_tokens("thing things stuff bit bits part parts info information detail details fact facts "
                                  "note notes memory memories record records data mention whole matter business"))
RETRACTS = "retracts"  # a forget request's metadata: the provenance ref of the message it takes back
RETRACTS_PREVIOUS = "previous"  # ... not known yet: the speaker's message before the request ('scratch that')


def forget_target(sentence: str) -> str | None:
    """What a sentence asks the assistant to forget, in the speaker's words ('my passport
    number'); '' when it names it only as 'that' (what was just said); None when the
    sentence is no request to forget.

    Example:
        >>> forget_target("Please delete my passport number from your memory.")
        'my passport number'
        >>> forget_target("Delete the passport field from the form.") is None
        True
    """
    text = sentence.strip().replace("\u2019", "'")
    for pattern in (_FORGET, *_REMOVE, _NOT_KEEP):
        m = pattern.match(text)
        if m:
            target = _TARGET_TAIL.sub("", m["target"].strip())
            target = _TARGET_LEAD.sub("", target).strip()
            target = _TARGET_TAIL.sub("", target).strip()
            if target.lower() in _ANAPHORA or not target:
                return ""
            return target
    # 'scratch that' / 'strike that', alone: what was just said.
    if re.match(_LEAD + r"(?:scratch|strike|forget|disregard|ignore) (?:that|this|what i just said)\W*$", text, re.I):
        return ""
    return None


def target_words(target: str) -> frozenset[str]:
    """The content words a target names things by ('the spider thing' -> {'spider'})."""
    return frozenset(content_tokens(target)) - _VAGUE


def named_share(words: frozenset[str], fact_text: str, holder_words: frozenset[str] = frozenset()) -> float:
    """How much of a request's target a stored statement holds: the share of the target's
    content words in it (1.0: all). Words match by stem, or when one stem starts the other
    and both have four letters or more (Snowball keeps 'applying' and 'applications' apart:
    'appli', 'applic'). The holder's own name is no target word ('my passport' is 'Ana's')."""
    wanted = words - holder_words
    if not wanted:
        return 0.0
    said = set(content_tokens(fact_text))
    found = sum(1 for w in wanted if w in said or (len(w) >= 4 and any(
        len(s) >= 4 and (s.startswith(w) or w.startswith(s)) for s in said)))
    return found / len(wanted)


__all__ = ["RETRACTS", "RETRACTS_PREVIOUS", "forget_target", "named_share", "target_words"]
