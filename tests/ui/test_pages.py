"""`tiermem ui` in a real browser: every page renders, the pictures show the memory's own
numbers, hostile stored text stays text, and nothing changes without the flag and a
confirmation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tiermem import Memory
from tiermem.ui import create_app

from .conftest import fill_demo, serving

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, minilm: Any) -> Iterator[Memory]:
    memory = Memory.open(tmp_path_factory.mktemp("ui-demo") / "home", embedder=minilm, share=False)
    fill_demo(memory)
    yield memory
    memory.close()


@pytest.fixture(scope="module")
def readonly_url(demo: Memory) -> Iterator[str]:
    with serving(create_app(demo, allowed_hosts=["127.0.0.1"])) as url:
        yield url


def _fact(memory: Memory, user: str, needle: str, *, valid: bool | None = None) -> Any:
    found = [f for f in memory.facts(user_id=user, include_invalid=True) if needle in f.text
             and (valid is None or f.is_valid == valid)]
    assert len(found) == 1, [f.text for f in found]
    return found[0]


def test_every_page_renders_with_no_request_off_the_machine(page: Any, readonly_url: str, demo: Memory,
                                                            artifacts: Path) -> None:
    lisbon = _fact(demo, "ana", "Lisbon")
    pages = {
        "users": ("/", "Users"),
        "user": ("/user?u=ana", "What is remembered about ana"),
        "fact": (f"/fact?u=ana&id={lisbon.id}", "Ana lives in Lisbon."),
        "turns": ("/turns?u=ana", "Turns"),
        "search": ("/search?u=ana&q=where+does+Ana+live", "Search"),
        "context": ("/context?u=ana&message=what+should+I+pack+for+the+Alps&budget=2000", "Context preview"),
    }
    for name, (path, heading) in pages.items():
        response = page.goto(readonly_url + path)
        assert response.status == 200, name
        assert page.inner_text("h1") == heading
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert all(u.startswith(readonly_url) for u in page.requests)  # no fonts, scripts or calls elsewhere
    assert page.dialogs == []


def test_the_demo_story_lisbon_greyed_and_linked_to_berlin(page: Any, readonly_url: str, demo: Memory) -> None:
    lisbon = _fact(demo, "ana", "Lisbon", valid=False)
    berlin = _fact(demo, "ana", "Berlin", valid=True)
    assert lisbon.superseded_by == berlin.id
    page.goto(readonly_url + "/user?u=ana")
    old = page.locator(f'#timeline g.fact[data-fact-id="{lisbon.id}"]')
    new = page.locator(f'#timeline g.fact[data-fact-id="{berlin.id}"]')
    assert old.get_attribute("data-valid") == "false" and new.get_attribute("data-valid") == "true"
    grey = old.locator("rect.span").evaluate("e => getComputedStyle(e).fill")
    green = new.locator("rect.span").evaluate("e => getComputedStyle(e).fill")
    assert grey != green and _is_grey(grey) and not _is_grey(green)
    arrow = page.locator(f'#timeline path.supersedes[data-old="{lisbon.id}"]')
    assert arrow.get_attribute("data-new") == berlin.id
    # The arrow runs from where the Lisbon bar ends to where the Berlin bar starts.
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", arrow.get_attribute("d"))]
    (x0, y0), (x1, y1) = numbers[:2], numbers[-2:]
    old_bar, new_bar = (g.locator("rect.span").evaluate("r => [r.x.baseVal.value, r.width.baseVal.value, "
                                                         "r.y.baseVal.value, r.height.baseVal.value]") for g in (old, new))
    assert x0 == pytest.approx(old_bar[0] + old_bar[1], abs=0.2) and x1 == pytest.approx(new_bar[0], abs=0.2)
    assert y0 == pytest.approx(old_bar[2] + old_bar[3] / 2) and y1 == pytest.approx(new_bar[2] + new_bar[3] / 2)
    # On the event-time axis Lisbon ends where Berlin begins (the move came before Ana told of it).
    assert old_bar[0] + old_bar[1] == pytest.approx(new_bar[0], abs=0.2)
    # Every fact is on the timeline and in the table; the Lisbon row says what replaced it.
    every = demo.facts(user_id="ana", include_invalid=True)
    assert page.locator("#timeline g.fact").count() == len(every) == page.locator("#facts tbody tr").count()
    assert page.locator(f'#facts tr[data-fact-id="{lisbon.id}"] a.replaced-by').inner_text() == berlin.text
    # The fact page shows its source turn on demand and links to its successor.
    page.click(f'#facts tr[data-fact-id="{lisbon.id}"] td a')
    assert page.inner_text("#successor") == berlin.text
    page.click("details.turn summary")
    assert "I live in Lisbon" in page.inner_text("details.turn pre")


def test_the_timeline_filters_by_time_kind_and_text(page: Any, readonly_url: str, demo: Memory) -> None:
    page.goto(readonly_url + "/user?u=ana&as_of=2024-03-10")
    shown = {page.locator("#facts tbody tr").nth(i).get_attribute("data-fact-id")
             for i in range(page.locator("#facts tbody tr").count())}
    from datetime import UTC, datetime

    then = datetime(2024, 3, 10, tzinfo=UTC)
    assert shown == {f.id for f in demo.facts(user_id="ana", include_invalid=True) if f.valid_at(then)}
    assert _fact(demo, "ana", "Lisbon").id in shown
    page.goto(readonly_url + "/user?u=ana&kind=episodic")
    kinds = page.locator("#timeline g.fact").evaluate_all("gs => gs.map(g => g.classList.contains('episodic'))")
    assert kinds and all(kinds)
    page.goto(readonly_url + "/user?u=ana&q=berlin")
    assert page.locator("#facts tbody tr").count() == 1


def test_search_bars_are_the_scores_parts(page: Any, readonly_url: str, demo: Memory) -> None:
    query = "where does Ana live?"
    hits = demo.search(query, user_id="ana", limit=5)
    page.goto(readonly_url + f"/search?u=ana&limit=5&q={quote(query)}")
    rows = page.locator("#hits tr.hit")
    assert rows.count() == len(hits)
    widest = None
    for i, hit in enumerate(hits):
        row = rows.nth(i)
        assert row.get_attribute("data-fact-id") == hit.fact.id
        parts = row.locator("rect.part")
        values = [float(v) for v in parts.evaluate_all("rs => rs.map(r => r.dataset.value)")]
        assert sum(values) == pytest.approx(hit.score, abs=1e-5)  # the bar adds up to the score
        keys = parts.evaluate_all("rs => rs.map(r => r.dataset.part)")
        assert keys == ["dense", "context", "sparse", "importance", "recency"]
        for key, value in zip(keys, values, strict=True):
            assert value == pytest.approx(hit.explain[f"part_{key}"], abs=1e-6)
        width = sum(float(w) for w in parts.evaluate_all("rs => rs.map(r => r.getAttribute('width'))"))
        widest = widest or width  # the best hit fills the bar; the others in proportion
        assert width == pytest.approx(widest * hit.score / hits[0].score, rel=0.01)
    # The threshold is stated, and each hit says whether context() would page it in.
    assert "0.25" in page.inner_text("#threshold")
    assert rows.nth(0).get_attribute("class").split()[-1] == "paged-in"
    assert page.locator("#below tr.hit").count() > 0  # what the limit cut off is shown, and why


def test_context_preview_bars_add_up_to_the_report(page: Any, readonly_url: str, demo: Memory) -> None:
    message, budget = "what should I pack for the Alps?", 2000
    report = demo.context(message, user_id="ana", budget=budget).report
    page.goto(readonly_url + f"/context?u=ana&budget={budget}&message={quote(message)}&model=claude-sonnet-4-5")
    tiers = page.locator("#tokens rect.tier").evaluate_all(
        "rs => rs.map(r => [r.dataset.tier, Number(r.dataset.tokens), Number(r.getAttribute('width'))])")
    shown = {tier: n for tier, n, _ in tiers if tier != "reserve"}
    assert shown == {k: v for k, v in report.tokens.items() if v}
    assert sum(shown.values()) == report.total == int(page.locator("#total").get_attribute("data-total"))
    per_token = {w / n for _, n, w in tiers if n}
    assert max(per_token) == pytest.approx(min(per_token), rel=0.01)  # widths in proportion to tokens
    table = {r.get_attribute("data-tier"): int(r.locator("td.n").first.inner_text())
             for r in page.locator("#tiers tr[data-tier]").all()}
    assert {k: v for k, v in table.items() if v} == shown
    mark = page.locator("#prefix-mark")
    assert int(mark.get_attribute("data-tokens")) == report.prefix_tokens
    assert "1024-token minimum of claude-sonnet-4-5" in page.inner_text("#cache-verdict")
    paged = page.locator("#paged tr[data-fact-id]").evaluate_all("rs => rs.map(r => r.dataset.factId)")
    assert paged == [h.fact.id for h in demo.context(message, user_id="ana", budget=budget).facts]
    assert page.locator("#dropped li").count() == max(1, len(report.dropped))


def test_hostile_stored_text_shows_literally(page: Any, tmp_path: Path, minilm: Any) -> None:
    hostile = ['<script>window.__pwned = 1</script>Ana likes jazz',
               '<img src=x onerror="window.__pwned = 2">Ana owns a cat',
               'Ana\'s note: "><svg onload=window.__pwned=3> and \x1b[31mred\x1b[0m',
               "Ana wrote " + "x" * 3000]
    with Memory.open(tmp_path / "home", embedder=minilm, share=False) as memory:
        user = 'eve"<b>'
        for text in hostile:
            memory.remember(text, user_id=user)
        memory.add([{"role": "user", "content": hostile[0], "id": "m-1"}], user_id=user, session_id="<i>s</i>")
        with serving(create_app(memory)) as url:
            u = quote(user)
            paths = ["/", f"/user?u={u}", f"/turns?u={u}", f"/search?u={u}&q=jazz",
                     f"/context?u={u}&message={quote(hostile[0])}"]
            paths += [f"/fact?u={u}&id={f.id}" for f in memory.facts(user_id=user)]
            for path in paths:
                assert page.goto(url + path).status == 200, path
                assert page.evaluate("window.__pwned") is None, path
                assert page.locator("main script, main img, main b, main i, main svg[onload]").count() == 0, path
                # wrapped, not pushing the page sideways
                assert page.evaluate("document.documentElement.scrollWidth") <= 1300, path
            page.goto(url + f"/user?u={u}")
            text = page.inner_text("#facts")
            assert "<script>window.__pwned = 1</script>Ana likes jazz" in text
            assert '<img src=x onerror="window.__pwned = 2">' in text
            assert "⟨U+001B⟩[31mred" in text  # a control character is shown, not obeyed or dropped
            assert page.inner_text("h1") == 'What is remembered about eve"<b>'
            assert page.dialogs == []


def test_read_only_without_the_flag(page: Any, readonly_url: str, demo: Memory) -> None:
    page.goto(readonly_url + "/user?u=ana")
    assert page.locator("a.danger").count() == 0 and "read-only" in page.inner_text("header .mode")
    for path in ("/forget-user?u=ana", f"/forget-fact?u=ana&id={_fact(demo, 'ana', 'Berlin').id}", "/export?u=ana"):
        response = page.goto(readonly_url + path)
        assert response.status == 403 and "--allow-changes" in page.inner_text("#error-message")
    # A form posted anyway (the browser's own cookies, no page): refused.
    assert page.request.post(readonly_url + "/forget-user", form={"u": "ana", "confirm": "ana"}).status == 403
    assert ("ana", len(demo.facts(user_id="ana")), len(demo.turns(user_id="ana", limit=1000))) in demo.users()


def test_forgetting_a_user_needs_a_confirmation_and_leaves_no_trace(page: Any, tmp_path: Path, minilm: Any,
                                                                   artifacts: Path) -> None:
    with Memory.open(tmp_path / "home", embedder=minilm, share=False) as memory:
        fill_demo(memory, "ana")
        # Bo's own words (the erasure check looks for Ana's texts in the files: they must be hers only)
        memory.add([{"role": "user", "content": "I'm Bo. I keep bees on a rooftop in Oslo.", "id": "b-1"}],
                   user_id="bo", session_id="b")
        with serving(create_app(memory, allow_changes=True, allowed_hosts=["127.0.0.1"])) as url:
            page.goto(url + "/user?u=ana")
            page.click("text=forget this user…")
            page.fill("#confirm-id", "an")  # not the id: refused, nothing erased
            page.click("#confirm")
            assert "type the user id exactly" in page.inner_text("#error-message")
            assert "ana" in {u for u, *_ in memory.users()}
            page.go_back()
            page.fill("#confirm-id", "ana")
            page.screenshot(path=str(artifacts / "confirm-user.png"), full_page=True)
            page.click("#confirm")
            assert page.inner_text("#done") == "Erased"
            page.screenshot(path=str(artifacts / "receipt.png"), full_page=True)
            receipt = {r.get_attribute("data-removed"): int(r.locator("td.n").inner_text())
                       for r in page.locator("#receipt tr[data-removed]").all()}
            assert receipt["tm_turns"] > 0 and receipt["tm_facts"] > 0 and receipt["index_points"] > 0
            assert page.inner_text("#verified") == "yes"
            assert "ana" not in page.content().lower().replace("tiermem", "")
            page.goto(url + "/")
            users = page.locator("#users tr[data-user]").evaluate_all("rs => rs.map(r => r.dataset.user)")
            assert users == ["bo"]
            assert {u for u, *_ in memory.users()} == {"bo"}
            # A forged form (no token) changes nothing, even with the flag.
            forged = page.request.post(url + "/forget-user", form={"u": "bo", "confirm": "bo"})
            assert forged.status == 403 and {u for u, *_ in memory.users()} == {"bo"}
            # ... and so does one with a token from another site's origin.
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.request.get(url + "/forget-user?u=bo").text())
            assert token is not None
            forged = page.request.post(url + "/forget-user", form={"u": "bo", "confirm": "bo", "csrf": token.group(1)},
                                       headers={"Origin": "http://evil.example"})
            assert forged.status == 403 and {u for u, *_ in memory.users()} == {"bo"}


def test_forgetting_a_fact_through_its_page(page: Any, tmp_path: Path, minilm: Any, artifacts: Path) -> None:
    with Memory.open(tmp_path / "home", embedder=minilm, share=False) as memory:
        fill_demo(memory)
        lisbon = _fact(memory, "ana", "Lisbon")
        with serving(create_app(memory, allow_changes=True, allowed_hosts=["127.0.0.1"])) as url:
            page.goto(url + f"/fact?u=ana&id={lisbon.id}")
            page.click("text=forget this fact…")
            assert page.inner_text("#fact-text") == lisbon.text
            page.screenshot(path=str(artifacts / "confirm-fact.png"), full_page=True)
            page.click("#confirm")
            assert page.inner_text("#done") == "Forgotten"
            page.goto(url + "/user?u=ana")
            assert "Lisbon" not in page.inner_text("#facts") and "Lisbon" not in page.locator("#timeline").text_content()
            export = page.request.get(url + "/export?u=ana")
            document = export.json()
            assert export.headers["content-disposition"].startswith("attachment")
            assert {f["id"] for f in document["facts"]} == {f.id for f in memory.facts(user_id="ana", include_invalid=True)}
            assert lisbon.id not in document["history"] and len(document["turns"]) == len(memory.turns(user_id="ana", limit=1000))


def _is_grey(css: str) -> bool:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return max(r, g, b) - min(r, g, b) < 24
