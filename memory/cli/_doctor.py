"""`tiermem doctor`: what a memory home holds and whether its index agrees with its journal.

Reads SQLite (or PostgreSQL) and opens the embedded index without an embedder, so it
works when the model or the index is what is broken.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from .._config import Locations
from .._errors import IndexCorrupted, IndexLocked, TieredMemoryError
from ..index._facts import rebuilding_key, recorded_journal
from ..session import SCHEMA_VERSION, SessionStore


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def examine(where: Locations) -> dict[str, Any]:
    problems: list[str] = []
    store = SessionStore(where.database_url)
    try:
        journal_ids = store.fact_ids()
        journal = {
            "users": len(store.users()),
            "facts (valid)": store.count_facts(),
            "facts (with history)": len(journal_ids),
            "journal entries": store.last_event_seq(),
            "pending turns (extraction)": store.count_pending(),
            "failed batches": len(store.failures()),
            "embedder": store.get_meta("embedder"),
        }
        if journal["failed batches"]:
            problems.append(f"{journal['failed batches']} extraction batches failed; they are retried on open")
        index = _examine_index(where, store, journal_ids, problems)
        config = {
            "home": str(where.home),
            "database": make_url(where.database_url).render_as_string(hide_password=True),
            "index": where.index_url or str(where.index_path),
            "owner": owner_of(where.home),
        }
        versions = {"tiermem": _version("tiermem"), "schema": SCHEMA_VERSION, "qdrant-edge-py": _version("qdrant-edge-py"),
                    "onnxruntime": _version("onnxruntime")}
    finally:
        store.close()
    return {"config": config, "versions": versions, "journal": journal, "index": index, "problems": problems}


def owner_of(home: Path) -> str:
    """Who owns a home: the process serving it (its other users follow it), or nobody."""
    from ..serve._shared import live_owner

    owner = live_owner(home)
    return f"pid {owner.get('pid')} serving at {owner.get('url')}" if owner else "none (the next opener becomes the owner)"


def _identity(folder: Path) -> str:
    from ..index._facts import IDENTITY_FILE

    try:
        return "embedded:" + json.loads((folder / IDENTITY_FILE).read_text())["index_id"]
    except (OSError, ValueError, KeyError):
        return str(folder.resolve())  # before index ids: the path was the key


def _examine_index(where: Locations, store: SessionStore, journal_ids: set[str], problems: list[str]) -> dict[str, Any]:
    if where.index_kind != "embedded":
        backend = "qdrant server" if where.index_kind == "qdrant" else "pgvector"
        return {"backend": backend, "checked": "no (a server: open memory and run verify())"}
    path = where.index_path
    out: dict[str, Any] = {"backend": "qdrant-edge", "path": str(path)}
    if not path.exists():
        out["status"] = "missing (rebuilt from the journal on the next open)"
        return out
    if store.get_meta(rebuilding_key(_identity(path))):
        problems.append("an index rebuild was interrupted (it is redone on the next open, or with --repair)")
    recorded = recorded_journal(path)
    if recorded is not None and recorded != store.get_meta("journal_id"):
        problems.append("the index was built from another database; --repair moves it aside and rebuilds it")
        out["status"] = "from another database"
        return out
    _examine_keys(store, out, problems)
    dims = _dims(store, path)
    from ..index import EdgeFactIndex

    try:
        index = EdgeFactIndex(path, dims)
    except IndexLocked as exc:
        out["status"] = "in use"
        out["lock"] = str(exc).split(";")[0]
        return out
    except (IndexCorrupted, TieredMemoryError) as exc:
        problems.append(f"the index cannot be opened: {exc}")
        out["status"] = "cannot be opened"
        return out
    try:
        ids = index.ids()
        out["points"] = len(ids)
        missing, extra = journal_ids - ids, ids - journal_ids
        out["missing from the index"], out["not in the journal"] = len(missing), len(extra)
        out["status"] = "ok" if not missing and not extra else "out of step"
        if missing or extra:
            problems.append(f"index and journal disagree ({len(missing)} missing, {len(extra)} extra); --repair rebuilds it")
    finally:
        index.close()
    return out


def _examine_keys(store: SessionStore, out: dict[str, Any], problems: list[str]) -> None:
    """Every user with facts needs a sound sealing key: without one their facts cannot be
    searched (a lost key row) or read at all (a damaged one)."""
    lost, damaged = [], []
    for user_id, facts, _ in store.users():
        if not facts:
            continue
        try:
            if store.user_key(user_id, create=False) is None:
                lost.append(user_id)
        except IndexCorrupted:
            damaged.append(user_id)
    if lost:
        problems.append(f"{len(lost)} users have facts but no sealing key (their facts are not searchable); "
                        "--repair rebuilds the index under new keys")
    if damaged:
        problems.append(f"{len(damaged)} users have a damaged sealing key; --repair replaces it and rebuilds the index")
    out["keys lost"], out["keys damaged"] = lost, damaged


def _dims(store: SessionStore, path: Path) -> int:
    recorded = store.get_meta("embedder")
    if recorded and recorded.rsplit(":", 1)[-1].isdigit():
        return int(recorded.rsplit(":", 1)[-1])
    try:
        return int(json.loads((path / "edge_config.json").read_text())["vectors"]["dense"]["size"])
    except (OSError, ValueError, KeyError):
        return 384


def repair_home(where: Locations, report: dict[str, Any], open_memory: Callable[[], Any]) -> list[str]:
    """Fix what examine() found: an index that cannot be opened or belongs to another
    database is moved aside (not deleted: it may hold another database's data) and rebuilt
    from the journal; an index out of step is rebuilt; pending extraction is finished."""
    done: list[str] = []
    status = report["index"].get("status")
    if status in ("cannot be opened", "from another database"):
        aside = where.index_path.with_name(f"{where.index_path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(where.index_path, aside)
        done.append(f"moved the index aside to {aside} (delete it once you have checked it)")
    damaged = report["index"].get("keys damaged") or []
    lost = report["index"].get("keys lost") or []
    if damaged:
        store = SessionStore(where.database_url)
        try:
            for user_id in damaged:
                store.drop_user_key(user_id)
        finally:
            store.close()
        done.append(f"replaced the damaged sealing keys of {len(damaged)} users")
    with open_memory() as mem:  # rebuilds a missing index, resumes an interrupted rebuild, recovers pending turns
        if damaged or lost or mem.verify() != {"missing": set(), "extra": set()}:
            mem.reindex()
        mem.flush(timeout=300)
        done.append(f"index rebuilt from the journal ({mem.index.count()} points)")
    return done
