"""The receipt's scan finds a removed text wherever it is in a file: in a plain file, and
in a sparse one after a hole (the engines preallocate such files and only their data is read)."""

from __future__ import annotations

from pathlib import Path

from tiermem._erasure import find_leftovers


def test_the_scan_finds_texts_in_plain_and_sparse_files_and_nothing_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "plain.db").write_bytes(b"x" * 5000 + "Eve's passport is qxv123 ✓".encode() + b"y" * 100)
    with open(tmp_path / "wal.log", "wb") as f:
        f.seek(40 * 2**20)  # a 40 MB hole first
        f.write(b"...Bob's locker code is zz9876...")
    (tmp_path / "clean.seg").write_bytes(b"nothing to see here " * 1000)
    checked, found = find_leftovers(["Eve's passport is qxv123 ✓", "Bob's locker code is zz9876"], [tmp_path])
    assert checked == 3
    assert sorted(Path(p).name for p in found) == ["plain.db", "wal.log"]
    assert find_leftovers(["a text that is nowhere at all"], [tmp_path]) == (3, [])


def test_allocated_bytes_counts_data_not_the_holes_of_sparse_files(tmp_path: Path) -> None:
    from tiermem._erasure import allocated_bytes

    with open(tmp_path / "sparse.wal", "wb") as f:
        f.seek(64 * 2**20)  # 64 MB apparent size, one block of data
        f.write(b"x")
    (tmp_path / "dense.db").write_bytes(b"y" * 200_000)
    assert 200_000 <= allocated_bytes([tmp_path]) < 2 * 2**20
