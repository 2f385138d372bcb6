"""Reconciliation benchmark: what the write path does with pairs of statements.

    python -m bench.reconcile [--embedder minilm|hash] [--reconciler rules|claude] [--show-misses]

Each case of `bench.reconcile_suite` gets its own user: the first sentence is added, then the
second (a day later), both through `Memory.add` with the offline rule extractor, so the
extraction, the neighbour search and the reconciler are all measured together. Per class it
prints how often the first fact was kept beside the second, replaced (invalidated, kept as
history) or merged (the second became a mention or a refinement of it), and separately the
**facts lost**: a valid fact invalidated by a statement about something else.

`--reconciler claude` runs the same suite through `ClaudeReconciler` against the fake
Messages API (`tiermem.testing.FakeAnthropic`), whose scripted judge answers from the
suite's labels: it shows that the model path is wired (questions asked, verdicts applied),
not how good a model is.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tiermem import Embedder, Memory

from ._common import embedder_named
from .reconcile_suite import CASES, Case

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
OUTCOMES = ("kept", "replaced", "merged", "no fact")
EXPECTED = {"coexist": "kept", "supersede": "replaced", "merge": "merged", "refine": "merged"}


def outcome(mem: Memory, user: str, case: Case) -> tuple[str, list[str], list[str]]:
    """Add the two sentences; returns (outcome, the first's facts, the facts after)."""
    mem.add([{"role": "user", "content": case.first, "name": "Ana"}], user_id=user, at=T0)
    first = [f for f in mem.facts(user_id=user) if f.is_valid]
    result = mem.add([{"role": "user", "content": case.second, "name": "Ana"}], user_id=user, at=T0 + timedelta(days=1))
    after = {f.id: f for f in mem.facts(user_id=user, include_invalid=True)}
    texts = [f.text for f in first]
    now = [f.text for f in after.values() if f.is_valid]
    if not first:
        return "no fact", texts, now
    if any(not after[f.id].is_valid for f in first):
        return "replaced", texts, now
    touched = {e.fact_id for e in result.events if e.op in ("update", "noop")}
    added = [e for e in result.events if e.op == "add" and e.fact is not None and e.fact.is_valid]
    if any(f.id in touched for f in first) and not added:
        return "merged", texts, now
    return "kept", texts, now


def run(open_memory: Callable[[str], Memory], cases: Sequence[Case] = CASES) -> dict[str, Any]:
    """Run every case; returns the table per class, the lost facts and the misses."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tiermem-reconcile-") as home:
        mem = open_memory(home)
        try:
            for i, case in enumerate(cases):
                got, first, after = outcome(mem, f"case-{i:03d}", case)
                table[case.cls][got] += 1
                if got != EXPECTED[case.cls] and not (case.cls == "refine" and got == "kept"):
                    misses.append({"class": case.cls, "first": case.first, "second": case.second, "got": got,
                                   "facts_before": first, "facts_after": after})
            verdicts = dict(getattr(mem.writes.reconciler, "stats", {}))  # a model judge's decisions
        finally:
            mem.close()
    lost = table["coexist"]["replaced"]
    summary = {
        cls: {**{o: table[cls][o] for o in OUTCOMES}, "cases": sum(table[cls].values())} for cls in EXPECTED
    }
    return {"classes": summary, "facts_lost": lost, "misses": misses, "judge_verdicts": verdicts,
            "updates_replaced": _share(table["supersede"], "replaced"),
            "restatements_merged": _share(table["merge"], "merged"),
            "refinements_merged": _share(table["refine"], "merged"),
            "coexisting_kept": _share(table["coexist"], "kept")}


def _share(counts: Counter[str], key: str) -> float:
    total = sum(counts.values())
    return counts[key] / total if total else 0.0


def print_table(result: dict[str, Any], out: Any = sys.stdout) -> None:
    print(f"{'class':<10} {'cases':>5} {'kept':>6} {'replaced':>9} {'merged':>7} {'no fact':>8}   expected", file=out)
    for cls, row in result["classes"].items():
        print(f"{cls:<10} {row['cases']:>5} {row['kept']:>6} {row['replaced']:>9} {row['merged']:>7} {row['no fact']:>8}"
              f"   {EXPECTED[cls]}", file=out)
    print(f"facts lost (a valid fact invalidated by a statement about something else): {result['facts_lost']}", file=out)
    print(f"updates replaced {result['updates_replaced']:.0%} (target >= 85%), restatements merged "
          f"{result['restatements_merged']:.0%} (target >= 90%), refinements merged {result['refinements_merged']:.0%}, "
          f"coexisting pairs kept {result['coexisting_kept']:.0%}", file=out)


def oracle_judge(cases: Sequence[Case]) -> Callable[[dict], Any]:
    """A scripted judge for the fake Messages API: it answers each question from the suite's
    label of the case whose second sentence the candidate came from. Wiring, not quality."""
    from tiermem.testing import Reply

    verdicts = {"coexist": "unrelated", "supersede": "contradicts", "merge": "same", "refine": "update"}
    by_word: list[tuple[set[str], str]] = [(set(re.findall(r"[a-z0-9]+", c.second.lower())), c.cls) for c in cases]

    def respond(body: dict) -> Any:
        prompt = body["messages"][-1]["content"]
        prompt = prompt if isinstance(prompt, str) else " ".join(b.get("text", "") for b in prompt)
        decisions = []
        for m in re.finditer(r"^NEW (\d+): (.*)$\n((?:^ *STORED .*$\n?)*)", prompt, re.M):
            words = set(re.findall(r"[a-z0-9]+", m.group(2).lower()))
            cls = max(by_word, key=lambda item: len(item[0] & words))[1]
            stored = re.findall(r"STORED (f[\d.]+):", m.group(3))
            decision = verdicts[cls] if stored else "unrelated"
            decisions.append({"candidate": int(m.group(1)), "decision": decision,
                              "fact": stored[0] if stored and decision != "unrelated" else None, "reason": "scripted"})
        payload = {"decisions": decisions}
        if body.get("tool_choice"):
            return Reply(tool_input=payload, stop_reason="tool_use")
        return Reply(json.dumps(payload))

    return respond


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--reconciler", choices=["rules", "claude"], default="rules")
    parser.add_argument("--show-misses", action="store_true", help="print each case that did not get its expected outcome")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    args = parser.parse_args(argv)
    embedder: Embedder = embedder_named(args.embedder)
    print(f"{len(CASES)} cases through Memory.add (rules extractor, {args.reconciler} reconciler, {embedder.name})",
          file=sys.stderr)
    if args.reconciler == "claude":
        from tiermem.testing import FakeAnthropic

        with FakeAnthropic(oracle_judge(CASES)) as fake:
            result = run(lambda home: Memory.open(home, embedder=embedder, reconciler="claude",
                                                  anthropic_client=fake.client(), extraction="inline"))
            result["model_calls"] = fake.totals()["responses"]
    else:
        result = run(lambda home: Memory.open(home, embedder=embedder))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_table(result)
    if "model_calls" in result:
        print(f"model calls answered by the fake Messages API: {result['model_calls']}; the judge's verdicts: "
              f"{result['judge_verdicts']}")
    if args.show_misses:
        for miss in result["misses"]:
            print(f"\n[{miss['class']} -> {miss['got']}] {miss['first']!r} then {miss['second']!r}")
            print(f"    before: {miss['facts_before']}\n    after:  {miss['facts_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
