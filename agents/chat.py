"""A terminal chat agent with persistent memory per user, across runs.

    python agents/chat.py --user ana              # Claude (needs ANTHROPIC_API_KEY)
    python agents/chat.py --user ana --offline    # a scripted responder: watch the tiers, no key

Each turn prints what was paged in from long-term memory, the tokens per tier, and the
share of the request served from the provider's cache (offline: the share that would be).
Memory lives in $TIERMEM_HOME (default ./.tiermem); run it twice and it remembers.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from tiermem import Memory, MemoryAPI

SYSTEM = ("You are a friendly assistant with long-term memory. Use what you remember about the user when it helps, "
          "say so when you are unsure, and keep answers short.")


def show(report: Any, facts: list[Any], cache_share: float | None) -> None:
    tiers = ", ".join(f"{k} {v}" for k, v in report.tokens.items() if v)
    profile = report.tokens.get("profile", 0)
    print((f"  [memory] the profile ({profile} tokens, in the cached prefix) and " if profile else "  [memory] ")
          + f"{len(facts)} facts paged in" + "".join(f"\n    - {h.fact.text}" for h in facts[:5]))
    print(f"  [tokens] {tiers} (total {report.total})")
    if cache_share is not None:
        print(f"  [cache]  {cache_share:.0%} of the request's input read from cache")
    for d in report.dropped[:3]:
        print(f"  [dropped] {d.what}: {d.why}")


def offline_reply(message: str, hits: list[Any]) -> str:
    """A scripted responder: it answers a question with the best fact memory finds (the
    profile included), so the tiers can be seen working without a model."""
    if message.rstrip().endswith("?"):
        return f"(offline) From memory: {hits[0].fact.text}" if hits else "(offline) I don't remember that."
    return "(offline) Noted."


def run_offline(mem: MemoryAPI, user: str, session: str) -> None:
    for line in sys.stdin if not sys.stdin.isatty() else iter(lambda: input("you> "), None):
        message = line.strip()
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return
        ctx = mem.context(message, user_id=user, session_id=session, system=SYSTEM, budget=8000)
        reply = offline_reply(message, mem.search(message, user_id=user, limit=3))
        mem.add([{"role": "user", "content": message}, {"role": "assistant", "content": reply}], user_id=user,
                session_id=session)
        print(f"bot> {reply}")
        show(ctx.report, ctx.facts, None)
        r = ctx.report
        print(f"  [cache]  stable prefix {r.prefix_tokens} tokens: " + (
            "cacheable" if r.cacheable else f"below the model's cache minimum ({r.cache_min_tokens})"))


def run_claude(mem: MemoryAPI, user: str, session: str, model: str) -> None:
    import anthropic

    from tiermem.adapters.anthropic import MemoryClient

    chat = MemoryClient(anthropic.Anthropic(), mem)
    while True:
        try:
            message = input("you> ").strip()
        except EOFError:
            return
        if not message:
            continue
        if message in ("/quit", "/exit"):
            return
        reply = chat.messages.create(model=model, max_tokens=1024, user_id=user, session_id=session, system=SYSTEM,
                                     messages=[{"role": "user", "content": message}])
        print("bot> " + "".join(b.text for b in reply.content if b.type == "text"))
        report = chat.last_report
        if report is not None and report.context is not None:
            facts = mem.search(message, user_id=user, limit=5) if report.context.tokens.get("memory") else []
            show(report.context, facts, report.cache_read_share)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", required=True, help="whose memory (kept across runs)")
    parser.add_argument("--session", default="chat", help="the conversation id")
    parser.add_argument("--offline", action="store_true", help="a scripted responder instead of Claude")
    parser.add_argument("--model", default=os.environ.get("TIERMEM_CLAUDE_MODEL", "claude-haiku-4-5"))
    parser.add_argument("--home", default=None, help="memory folder (default $TIERMEM_HOME, else ./.tiermem)")
    parser.add_argument("--url", default=None, help="a `tiermem serve` to use instead of a folder (http://... or unix://...)")
    args = parser.parse_args(argv)
    offline = args.offline or not os.environ.get("ANTHROPIC_API_KEY")
    if offline and not args.offline:
        print("no ANTHROPIC_API_KEY: running the offline responder (pass --offline to say so)")
    with Memory.open(url=args.url) if args.url else Memory.open(args.home) as mem:
        print(f"memory for {args.user!r} in {mem.location}; /quit to leave")
        if offline:
            run_offline(mem, args.user, args.session)
        else:
            run_claude(mem, args.user, args.session, args.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
