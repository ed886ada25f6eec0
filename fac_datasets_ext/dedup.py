"""Is a new sample new? Exact, near and copy duplicates of the data and of earlier samples.

Owns: the text normalisation exact duplicates are compared by, the word n-gram test for a
sample that copies its prompt's examples, and ``DedupIndex``: the data's texts and active
feature sets plus the samples accepted so far, checked by Jaccard similarity of active
features. Must not: encode texts (it is given their active features) or prompt generators.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

from fac_metric import SparseActivations

COPY_NGRAM = 6
COPY_SHARE = 0.5


def copies(sample: str, source: str, n: int = COPY_NGRAM, share: float = COPY_SHARE) -> bool:
    """Whether ``sample`` mostly repeats ``source``: at least ``share`` of its word ``n``-grams
    (and at least one) occur in ``source``; a sample shorter than ``n`` words, if it occurs in
    ``source`` whole. ``share=0``: any shared ``n``-gram (used against a template's own wording).

    >>> copies("Italicize at least 5 keywords in your response.", "1. Summarize it. Italicize at least 5 keywords in your response.")
    True
    >>> copies("Write a limerick about a cat who loves rain, in all capital letters.", "Italicize at least 5 keywords.")
    False
    """
    words, seen = normalise(sample).split(), normalise(source)
    if len(words) < n:
        return bool(words) and f" {' '.join(words)} " in f" {seen} "
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    src = seen.split()
    known = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    return len(grams & known) >= max(1.0, share * len(grams))


def normalise(text: str) -> str:
    """Text for exact-duplicate checks: case-folded, letters and digits only, single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


class DedupIndex:
    """The texts and active-feature sets seen so far (the data, then accepted samples)."""

    def __init__(self, texts: Sequence[str], active: SparseActivations, similarity: float):
        """``active``: each data text's latents above δ (``SparseActivations.above``), in text order."""
        from scipy import sparse

        self.similarity = similarity
        self.d_sae = active.d_sae
        self.seen = {normalise(t) for t in texts if isinstance(t, str)}
        self.matrix = sparse.csr_matrix((np.ones(len(active.indices), np.float32), active.indices, active.indptr),
                                        shape=(active.n_texts, active.d_sae))
        self.sizes = np.diff(active.indptr)
        self.new: list[tuple[str, np.ndarray]] = []

    def check(self, text: str, active: Sequence[int]) -> str | None:
        """Why ``text`` repeats what is already there, or None if it is new."""
        norm = normalise(text)
        if norm in self.seen:
            return "duplicate of the data"
        if any(norm == t for t, _ in self.new):
            return "duplicate of a new sample"
        ids = np.asarray(active, np.int64)
        if not len(ids):
            return None
        vec = np.zeros(self.d_sae, np.float32)
        vec[ids] = 1.0
        if self.matrix.shape[0]:
            inter = self.matrix @ vec
            jaccard = inter / np.maximum(self.sizes + len(ids) - inter, 1)
            if jaccard.max() >= self.similarity:
                return "near-duplicate of the data"
        for _, other in self.new:
            inter = len(np.intersect1d(other, ids))
            if inter / max(len(other) + len(ids) - inter, 1) >= self.similarity:
                return "near-duplicate of a new sample"
        return None

    def add(self, text: str, active: Sequence[int]) -> None:
        self.new.append((normalise(text), np.asarray(active, np.int64)))


__all__ = ["DedupIndex", "copies", "normalise", "COPY_NGRAM", "COPY_SHARE"]
