"""BEAM retrieval benchmark: tiermem against raw-turn baselines, per ability, in one run.

    python -m bench.beam --data ../shared/data/beam [--tiers 100K 500K] [--conversations 1 2]
                         [--budgets 1000 2000] [--assistant-name NAME] [--save NAME]

BEAM ("Beyond a Million Tokens") conversations are long chats between a user and an
assistant about one project, with 20 probing questions each (2 per ability). Every
conversation is ingested session by session through `Memory.add` under a user of its own
(message id = the dataset's turn id, `at` = the batch's time anchor plus a minute per
session); each question is searched and the results packed first-fit into each budget
(chars/4, the LoCoMo benchmark's packing); evidence recall counts the question's source turns
among the packed sources. The raw-turn baselines (dense MiniLM, BM25, their RRF fusion) see
the same turns, rendered "role: text", packed the same way.

Two figures besides recall:
- knowledge_update: `update_hit` (the updated turn is packed) and `stale` (the original is
  packed without the update: a reader would answer with the old value);
- contradiction_resolution: `both` (both statements packed).

Ingest time is reported next to the time the same embedder takes to embed every raw turn
once in the same run. `--assistant-name` sends the assistant's turns with a name, as agent
frameworks do (`{"role": "assistant", "name": ...}`): the assistant is the model either way.
Abstention questions have no evidence and are left out of recall.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tiermem import Embedder, Memory

from ._common import embedder_named, pack, percentile, progress, timer, write_results
from .locomo import Ranked, RawTurn, RawTurnBaselines, tiermem_ranked

SYSTEMS = ("tiermem", "dense-turns", "bm25-turns", "rrf-turns")
_MARKER = re.compile(r"\s*->->\s*\d+\s*,\s*\d+\s*$")  # the dataset's ' ->-> batch,n' turn marker


def _anchor(text: str | None, fallback: datetime) -> datetime:
    if not text:
        return fallback
    for fmt in ("%B-%d-%Y", "%b-%d-%Y", "%B %d, %Y"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return fallback


class Conversation:
    """One BEAM conversation: sessions of turns with their times, and its probing questions."""

    def __init__(self, folder: Path):
        self.id = f"{folder.parent.name}-{folder.name}"
        self.tier = folder.parent.name
        self.sessions: list[tuple[str, datetime, list[RawTurn]]] = []
        at = datetime(2024, 1, 1)
        for batch in json.loads((folder / "chat.json").read_text()):
            at = _anchor(batch.get("time_anchor"), at)
            for n, session in enumerate(batch["turns"]):
                when = at + timedelta(minutes=n)
                turns = [RawTurn(str(t["id"]), str(t["role"]), _MARKER.sub("", str(t["content"])).strip(), when)
                         for t in session if str(t.get("content", "")).strip()]
                self.sessions.append((f"b{batch['batch_number']}-s{n}", when, turns))
            at += timedelta(days=1)
        questions = json.loads((folder / "probing_questions" / "probing_questions.json").read_text())
        self.questions: list[dict[str, Any]] = [{**q, "ability": ability} for ability, items in questions.items()
                                                for q in items]

    @property
    def turns(self) -> list[RawTurn]:
        return [t for _, _, turns in self.sessions for t in turns]


def evidence(question: dict[str, Any]) -> dict[str, set[str]]:
    """The question's source turns by part ('all', and for the abilities that have them the
    original/updated or first/second statements)."""
    ids = question.get("source_chat_ids") or []
    parts: dict[str, set[str]] = {}
    if isinstance(ids, dict):
        for part, values in ids.items():
            parts[part] = {str(v) for v in (values if isinstance(values, list) else [values])}
    else:
        parts["all"] = {str(v) for v in ids}
    parts["all"] = set().union(*parts.values()) if parts else set()
    return parts


def ingest(mem: Memory, conv: Conversation, assistant_name: str | None) -> float:
    start = time.perf_counter()
    for session_id, at, turns in conv.sessions:
        messages = []
        for t in turns:
            message: dict[str, Any] = {"role": t.speaker, "content": t.text, "id": f"{conv.id}:{t.dia_id}"}
            if t.speaker == "assistant" and assistant_name:
                message["name"] = assistant_name
            messages.append(message)
        if messages:
            mem.add(messages, user_id=conv.id, session_id=session_id, at=at)
    return time.perf_counter() - start


def _scored(question: dict[str, Any], sources: set[str], conv: Conversation) -> dict[str, Any]:
    parts = {k: {f"{conv.id}:{i}" for i in v} for k, v in evidence(question).items()}
    every = parts["all"]
    row: dict[str, Any] = {"evidence_recall": len(every & sources) / len(every) if every else None}
    if question["ability"] == "knowledge_update" and "updated_info" in parts:
        hit = bool(parts["updated_info"] & sources)
        row |= {"update_hit": hit, "stale": bool(parts.get("original_info", set()) & sources) and not hit}
    if question["ability"] == "contradiction_resolution" and "first_statement" in parts:
        row["both"] = bool(parts["first_statement"] & sources) and bool(parts.get("second_statement", set()) & sources)
    return row


def run(conversations: Sequence[Conversation], budgets: Sequence[int], embedder: Embedder,
        assistant_name: str | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    latency: dict[str, list[float]] = defaultdict(list)
    ingest_seconds = embed_seconds = 0.0
    turns_total = 0
    with tempfile.TemporaryDirectory(prefix="tiermem-beam-") as home:
        with Memory.open(Path(home) / "tiermem", embedder=embedder, extraction="inline", share=False) as mem:
            for conv in progress(conversations, desc="conversations"):
                ingest_seconds += ingest(mem, conv, assistant_name)
                turns_total += len(conv.turns)
                started = time.perf_counter()
                raw = RawTurnBaselines([RawTurn(f"{conv.id}:{t.dia_id}", t.speaker, t.text, t.at) for t in conv.turns],
                                       embedder)  # embeds every raw turn once
                embed_seconds += time.perf_counter() - started
                systems: dict[str, Callable[[str], Ranked]] = {
                    "tiermem": tiermem_ranked(mem, conv.id, 300), "dense-turns": raw.dense,
                    "bm25-turns": raw.bm25, "rrf-turns": raw.fusion}
                for question in conv.questions:
                    if not evidence(question)["all"]:
                        continue  # abstention: nothing to find
                    for name, system in systems.items():
                        with timer(latency[name]):
                            ranked = list(system(str(question["question"])))
                        for budget in budgets:
                            _, sources, used = pack(ranked, budget)
                            rows.append({"conversation": conv.id, "tier": conv.tier, "ability": question["ability"],
                                         "system": name, "budget": budget, "tokens": used,
                                         **_scored(question, set(sources), conv)})
    return {
        "parameters": {"conversations": [c.id for c in conversations], "budgets": list(budgets),
                       "embedder": embedder.name, "token_counter": "chars/4", "assistant_name": assistant_name},
        "summary": summarize(rows),
        "latency_ms": {k: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)} for k, v in latency.items()},
        "ingest": {"turns": turns_total, "seconds": round(ingest_seconds, 1),
                   "embed_raw_turns_seconds": round(embed_seconds, 1),
                   "ratio_to_embedding": round(ingest_seconds / embed_seconds, 2) if embed_seconds else None},
        "rows": rows,
    }


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        for ability in ("all", r["ability"]):
            groups[(r["system"], r["budget"], ability)].append(r)
    out = []
    for (system, budget, ability), items in sorted(groups.items()):
        row: dict[str, Any] = {"system": system, "budget": budget, "ability": ability, "questions": len(items),
                               "evidence_recall": round(sum(i["evidence_recall"] for i in items) / len(items), 4)}
        for flag in ("update_hit", "stale", "both"):
            flagged = [i[flag] for i in items if flag in i]
            if flagged:
                row[flag] = round(sum(flagged) / len(flagged), 4)
        out.append(row)
    return out


def print_table(result: dict[str, Any]) -> None:
    summary = result["summary"]
    abilities = sorted({r["ability"] for r in summary} - {"all"})
    by_key = {(r["system"], r["budget"], r["ability"]): r for r in summary}
    for budget in result["parameters"]["budgets"]:
        print(f"\nevidence recall at {budget} tokens")
        print(f"{'system':<12}" + "".join(f"{a[:10]:>11}" for a in ["all", *abilities]))
        for system in SYSTEMS:
            print(f"{system:<12}" + "".join(f"{by_key[(system, budget, a)]['evidence_recall']:>11.3f}"
                                            if (system, budget, a) in by_key else f"{'-':>11}" for a in ["all", *abilities]))
        for system in SYSTEMS:
            ku = by_key.get((system, budget, "knowledge_update"), {})
            cr = by_key.get((system, budget, "contradiction_resolution"), {})
            print(f"  {system:<12} update_hit {ku.get('update_hit', 0):.2f}  stale {ku.get('stale', 0):.2f}  "
                  f"contradiction both {cr.get('both', 0):.2f}")
    ingest = result["ingest"]
    print(f"\ningest: {ingest['turns']} turns in {ingest['seconds']} s; embedding every raw turn once: "
          f"{ingest['embed_raw_turns_seconds']} s ({ingest['ratio_to_embedding']}x)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.beam", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the BEAM folder (with 100K/ and 500K/)")
    parser.add_argument("--tiers", nargs="+", default=["100K"])
    parser.add_argument("--conversations", nargs="+", help="only these conversation folders (e.g. 1 2)")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 2000])
    parser.add_argument("--assistant-name", help="send the assistant's turns with this name")
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--save", metavar="NAME", help="also write the result (every row) to bench/results/NAME.json")
    args = parser.parse_args(argv)
    folders = [f for tier in args.tiers for f in sorted((args.data / tier).iterdir(), key=lambda p: p.name)
               if f.is_dir() and (not args.conversations or f.name in args.conversations)]
    if not folders:
        parser.error(f"no conversations under {args.data} for tiers {args.tiers}")
    embedder: Embedder = embedder_named(args.embedder)
    result = run([Conversation(f) for f in folders], args.budgets, embedder, args.assistant_name)
    print_table(result)
    if args.save:
        print(f"written: {write_results(args.save, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
