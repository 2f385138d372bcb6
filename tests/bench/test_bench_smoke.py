"""The benchmarks run in smoke mode on tiny generated data and write well-formed results.
Timings are never asserted: they live in bench/, as measured ratios."""

from __future__ import annotations

import json
from pathlib import Path

from bench import locomo, scale, write


def tiny_locomo(path: Path) -> Path:
    # Invented data in LoCoMo's shape (LoCoMo itself is CC BY-NC and never enters the repo).
    turns = [
        ("Priya", "I went to a pottery workshop yesterday and it was so relaxing."),
        ("Tomas", "That's great! I knitted a green scarf last year, it hangs by my door."),
        ("Priya", "I'm comparing sailing schools because I want to crew a boat next summer."),
        ("Tomas", "Thanks! I ran a half marathon for a food bank on Sunday."),
    ]
    sample = {
        "sample_id": "conv-tiny",
        "conversation": {
            "speaker_a": "Priya", "speaker_b": "Tomas",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": s, "dia_id": f"D1:{i + 1}", "text": t} for i, (s, t) in enumerate(turns)],
            "session_2_date_time": "1:14 pm on 25 May, 2023",
            "session_2": [{"speaker": "Priya", "dia_id": "D2:1", "text": "I adopted a cat named Biscuit.",
                           "img_url": ["x"], "blip_caption": "a photo of a small cat"}],
        },
        "qa": [
            {"question": "When did Priya go to the pottery workshop?", "answer": "7 May 2023", "evidence": ["D1:1"], "category": 2},
            {"question": "What is Priya comparing?", "answer": "Sailing schools", "evidence": ["D1:3"], "category": 1},
            {"question": "What did Tomas knit?", "answer": "a green scarf", "evidence": ["D1:2"], "category": 4},
            {"question": "What is Priya's cat called?", "answer": "Biscuit", "evidence": ["D2:1"], "category": 4},
            {"question": "Adversarial", "adversarial_answer": "x", "evidence": ["D1:4"], "category": 5},
        ],
        "observation": {"must": "never be read"},
    }
    path.write_text(json.dumps([sample]))
    return path


def test_locomo_smoke(tmp_path: Path) -> None:
    data = tiny_locomo(tmp_path / "tiny.json")
    assert locomo.main(["--data", str(data), "--embedder", "hash", "--out", str(tmp_path), "--budgets", "50", "200"]) == 0
    result = json.loads((tmp_path / "locomo.json").read_text())
    systems = {row["system"] for row in result["summary"]}
    assert {"tiermem", "dense-turns", "bm25-turns", "rrf-turns", "recency", "full-context"} <= systems
    assert result["questions"] == 4  # category 5 excluded
    for row in result["summary"]:
        assert 0.0 <= row["evidence_recall"] <= 1.0 and 0.0 <= row["answer_recall"] <= 1.0
        assert row["budget"] == 0 or row["tokens"] <= row["budget"]
    full = next(r for r in result["summary"] if r["system"] == "full-context" and r["category"] == "all")
    assert full["evidence_recall"] == 1.0
    assert result["environment"]["versions"]["qdrant-edge-py"]
    assert (tmp_path / "locomo.png").stat().st_size > 0


def tiny_longmemeval(folder: Path) -> Path:
    # Invented instances in LongMemEval_S's shape (the benchmark's own files never enter the repo).
    folder.mkdir()
    for n, (kind, question, said) in enumerate([
        ("single-session-user", "Which city did I move to?", "I moved to Porto in March for a new job."),
        ("knowledge-update", "What instrument do I play now?", "These days I play the cello instead of the piano."),
    ]):
        sessions = [[{"role": "user", "content": "Can you suggest a pasta recipe?"},
                     {"role": "assistant", "content": "Try a simple aglio e olio with garlic and chili."}],
                    [{"role": "user", "content": said, "has_answer": True},
                     {"role": "assistant", "content": "That is good to know, thanks for telling me."}]]
        (folder / f"{n}.json").write_text(json.dumps({
            "question_id": f"q{n}", "question_type": kind, "question": question, "answer": "x",
            "question_date": "2023/06/01 (Thu) 10:00", "answer_session_ids": ["s2"],
            "haystack_dates": ["2023/05/01 (Mon) 09:00", "2023/05/20 (Sat) 18:30"], "haystack_session_ids": ["s1", "s2"],
            "haystack_sessions": sessions}))
    return folder


def test_longmemeval_smoke(tmp_path: Path) -> None:
    from bench import longmemeval

    data = tiny_longmemeval(tmp_path / "lme")
    assert longmemeval.main(["--data", str(data), "--embedder", "hash", "--out", str(tmp_path), "--budgets", "40", "400"]) == 0
    result = json.loads((tmp_path / "longmemeval.json").read_text())
    assert {row["system"] for row in result["summary"]} == {"tiermem", "dense-turns", "bm25-turns", "rrf-turns"}
    assert {row["type"] for row in result["summary"]} == {"all", "single-session-user", "knowledge-update"}
    best = {(r["system"], r["budget"]): r for r in result["summary"] if r["type"] == "all"}
    assert best[("tiermem", 400)]["evidence_recall"] == 1.0 and best[("rrf-turns", 400)]["evidence_recall"] == 1.0
    assert result["ingest"]["turns"] == 8 and result["ingest"]["ratio_to_embedding"] > 0


