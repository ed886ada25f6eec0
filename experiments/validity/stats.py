"""Validity statistics: correlations with the downstream result, and bootstraps that resample
sets or whole compositions (sets of one composition differ only by seed, so they are not
independent evidence), with paired differences between two scores on the same replicates.

A score that is constant over a group (say every size-80 set has FAC 1.0) ranks nothing there:
its Spearman counts as 0, not as missing, so saturation costs a score what it should.

>>> import numpy as np
>>> round(spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 40, 30])), 3)
0.8
>>> spearman(np.ones(4), np.array([1, 2, 3, 4]))
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 1e-12 else 0.0


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(rankdata(x), rankdata(y))


def within_size(x: np.ndarray, y: np.ndarray, sizes: np.ndarray) -> float:
    """Mean over set sizes of the Spearman inside each size (sizes with < 3 sets are skipped)."""
    vals = [spearman(x[sizes == s], y[sizes == s]) for s in np.unique(sizes) if (sizes == s).sum() >= 3]
    return float(np.mean(vals)) if vals else 0.0


METRICS = {
    "pearson": lambda x, y, s: pearson(x, y),
    "spearman": lambda x, y, s: spearman(x, y),
    "within_size_spearman": within_size,
}


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"

    def to_dict(self) -> dict:
        return {"value": round(self.value, 4), "ci95": [round(self.low, 4), round(self.high, 4)]}


def replicates(groups: np.ndarray, n_boot: int, seed: int, by_group: bool) -> list[np.ndarray]:
    """Row indices of each bootstrap replicate: sets drawn with replacement, or whole groups."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    if not by_group:
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    names = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in names}
    return [np.concatenate([members[g] for g in rng.choice(names, len(names))]) for _ in range(n_boot)]


def interval(metric: str, x: np.ndarray, y: np.ndarray, sizes: np.ndarray, reps: list[np.ndarray]) -> Interval:
    f = METRICS[metric]
    boot = np.array([f(x[r], y[r], sizes[r]) for r in reps])
    return Interval(f(x, y, sizes), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)))


def paired(metric: str, a: np.ndarray, b: np.ndarray, y: np.ndarray, sizes: np.ndarray,
           reps: list[np.ndarray]) -> dict:
    """metric(a) − metric(b) on the same replicates: the value, its 95 % interval, and P, the
    share of replicates in which ``a`` beats ``b``."""
    f = METRICS[metric]
    diff = np.array([f(a[r], y[r], sizes[r]) - f(b[r], y[r], sizes[r]) for r in reps])
    return {"diff": round(f(a, y, sizes) - f(b, y, sizes), 4),
            "ci95": [round(float(np.percentile(diff, 2.5)), 4), round(float(np.percentile(diff, 97.5)), 4)],
            "p_better": round(float((diff > 0).mean()), 4)}
