"""Claude's memory tool on tiermem: the reference backend's contract, durability per user,
search, erasure; and a tool_runner loop through the real SDK against the fake API."""

from __future__ import annotations

import pytest
from anthropic.lib.tools import ToolError

from tiermem import HashEmbedder, Memory
from tiermem.adapters.anthropic import TiermemMemoryTool
from tiermem.testing import FakeAnthropic, Reply


@pytest.fixture
def mem(home):
    memory = Memory.open(home, embedder=HashEmbedder(64))
    yield memory
    memory.close()


def run(tool: TiermemMemoryTool, **command) -> str:
    return tool.call(command)


def test_the_reference_contract(mem: Memory) -> None:
    tool = TiermemMemoryTool(mem, user_id="ana")
    assert "File created" in run(tool, command="create", path="/memories/notes/trip.md",
                                 file_text="Ana flies to Lisbon on 3 May.\nWindow seat.\n")
    with pytest.raises(ToolError, match="already exists"):
        run(tool, command="create", path="/memories/notes/trip.md", file_text="x")
    for bad in ("/etc/passwd", "/memories/../secrets", "memories/x"):
        with pytest.raises(ToolError, match="/memories"):
            run(tool, command="view", path=bad)
    listing = run(tool, command="view", path="/memories")
    assert "/memories/notes/" in listing and "/memories/notes/trip.md" in listing
    assert "     1\tAna flies to Lisbon on 3 May." in run(tool, command="view", path="/memories/notes/trip.md")
    run(tool, command="create", path="/memories/dup.md", file_text="a\na\n")
    with pytest.raises(ToolError, match="Multiple occurrences .* lines: 1, 2"):
        run(tool, command="str_replace", path="/memories/dup.md", old_str="a", new_str="b")
    with pytest.raises(ToolError, match="did not appear verbatim"):
        run(tool, command="str_replace", path="/memories/dup.md", old_str="zzz", new_str="b")
    run(tool, command="str_replace", path="/memories/notes/trip.md", old_str="Window", new_str="Aisle")
    with pytest.raises(ToolError, match=r"range \[0, 2\]"):
        run(tool, command="insert", path="/memories/notes/trip.md", insert_line=5, insert_text="x")
    run(tool, command="insert", path="/memories/notes/trip.md", insert_line=0, insert_text="# Trip")
    assert run(tool, command="view", path="/memories/notes/trip.md", view_range=[1, 2]).endswith(
        "     1\t# Trip\n     2\tAna flies to Lisbon on 3 May.")
    with pytest.raises(ToolError, match="itself"):
        run(tool, command="delete", path="/memories")
    with pytest.raises(ToolError, match="already exists"):
        run(tool, command="rename", old_path="/memories/dup.md", new_path="/memories/notes/trip.md")
    run(tool, command="rename", old_path="/memories/notes", new_path="/memories/travel")
    assert "Aisle seat." in run(tool, command="view", path="/memories/travel/trip.md")
    with pytest.raises(ToolError, match="does not exist"):
        run(tool, command="view", path="/memories/notes/trip.md")


def test_files_are_facts_scoped_to_their_user_and_erased_for_real(mem: Memory) -> None:
    ana, ben = TiermemMemoryTool(mem, user_id="ana"), TiermemMemoryTool(mem, user_id="ben")
    run(ana, command="create", path="/memories/food.md", file_text="Ana is allergic to peanuts.")
    assert "does not exist" in pytest.raises(ToolError, run, ben, command="view", path="/memories/food.md").value.args[0]
    hits = mem.search("peanut allergy", user_id="ana")
    assert hits and hits[0].fact.metadata["memory_file"] == "/memories/food.md"
    assert mem.search("peanut allergy", user_id="ben") == []
    run(ana, command="str_replace", path="/memories/food.md", old_str="peanuts", new_str="cashews")
    [fact] = [h.fact for h in mem.search("allergic", user_id="ana")]
    assert fact.text == "Ana is allergic to cashews." and len(mem.facts(user_id="ana")) == 1
    run(ana, command="delete", path="/memories/food.md")
    assert mem.session.list_facts("ana", include_invalid=True) == []  # forgotten: erased, not invalidated
    assert mem.files(user_id="ana") == [] and mem.index.count("ana") == 0