def test_scale_smoke(tmp_path: Path) -> None:
    assert scale.main(["--smoke", "--part", "both", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "scale.json").read_text())
    # a few synthetic sentences are near-duplicates to the hash embedder and merge, as they should
    assert [round(row["facts"], -2) for row in result["memory"]] == [200, 400]
    for row in result["memory"]:
        assert row["search_ms"]["n"] == 20 and row["search_p95_over_embed_p95"] > 0
    assert {row["backend"] for row in result["index"]} == {"edge", "qdrant-local"}
    for row in result["memory"]:  # one user erased among the others, sealed on the embedded index
        assert row["erase_index"] == "sealed" and row["erase_verified"] is True
    assert {row["erase"] for row in result["index"]} == {"sealed", "deleted"}


def test_cost_smoke(tmp_path: Path) -> None:
    from bench import cost

    assert cost.main(["--turns", "12", "--embedder", "hash", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "cost.json").read_text())
    assert set(result["summary"]) == {"tiermem", "full-history", "mem0-style"}
    for s in result["summary"].values():
        assert 0.0 <= s["cache_read_share"] <= 1.0 and s["cost_units"] > 0
    for row in result["per_turn"]:
        assert row["uncached"] + row["written"] + row["read"] == row["total"]


def test_simulated_cache_rules() -> None:
    from bench.cost import SimulatedCache

    cache = SimulatedCache(min_tokens=10)
    system = ("s" * 80, True)  # 20 tokens, a breakpoint
    first = cache.serve([system, ("u:hello", False)], now=0)
    assert first["written"] == 20 and first["read"] == 0
    again = cache.serve([system, ("u:other", False)], now=100)
    assert again["read"] == 20 and again["written"] == 0
    assert cache.serve([("S" * 80, True)], now=100)["read"] == 0  # one byte differs: a miss
    assert cache.serve([system], now=100 + 301 + 300)["read"] == 0  # past the TTL
    assert SimulatedCache(min_tokens=1000).serve([system], now=0)["written"] == 0  # below the minimum


def test_benchmarks_are_reachable_from_the_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tiermem.cli import app

    data = tiny_locomo(tmp_path / "tiny.json")
    out = CliRunner().invoke(app, ["bench", "locomo", "--data", str(data), "--embedder", "hash", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "locomo.json").exists() and "tiermem" in out.output
    assert CliRunner().invoke(app, ["bench", "nope"]).exit_code == 1


def test_write_smoke_compares_inline_and_background_add(tmp_path: Path) -> None:
    assert write.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "write.json").read_text())
    assert [m["mode"] for m in result["modes"]] == ["inline", "background"]
    for mode in result["modes"]:
        assert mode["add_ms"]["n"] == result["parameters"]["adds"] and mode["facts"] > 0 and mode["turns_per_s"] > 0
    assert result["modes"][0]["facts"] == result["modes"][1]["facts"]  # the same load, the same facts
    assert result["background_p95_over_inline_p95"] > 0


def test_langgraph_store_bench_smoke(tmp_path: Path) -> None:
    from bench import langgraph_store

    assert langgraph_store.main(["--smoke", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "langgraph-store-smoke.json").read_text())["rows"]
    assert {r["store"] for r in rows} == {"tiermem", "InMemoryStore", "SqliteStore"}
    # same data, same vectors: every store's exact cosine search agrees on the best hit
    # (further down, equal scores may come in any order)
    tops = {r["store"]: r["last_top10"][0] for r in rows}
    assert len(set(tops.values())) == 1, tops


def test_reconcile_bench_prints_one_json_document_per_class(capsys) -> None:
    from bench import reconcile

    assert reconcile.main(["--embedder", "hash", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["classes"]) == {"coexist", "supersede", "merge", "refine"}
    assert sum(row["cases"] for row in result["classes"].values()) == len(reconcile.CASES)
    assert result["facts_lost"] == 0  # the subject rules do not depend on the embedder


def test_served_smoke(capsys) -> None:
    from bench import served

    assert served.main(["--smoke"]) == 0
    ops = json.loads(capsys.readouterr().out)["operations"]
    assert set(ops) == {"search", "context", "facts"}
    for row in ops.values():
        for way in ("in-process", "tcp", "unix"):
            assert row[f"{way}_p95_ms"] >= row[f"{way}_p50_ms"] > 0
        assert row["tcp_added_p50_ms"] == round(row["tcp_p50_ms"] - row["in-process_p50_ms"], 3)


def test_fairness_smoke(capsys) -> None:
    from bench import fairness

    assert fairness.main(["--smoke"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["sentences"] == 200 and row["facts"] == 200  # one fact per distinct sentence, none merged
    assert row["reads"] >= 1 and row["read_max_s"] >= row["read_p95_s"] > 0
