"""``FeatureProfile`` (per-feature max and count, mergeable, serialisable) and the FAC math.

Owns: reducing sparse activations to a profile at a :class:`~fac_metric.measure.threshold.Threshold`
(the only way profiles are built from data), merging profiles (elementwise max / sum, so 1 or N
processes give the same profile), saving and loading them with the feature space's
fingerprint, and ``fac()``: FAC = |F(data) ∩ F(anchor)| / |F(anchor)| over the relevant
features, with the missing features ranked. Must not: import torch or run models (the feature
space encodes; this module only counts).

>>> import numpy as np
>>> from fac_metric.measure.activations import SparseActivations
>>> thr = Threshold.relative(1.0, np.ones(6, np.float32), "fp")
>>> anchor = FeatureProfile.from_activations(
...     SparseActivations.from_rows([([0, 1, 2], [3., 2., 5.]), ([3], [4.])], [5, 5], 6, "fp"), thr)
>>> data = FeatureProfile.from_activations(SparseActivations.from_rows([([1, 2], [2., .5])], [3], 6, "fp"), thr)
>>> r = fac(data, anchor)
>>> r.fac, r.covered, r.missing
(0.25, [1], [2, 3, 0])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from safetensors.numpy import save_file

from fac_metric.errors import FacInputError, FacMismatchError
from fac_metric.measure.activations import SparseActivations
from fac_metric.measure.threshold import Threshold, mismatch

PROFILE_WEIGHTS = "profile.safetensors"
PROFILE_META = "profile.json"


@dataclass
class FeatureProfile:
    """What a dataset does in feature space: per latent, its strongest activation and how many
    texts activate it above the threshold."""

    max_activation: np.ndarray
    """``float32 [d_sae]``: max pooled activation over all texts (0 where it never fired)."""
    count: np.ndarray
    """``int64 [d_sae]``: number of texts whose activation exceeds the latent's threshold."""
    threshold: Threshold
    """What "active" meant when counting: δ, the per-latent activations, the feature space."""
    n_texts: int = 0
    n_tokens: int = 0

    @property
    def d_sae(self) -> int:
        return len(self.max_activation)

    @property
    def delta(self) -> float:
        """δ, the relative threshold the counts were made at."""
        return self.threshold.delta

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the feature space that encoded the texts."""
        return self.threshold.fingerprint

    @property
    def active(self) -> np.ndarray:
        """Boolean mask of covered latents: some text activates them above their threshold."""
        return self.count > 0

    @classmethod
    def from_activations(cls, acts: SparseActivations | Iterable[SparseActivations],
                         threshold: Threshold) -> "FeatureProfile":
        """The profile of ``acts`` (one ``SparseActivations`` or an iterable of chunks, streamed).

        Refuses activations of another feature space than ``threshold``'s, or of another width.
        """
        if not isinstance(threshold, Threshold):
            raise FacInputError(f"threshold must be a Threshold (from FeatureSpace.threshold_at), not "
                                f"{type(threshold).__name__}")
        prof = cls(np.zeros(threshold.d_sae, np.float32), np.zeros(threshold.d_sae, np.int64), threshold)
        for part in [acts] if isinstance(acts, SparseActivations) else acts:
            prof._fold(part)
        return prof

    def _fold(self, acts: SparseActivations) -> None:
        if not isinstance(acts, SparseActivations):
            raise FacInputError(f"expected SparseActivations (from FeatureSpace.encode), not {type(acts).__name__}")
        if acts.d_sae != self.d_sae:
            raise FacMismatchError(f"activations of width {acts.d_sae} cannot join a profile of width {self.d_sae}")
        self.threshold.check(acts.fingerprint)
        np.maximum.at(self.max_activation, acts.indices, acts.values)
        above = acts.values > self.threshold.per_latent[acts.indices]
        self.count += np.bincount(acts.indices[above], minlength=self.d_sae)
        self.n_texts += acts.n_texts
        self.n_tokens += int(acts.n_tokens.sum())

    def merge(self, other: "FeatureProfile") -> "FeatureProfile":
        """The profile of both datasets together: identical to profiling their concatenation."""
        self.check_compatible(other)
        return FeatureProfile(np.maximum(self.max_activation, other.max_activation), self.count + other.count,
                              self.threshold, self.n_texts + other.n_texts, self.n_tokens + other.n_tokens)

    def check_compatible(self, other: "FeatureProfile", what: str = "profiles") -> None:
        """Refuse to combine profiles of other feature spaces or thresholds."""
        if self.fingerprint != other.fingerprint:
            raise FacMismatchError(f"{what} do not mix: one was made by {mismatch(other.fingerprint, self.fingerprint)}; "
                                   "profile both with the same feature space, in one dtype")
        if self.threshold != other.threshold:
            raise FacMismatchError(f"{what} were counted at {self.threshold.differs(other.threshold)}")

    def save(self, path: str | Path) -> Path:
        """Write ``profile.safetensors`` + ``profile.json`` into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({"max_activation": self.max_activation, "count": self.count,
                   "thresholds": np.ascontiguousarray(self.threshold.per_latent)}, str(path / PROFILE_WEIGHTS))
        meta = {"threshold": self.delta, "fingerprint": self.fingerprint, "n_texts": self.n_texts,
                "n_tokens": self.n_tokens, "d_sae": self.d_sae, "format": "fac-profile/1"}
        (path / PROFILE_META).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureProfile":
        """A profile saved with :meth:`save` (counts are fixed at its δ: to count at another δ,
        save the activations instead and build a profile from them)."""
        from fac_metric.saved import check_array, read_arrays, read_json, require

        path = Path(path)
        if not (path / PROFILE_META).is_file() or not (path / PROFILE_WEIGHTS).is_file():
            raise FacInputError(f"{path} is not a saved profile (expected {PROFILE_META} and {PROFILE_WEIGHTS})")
        meta_file, weights_file = path / PROFILE_META, path / PROFILE_WEIGHTS
        meta = read_json(meta_file, "a saved profile")
        require(meta_file, meta, {"threshold": (int, float), "fingerprint": str, "n_texts": int, "n_tokens": int},
                "a saved profile")
        if not np.isfinite(meta["threshold"]) or meta["threshold"] < 0 or meta["n_texts"] < 0 or meta["n_tokens"] < 0:
            raise FacInputError(f"{meta_file} has threshold={meta['threshold']}, n_texts={meta['n_texts']}, "
                                f"n_tokens={meta['n_tokens']}: none can be negative or NaN (the file is damaged)")
        arrays = read_arrays(weights_file, "a saved profile", required=("max_activation", "count", "thresholds"))
        d_sae = int(meta.get("d_sae", arrays["count"].shape[0] if arrays["count"].ndim == 1 else -1))
        per = check_array(weights_file, "thresholds", arrays["thresholds"].astype(np.float32), length=d_sae, minimum=0)
        per.setflags(write=False)
        count = check_array(weights_file, "count", arrays["count"], length=d_sae, minimum=0).astype(np.int64)
        if count.size and count.max() > meta["n_texts"]:
            raise FacInputError(f"{weights_file} counts {int(count.max())} texts for latent {int(count.argmax())} but "
                                f"{meta_file} says the profile holds {meta['n_texts']}: the files do not belong together")
        top = check_array(weights_file, "max_activation", arrays["max_activation"].astype(np.float32), length=d_sae)
        return cls(top, count, Threshold(float(meta["threshold"]), per, meta["fingerprint"]), meta["n_texts"],
                   meta["n_tokens"])

    @staticmethod
    def is_saved(path) -> bool:
        return isinstance(path, (str, Path)) and (Path(path) / PROFILE_META).is_file()


