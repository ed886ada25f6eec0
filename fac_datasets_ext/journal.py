"""The on-disk journal of a synthesis run: every generator answer and every attempt, as it happens.

Owns: the keys records are filed under (a generator's answers to one prompt, the verdict on one
sample, a generated response field), one append-only file per process (``journal-<rank>.jsonl``, written through
``fac_metric.llm.answer_cache.JsonlCache``: one fsync'd line per record, a torn last line ignored), and
reading back the records of *every* process' file, so a run restarted with another number of
processes still finds all answers already paid for. Must not: know what the records mean.

>>> import tempfile
>>> run = tempfile.mkdtemp()
>>> Journal(run, rank=1).put("gen|step1|7", ["a", "b"])
>>> Journal(run, rank=0).get("gen|step1|7")
['a', 'b']
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from fac_metric.llm import JsonlCache


def answer_key(step: str, feature: int, prompt: str) -> str:
    """Key of the answers to one prompt: a changed prompt (e.g. a step-2 pair rebuilt after a
    failed step-1 request was answered on resume) is a new request, never an old answer."""
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).hexdigest()
    return f"gen|{step}|{feature}|{digest}"


def attempt_key(step: str, feature: int, prompt: str, j: int) -> str:
    """Key of the verdict on the ``j``-th answer to one prompt."""
    return f"attempt|{answer_key(step, feature, prompt)[4:]}|{j}"


def response_key(field: str, feature: int, index: int) -> str:
    """Key of the generated ``field`` (a response, chosen, rejected) of one accepted sample."""
    return f"gen|{field}|{feature}|{index}"


class Journal:
    """``key -> value`` records of one run folder, read from all processes, written by this one."""

    def __init__(self, folder: str | os.PathLike, rank: int = 0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own = JsonlCache(self.folder / f"journal-{rank}.jsonl")
        self._seen: dict[str, Any] = {}
        for path in sorted(self.folder.glob("journal-*.jsonl")):
            if path != self._own.path:
                self._seen.update(JsonlCache(path).items())

    def get(self, key: str, default: Any = None) -> Any:
        return self._own.get(key, self._seen.get(key, default))

    def __contains__(self, key: str) -> bool:
        return key in self._own or key in self._seen

    def __len__(self) -> int:
        return len(self.keys())

    def put(self, key: str, value: Any) -> None:
        """Record ``value`` durably (on disk before this returns)."""
        self._own.put(key, value)

    def keys(self) -> set[str]:
        return set(self._seen) | {key for key, _ in self._own.items()}


__all__ = ["Journal", "answer_key", "attempt_key", "response_key"]
