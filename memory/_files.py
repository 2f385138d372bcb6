"""Files an agent keeps in memory (Claude's memory tool), per user: validated once here,
written with the fact that makes them searchable in one transaction, compared and set by
version so that concurrent edits never lose one another, erased with their facts."""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime

from ._errors import InvalidInput, WriteConflict
from ._limits import check_text
from ._models import Fact, FactEvent, MemoryFile
from ._retriever import Retriever
from ._sync import IndexSync
from .session import SessionStore

MAX_FILE_CHARS = 1_000_000
MAX_PATH_CHARS = 1024
FACT_CHARS = 2000  # how much of a file its fact holds (what search and context() see)


def check_path(path: object) -> str:
    """A file path every backend stores and every listing shows as it is: a non-empty string
    of at most 1,024 characters with no control character (a newline or an escape code in a
    name could forge lines of a listing) and no empty or relative segment."""
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"path must be a non-empty string, got {path!r}")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidInput(f"path is {len(path):,} characters; the limit is {MAX_PATH_CHARS:,}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in path):
        raise InvalidInput(f"path {path!r} holds a control or format character; use printable names")
    if any(part in ("", ".", "..") for part in path.strip("/").split("/")):
        raise InvalidInput(f"path {path!r} has an empty, '.' or '..' segment")
    return path


def check_content(content: object, path: str) -> str:
    """A file's text: the same rules as every other stored text, with the file's size limit."""
    return check_text(content, f"content of {path}", allow_empty=True, max_chars=MAX_FILE_CHARS)


def parents(path: str) -> list[str]:
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:i]) for i in range(2, len(parts))]


class FileWrites:
    """The write side of memory files; reads go to the session store directly."""

    def __init__(self, session: SessionStore, retriever: Retriever, sync: IndexSync, forget: Callable[..., object],
                 lock: threading.RLock, clock: Callable[[], datetime]):
        self.session = session
        self.lock = lock
        self.retriever = retriever
        self.sync = sync
        self.forget = forget
        self.clock = clock

    def write(self, user_id: str, path: str, content: str, if_version: int | None) -> MemoryFile:
        path = check_path(path)
        content = check_content(content, path)
        if if_version is not None and (not isinstance(if_version, int) or isinstance(if_version, bool) or if_version < 0):
            raise InvalidInput(f"if_version must be None or a non-negative integer, got {if_version!r}")
        for _ in range(100):  # an unconditional write retries when another one lands between its read and its write
            try:
                return self._write_once(user_id, path, content, if_version)
            except WriteConflict:
                if if_version is not None:
                    raise
        raise WriteConflict(f"{path} kept changing under 100 writes in a row; try again")

    def _write_once(self, user_id: str, path: str, content: str, if_version: int | None) -> MemoryFile:
        current = self.session.file(user_id, path)
        if if_version == 0:
            self._check_free(user_id, path, current)
        elif if_version is not None and (current is None or current.version != if_version):
            raise WriteConflict(f"{path} is at version {current.version if current else 'none'}, not {if_version}; "
                                "read it again and retry")
        text = " ".join(content.split())[:FACT_CHARS] or "(empty)"
        now = self.clock()
        old = self.session.get_fact(current.fact_id) if current is not None and current.fact_id else None
        if old is not None and old.is_valid:
            fact = old.model_copy(update={"text": text, "metadata": {**old.metadata, "memory_file": path}})
            event = FactEvent(op="update", fact_id=old.id, user_id=user_id, fact=fact, previous=old, at=now,
                              reason=f"memory file {path} edited")
        else:
            fact = Fact(user_id=user_id, kind="semantic", text=text, subject=user_id, importance=0.6, valid_from=now,
                        created_at=now, metadata={"memory_file": path}, extractor="memory_tool")
            event = FactEvent(op="add", fact_id=fact.id, user_id=user_id, fact=fact, at=now, reason=f"memory file {path}")
        [vector] = self.retriever.embed([fact.index_text])
        file = MemoryFile(path=path, content=content, version=(current.version + 1) if current else 1, fact_id=fact.id,
                          updated_at=now)
        with self.lock:
            stored = self.session.commit_file(user_id, file, event, current.version if current else 0)
            self.sync.apply([stored], {fact.index_text: vector})
        return file

    def _check_free(self, user_id: str, path: str, current: MemoryFile | None) -> None:
        if current is not None or self.session.files(user_id, path.rstrip("/") + "/"):
            raise WriteConflict(f"{path} already exists")
        for parent in parents(path):
            if self.session.file(user_id, parent) is not None:
                raise WriteConflict(f"{parent} is a file, so {path} cannot be created under it")

    def delete(self, user_id: str, paths: Sequence[str]) -> int:
        """Erase files and their facts: the text leaves every tier."""
        checked = [check_path(p) for p in paths]
        files = [f for f in (self.session.file(user_id, p) for p in checked) if f is not None]
        ids = [f.fact_id for f in files if f.fact_id]
        if ids:
            self.forget(ids, user_id)
        return self.session.delete_files(user_id, [f.path for f in files]) if files else 0
