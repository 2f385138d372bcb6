"""Erasure receipts: what was removed per tier, and a check that none of it is still in the
store's files. Only local files can be checked (SQLite, the embedded index, the data folder
of a PostgreSQL on this machine); a remote server is reported as not checkable."""

from __future__ import annotations

import errno
import os
import re
import struct
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import Field

from ._models import FactEvent, _Model

MAX_NEEDLES = 60
NEEDLE_BYTES = 64  # a removed text is looked for by its first 64 bytes
MIN_NEEDLE_BYTES = 12  # shorter texts ('ok', 'hi') are everywhere: not evidence of anything
MAX_FILE_BYTES = 2 * 2**30
# forget_user() scans the local files inline up to this much allocated data: past it the scan
# would cost time in proportion to the whole store (some 100 MB/s here), not to the user.
INLINE_SCAN_BYTES = 64 * 2**20


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
        when nothing local could be checked, or the local files were too large to scan
        inline (`note` says which).
    leftovers: files where a removed text was still found (should be empty).
    note: why `verified` is None, when it is; on PostgreSQL, what was rewritten, what was
        sealed, what is left for later and what the server's WAL and backups keep.
    """

    user_id: str
    removed: dict[str, int]
    index: str
    verified: bool | None
    checked_files: int = 0
    leftovers: list[str] = Field(default_factory=list)
    note: str = ""
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


def allocated_bytes(roots: Sequence[Path]) -> int:
    """The data the files under `roots` hold on disk (holes of sparse files not counted)."""
    total = 0
    for path in store_files(roots):
        try:
            total += path.stat().st_blocks * 512
        except (FileNotFoundError, AttributeError):  # gone meanwhile; no st_blocks (Windows)
            continue
    return total


def word_id_needles(texts: Sequence[str], limit: int = 4096) -> list[bytes]:
    """How the keyword ids of the texts' words would sit in an embedded index's files if they
    were stored in the clear (CBOR unsigned 32-bit integers: 0x1a and the id, big-endian):
    what a brute force of an erased PIN would look for."""
    from ._text import sparse_document

    ids = sorted({i for text in texts for i in sparse_document(text)[0]})[:limit]
    return [b"\x1a" + struct.pack(">I", i) for i in ids]


def find_leftovers(texts: Sequence[str], roots: Sequence[Path], raw: Sequence[bytes] = ()) -> tuple[int, list[str]]:
    """(files checked, files that still contain one of the texts, or one of the `raw` byte
    strings).

    One pass per file for all the texts (a compiled alternation: some 1 GB/s, where a
    search per text took 60 passes), over the file's data only: the engines preallocate
    sparse files (a WAL segment of 32 MB may hold a few kB), and their holes are skipped."""
    wanted = needles(texts) + [n for n in raw if n]
    files = store_files(roots)
    if not wanted:
        return len(files), []
    pattern = re.compile(b"|".join(re.escape(n) for n in wanted))
    found = []
    for path in files:
        try:
            if path.stat().st_size <= MAX_FILE_BYTES and any(pattern.search(chunk) for chunk in _data_of(path)):
                found.append(str(path))
        except FileNotFoundError:  # an engine removed it meanwhile (a WAL segment recycled)
            continue
    return len(files), found


def _data_of(path: Path, overlap: int = NEEDLE_BYTES) -> Iterator[bytes]:
    """A file's allocated extents (SEEK_DATA / SEEK_HOLE where the OS has them), each
    with `overlap` bytes of the next, so a text across an extent's end is still found."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not hasattr(os, "SEEK_DATA"):
            yield f.read()
            return
        at = 0
        while at < size:
            try:
                start = os.lseek(f.fileno(), at, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno != errno.ENXIO and at == 0:  # no SEEK_DATA on this file system: read it all
                    f.seek(0)
                    yield f.read()
                return  # ENXIO: no data after `at`
            end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            f.seek(start)
            yield f.read(min(end, size) - start + overlap)
            at = end
