"""The cases of `bench.operations`: what a new statement does to what is stored, as families.

A case is two user turns, A then B (twenty days later), with the question A answered. Cases
are generated from *families* of wordings (one sentence shape of B, sometimes of A) crossed
with *slots* (subjects and values). Families, not cases, are split into a tune half and a
check half: rules are written against the tune half only, and the check half says whether
they name a class of wordings or the words of a few cases. The split is fixed here, by the
family's position in its list (even: tune, odd: check), and was made before any rule.

Operations (what B should do to A):
- change: B gives a new value of A's attribute (a quantity, a date or day, a person, a
  place, a count): A is invalidated, B's value answers the question.
- end: B says A's state is over (gave up, cancelled, stopped, quit, no longer, ...): A is
  invalidated and the news is stored and answers the question.
- forget: B asks the assistant to forget A: A is no longer valid, searched or paged in, and
  B is no fact.
- other (control): B says something alike of someone else: A stays valid.
- lookalike (control): B uses the words of a forget request or an ending without being one
  ("I'll never forget ...", "Remember that ...", "Delete the ... field from the form"): A
  stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    op: str  # change | end | forget | other | lookalike
    family: str
    half: str  # tune | check
    first: str
    second: str
    question: str
    new: str = ""  # words a fact must hold to be the new truth ("1,340", "Ivo"); '' when none
    old: str = ""  # words only the stale fact holds ("1,200"); '' when none
    secret: str = ""  # for forget: what must appear nowhere valid, searched or paged in
    keep_second: bool = True  # whether B should leave a fact (a forget request leaves none)


# Each user of the bench has said these first: search has to rank, not just return.
BACKGROUND = (
    "I live in Leeds with my partner.",
    "My sister Maya is a nurse in Glasgow.",
    "I really enjoy jazz and old films.",
    "I work as a product designer.",
)


def _halves(families: list[tuple[str, ...]]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(f[0], "tune" if i % 2 == 0 else "check", f[1:]) for i, f in enumerate(families)]


# -- change: quantities ------------------------------------------------------------------------
# (attribute, old value, new value, question)
_AMOUNTS = [
    ("rent", "950", "1,100", "How much is my rent?"),
    ("mortgage", "1,200", "1,340", "What do I pay for my mortgage?"),
    ("phone bill", "40", "55", "How much is my phone bill?"),
    ("gym fee", "30", "38", "What does my gym cost?"),
    ("car insurance", "85", "110", "How much is my car insurance?"),
    ("childcare bill", "600", "720", "How much do I pay for childcare?"),
    ("internet bill", "35", "29", "What is my internet bill?"),
    ("parking permit", "20", "26", "How much is my parking permit?"),
]
_AMOUNT_FAMILIES = _halves([
    ("amount:now", "My {a} is {v1} a month.", "My {a} is {v2} a month now."),
    ("amount:went-up-to", "My {a} is {v1} a month.", "My {a} went up to {v2} a month."),
    ("amount:agent-put-up", "My {a} is {v1} a month.", "The company put my {a} up to {v2} a month."),
    ("amount:passive-raised", "My {a} is {v1} a month.", "My {a} was raised to {v2} a month."),
    ("amount:bare", "My {a} is {v1} a month.", "My {a} is {v2} a month."),
    ("amount:dropped-to", "My {a} is {v1} a month.", "My {a} dropped to {v2} a month."),
    ("amount:pay-these-days", "I pay {v1} a month for my {a}.", "These days I pay {v2} a month for my {a}."),
    ("amount:instead-of", "My {a} is {v1} a month.", "My {a} is {v2} a month instead of {v1}."),
])

# -- change: dates and days ----------------------------------------------------------------------
_EVENTS = [
    ("school play", "Friday", "Monday", "When is the school play?"),
    ("book club meeting", "Wednesday", "Thursday", "When is the book club meeting?"),
    ("dentist appointment", "Tuesday", "Friday", "When is my dentist appointment?"),
    ("team offsite", "12 May", "19 May", "When is the team offsite?"),
    ("parents' evening", "Thursday", "Tuesday", "When is parents' evening?"),
    ("band rehearsal", "Saturday", "Sunday", "When is band rehearsal?"),
    ("job interview", "3 June", "10 June", "When is my job interview?"),
    ("quiz night", "Monday", "Wednesday", "When is quiz night?"),
]
_EVENT_FAMILIES = _halves([
    ("date:moved-to", "The {a} is on {v1}.", "They moved the {a} to {v2}."),
    ("date:rescheduled", "The {a} is on {v1}.", "The {a} got rescheduled to {v2}."),
    ("date:now-on", "The {a} is on {v1}.", "The {a} is on {v2} now."),
    ("date:pushed", "The {a} is on {v1}.", "The {a} was pushed back to {v2}."),
    ("date:instead", "The {a} is on {v1}.", "The {a} is on {v2} instead."),
    ("date:changed-to", "My {a} is on {v1}.", "They changed my {a} to {v2}."),
])

# -- change: people ------------------------------------------------------------------------------
# (role, old, new, question, what the role does to the user: 'coaches me')
_ROLES = [
    ("coach", "Lena", "Ivo", "Who is my coach?", "coaches me"),
    ("piano teacher", "Mrs Cole", "Mr Adams", "Who teaches me piano?", "teaches me piano"),
    ("manager", "Sara", "Tomasz", "Who is my manager?", "manages me"),
    ("personal trainer", "Jake", "Priya", "Who is my personal trainer?", "trains me"),
    ("tutor", "Mr Hale", "Ms Reyes", "Who is my tutor?", "tutors me"),
    ("mentor", "Diane", "Kofi", "Who is my mentor?", "mentors me"),
    ("doctor", "Dr Patel", "Dr Okafor", "Who is my doctor?", "treats me"),
    ("therapist", "Ruth", "Alma", "Who is my therapist?", "sees me"),
]
_ROLE_FAMILIES = _halves([
    ("person:left-now", "My {a} is {v1}.", "{v1} left, {v2} is my {a} now."),
    ("person:retired-verb", "My {a} is {v1}.", "{v1} retired, {v2} {verb} now."),
    ("person:new", "My {a} is {v1}.", "My new {a} is {v2}."),
    ("person:bare", "My {a} is {v1}.", "My {a} is {v2}."),
    ("person:replaced-by", "My {a} is {v1}.", "{v1} was replaced by {v2} as my {a}."),
    ("person:switched-to", "My {a} is {v1}.", "I switched to {v2} as my {a}."),
])

# -- change: places ------------------------------------------------------------------------------
_PLACES = [
    ("office", "Bradford", "York", "Where is my office?"),
    ("storage unit", "Hull", "Wakefield", "Where is my storage unit?"),
    ("dentist", "Harrogate", "Otley", "Where is my dentist?"),
    ("climbing gym", "Headingley", "Kirkstall", "Where is my climbing gym?"),
    ("allotment", "Roundhay", "Meanwood", "Where is my allotment?"),
    ("team", "Manchester", "Sheffield", "Where is my team based?"),
]
_PLACE_FAMILIES = _halves([
    ("place:moved-to", "My {a} is in {v1}.", "My {a} moved to {v2}."),
    ("place:now-in", "My {a} is in {v1}.", "My {a} is in {v2} now."),
    ("place:relocated", "My {a} is in {v1}.", "They relocated my {a} to {v2}."),
    ("place:no-longer", "My {a} is in {v1}.", "My {a} is not in {v1} any more, it is in {v2}."),
])

# -- change: counts ------------------------------------------------------------------------------
_COUNTS = [
    ("cats", "two", "three", "How many cats do I have?"),
    ("houseplants", "twelve", "fifteen", "How many houseplants do I have?"),
    ("bikes", "two", "four", "How many bikes do I own?"),
    ("chickens", "five", "eight", "How many chickens do I keep?"),
    ("guitars", "three", "two", "How many guitars do I have?"),
    ("rabbits", "two", "three", "How many rabbits do I have?"),
]
_COUNT_FAMILIES = _halves([
    ("count:bare", "I have {v1} {a} at home.", "I have {v2} {a} at home."),
    ("count:now", "I have {v1} {a}.", "I have {v2} {a} now."),
    ("count:up-to", "I have {v1} {a}.", "I'm up to {v2} {a}."),
    ("count:we-have", "We have {v1} {a}.", "We have {v2} {a} these days."),
])

# -- end ----------------------------------------------------------------------------------------
# (the state as first said, a noun phrase for it, a gerund for it, a base verb phrase,
#  question, the key word the news must hold)
_STATES = [
    ("I am learning the piano.", "the piano", "learning the piano", "learn the piano",
     "Am I learning an instrument?", "piano"),
    ("I have a membership at the climbing gym.", "my climbing gym membership", "going to the climbing gym",
     "go to the climbing gym", "Do I go climbing?", "climbing"),
    ("I play in a five-a-side football team.", "the football team", "playing five-a-side football",
     "play five-a-side football", "Do I play football?", "football"),
    ("I volunteer at the food bank on Saturdays.", "the food bank", "volunteering at the food bank",
     "volunteer at the food bank", "Where do I volunteer?", "food bank"),
    ("I take Spanish lessons on Tuesdays.", "my Spanish lessons", "taking Spanish lessons",
     "take Spanish lessons", "Am I studying a language?", "Spanish"),
    ("I subscribe to a wine club.", "the wine club", "getting the wine club boxes",
     "subscribe to the wine club", "Do I get wine deliveries?", "wine club"),
    ("I run with a running club on Sundays.", "the running club", "running with the club",
     "run with the running club", "Do I run with a club?", "running club"),
    ("I sing in a community choir.", "the choir", "singing in the choir", "sing in the choir",
     "Do I sing anywhere?", "choir"),
    ("I am doing an evening course in pottery.", "the pottery course", "doing the pottery course",
     "do the pottery course", "Am I taking any courses?", "pottery"),
]
_END_FAMILIES = _halves([
    ("end:gave-up", "I gave up {noun} last month."),
    ("end:stopped", "I stopped {gerund}."),
    ("end:quit", "I quit {noun} in the spring."),
    ("end:no-longer", "I'm no longer {gerund}."),
    ("end:not-anymore", "I don't {base} anymore."),
    ("end:cancelled", "I cancelled {noun}."),
    ("end:dropped", "I dropped {noun} after the summer."),
    ("end:done-with", "I'm done with {noun}, it wasn't for me."),
])

# -- forget --------------------------------------------------------------------------------------
# (the fact, what names it, its topic, question, the secret that must not come back)
_SECRETS = [
    ("My passport number is X1234567.", "my passport number", "my passport", "What is my passport number?", "X1234567"),
    ("I have a phobia of spiders.", "the spider thing", "spiders", "What am I afraid of?", "spiders"),
    ("My PIN for the building door is 4821.", "the door PIN", "the building door", "What is the door code?", "4821"),
    ("My ex-husband is called Daniel.", "my ex-husband", "my ex-husband", "Who was I married to?", "Daniel"),
    ("I am taking sertraline for anxiety.", "the sertraline", "my medication", "What medication do I take?",
     "sertraline"),
    ("My salary is 64,000 a year.", "my salary", "my salary", "How much do I earn?", "64,000"),
    ("I am secretly applying for jobs at Globex.", "the Globex applications", "the job hunting",
     "Am I looking for a new job?", "Globex"),
    ("My home address is 14 Larch Road.", "my home address", "my address", "Where do I live exactly?", "Larch"),
]
_FORGET_FAMILIES = _halves([
    ("forget:forget-please", "Forget {target}, please."),
    ("forget:delete-from-memory", "Please delete {target} from your memory."),
    ("forget:dont-keep-anything", "Don't keep anything about {topic}."),
    ("forget:remove-from-memory", "Remove {target} from your memory."),
    ("forget:can-you-forget", "Can you forget about {topic}?"),
    ("forget:scratch-what-i-said", "Scratch what I said about {topic}."),
    ("forget:wipe-what-you-know", "Wipe what you know about {topic}."),
    ("forget:dont-remember", "I'd rather you didn't remember {target}."),
    ("forget:erase", "Erase {target} from your notes."),
    ("forget:stop-remembering", "Stop remembering {target}, I shouldn't have shared it."),
])

# -- controls: someone else ----------------------------------------------------------------------
_OTHER_FAMILIES = _halves([
    ("other:relative-amount", "My {a} is {v1} a month.", "My brother's {a} went up to {v2} a month.", "amount"),
    ("other:named-ended", "", "Jonas gave up {noun} last month.", "state"),
    ("other:relative-person", "My {a} is {v1}.", "My sister's {a} is {v2} now.", "role"),
    ("other:neighbour-sold", "", "My neighbour quit {noun}.", "state"),
    ("other:relative-forget", "", "My friend asked me to forget about {topic}.", "secret"),
    ("other:relative-place", "My {a} is in {v1}.", "My cousin's {a} moved to {v2}.", "place"),
])

# -- controls: look-alikes -----------------------------------------------------------------------
_LOOKALIKE_FAMILIES = _halves([
    ("lookalike:never-forget", "I'll never forget the day I got {topic_plain}."),
    ("lookalike:remember-that", "Remember that I want to redo {topic_plain} next year."),
    ("lookalike:code-delete", "Delete the {field} field from the signup form."),
    ("lookalike:dont-forget-to", "Don't forget to remind me about the meeting tomorrow."),
    ("lookalike:code-remove", "Remove the {field} column from this SQL query."),
    ("lookalike:i-forgot", "I forgot my umbrella on the bus."),
    ("lookalike:stopped-by", "I stopped by the bakery after work."),
    ("lookalike:gave-up-seat", "I gave up my seat on the train to an old man."),
])
_FIELDS = ["passport number", "spider", "PIN", "ex-husband", "medication", "salary", "job", "address"]
_PLAIN_TOPICS = ["my passport", "the spider photos", "the door code", "my wedding", "my prescription",
                 "my salary review", "my job application", "my house keys"]


def _cases() -> list[Case]:
    out: list[Case] = []
    for family, half, (first, second) in _AMOUNT_FAMILIES:
        for a, v1, v2, q in _AMOUNTS:
            out.append(Case("change", family, half, first.format(a=a, v1=v1), second.format(a=a, v1=v1, v2=v2), q,
                            new=v2, old=v1))
    for family, half, (first, second) in _EVENT_FAMILIES:
        for a, v1, v2, q in _EVENTS:
            out.append(Case("change", family, half, first.format(a=a, v1=v1), second.format(a=a, v2=v2), q,
                            new=v2, old=v1))
    for family, half, (first, second) in _ROLE_FAMILIES:
        for a, v1, v2, q, verb in _ROLES:
            out.append(Case("change", family, half, first.format(a=a, v1=v1),
                            second.format(a=a, v1=v1, v2=v2, verb=verb), q, new=v2, old=v1))
    for family, half, (first, second) in _PLACE_FAMILIES:
        for a, v1, v2, q in _PLACES:
            out.append(Case("change", family, half, first.format(a=a, v1=v1), second.format(a=a, v1=v1, v2=v2), q,
                            new=v2, old=v1))
    for family, half, (first, second) in _COUNT_FAMILIES:
        for a, v1, v2, q in _COUNTS:
            out.append(Case("change", family, half, first.format(a=a, v1=v1), second.format(a=a, v2=v2), q,
                            new=v2, old=v1))
    for family, half, (second,) in _END_FAMILIES:
        for first, noun, gerund, base, q, key in _STATES:
            out.append(Case("end", family, half, first, second.format(noun=noun, gerund=gerund, base=base), q, new=key))
    for family, half, (second,) in _FORGET_FAMILIES:
        for first, target, topic, q, secret in _SECRETS:
            out.append(Case("forget", family, half, first, second.format(target=target, topic=topic), q,
                            secret=secret, keep_second=False))
    for family, half, (first, second, pool) in _OTHER_FAMILIES:
        if pool == "amount":
            for a, v1, v2, q in _AMOUNTS[:6]:
                out.append(Case("other", family, half, first.format(a=a, v1=v1), second.format(a=a, v2=v2), q, old=v1))
        elif pool == "role":
            for a, v1, v2, q, _ in _ROLES[:6]:
                out.append(Case("other", family, half, first.format(a=a, v1=v1), second.format(a=a, v2=v2), q, old=v1))
        elif pool == "place":
            for a, v1, v2, q in _PLACES[:6]:
                out.append(Case("other", family, half, first.format(a=a, v1=v1), second.format(a=a, v2=v2), q, old=v1))
        elif pool == "state":
            for state, noun, _, _, q, key in _STATES[:6]:
                out.append(Case("other", family, half, state, second.format(noun=noun), q, old=key))
        else:
            for fact, _, topic, q, secret in _SECRETS[:6]:
                out.append(Case("other", family, half, fact, second.format(topic=topic), q, old=secret))
    for family, half, (second,) in _LOOKALIKE_FAMILIES:
        for (fact, _, _, q, secret), fld, plain in list(zip(_SECRETS, _FIELDS, _PLAIN_TOPICS, strict=True))[:6]:
            out.append(Case("lookalike", family, half, fact, second.format(field=fld, topic_plain=plain), q, old=secret))
    return out


CASES: list[Case] = _cases()
OPERATIONS = ("change", "end", "forget", "other", "lookalike")
__all__ = ["BACKGROUND", "CASES", "OPERATIONS", "Case"]
