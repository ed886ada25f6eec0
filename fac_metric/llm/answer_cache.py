"""An append-only JSON-lines store of paid-for results (LLM answers), safe to kill at any point.

Owns: keyed records on disk, one JSON object per line, appended and flushed to disk as each
result arrives, so a run killed mid-way (even ``kill -9``) restarts without asking the LLM again
for what it already answered. A torn last line (killed mid-write) is ignored on reading. Must
not: know what the records mean.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "answers.jsonl")
>>> store = JsonlCache(path)
>>> store.put("f12|gen", {"label": "rain"})
>>> JsonlCache(path).get("f12|gen")
{'label': 'rain'}
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any


class JsonlCache:
    """``key -> JSON value`` records in one append-only file (the last record of a key wins)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        if self.path.is_file():
            with open(self.path, "rb") as fh:
                for raw in fh:
                    try:
                        record = json.loads(raw.decode("utf-8"))
                        self._data[record["key"]] = record["value"]
                    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                        continue  # a line torn by a kill mid-write: that answer is simply asked again

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[str, Any]]:
        """Every ``(key, value)`` record, the last one per key."""
        return list(self._data.items())

    def put(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` and make it durable before returning."""
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                # A torn line left by an earlier kill would swallow this record: start on a fresh line.
                if fh.tell() > 0 and not _ends_with_newline(self.path):
                    fh.write("\n")
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._data[key] = value


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def cache_key(*parts: object) -> str:
    """A compact key for an LLM answer: the parts that decide it, prompt text included, hashed."""
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=12).hexdigest()


def llm_cache(space, cache_dir: str | os.PathLike | None = None):
    """The on-disk store of this feature space's LLM answers (explanations, checks, judgments)."""
    from fac_metric.space.models import cache_dir as default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "llm"
    return JsonlCache(root / f"{space.fingerprint}.jsonl")


__all__ = ["JsonlCache", "cache_key", "llm_cache"]
