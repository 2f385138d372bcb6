"""Caller documents and tool results in the working context: budgeted as their own tier,
placed before the question, trimmed at sentence boundaries, degraded in the documented
order, and stable documents byte-identical in the cached prefix."""

from __future__ import annotations

import pytest

from tests.conftest import T0, say
from tiermem import InvalidInput, Memory

LONG = " ".join(f"Sentence number {i} of the travel guide says the old town gate opens at {i % 12 + 1} am." for i in range(400))
EPHEMERAL = {"type": "ephemeral"}


def sent_tokens(ctx, count) -> int:
    texts = [b["text"] for b in ctx.system]
    for m in ctx.messages:
        for c in m["content"]:
            texts.append(c["source"]["data"] if c["type"] == "document" else c["text"])
            texts += [c.get("title") or ""] if c["type"] == "document" else []
    return sum(count(t) for t in texts)


def breakpoints(ctx) -> int:
    return sum("cache_control" in b for b in ctx.system) + sum(
        "cache_control" in c for m in ctx.messages for c in m["content"])


def filled(mem: Memory) -> None:
    for i in range(12):
        mem.add([say(f"On trip {i} I visited the harbour of town number {i} and ate grilled sardines there."),
                 {"role": "assistant", "content": f"Trip {i} sounds wonderful, tell me more!"}],
                user_id="ana", session_id="s", at=T0)