def test_files_survive_a_restart(home) -> None:
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        run(TiermemMemoryTool(mem, user_id="ana"), command="create", path="/memories/a.md", file_text="kept")
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        assert "kept" in run(TiermemMemoryTool(mem, user_id="ana"), command="view", path="/memories/a.md")
        receipt = mem.forget_user("ana")
        assert receipt.removed["tm_memory_files"] == 1


def test_tool_runner_drives_the_tool_through_the_sdk(mem: Memory) -> None:
    import anthropic

    script = [Reply(tool_input={"command": "create", "path": "/memories/prefs.md", "file_text": "Likes tea."},
                    tool_name="memory", stop_reason="tool_use"), Reply("Saved.")]
    with FakeAnthropic(lambda body: script.pop(0)) as fake:
        client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
        tool = TiermemMemoryTool(mem, user_id="ana")
        runner = client.beta.messages.tool_runner(model="claude-haiku-4-5", max_tokens=200, tools=[tool], thread=False,
                                                  messages=[{"role": "user", "content": "Remember I like tea."}])
        final = runner.until_done()
    assert final.content[0].text == "Saved."
    assert "Likes tea." in run(tool, command="view", path="/memories/prefs.md")
    assert fake.requests[0]["tools"][0]["type"] == "memory_20250818"
    assert fake.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"


def test_concurrent_edits_all_survive_and_one_create_wins(mem: Memory) -> None:
    import threading

    tool = TiermemMemoryTool(mem, user_id="alice")
    run(tool, command="create", path="/memories/log", file_text="start\n")

    def inserts(tag: str) -> None:
        for i in range(40):
            run(tool, command="insert", path="/memories/log", insert_line=1, insert_text=f"{tag}{i}")

    threads = [threading.Thread(target=inserts, args=(tag,)) for tag in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = mem.files(user_id="alice", prefix="/memories/log")[0].content.split("\n")
    assert sorted(x for x in lines if x and x[0] in "AB") == sorted(f"{t}{i}" for t in "AB" for i in range(40))

    answers: list[str] = []

    def create(tag: str) -> None:
        try:
            answers.append(run(tool, command="create", path="/memories/race", file_text=f"by {tag}"))
        except ToolError as exc:
            answers.append(str(exc))

    racers = [threading.Thread(target=create, args=(tag,)) for tag in "ABCD"]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert sum("created successfully" in a for a in answers) == 1
    assert sum("already exists" in a for a in answers) == 3


def test_line_endings_names_and_folders_follow_a_real_filesystem(mem: Memory) -> None:
    tool = TiermemMemoryTool(mem, user_id="ana")
    run(tool, command="create", path="/memories/mixed", file_text="a\rb\u2028c\nd\n")
    run(tool, command="insert", path="/memories/mixed", insert_line=1, insert_text="NEW")
    assert mem.files(user_id="ana", prefix="/memories/mixed")[0].content == "a\rb\u2028c\nNEW\nd\n"  # LF only
    for name in ("/memories/x\n5B\t/memories/fake", "/memories/\x1b[31mred", "/memories/" + "a" * 2000):
        with pytest.raises(ToolError):
            run(tool, command="create", path=name, file_text="x")
    run(tool, command="create", path="/memories/f", file_text="a file")
    with pytest.raises(ToolError, match="is a file"):
        run(tool, command="create", path="/memories/f/child", file_text="x")
    run(tool, command="create", path="/memories/g/h.md", file_text="x")
    with pytest.raises(ToolError, match="into itself"):
        run(tool, command="rename", old_path="/memories/g", new_path="/memories/g/inner")
    with pytest.raises(ToolError, match="NUL"):
        run(tool, command="create", path="/memories/n", file_text="secret qzorphan\x00b")
    assert not any("qzorphan" in h.fact.text for h in mem.search("qzorphan", user_id="ana"))  # refused before any write
