"""Where tiermem keeps things: explicit arguments first, then environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".tiermem"


@dataclass(frozen=True)
class Locations:
    home: Path
    database_url: str
    qdrant_url: str | None
    qdrant_api_key: str | None

    @property
    def index_path(self) -> Path:
        return self.home / "facts"


def resolve(
    home: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
) -> Locations:
    """Resolve locations: argument, else TIERMEM_HOME / TIERMEM_DATABASE_URL /
    TIERMEM_QDRANT_URL / TIERMEM_QDRANT_API_KEY, else an embedded store in ./.tiermem."""
    home_path = Path(home or os.environ.get("TIERMEM_HOME") or DEFAULT_HOME).expanduser()
    db = database_url or os.environ.get("TIERMEM_DATABASE_URL") or None
    if db is None:
        home_path.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{home_path / 'tiermem.db'}"
    return Locations(
        home=home_path,
        database_url=db,
        qdrant_url=qdrant_url or os.environ.get("TIERMEM_QDRANT_URL") or None,
        qdrant_api_key=qdrant_api_key or os.environ.get("TIERMEM_QDRANT_API_KEY") or None,
    )
