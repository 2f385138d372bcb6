"""A labelled reconciliation suite: pairs of things a user says, one after the other, and
what should happen to the first once the second is said.

Classes:
    coexist: about different people, items or events, or several values of a many-valued
        relation: both facts stay valid. Invalidating the first is a *lost fact*.
    supersede: a plain-worded update: the first fact is invalidated (kept as history).
    merge: a restatement: the second merges into the first (no second fact).
    refine: the second says the same with more detail: the first takes the new text (or
        stays beside it); it is never invalidated.

The sentences are written for this suite (not taken from a benchmark), several shapes per
class; `bench.reconcile` runs them through `Memory.add` and reports per class.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

CaseClass = Literal["coexist", "supersede", "merge", "refine"]


class Case(NamedTuple):
    cls: CaseClass
    first: str
    second: str


def _cases(cls: CaseClass, pairs: str) -> list[Case]:
    out = []
    for line in pairs.strip().splitlines():
        first, second = (part.strip() for part in line.split(" | "))
        out.append(Case(cls, first, second))
    return out


COEXIST = _cases("coexist", """
My aunt Rosa teaches piano in Lyon. | My uncle Karl teaches piano in Bern.
My friend Tom lives in Oslo. | My friend Maria lives in Rome.
My friend Tom lives in Oslo. | My friend Maria lives in Oslo.
Flat 3 has a leaking tap. | Flat 9 has a leaking tap.
Room 12 needs new curtains. | Room 14 needs new curtains.
My sister is a doctor. | My brother is a lawyer.
My sister Eva works at Siemens. | My sister Lena works at Bosch.
I went to Paris with Tom in May. | I went to Rome with Maria in June.
I had lunch with Carla on Monday. | I had lunch with Peter on Tuesday.
My son Leo plays football on Saturdays. | My daughter Mia plays tennis on Saturdays.
I like pizza. | I like sushi.
I speak Spanish. | I speak French.
I have a dog. | I have a cat.
My neighbour Jim drives a Volvo. | My neighbour Sue drives a Fiat.
My dad was born in 1958. | My mum was born in 1961.
Bus 42 goes to the airport. | Bus 17 goes to the station.
My colleague Priya is vegan. | My colleague Omar is vegetarian.
I play chess with my grandfather. | I play cards with my grandmother.
My cousin Ben is 12 years old. | My cousin Sara is 15 years old.
Invoice 1043 is overdue. | Invoice 1088 is overdue.
Our meeting with Acme is on Monday. | Our meeting with Globex is on Thursday.
My brother's birthday is on 3 March. | My mother's birthday is on 9 July.
I visited the Louvre last week. | I visited the Prado yesterday.
Tom's phone number is 555-1234. | Maria's phone number is 555-9876.
My manager Carla loves jazz. | My friend Tomas loves jazz.
My first car was a Fiat. | My second car was a Ford.
Gate 5 is closed. | Gate 7 is closed.
I ran 5 km on Monday. | I ran 10 km on Wednesday.
The kids' school starts at 8. | The gym opens at 6.
My grandma lives in Porto. | My grandpa lives in Faro.
Jake from work plays the drums. | Lily from work plays the violin.
Apartment 2B has a cat. | Apartment 4C has a dog.
I love hiking. | I love swimming.
My wife Julia is a nurse. | My daughter Julia is a student.
My favorite color is blue. | My favorite food is sushi.
I work at Google. | My husband works at Amazon.
I live in Berlin. | My parents live in Munich.
Sam's dog is called Rex. | Kim's dog is called Bo.
Project Atlas is due on Friday. | Project Borealis is due on Monday.
I met Anna at the conference. | I met Ben at the conference.
My allergist is Dr. Lopez. | My dentist is Dr. Kim.
Order 5512 shipped today. | Order 5530 shipped today.
Line 3 of the script has a typo. | Line 9 of the script has a typo.
The red team won the first game. | The blue team won the second game.
My brother lives in Madrid. | My sister lives in Madrid.
Tom works as a nurse. | Maria works as a nurse.
I'm allergic to peanuts. | My son is allergic to shellfish.
I take the bus to work. | My wife takes the train to work.
""")

SUPERSEDE = _cases("supersede", """
I take oat milk in my coffee. | These days I take my coffee black.
My blood type is A+. | My blood type is O-.
I drink coffee every morning. | I stopped drinking coffee.
My favourite colour is blue. | Now my favourite colour is green.
I live in Lisbon. | I moved to Berlin.
I work at Google. | I now work at Meta.
I play tennis every Sunday. | I don't play tennis anymore.
I use vim. | I switched from vim to emacs.
My phone number is 555-1234. | My new phone number is 555-9876.
I'm vegetarian. | I'm vegan now.
My manager is Carla. | My new manager is Tomas.
I'm single. | I'm engaged now.
I smoke. | I quit smoking.
I'm learning Spanish. | I gave up learning Spanish.
My email is ana@old.com. | My email is ana@new.com now.
I drive a Honda. | I sold the Honda and now drive a Tesla.
I'm 34 years old. | I'm 35 years old.
My PIN is 1234. | My PIN is 5678.
I'm allergic to peanuts. | I'm not allergic to peanuts anymore.
My favourite band is Muse. | My favourite band is Radiohead these days.
I go to the gym on Mondays. | I no longer go to the gym.
I work as a teacher. | I work as a nurse now.
I support Arsenal. | I support Chelsea now.
My address is 12 Oak Street. | My address is now 4 Elm Road.
I live with my parents. | I don't live with my parents anymore.
My shoe size is 38. | My shoe size is 39.
My car is a red Golf. | My car is now a blue Polo.
My daughter goes to Oak Primary. | My daughter switched from Oak Primary to Elm Primary.
My doctor is Dr. Silva. | My new doctor is Dr. Costa.
I weigh 70 kg. | I weigh 65 kg now.
I drink tea. | I don't drink tea anymore.
I'm married. | I'm divorced now.
I eat meat. | I don't eat meat anymore.
My landlord is Mr. Brown. | My landlord is Mrs. Green now.
I run every morning. | I used to run every morning.
My password hint is tulip. | My password hint is now daisy.
I'm a member of the chess club. | I'm no longer a member of the chess club.
My team uses Jira. | My team switched from Jira to Linear.
I rent a flat in Porto. | I don't rent in Porto anymore.
My gym is open until 9 pm. | My gym is open until 10 pm now.
""")

MERGE = _cases("merge", """
I love hiking. | I really love hiking!
I live in Berlin. | I'm still living in Berlin.
My partner's name is Sam. | My partner is called Sam.
I'm allergic to peanuts. | I am allergic to peanuts.
I work at Google. | I'm working at Google.
My favourite food is sushi. | My favorite food is sushi!
I have two kids. | I have 2 kids.
I play the guitar. | I play guitar.
I'm a vegetarian. | I am vegetarian.
I enjoy painting landscapes. | I really enjoy painting landscapes.
My sister lives in Madrid. | My sister still lives in Madrid.
I drink coffee every morning. | Every morning I drink coffee.
I'm afraid of spiders. | I am really afraid of spiders.
My dog is called Rex. | My dog's name is Rex.
I'm from Portugal. | I am from Portugal.
I hate cold weather. | I really hate cold weather.
Tom is my best friend. | My best friend is Tom.
I'm learning Japanese. | I am learning Japanese at the moment.
I volunteer at the animal shelter. | I volunteer at an animal shelter.
My birthday is on 5 May. | My birthday is on 5 May!
I prefer tea over coffee. | I really prefer tea over coffee.
I'm training for a marathon. | I'm currently training for a marathon.
My favourite movie is Alien. | Alien is my favourite movie.
I go swimming on Fridays. | I usually go swimming on Fridays.
My brother works as an architect. | My brother is working as an architect.
""")

REFINE = _cases("refine", """
I have a dog. | I have a dog named Rex.
I play the piano. | I play the piano every evening.
I'm learning Spanish. | I'm learning Spanish for my trip to Peru.
My sister lives in Madrid. | My sister Eva lives in Madrid.
I like jazz. | I like jazz, especially Miles Davis.
I have a cat. | I have a black cat called Luna.
I'm reading a book. | I'm reading a book about Rome.
I went to Paris. | I went to Paris with Tom.
I collect stamps. | I collect stamps from Japan.
My son plays football. | My son plays football for the school team.
I volunteer at a shelter. | I volunteer at a shelter every Saturday.
I bake bread. | I bake sourdough bread on weekends.
""")

CASES: list[Case] = COEXIST + SUPERSEDE + MERGE + REFINE
