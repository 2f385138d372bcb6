"""Module-level `__getattr__` (PEP 562) for packages whose exports load on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], object]:
    """A `__getattr__` for `package` that imports `table[name]` (a module relative to the
    package) on first access and keeps the value as a plain attribute from then on."""

    def __getattr__(name: str) -> object:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
