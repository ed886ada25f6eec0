"""Resident-memory helpers shared by the benchmarks: current RSS and a sampled peak.

The process-lifetime peak (``VmHWM``) would be the model load's transient, hiding what the
measured step adds, so the peak is sampled by a thread while the step runs.
"""

from __future__ import annotations

import threading


def rss_mb() -> float:
    """This process' resident set size now, in MB (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRSS:
    """Sample RSS every ``interval`` seconds inside a ``with`` block; ``.peak`` is the highest seen.

    The samples at entry and exit are included, so ``peak - base`` is never negative.

    >>> with PeakRSS() as m:
    ...     block = bytearray(50 * 2**20)
    >>> m.peak >= m.base
    True
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.base = self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        """Peak RSS during the block minus RSS at its start, in MB."""
        return self.peak - self.base
