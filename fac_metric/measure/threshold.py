"""``Threshold``: δ and the per-latent activations it means, resolved and validated once.

Owns: the one value object every stage takes for "active above δ". δ is *relative* (a multiple
of each latent's scale, the median activation of the latent on held-out text); ``per_latent``
is the *absolute* activation a text must exceed for each latent (δ x scale), and
``fingerprint`` names the feature space whose scales these are, so a threshold of one space is
refused by another space's activations. Built by ``FeatureSpace.threshold_at``. Must not: know
about models.

>>> import numpy as np
>>> thr = Threshold.relative(2.0, np.array([1.0, 0.5], np.float32), "fp")
>>> thr.delta, thr.per_latent.tolist(), thr.fingerprint
(2.0, [2.0, 1.0], 'fp')
>>> Threshold.relative(-1, np.ones(2, np.float32), "fp")
Traceback (most recent call last):
...
fac_metric.errors.FacInputError: threshold δ=-1 must be a number >= 0 (δ is relative to each latent's scale; the default is 1.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fac_metric.errors import FacInputError, FacMismatchError


def with_dtype(fingerprint: str, dtype: str) -> str:
    """The fingerprint of a feature space computing in ``dtype``: unchanged for float32, marked
    otherwise. bf16 arithmetic changes a few latents' activations (and which batch-mates a text
    had matters to it), so its activations and counts must not mix silently with fp32 ones.

    >>> with_dtype("9f2c", "float32"), with_dtype("9f2c", "bfloat16")
    ('9f2c', '9f2c-bfloat16')
    """
    return fingerprint if dtype == "float32" else f"{fingerprint}-{dtype}"


def mismatch(theirs: str | None, ours: str) -> str:
    """Why two fingerprints differ, for a message: another space, or the same in another dtype.

    >>> mismatch("9f2c-bfloat16", "9f2c")
    'the same feature space computing in another dtype (bfloat16, not float32: bf16 changes a few activations)'
    >>> mismatch("77aa", "9f2c")
    'another feature space (77aa vs 9f2c)'
    """
    base_a, _, dtype_a = (theirs or "").partition("-")
    base_b, _, dtype_b = ours.partition("-")
    if theirs and base_a == base_b:
        return (f"the same feature space computing in another dtype ({dtype_a or 'float32'}, not "
                f"{dtype_b or 'float32'}: bf16 changes a few activations)")
    return f"another feature space ({theirs or 'unknown'} vs {ours})"


@dataclass(frozen=True, eq=False)
class Threshold:
    """δ (relative), the absolute per-latent activations it stands for, and their feature space."""

    delta: float
    """δ: a latent is active on a text when its pooled activation exceeds ``delta x scale``."""
    per_latent: np.ndarray
    """``float32 [d_sae]``: the absolute activation each latent must exceed (δ x scale)."""
    fingerprint: str
    """Fingerprint of the feature space whose scales ``per_latent`` was computed from."""

    @classmethod
    def relative(cls, delta: float, scales: np.ndarray, fingerprint: str) -> "Threshold":
        """δ x ``scales``, after checking that δ is a finite number >= 0."""
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)) \
                or not math.isfinite(float(delta)) or float(delta) < 0:
            raise FacInputError(f"threshold δ={delta!r} must be a number >= 0 (δ is relative to each latent's "
                                "scale; the default is 1.5)")
        per = (float(delta) * np.asarray(scales, np.float32)).astype(np.float32)
        per.setflags(write=False)
        return cls(float(delta), per, str(fingerprint))

    @property
    def d_sae(self) -> int:
        return len(self.per_latent)

    def check(self, fingerprint: str, what: str = "activations") -> None:
        """Refuse ``what`` made by another feature space than this threshold's."""
        if fingerprint != self.fingerprint:
            raise FacMismatchError(f"{what} were made by {mismatch(fingerprint, self.fingerprint)}: encode them "
                                   "with this feature space, in one dtype")

    def differs(self, other: "Threshold") -> str:
        """How two thresholds of one space differ, for a message: δ, or (same δ) the per-latent values.

        >>> a = Threshold.relative(1.5, np.array([1.0, 2.0], np.float32), "fp")
        >>> b = Threshold(1.5, np.array([1.5, 9.0], np.float32), "fp")
        >>> a.differs(b)
        'the same δ=1.5 with other per-latent thresholds (1 of 2 latents differ, e.g. latent 1: 3 vs 9): one was made from other scales or edited; recompute it'
        """
        if self.delta != other.delta:
            return f"different thresholds (δ={self.delta:g} vs δ={other.delta:g}): recompute one at the other's δ"
        if self.per_latent.shape != other.per_latent.shape:
            return (f"thresholds of different widths ({self.d_sae} vs {other.d_sae} latents): they come from "
                    "different feature spaces")
        diff = np.flatnonzero(self.per_latent != other.per_latent)
        k = int(diff[0]) if diff.size else 0
        return (f"the same δ={self.delta:g} with other per-latent thresholds ({diff.size} of {self.d_sae} latents "
                f"differ, e.g. latent {k}: {self.per_latent[k]:g} vs {other.per_latent[k]:g}): one was made from "
                "other scales or edited; recompute it")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Threshold) and self.delta == other.delta and self.fingerprint == other.fingerprint
                and np.array_equal(self.per_latent, other.per_latent))

    def __hash__(self) -> int:
        return hash((self.delta, self.fingerprint))

    def __repr__(self) -> str:
        return f"Threshold(delta={self.delta:g}, d_sae={self.d_sae}, fingerprint={self.fingerprint!r})"


__all__ = ["Threshold"]