@pytest.mark.parametrize("budget", [600, 1500, 4000, 12000])
def test_documents_never_push_a_request_over_budget_and_every_token_is_accounted(mem: Memory, budget: int) -> None:
    filled(mem)
    docs = [{"text": LONG, "id": "guide", "title": "Guide", "priority": 1},
            {"text": "The ferry leaves at 9. Tickets cost 12 euros.", "id": "ferry", "priority": 5},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": LONG[:3000]}, "title": "Excerpt"}]
    ctx = mem.context("when does the gate open?", user_id="ana", session_id="s", system="You plan trips.", budget=budget,
                      documents=docs)
    total = sent_tokens(ctx, mem.count_tokens)
    assert total <= budget - ctx.report.budget["reply_reserve"]
    assert ctx.report.total == total  # the report accounts for every token, by tier
    assert ctx.report.tokens["documents"] > 0
    final = ctx.messages[-1]["content"]
    assert final[-1]["text"] == "when does the gate open?"  # the question stays last
    kinds = [("memory" if c.get("text", "").startswith("<memories>") else
              "doc" if c["type"] == "document" or c.get("text", "").startswith("<document") else "other") for c in final[:-1]]
    assert kinds == sorted(kinds, key=lambda k: {"doc": 0, "memory": 1, "other": 2}[k])  # documents before the rest
    assert breakpoints(ctx) <= 4


def test_trimming_happens_at_a_sentence_boundary_with_a_marker(mem: Memory) -> None:
    ctx = mem.context("gate?", user_id="ana", budget=2000, documents=[{"text": LONG, "id": "guide"}])
    [doc] = [c["text"] for c in ctx.messages[-1]["content"] if c["text"].startswith("<document")]
    body = doc.split("\n", 1)[1].rsplit("\n", 2)[0]
    kept = [line for line in body.split("\n") if line != "[…]"]
    assert kept and all(line.startswith("Sentence number") and line.endswith("am.") for line in kept)  # whole sentences
    assert "[… trimmed:" in doc
    assert any(d.what == "document guide" and "trimmed" in d.why for d in ctx.report.dropped)


def test_the_lowest_priority_document_goes_first(mem: Memory) -> None:
    docs = [{"text": LONG[:12000], "id": "low", "priority": 0}, {"text": LONG[:12000], "id": "high", "priority": 9}]
    ctx = mem.context("gate?", user_id="ana", budget=5000, documents=docs)  # room for one and a half
    texts = " ".join(c["text"] for c in ctx.messages[-1]["content"])
    assert 'id="high"' in texts
    notes = {d.what: d.why for d in ctx.report.dropped}
    assert "document low" in notes and "document high" not in notes


BUILD_LOG = "\n".join(f"[{i:04d}] compiling module_{i}.c ... ok" for i in range(300)) + \
    "\nerror: undefined reference to `frobnicate` in module_299.o\nbuild failed"


def test_a_trimmed_document_keeps_what_matters_a_logs_tail_and_what_the_message_asks(mem: Memory) -> None:
    manual = "\n\n".join(f"Chapter {i}. The pump model {i} is serviced every {i + 2} months by the crew." for i in range(200))
    manual += "\n\nChapter 200. The valve on the north tank leaks when the pressure passes 9 bar."
    ctx = mem.context("why does the build fail and what leaks on the north tank?", user_id="ana", budget=3000,
                      documents=[{"text": BUILD_LOG, "id": "ci-log"}, {"text": manual, "id": "manual"}])
    sent = " ".join(c["text"] for c in ctx.messages[-1]["content"])
    assert "error: undefined reference to `frobnicate`" in sent  # the log's last lines
    assert "north tank leaks" in sent  # the part that matches the message
    assert "[0000] compiling" in sent  # and the head, where there is room
    assert sent.count("[… trimmed:") == 2


def test_each_tier_holds_its_budget_and_what_one_leaves_flows_on(mem: Memory) -> None:
    filled(mem)
    mem.add([say(f"I ate grilled sardines at the harbour of Porto on my trip number {i}.") for i in range(6)],
            user_id="ana", session_id="old", at=T0)  # facts from another session: the memory block's
    docs = [{"text": BUILD_LOG, "id": "ci-log", "priority": 2},
            {"text": "The staging cluster runs on three nodes in Frankfurt. " * 20, "id": "ops", "priority": 1},
            {"text": "Deploys happen every Tuesday.", "id": "tiny"}]
    tiers = ("documents", "memory", "history", "summary")
    for budget in range(4000, 700, -100):
        r = mem.context("what did I eat at the harbour and why does the build fail?", user_id="ana", session_id="s",
                        system="You plan trips.", budget=budget, documents=docs).report
        caps, used = r.budget, r.tokens
        unused = {t: max(0, caps[t] - used[t]) for t in tiers}
        for tier in tiers:  # over its own budget only by what the others left unused
            assert used[tier] <= caps[tier] + sum(unused[o] for o in tiers if o != tier), (budget, tier, caps, used)
        assert used["documents"] > 0 and used["history"] > 0, (budget, used)  # none emptied for another
        names = " ".join(d.what for d in r.dropped)
        assert "document tiny" not in names, (budget, r.dropped)  # a 12-token document is never pushed out
        assert r.total <= budget - r.budget["reply_reserve"]


def test_when_the_fixed_parts_leave_little_every_tier_shrinks_and_the_request_stays_in_budget(mem: Memory) -> None:
    filled(mem)
    system = "You plan trips. " * 120  # ~480 tokens that are never dropped
    reports = [mem.context("what did I eat at the harbour?", user_id="ana", session_id="s", system=system, budget=b,
                           documents=[{"text": LONG[:6000], "id": "guide"}]).report for b in (1500, 900, 700, 600)]
    for r in reports:
        assert r.total <= r.budget["total"] - r.budget["reply_reserve"]
        assert r.tokens["system"] == reports[0].tokens["system"] and r.tokens["message"] == reports[0].tokens["message"]
    first, last = reports[0].tokens, reports[-1].tokens
    assert first["documents"] > 0 and first["history"] > 0
    assert last["documents"] < first["documents"] and last["history"] < first["history"]  # both gave back


def test_a_stable_document_is_cached_and_byte_identical_across_turns(mem: Memory) -> None:
    spec = {"text": "def main():\n    return 42\n" * 40, "id": "main.py", "title": "main.py", "stable": True}
    first = mem.context("what does main return?", user_id="ana", session_id="s", system="You code.", documents=[spec])
    mem.add([say("I prefer tabs over spaces."), {"role": "assistant", "content": "Noted."}], user_id="ana", session_id="s", at=T0)
    second = mem.context("and what else?", user_id="ana", session_id="s", system="You code.", documents=[spec])
    stable_first = [b for b in first.system if "main.py" in b["text"]]
    stable_second = [b for b in second.system if "main.py" in b["text"]]
    assert stable_first == stable_second and stable_first[-1]["cache_control"] == EPHEMERAL
    assert first.system[: first.system.index(stable_first[0]) + 1] == second.system[: second.system.index(stable_second[0]) + 1]
    assert first.report.prefix_tokens >= first.report.tokens["documents"]
    assert breakpoints(second) <= 4


def test_bad_documents_name_the_argument(mem: Memory) -> None:
    for bad, match in [("just text", "list"), ([5], r"documents\[0\]"), ([{"text": None}], r"documents\[0\]: text"),
                       ([{"text": "x", "priority": "high"}], "priority"),
                       ([{"type": "document", "source": {"type": "base64", "data": "x"}}], "text source")]:
        with pytest.raises(InvalidInput, match=match):
            mem.context("hi there", user_id="ana", documents=bad)


def test_tool_transcripts_are_turns_and_old_large_results_become_stubs(mem: Memory) -> None:
    big = "row " * 8000  # ~8k tokens
    mem.add([
        {"role": "user", "content": "I live in Paris. Can you check the weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                               "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny " + big},
        {"role": "assistant", "content": "It is sunny."},
    ], user_id="ana", session_id="s", at=T0)
    turns = mem.turns(user_id="ana", session_id="s", limit=10_000)
    assert [t.kind for t in turns] == ["text", "tool_call", "tool_result", "text"]
    assert big.strip() in turns[2].content  # the full text stays in the session tier
    assert [f.text for f in mem.facts(user_id="ana")] == ["The user lives in Paris."]  # tools' words are not facts
    recent = mem.context("thanks, and tomorrow?", user_id="ana", session_id="s", budget=20000)
    assert "row row" in str(recent.messages)  # recent: whole
    for i in range(3):
        mem.add([say(f"Another question number {i} about museums in the city.", name="Ana"),
                 {"role": "assistant", "content": f"Answer {i}."}], user_id="ana", session_id="s", at=T0)
    later = mem.context("what about the weekend?", user_id="ana", session_id="s", budget=20000)
    assert "row row" not in str(later.messages)
    assert "[tool result c1 of" in str(later.messages) and "tokens elided]" in str(later.messages)
    assert any("stub" in d.why for d in later.report.dropped)
    mem.add([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}]},
             {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                               {"type": "tool_use", "id": "t2", "name": "lookup", "input": {"q": 1}}]}],
            user_id="ana", session_id="s2", at=T0)
    assert [t.kind for t in mem.turns(user_id="ana", session_id="s2", limit=10_000)] == ["tool_result", "tool_call"]


def test_a_recent_tool_result_too_big_for_the_budget_becomes_a_stub_not_the_end_of_history(mem: Memory) -> None:
    mem.add([say("Please check the logs of the nightly build for me."),
             {"role": "assistant", "content": [{"type": "tool_use", "id": "t9", "name": "logs", "input": {"job": "nightly"}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "log line " * 12000}]}],
            user_id="ana", session_id="s", at=T0)
    ctx = mem.context("what failed?", user_id="ana", session_id="s", budget=3000)
    shown = str(ctx.messages)
    assert "nightly build" in shown and "[tool result t9 of" in shown and "log line log line" not in shown
    total = sent_tokens(ctx, mem.count_tokens)
    assert total <= 3000 - ctx.report.budget["reply_reserve"] and ctx.report.total == total
    assert any("over this request's budget" in d.why for d in ctx.report.dropped)
