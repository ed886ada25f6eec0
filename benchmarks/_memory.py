"""Resident-memory helpers shared by the benchmarks: current RSS and the peak over a step.

The process-lifetime peak (``VmHWM``) would be the model load's transient, hiding what the
measured step adds, so the peak is sampled by a thread while the step runs. With
``kernel_peak=True`` the kernel's own high-water mark is also reset when the step starts (Linux
``/proc/self/clear_refs``) and read when it ends: the exact peak, not one a 20 ms sampler may
miss (tensors that live for a few milliseconds).
"""

from __future__ import annotations

import ctypes
import threading


def rss_mb(field: str = "VmRSS") -> float:
    """This process' resident set size now (or ``field="VmHWM"``: its peak), in MB; 0 where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_kernel_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_free_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``); whether that ran.

    Freed memory the allocator keeps varies from run to run by tens of MB: trimming before the
    baseline makes the baseline the memory actually in use.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


class PeakRSS:
    """Sample RSS every ``interval`` seconds inside a ``with`` block; ``.peak`` is the highest seen.

    The samples at entry and exit are included, so ``peak - base`` is never negative. With
    ``kernel_peak=True`` (and a kernel that allows it) ``.peak`` is the exact high-water mark.

    >>> with PeakRSS() as m:
    ...     block = bytearray(50 * 2**20)
    >>> m.peak >= m.base
    True
    >>> with PeakRSS(kernel_peak=True) as m:
    ...     block = b"x" * (50 * 2**20)
    ...     del block
    >>> m.growth > 40 or not m.kernel_peak      # freed before exit, yet counted
    True
    """

    def __init__(self, interval: float = 0.02, kernel_peak: bool = False):
        self.interval = interval
        self.kernel_peak = kernel_peak
        self.base = self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> "PeakRSS":
        self.kernel_peak = self.kernel_peak and reset_kernel_peak()
        self.base = self.peak = rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        if self.kernel_peak:
            self.peak = max(self.peak, rss_mb("VmHWM"))

    def peak_so_far(self) -> float:
        """The peak since the block started, read from inside it."""
        now = max(self.peak, rss_mb())
        return max(now, rss_mb("VmHWM")) if self.kernel_peak else now

    @property
    def growth(self) -> float:
        """Peak RSS during the block minus RSS at its start, in MB."""
        return self.peak - self.base
