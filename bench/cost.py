"""Prompt-cache cost of a scripted 50-turn session: tiermem vs full history vs mem0-style.

    python -m bench.cost [--turns 50] [--model claude-sonnet-4-5] [--seconds-between-turns 40]

Every request is the one each strategy would send. A simulated provider cache serves a
prefix only if it is byte-identical up to a `cache_control` breakpoint, at least the
model's minimum length, and written within the TTL (5 minutes, refreshed on every hit).
Input is priced with Anthropic's multipliers: uncached 1.0, cache write 1.25, cache read
0.1 (per input token, relative to the base price). Token counts are characters / 4 for
every strategy.

Strategies:
  tiermem       Memory.context(): system + baked profile (breakpoint), summary, recent
                turns (breakpoint on the last), memory block + new message.
  full-history  the system prompt (breakpoint) and every earlier turn (breakpoint on the
                last), then the new message: the usual incremental caching.
  mem0-style    retrieved facts placed in the system prompt every turn (breakpoint after
                them), the last 6 turns and the new message.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder
from tiermem.inject import cache_min_tokens

from ._common import count_tokens, save

PRICE = {"input": 1.0, "write": 1.25, "read": 0.1}
TTL_S = 300
LOOKBACK_BLOCKS = 20

SYSTEM = (
    "You are Atlas, a meticulous personal travel and lifestyle assistant. "
    + " ".join(
        f"Rule {i}: when the user asks about {topic}, check what you remember about them first, cite the "
        f"remembered detail briefly, and keep answers under 150 words unless asked for more."
        for i, topic in enumerate(
            ["flights", "hotels", "restaurants", "packing", "weather", "budgets", "visas", "local customs",
             "museums", "hiking routes", "trains", "car rental", "insurance", "festivals", "markets", "gifts",
             "languages", "currency", "safety", "photography", "food allergies", "dietary needs", "nightlife",
             "family trips", "business travel", "accessibility", "pets", "sports", "shopping", "wellness"], 1)
    )
)

USER_LINES = [
    "Hi! I'm Ana, I live in Lisbon and I work as a product designer.",
    "I'm vegetarian, and my favorite cuisine is Japanese.",
    "I love hiking in the mountains, especially in autumn.",
    "Can you suggest a weekend trip from Lisbon?",
    "I went to Porto last weekend for a food festival.",
    "My sister Lena lives in Munich and I visit her every winter.",
    "What should I pack for a cold trip?",
    "I'm allergic to peanuts, so airline snacks are tricky for me.",
    "I usually travel with a small carry-on only.",
    "Any tips for cheap flights to Munich?",
    "I moved to Berlin last week!",
    "I now work at Zalando, the office is in Friedrichshain.",
    "What are good vegetarian restaurants near me?",
    "I'm planning a trip to the Alps next month.",
    "Which hiking routes would you recommend there?",
]


@dataclass
class SimulatedCache:
    """Prefix cache: key = hash of everything up to a breakpoint; value = expiry time."""

    min_tokens: int
    entries: dict[str, float] = field(default_factory=dict)

    def serve(self, blocks: Sequence[tuple[str, bool]], now: float) -> dict[str, int]:
        """blocks: (text, breakpoint after it). Returns tokens uncached / written / read.

        Like the provider, a lookup at a breakpoint also tries the block boundaries up to
        20 blocks before it, so a conversation that grows by a turn still hits the prefix
        the previous request wrote.
        """
        total = sum(count_tokens(t) for t, _ in blocks)
        digest = hashlib.sha256()
        boundaries: list[tuple[str, int]] = []  # (key, tokens) after every block
        breakpoints: list[int] = []
        tokens = 0
        for i, (text, breakpoint) in enumerate(blocks):
            digest.update(text.encode() + b"\x00")
            tokens += count_tokens(text)
            boundaries.append((digest.hexdigest(), tokens))
            if breakpoint:
                breakpoints.append(i)
        read = 0
        for bp in breakpoints:
            for key, length in boundaries[max(0, bp - LOOKBACK_BLOCKS): bp + 1]:
                if length >= self.min_tokens and self.entries.get(key, -1) >= now and length > read:
                    read = length
                    self.entries[key] = now + TTL_S
        written = 0
        for bp in breakpoints:
            key, length = boundaries[bp]
            if length >= self.min_tokens and length > read:
                written = length - read
                self.entries[key] = now + TTL_S
        return {"uncached": total - read - written, "written": written, "read": read, "total": total}


def cost(served: dict[str, int]) -> float:
    return served["uncached"] * PRICE["input"] + served["written"] * PRICE["write"] + served["read"] * PRICE["read"]


def script(turns: int) -> list[tuple[str, str]]:
    out = []
    for i in range(turns):
        user = USER_LINES[i % len(USER_LINES)] if i < len(USER_LINES) else f"{USER_LINES[i % len(USER_LINES)]} (again, round {i // len(USER_LINES)})"
        reply = f"Here is my answer to turn {i}: " + "a short, practical suggestion with two concrete options and one caveat. " * 3
        out.append((user, reply))
    return out


def blocks_of(system: Sequence[dict[str, Any]], messages: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    out = [(b["text"], "cache_control" in b) for b in system]
    for m in messages:
        content = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        out += [(f"{m['role']}:{c['text']}", "cache_control" in c) for c in content]
    return out


def run(turns: int, model: str, seconds_between: float, embedder: Embedder) -> dict[str, Any]:
    minimum = cache_min_tokens(model)
    caches = {name: SimulatedCache(minimum) for name in ("tiermem", "full-history", "mem0-style")}
    history: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tiermem-cost-") as home:
        mem = Memory.open(home, embedder=embedder, model=model)
        try:
            for i, (user, reply) in enumerate(script(turns)):
                now = i * seconds_between
                ctx = mem.context(user, user_id="ana", session_id="s", system=SYSTEM, budget=8000)
                requests = {
                    "tiermem": blocks_of(ctx.system, ctx.messages),
                    "full-history": blocks_of([{"text": SYSTEM, "cache_control": {}}],
                                              _with_last_breakpoint(history) + [{"role": "user", "content": user}]),
                    "mem0-style": blocks_of(
                        [{"text": SYSTEM + "\nMemories:\n" + "\n".join(h.fact.text for h in mem.search(user, user_id="ana", limit=10)),
                          "cache_control": {}}],
                        history[-6:] + [{"role": "user", "content": user}],
                    ),
                }
                for name, blocks in requests.items():
                    served = caches[name].serve(blocks, now)
                    rows.append({"turn": i + 1, "system": name, **served, "cost": cost(served)})
                mem.add([{"role": "user", "content": user, "name": "Ana"}, {"role": "assistant", "content": reply}],
                        user_id="ana", session_id="s")
                history += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        finally:
            mem.close()
    summary = {}
    for name in caches:
        mine = [r for r in rows if r["system"] == name]
        total = sum(r["total"] for r in mine)
        summary[name] = {
            "input_tokens": total,
            "cache_read_share": round(sum(r["read"] for r in mine) / total, 4) if total else 0.0,
            "cost_units": round(sum(r["cost"] for r in mine), 1),
            "cost_per_turn": round(sum(r["cost"] for r in mine) / len(mine), 1),
            "last_turn_cost": round(mine[-1]["cost"], 1),
        }
    return {"parameters": {"turns": turns, "model": model, "cache_min_tokens": minimum, "ttl_s": TTL_S,
                           "seconds_between_turns": seconds_between, "prices": PRICE, "token_counter": "chars/4",
                           "embedder": embedder.name},
            "summary": summary, "per_turn": rows}


def run_client(turns: int, model: str, embedder: Embedder) -> dict[str, Any]:
    """The same session through `MemoryClient` and the real anthropic SDK, against the fake
    Messages API (`tiermem.testing.FakeAnthropic`), whose prefix cache
    follows the same rules; its usage fields are what is summed here."""
    from tiermem.adapters.anthropic import MemoryClient
    from tiermem.testing import FakeAnthropic, Reply

    lines = script(turns)
    answers = iter(reply for _, reply in lines)
    with tempfile.TemporaryDirectory(prefix="tiermem-cost-client-") as home, \
            FakeAnthropic(lambda body: Reply(next(answers)), cache_minimum=lambda m: cache_min_tokens(m)) as fake:
        mem = Memory.open(home, embedder=embedder, model=model)
        try:
            chat = MemoryClient(fake.client(), mem)
            for user, _ in lines:
                chat.messages.create(model=model, max_tokens=1024, user_id="ana", session_id="s", system=SYSTEM,
                                     messages=[{"role": "user", "content": user, "name": "Ana"}])
            ours = mem.usage(user_id="ana").total
        finally:
            mem.close()
        rows = fake.reported
    uncached = sum(r.input_tokens for r in rows)
    written = sum(r.cache_creation_input_tokens for r in rows)
    read = sum(r.cache_read_input_tokens for r in rows)
    total = uncached + written + read
    units = uncached * PRICE["input"] + written * PRICE["write"] + read * PRICE["read"]
    last = rows[-1]
    return {"input_tokens": total, "cache_read_share": round(read / total, 4) if total else 0.0,
            "cost_units": round(units, 1), "cost_per_turn": round(units / len(rows), 1),
            "last_turn_cost": round(last.input_tokens * PRICE["input"] + last.cache_creation_input_tokens * PRICE["write"]
                                    + last.cache_read_input_tokens * PRICE["read"], 1),
            "recorded_by_tiermem_equals_server": (ours.input_tokens, ours.cache_read) == (uncached, read)}


def _with_last_breakpoint(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not history:
        return []
    out = [dict(m) for m in history]
    out[-1] = {"role": out[-1]["role"], "content": [{"type": "text", "text": out[-1]["content"], "cache_control": {}}]}
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in result["summary"]:
        rows = [r for r in result["per_turn"] if r["system"] == name]
        ax.plot([r["turn"] for r in rows], [r["cost"] for r in rows], label=name)
    ax.set_xlabel("turn")
    ax.set_ylabel("input cost (uncached-token units)")
    ax.set_title(f"Input cost per turn, {result['parameters']['model']} cache rules")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--model", default="claude-sonnet-4-5")
    parser.add_argument("--seconds-between-turns", type=float, default=40.0)
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--through-client", action="store_true",
                        help="also run the session through MemoryClient against the fake Messages API (a checkout)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--name", default="cost")
    args = parser.parse_args(argv)
    embedder: Embedder = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder(64)
    result = run(args.turns, args.model, args.seconds_between_turns, embedder)
    if args.through_client:
        result["summary"]["tiermem (MemoryClient, fake API)"] = run_client(args.turns, args.model, embedder)
    print(f"{'strategy':<36}{'input tokens':>14}{'from cache':>12}{'cost units':>12}{'per turn':>10}{'last turn':>11}")
    for name, s in result["summary"].items():
        print(f"{name:<36}{s['input_tokens']:>14,}{s['cache_read_share']:>12.1%}{s['cost_units']:>12,.0f}"
              f"{s['cost_per_turn']:>10,.0f}{s['last_turn_cost']:>11,.0f}")
    save(args.name, result, args.out, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SimulatedCache", "main", "run"]
