"""Operations benchmark: does the write path do what each new statement asks of memory?

    python -m bench.operations [--half tune|check|both] [--embedder minilm|hash] [--show-misses] [--json]

Every case of `bench.operations_suite` (families of wordings x subjects x values; see its
docstring) gets its own user, who first says four background statements, then A, then B
twenty days later, through `Memory.add` with the offline rule extractor. Each case is scored
on what is stored and what comes back, the way HaluMem scores memory operations:

- correct: the operation happened (a change or an ending: A is no longer valid and the new
  truth answers the question first; a forget request: nothing valid, searched or paged in
  still holds the secret, and the request is no fact; a control: nothing changed);
- stale (an omission): what A said is still valid, searched or paged in;
- wrong (a hallucinated change): a fact that B does not touch was invalidated, the request
  itself was stored as a fact, or the new truth is missing.

The suite's families are split into a tune half and a check half before any rule was written
(`operations_suite._halves`); the rules were written looking at the tune half's misses only.
Report both halves: the check half is the number that says whether the rules generalize.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tiermem import Embedder, Fact, Memory

from ._common import embedder_named
from .operations_suite import BACKGROUND, CASES, OPERATIONS, Case

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
SPEAKER = "Robin"
OUTCOMES = ("correct", "stale", "wrong")


def _holds(fact: Fact, words: str) -> bool:
    return bool(words) and words.lower() in fact.text.lower()


def score(mem: Memory, user: str, case: Case) -> tuple[str, str, dict[str, Any]]:
    """Run one case; returns (outcome, why, what was stored)."""
    def say(text: str, session: str, at: datetime) -> set[str]:
        result = mem.add([{"role": "user", "name": SPEAKER, "content": text}], user_id=user, session_id=session, at=at)
        return {t.ref for t in result.turns}

    mem.add([{"role": "user", "name": SPEAKER, "content": s} for s in BACKGROUND], user_id=user, session_id="s0",
            at=T0 - timedelta(days=30))
    first = say(case.first, "s1", T0)
    second = say(case.second, "s2", T0 + timedelta(days=20))
    mem.flush()
    facts = mem.facts(user_id=user, include_invalid=True)
    from_a = [f for f in facts if set(f.sources) & first]
    from_b = [f for f in facts if set(f.sources) & second and f.is_valid]
    background = [f for f in facts if not set(f.sources) & (first | second)]
    valid = [f for f in facts if f.is_valid]
    hits = mem.search(case.question, user_id=user, limit=5)
    top = hits[0].fact if hits else None
    seen = {"A": [f.text for f in from_a if f.is_valid], "B": [f.text for f in from_b],
            "top": top.text if top else None}
    if any(not f.is_valid for f in background):
        return "wrong", "a background fact was invalidated", seen
    if case.op in ("other", "lookalike"):
        if any(not f.is_valid for f in from_a) or not from_a:
            return "wrong", "A was invalidated (or never stored)", seen
        return "correct", "", seen
    if case.op == "forget":
        ctx = mem.context(case.question, user_id=user, session_id="probe", budget=4000)
        paged = json.dumps(ctx.system) + json.dumps([m for m in ctx.messages])
        if any(_holds(f, case.secret) for f in valid):
            return "stale", "the secret is still valid", seen
        if any(_holds(h.fact, case.secret) for h in hits):
            return "stale", "the secret is still searched", seen
        if case.secret.lower() in paged.lower():
            return "stale", "the secret is paged in", seen
        if from_b:
            return "wrong", "the request was stored as a fact", seen
        return "correct", "", seen
    if case.op == "change":
        if any(_holds(f, case.old) and not _holds(f, case.new) for f in valid):
            return "stale", "the old value is still valid", seen
        if not any(_holds(f, case.new) for f in valid):
            return "wrong", "no valid fact holds the new value", seen
        if top is None or not _holds(top, case.new):
            return "wrong", "the new value does not answer the question first", seen
        return "correct", "", seen
    # end: A is over, and the news answers the question A answered.
    if any(f.is_valid for f in from_a):
        return "stale", "the ended state is still valid", seen
    if not any(_holds(f, case.new) for f in from_b):
        return "wrong", "the news was not stored", seen
    if top is None or top.id not in {f.id for f in from_b}:
        return "wrong", "the news does not answer the question first", seen
    return "correct", "", seen


def run(open_memory: Callable[[str], Memory], cases: Sequence[Case]) -> dict[str, Any]:
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    families: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tiermem-operations-") as home:
        mem = open_memory(home)
        try:
            for i, case in enumerate(cases):
                got, why, seen = score(mem, f"case-{i:03d}", case)
                table[(case.half, case.op)][got] += 1
                families[case.family][got] += 1
                if got != "correct":
                    misses.append({"half": case.half, "op": case.op, "family": case.family, "first": case.first,
                                   "second": case.second, "got": got, "why": why, **seen})
        finally:
            mem.close()
    halves: dict[str, Any] = {}
    for half in ("tune", "check"):
        rows = {op: {**{o: table[(half, op)][o] for o in OUTCOMES}, "cases": sum(table[(half, op)].values())}
                for op in OPERATIONS if table[(half, op)]}
        total = Counter[str]()
        for op in OPERATIONS:
            total.update(table[(half, op)])
        if rows:
            rows["all"] = {**{o: total[o] for o in OUTCOMES}, "cases": sum(total.values())}
            halves[half] = rows
    return {"halves": halves, "families": {f: dict(c) for f, c in sorted(families.items())}, "misses": misses}


def print_table(result: dict[str, Any], out: Any = sys.stdout) -> None:
    for half, rows in result["halves"].items():
        print(f"\n{half} half", file=out)
        print(f"{'operation':<10} {'cases':>5} {'correct':>8} {'stale':>6} {'wrong':>6}  accuracy", file=out)
        for op, row in rows.items():
            acc = row["correct"] / row["cases"] if row["cases"] else 0.0
            print(f"{op:<10} {row['cases']:>5} {row['correct']:>8} {row['stale']:>6} {row['wrong']:>6}  {acc:7.1%}",
                  file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=["tune", "check", "both"], default="both")
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--family", help="only the families whose name starts with this")
    parser.add_argument("--show-misses", action="store_true", help="print each case that was not correct")
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    args = parser.parse_args(argv)
    embedder: Embedder = embedder_named(args.embedder)
    cases = [c for c in CASES if args.half in ("both", c.half) and c.family.startswith(args.family or "")]
    print(f"{len(cases)} cases through Memory.add (rules extractor and reconciler, {embedder.name})", file=sys.stderr)
    started = time.perf_counter()
    result = run(lambda home: Memory.open(home, embedder=embedder, share=False), cases)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_table(result)
    if args.show_misses:
        for miss in result["misses"]:
            print(f"\n[{miss['half']} {miss['family']} -> {miss['got']}: {miss['why']}]\n  A: {miss['first']!r}\n"
                  f"  B: {miss['second']!r}\n  valid from A: {miss['A']}\n  from B: {miss['B']}\n  top: {miss['top']!r}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
