"""LongMemEval_S retrieval benchmark: tiermem against raw-turn baselines, in one run.

    python -m bench.longmemeval --data PATH/longmemeval/s [--per-type N] [--budgets 500 1000 2000]

One question per file (LongMemEval's cleaned S variant): ~40 sessions, ~430 turns, ~115k
tokens of haystack each. Every haystack is ingested session by session through
`Memory.add` (message id = `<session id>:<turn number>`, `at` = the session's date) under a
user of its own; the question is searched, results are packed first-fit into each budget
(chars / 4, the LoCoMo benchmark's packing), and evidence recall counts the turns marked
`has_answer` among the packed sources. The raw-turn baselines (dense MiniLM, BM25, their
RRF fusion) see the same turns, rendered "speaker: text", packed the same way.

Ingest throughput is reported next to the time the same embedder takes to embed every raw
turn once in the same run (the baselines' own embedding pass): their ratio is what the
memory costs over indexing raw turns.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder, RuleExtractor

from ._common import pack, percentile, progress, timer, write_results
from .locomo import Ranked, RawTurn, RawTurnBaselines, answer_words, tiermem_ranked

SYSTEMS = ("tiermem", "dense-turns", "bm25-turns", "rrf-turns")


def parse_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y/%m/%d (%a) %H:%M")


class Question:
    """One LongMemEval instance: its haystack as sessions of turns, and what it asks."""

    def __init__(self, data: dict[str, Any]):
        self.id = str(data["question_id"])
        self.type = str(data["question_type"])
        self.question = str(data["question"])
        self.answer = data["answer"]
        self.sessions: list[tuple[str, datetime, list[RawTurn]]] = []
        self.evidence: set[str] = set()
        for session_id, date, turns in zip(data["haystack_session_ids"], data["haystack_dates"],
                                           data["haystack_sessions"], strict=True):
            at = parse_date(date)
            raw = []
            for n, turn in enumerate(turns):
                text = str(turn.get("content", "")).strip()
                if not text:
                    continue
                turn_id = f"{session_id}:{n}"
                raw.append(RawTurn(turn_id, str(turn["role"]), text, at))
                if turn.get("has_answer"):
                    self.evidence.add(turn_id)
            self.sessions.append((str(session_id), at, raw))

    @property
    def turns(self) -> list[RawTurn]:
        return [t for _, _, turns in self.sessions for t in turns]


def load(folder: Path, per_type: int | None) -> list[Question]:
    questions = [Question(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    if per_type is None:
        return questions
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for q in questions:
        if taken[q.type] < per_type:
            taken[q.type] += 1
            chosen.append(q)
    return chosen


def ingest(mem: Memory, q: Question) -> float:
    start = time.perf_counter()
    for session_id, at, turns in q.sessions:
        if turns:
            mem.add([{"role": t.speaker, "content": t.text, "id": t.dia_id} for t in turns],
                    user_id=q.id, session_id=session_id, at=at)
    return time.perf_counter() - start


def run(folder: Path, budgets: Sequence[int], embedder: Embedder, per_type: int | None,
        assistant_said: bool = False) -> dict[str, Any]:
    questions = load(folder, per_type)
    rows: list[dict[str, Any]] = []
    latency: dict[str, list[float]] = defaultdict(list)
    ingest_seconds = embed_seconds = 0.0
    turns_total = 0
    with tempfile.TemporaryDirectory(prefix="tiermem-longmemeval-") as home:
        extractor = RuleExtractor(assistant_said=assistant_said)
        with Memory.open(Path(home) / "tiermem", embedder=embedder, extractor=extractor, extraction="inline") as mem:
            for q in progress(questions, desc="questions"):
                ingest_seconds += ingest(mem, q)
                turns_total += len(q.turns)
                started = time.perf_counter()
                raw = RawTurnBaselines(q.turns, embedder)  # embeds every raw turn once
                embed_seconds += time.perf_counter() - started
                systems: dict[str, Callable[[str], Ranked]] = {
                    "tiermem": tiermem_ranked(mem, q.id, 300),
                    "dense-turns": raw.dense,
                    "bm25-turns": raw.bm25,
                    "rrf-turns": raw.fusion,
                }
                words = answer_words(q.answer)
                for name, system in systems.items():
                    with timer(latency[name]):
                        ranked = list(system(q.question))
                    for budget in budgets:
                        texts, sources, used = pack(ranked, budget)
                        packed = set(re.findall(r"[a-z0-9]+", " ".join(texts).lower()))
                        rows.append({
                            "question_id": q.id, "type": q.type, "system": name, "budget": budget,
                            "evidence_recall": len(q.evidence & sources) / len(q.evidence) if q.evidence else 0.0,
                            "answer_recall": len(words & packed) / len(words) if words else 0.0,
                            "tokens": used,
                        })
    return {
        "parameters": {"data": str(folder), "budgets": list(budgets), "embedder": embedder.name,
                       "questions": len(questions), "per_type": per_type, "token_counter": "chars/4",
                       "assistant_said": assistant_said},
        "summary": summarize(rows),
        "latency_ms": {k: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)} for k, v in latency.items()},
        "ingest": {"turns": turns_total, "seconds": ingest_seconds, "turns_per_s": turns_total / ingest_seconds if ingest_seconds else 0,
                   "embed_raw_turns_seconds": embed_seconds,
                   "ratio_to_embedding": ingest_seconds / embed_seconds if embed_seconds else None},
        "rows": rows,
    }


RECALL_QUESTIONS = ("Can you remind me which hiking trail you recommended?", "What was the ratio you told me for tea tree oil?",
                    "Which restaurant in Rome did you suggest?", "What did you say about the chess move after Kg2?")


def recall_scale(folder: Path, answers: int, embedder: Embedder, rounds: int = 5) -> dict[str, Any]:
    """What a question about the assistant's words costs for a user with `answers` long
    assistant replies (the haystacks' own, in order): the first recall (passages cut and
    tokenized) and later ones (cached per turn)."""
    texts = [t.text for q in load(folder, None) for t in q.turns if t.speaker == "assistant"][:answers]
    with tempfile.TemporaryDirectory(prefix="tiermem-recall-") as home, \
            Memory.open(Path(home) / "tiermem", embedder=embedder, extraction="inline") as mem:
        for start in range(0, len(texts), 100):
            mem.add([{"role": "assistant", "content": t} for t in texts[start:start + 100]], user_id="u",
                    session_id=f"s{start}")
        mem.search("where do I live", user_id="u", limit=10)  # warms the embedder; asks no recall
        first: list[float] = []
        with timer(first):
            mem.search("Which book did you recommend last time?", user_id="u", limit=10)
        later: list[float] = []
        for question in RECALL_QUESTIONS * rounds:
            with timer(later):
                mem.search(question, user_id="u", limit=10)
    return {"answers": len(texts), "mean_chars": round(sum(map(len, texts)) / max(len(texts), 1)),
            "first_ms": round(first[0], 1), "later_ms": {"p50": percentile(later, 0.5), "p95": percentile(later, 0.95)}}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        for group in ("all", r["type"]):
            groups[(r["system"], r["budget"], group)].append(r)
    return [{"system": system, "budget": budget, "type": group, "n": len(items),
             "evidence_recall": round(sum(r["evidence_recall"] for r in items) / len(items), 4),
             "answer_recall": round(sum(r["answer_recall"] for r in items) / len(items), 4),
             "tokens": round(sum(r["tokens"] for r in items) / len(items), 1)}
            for (system, budget, group), items in sorted(groups.items())]


def print_table(result: dict[str, Any]) -> None:
    types = sorted({s["type"] for s in result["summary"]} - {"all"})
    short = {t: "".join(w[0] for w in re.split(r"[-_ ]", t)) for t in types}
    print("types:", ", ".join(f"{short[t]} = {t}" for t in types))
    print(f"{'system':<13}{'budget':>7}{'all':>7}" + "".join(f"{short[t]:>7}" for t in types) + f"{'ans.rec':>9}")
    by_key = {(s["system"], s["budget"], s["type"]): s for s in result["summary"]}
    for budget in sorted({s["budget"] for s in result["summary"]}):
        for system in SYSTEMS:
            if (system, budget, "all") not in by_key:
                continue
            cells = "".join(f"{by_key[(system, budget, t)]['evidence_recall']:>7.3f}" for t in ["all", *types])
            print(f"{system:<13}{budget:>7}{cells}{by_key[(system, budget, 'all')]['answer_recall']:>9.3f}")
    print("latency ms:", {k: f"p50 {v['p50']:.1f} / p95 {v['p95']:.1f}" for k, v in result["latency_ms"].items()})
    ing = result["ingest"]
    print(f"ingest: {ing['turns']} turns in {ing['seconds']:.1f} s ({ing['turns_per_s']:.1f} turns/s); embedding every raw "
          f"turn once: {ing['embed_raw_turns_seconds']:.1f} s; ratio {ing['ratio_to_embedding']:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the folder of per-question LongMemEval_S JSON files")
    parser.add_argument("--budgets", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--per-type", type=int, default=None, help="at most N questions of each type (default: all)")
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm",
                        help="minilm: onnxruntime (default); hash: a smoke run without a model")
    parser.add_argument("--assistant-said", action="store_true",
                        help="also keep what the assistant said as facts (RuleExtractor(assistant_said=True))")
    parser.add_argument("--recall-scale", type=int, default=None, metavar="N",
                        help="instead: time recalls of what the assistant said over N of the haystacks' answers")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--name", default="longmemeval")
    args = parser.parse_args(argv)
    if not args.data.is_dir() or not any(args.data.glob("*.json")):
        parser.error(f"{args.data} holds no question files (one LongMemEval_S instance per .json file)")
    embedder: Embedder = MiniLMEmbedder() if args.embedder == "minilm" else HashEmbedder(128)
    if args.recall_scale:
        scale = recall_scale(args.data, args.recall_scale, embedder)
        print(f"recall over {scale['answers']} answers (~{scale['mean_chars']} chars): first {scale['first_ms']:.0f} ms, "
              f"later p50 {scale['later_ms']['p50']:.0f} / p95 {scale['later_ms']['p95']:.0f} ms")
        print(f"results: {write_results(args.name + '-recall', scale, args.out)}")
        return 0
    result = run(args.data, args.budgets, embedder, args.per_type, assistant_said=args.assistant_said)
    print_table(result)
    print(f"results: {write_results(args.name, result, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
