"""The README's quickstart, runnable: `python examples/quickstart.py` (memory in $TIERMEM_HOME or ./.tiermem)."""

from datetime import datetime

from tiermem import Memory

with Memory.open() as mem:
    mem.add([{"role": "user", "content": "I live in Lisbon and I love hiking.", "name": "Ana", "id": "m-1"}],
            user_id="ana", session_id="s-1", at=datetime(2024, 3, 4, 9, 30))
    res = mem.add(
        [{"role": "user", "content": "I moved to Berlin last week", "name": "Ana", "id": "m-17"}],
        user_id="ana", session_id="s-3", at=datetime(2024, 5, 2, 18, 0),
    )
    print([e.op for e in res.events])  # ['invalidate', 'add']: Lisbon is kept, as history
    print(res.events[-1].fact.text)  # Ana moved to Berlin in the week before 2 May 2024.

    hits = mem.search("where does Ana live?", user_id="ana", limit=3)
    print(hits[0].fact.text, hits[0].explain)

    ctx = mem.context("what should I pack for a hiking trip?", user_id="ana", session_id="s-4",
                      system="You are a travel assistant.", budget=8000)
    print(ctx.system)  # system prompt + the user's profile, closed with cache_control
    print(ctx.messages[-1])  # the memory block, then the new message
    print(ctx.report.tokens, ctx.report.notes)

    lisbon = next(f for f in mem.facts(user_id="ana", include_invalid=True) if "Lisbon" in f.text)
    print([e.op for e in mem.history(lisbon.id)])  # ['add', 'invalidate']
