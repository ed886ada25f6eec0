"""One run at a time per run folder: an OS file lock, so two identical runs never both pay.

Owns: :class:`RunLock`, held by each process of a synthesis run for as long as the run works in its
folder. A second run with the same arguments (the same folder) is refused at once with the
holder's pid, before it encodes or calls anything. The lock is the kernel's (``flock`` on POSIX,
``msvcrt.locking`` on Windows), so a run killed with SIGKILL leaves no stale lock: the OS drops
it with the process, and the next run takes it. Each process of an ``accelerate`` run locks its
own rank's file, so the processes of one run do not exclude each other. Must not: know what the
run does.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with RunLock(folder, rank=0):
...     try:
...         RunLock(folder, rank=0).acquire()
...     except RunBusyError as err:
...         print("refused:", "is already running" in str(err))
refused: True
>>> with RunLock(folder, rank=0):   # released: the next run takes it
...     pass
"""

from __future__ import annotations

import os
from pathlib import Path

from fac_metric import FacInputError


class RunBusyError(FacInputError):
    """Another process holds this run folder's lock."""


class RunLock:
    """An exclusive, non-blocking lock on ``.<folder>.lock-<rank>`` beside ``folder`` (outside it,
    so a run started afresh can empty the folder it holds)."""

    def __init__(self, folder: str | os.PathLike, rank: int = 0) -> None:
        folder = Path(folder)
        self.folder = folder
        self.path = folder.parent / f".{folder.name}.lock-{rank}"
        self._fh = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            _lock(fh)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise RunBusyError(f"a run with these arguments is already running (pid {holder}) in "
                               f"{self.folder}: wait for it to finish (this one would pay for the same "
                               "calls again), or change the arguments, or pass another cache_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


try:
    import fcntl

    def _lock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
except ImportError:  # Windows
    import msvcrt

    def _lock(fh) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)


__all__ = ["RunLock", "RunBusyError"]