@dataclass
class FACResult:
    """What ``fac()`` found (all plain Python values; ``to_dict`` for JSON)."""

    fac: float | None
    """|F(data) ∩ F(anchor)| / |F(anchor)| over relevant features; plain coverage without anchor."""
    n_covered: int
    n_reference: int
    """|F(anchor)| (relevant anchor features), or the number of live latents without an anchor."""
    covered: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    """Reference features the data does not cover, most important first (anchor frequency, then strength)."""
    relevance: str = "contrast"
    """How the relevant features were chosen: contrast, judge, all, given, anchor-covered, live-latents."""
    threshold: float = 0.0
    n_texts: int = 0
    n_anchor_texts: int = 0
    coverage: str = "binary"
    """How ``fac`` was counted: ``binary`` (the paper's, as ``n_covered / n_reference``) or ``match``."""
    binary_fac: float | None = None
    """The paper's binary FAC, ``n_covered / n_reference``, whatever ``coverage`` is."""

    def __post_init__(self) -> None:
        if self.binary_fac is None and self.coverage == "binary":
            self.binary_fac = self.fac

    def to_dict(self) -> dict:
        return asdict(self)


def fac(
    data: FeatureProfile,
    anchor: FeatureProfile | None = None,
    *,
    relevant: Sequence[int] | np.ndarray | None = None,
    relevance: str | None = None,
    live: np.ndarray | None = None,
) -> FACResult:
    """FAC of ``data`` against ``anchor`` (see the module docstring for a worked example).

    The reference set F(anchor) is the anchor-covered features among ``relevant`` (ids, chosen
    by :mod:`fac_metric.measure.relevance`; ``relevance`` names how), or all anchor-covered features.
    Without an anchor: the share of ``live`` latents (default: all) that ``data`` covers.
    """
    if anchor is None:
        ref = np.ones(data.d_sae, bool) if live is None else np.asarray(live, bool)
        mode = "live-latents"
        n_anchor = 0
    else:
        data.check_compatible(anchor, "data and anchor profiles")
        ref = anchor.active.copy()
        n_anchor = anchor.n_texts
        mode = "anchor-covered"
        if relevant is not None:
            ids = np.asarray(list(relevant), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= data.d_sae):
                raise FacInputError(f"relevant feature ids must lie in [0, {data.d_sae}); got {ids.min()}..{ids.max()}")
            mask = np.zeros(data.d_sae, bool)
            mask[ids] = True
            ref &= mask
            mode = "given"
    covered_mask = ref & data.active
    missing_mask = ref & ~data.active
    n_ref = int(ref.sum())
    order_src = anchor if anchor is not None else data
    # Rank missing features by how often the anchor fires them, then by how strongly (relative).
    strength = order_src.max_activation / np.maximum(order_src.threshold.per_latent, 1e-12)
    missing = np.flatnonzero(missing_mask)
    missing = missing[np.lexsort((missing, -strength[missing], -order_src.count[missing]))]
    return FACResult(
        fac=(int(covered_mask.sum()) / n_ref) if n_ref else None,
        n_covered=int(covered_mask.sum()),
        n_reference=n_ref,
        covered=np.flatnonzero(covered_mask).tolist(),
        missing=missing.tolist(),
        relevance=relevance or mode,
        threshold=data.delta,
        n_texts=data.n_texts,
        n_anchor_texts=n_anchor,
    )
