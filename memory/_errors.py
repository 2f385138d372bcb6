"""tiermem's errors. Each subclasses a built-in so callers can catch either, and each
message says what to do next."""

from __future__ import annotations


class TieredMemoryError(Exception):
    """Base class of every error tiermem raises on purpose."""


class InvalidInput(TieredMemoryError, ValueError):
    """A call's arguments were rejected before anything was stored."""


class MemoryClosed(TieredMemoryError, RuntimeError):
    """The `Memory` was closed; open a new one."""


class FactNotFound(TieredMemoryError, KeyError):
    """No fact with that id exists (or it was forgotten)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "fact not found"


class IndexLocked(TieredMemoryError, RuntimeError):
    """The embedded index folder is open in another process."""


class IndexCorrupted(TieredMemoryError, RuntimeError):
    """The long-term index cannot be opened or does not belong to this database."""


class EmbeddingMismatch(TieredMemoryError, ValueError):
    """The embedder does not produce vectors of the size the index was built with."""


class ConfigError(TieredMemoryError, ValueError):
    """A URL, path or option cannot be used as given."""


class StoreUnavailable(TieredMemoryError, ConnectionError):
    """A database or Qdrant server named by URL could not be reached."""


class Busy(StoreUnavailable):
    """`tiermem serve` is at its connection cap with clients that presented the key: try
    again in a moment (or raise its `max_connections`)."""


class MissingDependency(TieredMemoryError, ImportError):
    """An optional extra is needed for this feature."""


class UnknownUser(TieredMemoryError, KeyError):
    """No data is stored for that user id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown user"


class ContextOverflow(TieredMemoryError, ValueError):
    """The parts of a request that are never dropped (system prompt, tools, the new message,
    the reply reserve) are larger than the model's context window on their own."""


class WriteConflict(TieredMemoryError, RuntimeError):
    """A conditional write found another version than it expected (someone wrote first);
    nothing was written: read again and retry."""


class OutcomeUnknown(StoreUnavailable):
    """A served write got no answer (a timeout, a dropped connection): it may or may not
    have been stored. `key` is its idempotency key: `RemoteMemory.resend(key)` sends it
    again, and the server answers with the first result instead of writing twice."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key
