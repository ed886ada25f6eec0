"""The on-task gate: does a synthesised sample read like a text of the task?

Owns: :class:`TaskGate`. A sample that fires its target feature can still be about something
else entirely (a small generator asked about "features" writes about features). The gate asks
what match FAC asks (:mod:`fac_metric.measure.match`): how closely does the sample's set of
anchor features (those it fires above δ, among the anchor's non-generic ones) overlap with that
of its nearest anchor text? It is calibrated on the anchor itself: each anchor text, held out,
is matched against the others, and a sample must overlap its nearest anchor text at least as
well as the ``quantile`` (5 %) least typical held-out anchor text does. Must not: generate,
or decide anything about the target feature (``synthesis`` does).

>>> import numpy as np
>>> from fac_metric import SparseActivations, Threshold
>>> thr = Threshold.relative(1.0, np.ones(6, np.float32), "fp")
>>> rows = [([0, 1, 2], [2.] * 3), ([0, 1, 3], [2.] * 3), ([0, 2, 3], [2.] * 3), ([1, 2, 3], [2.] * 3)]
>>> gate = TaskGate(SparseActivations.from_rows(rows, [3] * 4, 6, "fp"), thr, columns=[0, 1, 2, 3])
>>> round(gate.cutoff, 2), gate.score([0, 1, 2]), gate.score([4, 5])     # held-out anchor texts: 0.5
(0.5, 1.0, 0.0)
>>> gate.accepts([0, 1, 4]), gate.accepts([5])
(True, False)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fac_metric import FacInputError, SparseActivations, Threshold
from fac_metric.measure import jaccard

ON_TASK_QUANTILE = 0.05
"""Share of the anchor's own (held-out) texts the gate would reject: its false-rejection rate."""
CALIBRATION_TEXTS = 2000
"""Anchor texts held out, at most, to calibrate the cutoff (a seeded sample of a larger anchor)."""


class TaskGate:
    """Accept a sample whose features overlap some anchor text's as much as anchor texts overlap each other."""

    def __init__(self, anchor: SparseActivations, threshold: Threshold, columns: Sequence[int] | np.ndarray,
                 quantile: float = ON_TASK_QUANTILE):
        if not 0 <= quantile < 1:
            raise FacInputError(f"on-task quantile={quantile} must be in [0, 1)")
        self.columns = np.unique(np.asarray(list(columns), np.int64))
        self.threshold = threshold
        fired = anchor.fired(threshold.per_latent, self.columns)
        keep = np.asarray(fired.sum(1)).ravel() > 0  # anchor texts with no such feature match nothing
        self._anchor = fired[keep].tocsr()
        if self._anchor.shape[0] < 2:
            raise FacInputError("the on-task gate needs at least 2 anchor texts that fire anchor features")
        n = self._anchor.shape[0]
        # A large anchor is calibrated on a seeded sample of its texts (each matched against all the
        # others), in chunks: memory and time stay bounded, never n x n.
        rows = np.arange(n) if n <= CALIBRATION_TEXTS else np.sort(
            np.random.default_rng(0).choice(n, CALIBRATION_TEXTS, replace=False))
        best = []
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            overlap = jaccard(self._anchor[chunk], self._anchor)
            overlap[np.arange(len(chunk)), chunk] = -1.0  # held out: matched against the others only
            best.append(overlap.max(1))
        self.held_out = np.concatenate(best)
        """Each calibration text's best overlap with another anchor text."""
        self.cutoff = float(np.quantile(self.held_out, quantile, method="lower"))
        self.quantile = quantile

    def score(self, active: Sequence[int]) -> float:
        """Best Jaccard overlap of a sample's active latents (above δ) with one anchor text."""
        ids = np.unique(np.asarray(list(active), np.int64))
        d_sae = len(self.threshold.per_latent)
        # ``active`` is already above δ: as a one-text row, every entry fires against a zero threshold
        row = SparseActivations.from_rows([(ids, np.ones(len(ids), np.float32))], [1], d_sae)
        return float(jaccard(row.fired(np.zeros(d_sae, np.float32), self.columns), self._anchor).max())

    def accepts(self, active: Sequence[int]) -> bool:
        return self.score(active) >= self.cutoff


__all__ = ["TaskGate", "ON_TASK_QUANTILE", "CALIBRATION_TEXTS"]
