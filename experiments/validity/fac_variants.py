"""Every FAC variant the study compares, computed from activations encoded once.

A variant is a relevance rule (which anchor features count) times a coverage rule (how a
training set's activations turn into a number):

- relevance: ``background`` (one-sided Fisher + BH against the shipped prose background: the
  shipped default), ``prompts`` (the same test against prompts of the task's form from other
  sources), ``other_class`` (against the benign pool: the user's negatives), ``all``
  (every non-generic anchor feature);
- coverage: ``binary`` (the paper's FAC: share of relevant features some text fires),
  ``frequency`` (per relevant feature, how much of the anchor's firing rate the set reaches,
  capped at 1), ``frequency_specific`` (the same, weighted by how much more often the anchor
  fires the feature than the contrast does), ``per_anchor_text`` (per anchor text, the share
  of its relevant features the set covers; averaged) and ``match`` (per anchor text, the best
  Jaccard overlap between its relevant features and those of one text of the set; averaged:
  is each kind of task text matched by a training text, not only each feature somewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from fac_metric import FeatureProfile, SparseActivations, Threshold
from fac_metric.measure import AnchorMatch, Relevance, all_features, contrast_features

COVERAGES = ("binary", "frequency", "frequency_specific", "per_anchor_text", "match")


def above(acts: SparseActivations, thr: Threshold) -> sparse.csr_matrix:
    """``[n_texts, d_sae]`` 0/1 matrix: text t fires feature i above δ."""
    return acts.fired(thr.per_latent)


@dataclass
class Reference:
    """What a variant compares training sets against: the anchor and its relevant features."""

    name: str
    relevance: Relevance
    anchor_share: np.ndarray
    """Per feature: share of anchor texts firing it."""
    contrast_share: np.ndarray | None
    anchor_rows: sparse.csr_matrix
    """The anchor's 0/1 matrix restricted to the relevant features."""
    anchor_acts: SparseActivations
    threshold: Threshold

    @property
    def ids(self) -> np.ndarray:
        return self.relevance.features


def reference(name: str, anchor_acts: SparseActivations, thr: Threshold, relevance: str,
              contrast: FeatureProfile | None, background: FeatureProfile, alpha: float = 0.05) -> Reference:
    anchor = FeatureProfile.from_activations(anchor_acts, thr)
    rel = all_features(anchor, background) if relevance == "all" else contrast_features(anchor, contrast, alpha=alpha)
    against = background if relevance == "all" else contrast
    a_share = anchor.count / anchor.n_texts
    c_share = against.count / against.n_texts
    return Reference(name, rel, a_share, c_share, above(anchor_acts, thr)[:, rel.features], anchor_acts, thr)


def coverages(ref: Reference, rows: sparse.csr_matrix, acts: SparseActivations) -> dict[str, float | None]:
    """Every coverage rule for one training set, from its texts' 0/1 rows (all features) and
    activations (``match`` is the product's :class:`~fac_metric.measure.match.AnchorMatch`)."""
    ids = ref.ids
    counts, n_texts = np.asarray(rows.sum(0)).ravel(), rows.shape[0]
    if not len(ids):
        return {c: None for c in COVERAGES}
    c = counts[ids]
    reach = np.minimum(1.0, (c / n_texts) / np.maximum(ref.anchor_share[ids], 1e-12))
    w = np.maximum(ref.anchor_share[ids] - ref.contrast_share[ids], 0.0)
    per_text_n = np.asarray(ref.anchor_rows.sum(1)).ravel()
    per_text_cov = ref.anchor_rows @ (c > 0).astype(np.float32)
    has = per_text_n > 0
    match = AnchorMatch(ref.anchor_acts, ref.threshold, ids)
    match.update(acts)
    return {
        "binary": float((c > 0).mean()),
        "frequency": float(reach.mean()),
        "frequency_specific": float((w * reach).sum() / w.sum()) if w.sum() > 0 else None,
        "per_anchor_text": float((per_text_cov[has] / per_text_n[has]).mean()) if has.any() else None,
        "match": match.value,
    }
