"""Where tiermem keeps things: explicit arguments first, then environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigError

# A home's owner (serve._shared): the election lock it holds while it owns the home, and where
# it says how to reach it (url, key, pid). Here, so that reading them loads nothing else.
LOCK_FILE = "serve.lock"
INFO_FILE = "serve.json"

DEFAULT_HOME = ".tiermem"


@dataclass(frozen=True)
class Locations:
    home: Path
    database_url: str
    index_url: str | None  # None: the embedded index in the home; http(s)://: a Qdrant server; postgresql://: pgvector
    index_api_key: str | None

    @property
    def qdrant_url(self) -> str | None:
        """The Qdrant server, when the index is one."""
        return self.index_url if self.index_kind == "qdrant" else None

    @property
    def index_kind(self) -> str:
        """"embedded", "qdrant" or "pgvector"."""
        return index_kind(self.index_url)

    @property
    def index_path(self) -> Path:
        return self.home / "facts"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, when the session tier is one."""
        from .session._engine import sqlite_file

        return sqlite_file(self.database_url)


def resolve(
    home: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    index_url: str | None = None,
    index_api_key: str | None = None,
    *,
    create: bool = True,
) -> Locations:
    """Resolve locations: argument, else TIERMEM_HOME / TIERMEM_DATABASE_URL /
    TIERMEM_INDEX_URL (or TIERMEM_QDRANT_URL) / TIERMEM_QDRANT_API_KEY, else an embedded
    store in ./.tiermem.

    `create=False` (the CLI's inspection commands) leaves a missing home missing.

    Raises:
        ConfigError: the home is a file, or under one; the index URL is not one tiermem can use.
    """
    home_path = Path(home or os.environ.get("TIERMEM_HOME") or DEFAULT_HOME).expanduser()
    if home_path.exists() and not home_path.is_dir() or any(p.is_file() for p in home_path.parents):
        raise ConfigError(f"the memory home {home_path} is a file (or under one); point TIERMEM_HOME / home= at a folder")
    db = database_url or os.environ.get("TIERMEM_DATABASE_URL") or None
    if db is None:
        if create:
            try:
                home_path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the memory home {home_path}: {exc.strerror}") from None
        # Built as a URL, not pasted into one: '?', '#' or '%' in a folder name must not
        # turn into a query string and move the database elsewhere.
        from sqlalchemy.engine import URL

        db = URL.create("sqlite", database=str(home_path / "tiermem.db")).render_as_string()
        if str(home_path) == ":memory:":
            raise ConfigError("home must be a folder")
    return Locations(
        home=home_path,
        database_url=db,
        index_url=index_url or os.environ.get("TIERMEM_INDEX_URL") or os.environ.get("TIERMEM_QDRANT_URL") or None,
        index_api_key=index_api_key or os.environ.get("TIERMEM_QDRANT_API_KEY") or None,
    )


def index_kind(url: str | None) -> str:
    """Which long-term backend a URL names: "embedded" (none), "qdrant" (http:// or
    https://) or "pgvector" (postgresql://).

    Raises:
        ConfigError: anything else.
    """
    if not url:
        return "embedded"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        return "qdrant"
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "pgvector"
    raise ConfigError(f"index_url {url!r}: use http(s)://host:6333 for a Qdrant server or postgresql://... for pgvector "
                      "(e.g. http://localhost:6333); leave it unset for the embedded index")


def home_sqlite_file(home: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Path | None:
    """The home's own SQLite file when no database URL is configured (argument or
    $TIERMEM_DATABASE_URL), else None; what `resolve` would pick, without importing SQLAlchemy."""
    if database_url or os.environ.get("TIERMEM_DATABASE_URL"):
        return None
    return Path(home or os.environ.get("TIERMEM_HOME") or DEFAULT_HOME).expanduser() / "tiermem.db"
