"""Sealed payloads: the embedded index's way to erase a user at the cost of that user's data.

qdrant-edge keeps a deleted point's bytes in its write-ahead log and segment pages until the
shard is rewritten, and a rewrite costs the whole index (about 12 s at 100k points), not
the erased user. So the embedded index never stores a user's text or id in the clear:

- the payload (text, subject, metadata, sources, ...) is sealed with AES-GCM under a key of
  the user's own, which lives in the session tier (`tm_user_keys`), never in the index;
- the tenant field every read filters on holds a token derived from that key (HMAC), not
  the user id;
- the keyword channel's word ids (a sparse vector of the stems of the fact's words) are
  derived with the key too (HMAC of each word's id, folded to 31 bits), so the index holds
  no id a dictionary can turn back into a word once the key is gone, and each user's word
  statistics (BM25's IDF) are their own;
- what filters and ranking read besides (the fact id, kind, validity and event times,
  importance) stays in the clear: numbers and labels, none of the user's words.

`forget_user()` deletes the user's points and, in the same transaction as the user's rows,
their key: what the index files may still hold of them is ciphertext nobody can open and a
token nobody can link to the user. Forgetting one fact still rewrites the shard (its key is
the user's, which stays); `Memory.optimize(compact=True)` (`tiermem optimize --compact`) rewrites it on
demand, which also takes the erased points' vectors off the disk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ._base import TENANT_KEY

# In the clear: what the engine filters on and what ranking reads before a fact is built.
CLEAR = frozenset({"id", "kind", "importance", "valid_from_ts", "invalid_at_ts", "event_ts"})
SEALED = "sealed"
NO_KEY = "(no key)"  # the tenant of a user with no key: matches no point (tokens are hex; PostgreSQL text holds no NUL)
KeyStore = Callable[[str, bool], bytes | None]  # (user_id, create) -> the user's key, or None


class PayloadSeal:
    """Seals and opens fact payloads with per-user keys.

    Args:
        keys: the session tier's key store: `keys(user_id, create)` returns the user's
            32-byte key, making one when `create` and there is none.
    """

    def __init__(self, keys: KeyStore, cache_size: int = 4096):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM
        self._keys = keys
        self._cache: OrderedDict[str, tuple[Any, str, bytes, bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def confirm(self, user_id: str) -> None:
        """Before a write: the user's key row must exist now, and be the key cached here
        (another process may have erased the user, and the user come back with a new key)."""
        key = self._keys(user_id, True)
        with self._lock:
            found = self._cache.get(user_id)
            if found is not None and found[3] != key:
                self._cache.pop(user_id)

    def forget_all(self) -> None:
        """Drop every cached key (another process erased a user)."""
        with self._lock:
            self._cache.clear()

    def _entry(self, user_id: str, create: bool) -> tuple[Any, str, bytes, bytes] | None:
        with self._lock:
            found = self._cache.get(user_id)
            if found is not None:
                self._cache.move_to_end(user_id)
                return found
        key = self._keys(user_id, create)
        if key is None:
            return None
        entry = (self._aead(key), hmac.new(key, b"tiermem tenant", hashlib.sha256).hexdigest()[:32],
                 hmac.new(key, b"tiermem words", hashlib.sha256).digest(), key)
        with self._lock:
            self._cache[user_id] = entry
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return entry

    def tenant(self, user_id: str) -> str:
        """The value of the tenant field for this user's points (NO_KEY: the user has none)."""
        entry = self._entry(user_id, create=False)
        return entry[1] if entry else NO_KEY

    def words(self, user_id: str, sparse: tuple[Sequence[int], Sequence[float]], *,
              create: bool) -> tuple[list[int], list[float]]:
        """A sparse vector with each word id replaced by one derived with the user's key
        (`create`: make the key for a first write; a read for a user with none matches no
        point and gets an empty vector)."""
        entry = self._entry(user_id, create=create)
        if entry is None:
            return [], []
        key = entry[2]
        weights: dict[int, float] = {}
        for word, weight in zip(sparse[0], sparse[1], strict=True):
            keyed = int.from_bytes(hmac.new(key, struct.pack(">I", word), hashlib.sha256).digest()[:4], "big") & 0x7FFFFFFF
            weights[keyed] = weights.get(keyed, 0.0) + weight
        ids = sorted(weights)
        return ids, [weights[i] for i in ids]

    def seal(self, payload: dict[str, Any]) -> dict[str, Any]:
        user_id = str(payload[TENANT_KEY])
        entry = self._entry(user_id, create=True)
        assert entry is not None  # create=True always makes one
        aead, token = entry[0], entry[1]
        nonce = os.urandom(12)
        point = str(payload.get("id", ""))
        sealed = aead.encrypt(nonce, json.dumps(payload, separators=(",", ":")).encode(), point.encode())
        clear = {k: v for k, v in payload.items() if k in CLEAR}
        return {**clear, TENANT_KEY: token, SEALED: base64.b64encode(nonce + sealed).decode()}

    def open(self, payload: dict[str, Any], user_id: str) -> dict[str, Any]:
        """The payload as it was sealed (one of `user_id`'s: every read is one user's)."""
        blob = payload.get(SEALED)
        if blob is None:
            return payload
        entry = self._entry(user_id, create=False)
        if entry is None:
            raise KeyError(f"no key for the points of user {user_id!r}")
        raw = base64.b64decode(blob)
        opened = entry[0].decrypt(raw[:12], raw[12:], str(payload.get("id", "")).encode())
        return json.loads(opened)

    def open_later(self, payload: dict[str, Any], user_id: str) -> dict[str, Any]:
        """The payload, opened on the first read of a sealed field: ranking reads only the
        clear ones, and most of a search's candidates are never returned."""
        return payload if SEALED not in payload else OpenedOnRead(payload, lambda: self.open(payload, user_id))

    def forget(self, user_id: str) -> None:
        """Drop the user's key from memory (the session tier deleted it from disk)."""
        with self._lock:
            self._cache.pop(user_id, None)


class OpenedOnRead(dict):
    """A sealed payload's clear fields, with the sealed ones read on first use."""

    def __init__(self, clear: dict[str, Any], opener: Callable[[], dict[str, Any]]):
        super().__init__({k: v for k, v in clear.items() if k != SEALED})
        self._opener: Callable[[], dict[str, Any]] | None = opener

    def _open(self) -> None:
        if self._opener is not None:
            opener, self._opener = self._opener, None
            super().update(opener())

    def __getitem__(self, key: str) -> Any:
        if not super().__contains__(key):
            self._open()
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        if not super().__contains__(key):
            self._open()
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if not super().__contains__(key):
            self._open()
        return super().__contains__(key)

    def items(self) -> Any:
        self._open()
        return super().items()

    def keys(self) -> Any:
        self._open()
        return super().keys()

    def values(self) -> Any:
        self._open()
        return super().values()

    def __iter__(self) -> Any:
        self._open()
        return super().__iter__()

    def __len__(self) -> int:
        self._open()
        return super().__len__()

    def copy(self) -> dict[str, Any]:
        self._open()
        return dict(super().items())
