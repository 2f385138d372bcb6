"""What a statement does to memory, through Memory.add with the real MiniLM: changes,
endings and requests to forget, the benchmark's controls, a named assistant, and the same
operations on the Claude paths against the fake Messages API."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bench.operations import run
from bench.operations_suite import CASES
from tests.conftest import T0, say
from tiermem import Memory

pytestmark = pytest.mark.minilm


def test_one_case_of_every_family_does_its_operation_and_no_control_changes_anything(minilm) -> None:
    sample = list({c.family: c for c in CASES}.values())  # the last case of each family, both halves
    result = run(lambda home: Memory.open(home, embedder=minilm, share=False), sample)
    for half, rows in result["halves"].items():
        for control in ("other", "lookalike"):
            assert rows[control]["correct"] == rows[control]["cases"], (half, result["misses"])
        assert rows["all"]["correct"] >= 0.85 * rows["all"]["cases"], (half, rows, result["misses"])


def test_a_request_to_forget_retracts_what_it_names_and_is_no_fact(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("My bike lock code is 3391 and I cycle to work.")], user_id="ana", session_id="a", at=T0)
        result = mem.add([say("Could you please wipe my bike lock code from your memory?")], user_id="ana",
                         session_id="b", at=T0 + timedelta(days=2))
        [retracted] = [e for e in result.events if e.op == "invalidate"]
        assert "3391" in retracted.previous.text and "request" in retracted.reason
        valid = [f.text for f in mem.facts(user_id="ana")]
        assert not any("3391" in t for t in valid) and not any("wipe" in t.lower() for t in valid)
        assert any("cycle" in t for t in valid)  # the rest of what was said stays
        assert not any("3391" in h.fact.text for h in mem.search("what is my bike lock code?", user_id="ana"))
        ctx = mem.context("what is my bike lock code?", user_id="ana", session_id="c")
        assert "3391" not in json.dumps(ctx.system) + json.dumps(ctx.messages)
        # what it came from is marked in the turn: re-extraction does not bring it back
        report = mem.reextract("ana", extractor="rules")
        assert report.added >= 1 and not any("3391" in f.text for f in mem.facts(user_id="ana"))


def test_an_ending_invalidates_the_state_and_the_news_answers_its_question(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I live in Porto."), say("I coach a youth basketball team on Thursdays."),
                 say("My brother Rui is a chef.")], user_id="ana", session_id="a", at=T0)
        mem.add([say("I quit coaching the basketball team after the season.")], user_id="ana", session_id="b",
                at=T0 + timedelta(days=30))
        facts = mem.facts(user_id="ana", include_invalid=True)
        assert not next(f for f in facts if "youth basketball" in f.text).is_valid
        [top, *_] = mem.search("Do I coach any sports?", user_id="ana")
        assert "quit" in top.fact.text and top.fact.metadata["ends"].startswith("Ana coaches")


def test_a_named_assistant_is_the_model_and_two_people_are_named_users(home: Path, minilm) -> None:
    plan = ("Sure. First, pick a topic. Then, outline the chapters. Next, set weekly goals. "
            "Finally, book time with your advisor.")
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("Can you help me plan my thesis?"), say(plan, name="Planner", role="assistant")], user_id="u",
                at=T0)
        assert mem.facts(user_id="u") == []
        mem.add([say("I just adopted a greyhound.", name="Ines"), say("I ran my first 10k on Sunday.", name="Bo")],
                user_id="pair", at=T0)
        texts = [f.text for f in mem.facts(user_id="pair")]
        assert any(t.startswith("Ines") for t in texts) and any(t.startswith("Bo") for t in texts)


def _claude_responder(body: dict):
    """Extraction: a forget request becomes an item with operation 'forget'; anything else one
    fact. Reconciliation: every new statement 'ends' the first stored fact it is shown."""
    from tiermem.testing import Reply

    prompt = body["messages"][-1]["content"]
    prompt = prompt if isinstance(prompt, str) else " ".join(b.get("text", "") for b in prompt)
    if re.search(r"^NEW \d+:", prompt, re.M):
        decisions = [{"candidate": int(m.group(1)), "decision": "ends", "fact": m.group(2), "reason": "over"}
                     for m in re.finditer(r"^NEW (\d+): .*$\n *STORED (f[\d.]+):", prompt, re.M)]
        payload: dict = {"decisions": decisions}
    else:
        facts = []
        for short, text in re.findall(r"^\[(t\d+)\] [^|]*\| Ana \(user\): (.*)$", prompt, re.M):
            forget = text.lower().startswith("forget")
            facts.append({"text": "Ana's locker code" if forget else f"Ana said: {text}", "kind": "semantic",
                          "subject": "Ana", "attribute": None, "value": None, "importance": 0.5, "sources": [short],
                          "event_date": None, "operation": "forget" if forget else "state"})
        payload = {"facts": facts}
    if body.get("tool_choice"):
        return Reply(tool_input=payload, stop_reason="tool_use")
    return Reply(json.dumps(payload))


def test_the_claude_extractor_asks_to_forget_and_the_reconciler_ends(home: Path, minilm, monkeypatch) -> None:
    from tiermem.testing import FakeAnthropic

    for var in ("ANTHROPIC_API_KEY", "TIERMEM_EXTRACTOR", "TIERMEM_RECONCILER"):
        monkeypatch.delenv(var, raising=False)
    with FakeAnthropic(_claude_responder) as fake:
        with Memory.open(home, embedder=minilm, extractor="claude", anthropic_client=fake.client(),
                         extraction="inline") as mem:
            mem.add([say("My locker code is 5512.")], user_id="ana", at=T0)
            result = mem.add([say("Forget my locker code, please.")], user_id="ana", at=T0 + timedelta(days=1))
            assert [e.op for e in result.events] == ["invalidate"] and mem.facts(user_id="ana") == []
        with Memory.open(home.parent / "home2", embedder=minilm, reconciler="claude", anthropic_client=fake.client(),
                         extraction="inline") as mem:
            mem.add([say("I play the cello in a string quartet.")], user_id="ana", at=T0)
            result = mem.add([say("I put the cello away for good, the string quartet folded.")], user_id="ana",
                             at=T0 + timedelta(days=1))
            ended = next(e for e in result.events if e.op == "invalidate")
            assert "model" in ended.reason
            [news] = mem.facts(user_id="ana")
            assert "cello away" in news.text and news.metadata["ends"] == ended.previous.text


def test_scratch_that_takes_back_the_speakers_message_before_in_this_batch_or_an_earlier_one(home: Path, minilm) -> None:
    with Memory.open(home, embedder=minilm) as mem:
        mem.add([say("I live in Porto.")], user_id="ana", session_id="a", at=T0)
        mem.add([say("My gate code is 4471. Actually, scratch that.")], user_id="ana", session_id="a", at=T0)
        assert not any("4471" in f.text for f in mem.facts(user_id="ana", include_invalid=True))  # never stored
        mem.add([say("I am training for the Lisbon marathon.")], user_id="ana", session_id="a", at=T0 + timedelta(hours=1))
        result = mem.add([say("Hmm, scratch that.")], user_id="ana", session_id="a", at=T0 + timedelta(hours=2))
        retracted = [e.previous.text for e in result.events if e.op == "invalidate" and e.previous]
        assert retracted and all("marathon" in text for text in retracted), retracted
        assert [f.text for f in mem.facts(user_id="ana")] == ["Ana lives in Porto."]  # the rest stays
        mem.add([say("Scratch that.")], user_id="bo", session_id="b", at=T0)  # nothing before it: nothing happens
        assert mem.facts(user_id="bo") == []
