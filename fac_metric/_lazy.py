"""Lazy public names for package ``__init__`` modules (PEP 562).

Owns: mapping a package's public names to the modules defining them, imported on first use, so
``import fac_metric`` (and ``fac --help``) never pays for torch or transformers it does not need.
Must not: hold any logic of its own.

>>> getattr_, dir_ = lazy_names("fac_metric", {"FacError": "fac_metric.errors"})
>>> getattr_("FacError").__name__
'FacError'
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_names(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to its module."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
