"""Processes writing for one user at once give what one process gives: each one-valued
statement replaces the last, nothing is stored twice (PostgreSQL with no owner: an advisory
lock per user; a SQLite home: its owner runs every write)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.integration.test_several_writers import fresh_postgres_database, run_together
from tiermem import HashEmbedder, Memory

N = 20
SAYER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, timezone
    from tiermem import HashEmbedder, Memory
    home, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = {"database_url": url, "index_url": url} if url != "-" else {}
    at = datetime(2024, 5, 2, tzinfo=timezone.utc)
    with Memory.open(home, embedder=HashEmbedder(64), **options) as mem:
        for i in range(n):
            mem.add([{"role": "user", "content": f"My favourite number is qz{i}77 and my lucky colour is hue{i}."}],
                    user_id="ana", at=at + timedelta(minutes=i))
    print("done", flush=True)
    """
)


def _valid(mem: Memory) -> list[str]:
    return sorted(f.text for f in mem.facts(user_id="ana"))


def test_two_processes_on_postgresql_leave_what_one_process_leaves(tmp_path: Path, postgres_url: str) -> None:
    url = fresh_postgres_database(postgres_url)
    run_together(SAYER, [[str(tmp_path / tag), url, str(N)] for tag in ("A", "B")])
    with Memory.open(tmp_path / "C", database_url=url, index_url=url, embedder=HashEmbedder(64)) as mem:
        valid = _valid(mem)
    numbers = [t for t in valid if "favourite number" in t]
    colours = [t for t in valid if "lucky colour" in t]
    assert len(numbers) == 1 and len(colours) == 1, valid
    assert len(valid) == len(set(valid))


def test_two_processes_on_one_sqlite_home_leave_what_one_process_leaves(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run_together(SAYER, [[str(home), "-", str(N)] for _ in range(2)])
    with Memory.open(home, embedder=HashEmbedder(64)) as mem:
        valid = _valid(mem)
    assert len([t for t in valid if "favourite number" in t]) == 1, valid
    assert len([t for t in valid if "lucky colour" in t]) == 1, valid
