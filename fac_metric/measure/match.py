"""Match coverage: is each anchor text matched by some data text, feature for feature?

Owns: :class:`AnchorMatch`, FAC's graded variant ``coverage="match"``: for each anchor text, the
best Jaccard overlap between its relevant features (those it fires above δ) and those of one
data text, averaged over the anchor texts that fire any. The paper's binary FAC asks whether
each relevant feature fires *somewhere* in the data, so a few texts that each carry a piece of
the task saturate it; match asks whether each *kind* of task text has a close counterpart, which
in the validity study (docs/results.md) ranked training sets of one size by what a classifier
learned from them better than binary FAC and than MiniLM cluster coverage, and never saturated.
It folds data chunk by chunk (a running max per anchor text), so memory stays flat and two
halves merge exactly. Must not: choose the relevant features or run a model.

>>> import numpy as np
>>> from fac_metric.measure.activations import SparseActivations
>>> from fac_metric.measure.threshold import Threshold
>>> thr = Threshold.relative(1.0, np.ones(4, np.float32), "fp")
>>> anchor = SparseActivations.from_rows([([0, 1], [2., 2.]), ([2, 3], [2., 2.])], [3, 3], 4, "fp")
>>> m = AnchorMatch(anchor, thr, relevant=[0, 1, 2, 3])
>>> m.update(SparseActivations.from_rows([([0, 1], [3., 3.]), ([2], [3.])], [2, 2], 4, "fp"))
>>> m.per_anchor.tolist(), m.value      # text 0 matched exactly; text 1 half: {2} vs {2, 3}
([1.0, 0.5], 0.75)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import sparse

from fac_metric.errors import FacInputError, FacMismatchError
from fac_metric.measure.activations import SparseActivations
from fac_metric.measure.threshold import Threshold


def _fired(acts: SparseActivations, threshold: Threshold, columns: np.ndarray) -> sparse.csr_matrix:
    """``[n_texts, len(columns)]`` 0/1: text t fires relevant feature ``columns[j]`` above δ."""
    threshold.check(acts.fingerprint)
    if acts.d_sae != threshold.d_sae:
        raise FacMismatchError(f"activations of width {acts.d_sae} do not match a δ of width {threshold.d_sae}")
    return acts.fired(threshold.per_latent, columns)


def jaccard(a: sparse.csr_matrix, b: sparse.csr_matrix) -> np.ndarray:
    """``[len(a), len(b)]`` Jaccard overlap of every row of 0/1 matrix ``a`` with every row of ``b``
    (0 where both rows are empty).

    >>> m = sparse.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], np.float32))
    >>> jaccard(m, m).round(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    inter = (a @ b.T).toarray()
    union = np.asarray(a.sum(1)).ravel()[:, None] + np.asarray(b.sum(1)).ravel()[None, :] - inter
    return inter / np.maximum(union, 1)


class AnchorMatch:
    """Running best match of every anchor text over the data seen so far (see the module doc)."""

    def __init__(self, anchor: SparseActivations, threshold: Threshold, relevant: Sequence[int] | np.ndarray):
        if not isinstance(anchor, SparseActivations):
            raise FacInputError(f"coverage='match' needs the anchor's activations, not {type(anchor).__name__}")
        self.threshold = threshold
        self.columns = np.unique(np.asarray(list(relevant), np.int64))
        self._anchor = _fired(anchor, threshold, self.columns)
        self._anchor_n = np.asarray(self._anchor.sum(1)).ravel()
        self.best = np.zeros(anchor.n_texts, np.float64)
        """Per anchor text: the best Jaccard overlap with one data text so far."""
        self.n_texts = 0

    def update(self, data: SparseActivations) -> None:
        """Fold one chunk of data activations in."""
        if not isinstance(data, SparseActivations):
            raise FacInputError(f"coverage='match' needs the data's activations, not {type(data).__name__}")
        mine = _fired(data, self.threshold, self.columns)
        self.n_texts += data.n_texts
        if not len(self.columns) or not data.n_texts:
            return
        np.maximum(self.best, jaccard(self._anchor, mine).max(1), out=self.best)

    def merge(self, other: "AnchorMatch") -> "AnchorMatch":
        """Both data shares together (the same anchor, δ and features): the elementwise max."""
        if not (np.array_equal(self.columns, other.columns) and self.threshold == other.threshold
                and self.best.shape == other.best.shape):
            raise FacMismatchError("only matches of the same anchor, δ and relevant features merge")
        self.best = np.maximum(self.best, other.best)
        self.n_texts += other.n_texts
        return self

    @property
    def per_anchor(self) -> np.ndarray:
        """Best match of each anchor text that fires a relevant feature (others are left out)."""
        return self.best[self._anchor_n > 0]

    @property
    def value(self) -> float | None:
        """The mean best match, in [0, 1]; None when no anchor text fires a relevant feature."""
        per = self.per_anchor
        return float(per.mean()) if len(per) else None


__all__ = ["AnchorMatch"]
