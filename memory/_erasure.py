"""Erasure receipts: what was removed per tier, and a check that none of it is still in the
store's files. Only local files can be checked (SQLite, the embedded index); a PostgreSQL
or Qdrant server is reported as not checkable."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import Field

from ._models import FactEvent, _Model

MAX_NEEDLES = 60
NEEDLE_BYTES = 64  # a removed text is looked for by its first 64 bytes
MIN_NEEDLE_BYTES = 12  # shorter texts ('ok', 'hi') are everywhere: not evidence of anything
MAX_FILE_BYTES = 2 * 2**30


class ErasureReceipt(_Model):
    """What `forget_user()` did.

    removed: rows per session-tier table, and "index_points".
    index: "sealed" (the embedded index: the user's points deleted and the key their
        payloads were sealed with destroyed, at the cost of the user's data; see
        `tiermem.index._sealing`), "compacted" (storage rewritten without the user: a
        pgvector table, or an embedded index opened without the session tier's keys), or
        "deleted" (a Qdrant server: its points are deleted; its files are the server's to
        rewrite).
    verified: True when none of the removed texts is found in any local store file; None
        when nothing local could be checked.
    leftovers: files where a removed text was still found (should be empty).
    """

    user_id: str
    removed: dict[str, int]
    index: str
    verified: bool | None
    checked_files: int = 0
    leftovers: list[str] = Field(default_factory=list)
    event: FactEvent

    # The tombstone's fields, as forget_user() returned it before receipts existed.
    @property
    def op(self) -> str:
        return self.event.op

    @property
    def fact_id(self) -> str:
        return self.event.fact_id

    @property
    def at(self) -> datetime:
        return self.event.at

    @property
    def seq(self) -> int | None:
        return self.event.seq


def needles(texts: Sequence[str]) -> list[bytes]:
    out: list[bytes] = []
    for text in sorted(set(texts), key=len, reverse=True):
        needle = text.encode("utf-8")[:NEEDLE_BYTES]
        if len(needle) >= MIN_NEEDLE_BYTES and needle not in out:
            out.append(needle)
        if len(out) >= MAX_NEEDLES:
            break
    return out


def store_files(roots: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file()]
    return files


def find_leftovers(texts: Sequence[str], roots: Sequence[Path]) -> tuple[int, list[str]]:
    """(files checked, files that still contain one of the texts)."""
    wanted = needles(texts)
    files = store_files(roots)
    found = []
    for path in files:
        if not wanted or path.stat().st_size > MAX_FILE_BYTES:
            continue
        data = path.read_bytes()
        if any(n in data for n in wanted):
            found.append(str(path))
    return len(files), found
