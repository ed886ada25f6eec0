"""The one result type of encoding: sparse per-text feature activations (CSR layout).

Owns: ``SparseActivations`` and the helpers that build, join, slice, save and load it. Each
carries the fingerprint of the feature space that encoded it, so activations saved today are
refused by a profile of another space tomorrow. Profiles, the ``datasets`` encoder and
synthesis all consume this type; nothing dense of size (texts x SAE width) is ever built from
it except for a handful of rows on request.

>>> import numpy as np
>>> acts = SparseActivations.from_rows([([3, 7], [1.5, 0.2]), ([], [])], n_tokens=[4, 0], d_sae=10)
>>> acts.n_texts, acts.row(0)
(2, (array([3, 7], dtype=int32), array([1.5, 0.2], dtype=float32)))
>>> SparseActivations.concat([acts, acts]).n_texts
4
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from fac_metric.errors import FacInputError, FacMismatchError
from fac_metric.measure.threshold import mismatch

ACTIVATIONS_FORMAT = "fac-activations/1"


class SparseActivations(NamedTuple):
    """Per-text pooled activations of every latent that fired (values > 0), CSR-style."""

    indptr: np.ndarray
    """``int64 [n_texts + 1]``: text ``i``'s entries are ``indptr[i]:indptr[i+1]``."""
    indices: np.ndarray
    """``int32 [nnz]``: latent ids, ascending within a text."""
    values: np.ndarray
    """``float32 [nnz]``: pooled activation (max over the text's counted tokens)."""
    n_tokens: np.ndarray
    """``int32 [n_texts]``: counted tokens per text (after truncation)."""
    d_sae: int
    """Width of the SAE (number of latents)."""
    fingerprint: str = ""
    """Fingerprint of the feature space that encoded the texts ("" when built by hand)."""

    @property
    def n_texts(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(latent ids, activations)`` of text ``i``."""
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def activation(self, i: int, latent: int) -> float:
        """Pooled activation of ``latent`` on text ``i`` (0.0 where it did not fire)."""
        ids, vals = self.row(i)
        pos = np.searchsorted(ids, latent)
        return float(vals[pos]) if pos < len(ids) and ids[pos] == latent else 0.0

    def select(self, rows: Sequence[int]) -> "SparseActivations":
        """The activations of texts ``rows``, in that order."""
        rows = [int(i) for i in rows]
        if rows and not (0 <= min(rows) and max(rows) < self.n_texts):
            raise FacInputError(f"rows must lie in [0, {self.n_texts}); got {min(rows)}..{max(rows)}")
        return SparseActivations.from_rows([self.row(i) for i in rows], self.n_tokens[rows], self.d_sae,
                                           self.fingerprint)

    def to_dense(self) -> np.ndarray:
        """``[n_texts, d_sae]`` array: only for a few rows (tests, plots), never for a corpus."""
        out = np.zeros((self.n_texts, self.d_sae), dtype=np.float32)
        for i in range(self.n_texts):
            ids, vals = self.row(i)
            out[i, ids] = vals
        return out

    @classmethod
    def from_rows(
        cls, rows: Iterable[tuple[Sequence[int], Sequence[float]]], n_tokens: Sequence[int], d_sae: int,
        fingerprint: str = "",
    ) -> "SparseActivations":
        rows = list(rows)
        lengths = [len(ids) for ids, _ in rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.concatenate([np.asarray(ids, dtype=np.int32) for ids, _ in rows]) if rows else np.zeros(0, np.int32)
        values = np.concatenate([np.asarray(v, dtype=np.float32) for _, v in rows]) if rows else np.zeros(0, np.float32)
        return cls(indptr, indices.astype(np.int32), values.astype(np.float32), np.asarray(n_tokens, dtype=np.int32), int(d_sae),
                   str(fingerprint))

    @classmethod
    def concat(cls, parts: Sequence["SparseActivations"]) -> "SparseActivations":
        """Join parts made by the same feature space, in order."""
        if not parts:
            raise FacInputError("no activations to concatenate: pass at least one part")
        d_sae, fingerprint = parts[0].d_sae, parts[0].fingerprint
        if any(p.d_sae != d_sae for p in parts):
            raise FacMismatchError("cannot concatenate activations of SAEs of different widths: encode all parts "
                                   "with one feature space")
        if any(p.fingerprint != fingerprint for p in parts):
            other = next(p.fingerprint for p in parts if p.fingerprint != fingerprint)
            raise FacMismatchError(f"cannot concatenate activations of {mismatch(other, fingerprint)}: encode all "
                                   "parts with one feature space, in one dtype")
        offsets = np.cumsum([0] + [len(p.indices) for p in parts[:-1]])
        indptr = np.concatenate([[0]] + [p.indptr[1:] + off for p, off in zip(parts, offsets)]).astype(np.int64)
        return cls(
            indptr,
            np.concatenate([p.indices for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.n_tokens for p in parts]),
            d_sae,
            fingerprint,
        )

    def above(self, thresholds: np.ndarray) -> "SparseActivations":
        """Only the entries above their latent's threshold (what coverage counts), same texts.

        >>> acts = SparseActivations.from_rows([([1, 2], [0.5, 3.0]), ([2], [1.0])], [3, 2], d_sae=4)
        >>> acts.above(np.array([0, 1, 2, 0], np.float32)).row(0)
        (array([2], dtype=int32), array([3.], dtype=float32))
        """
        keep = self.values > np.asarray(thresholds)[self.indices]
        rows = np.repeat(np.arange(self.n_texts), np.diff(self.indptr))
        indptr = np.zeros(self.n_texts + 1, np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=self.n_texts), out=indptr[1:])
        return SparseActivations(indptr, self.indices[keep], self.values[keep], self.n_tokens, self.d_sae,
                                 self.fingerprint)

    def fired(self, thresholds: np.ndarray, columns: np.ndarray | None = None):
        """``[n_texts, n_columns]`` scipy CSR 0/1 matrix: text t fires latent ``columns[j]`` above its
        threshold (``columns``: sorted unique latent ids; None: every latent, in order).

        >>> acts = SparseActivations.from_rows([([1, 2], [0.5, 3.0]), ([2], [1.0])], [3, 2], d_sae=4)
        >>> acts.fired(np.array([0, 1, 2, 0], np.float32)).toarray().tolist()
        [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
        >>> acts.fired(np.zeros(4, np.float32), columns=np.array([2])).toarray().tolist()
        [[1.0], [1.0]]
        """
        from scipy import sparse

        keep = self.values > np.asarray(thresholds)[self.indices]
        col = self.indices
        width = self.d_sae
        if columns is not None:
            where = np.full(self.d_sae, -1, np.int64)
            where[columns] = np.arange(len(columns))
            keep &= where[self.indices] >= 0
            col, width = where[self.indices], len(columns)
        rows = np.repeat(np.arange(self.n_texts), np.diff(self.indptr))[keep]
        return sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows, col[keep])),
                                 shape=(self.n_texts, width))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the activations to the safetensors file ``path``, with their space's fingerprint.

        >>> import tempfile
        >>> acts = SparseActivations.from_rows([([3], [2.5])], [4], d_sae=8, fingerprint="fp")
        >>> path = acts.save(Path(tempfile.mkdtemp()) / "pool.safetensors")
        >>> back = SparseActivations.load(path)
        >>> back == acts, back.fingerprint
        (True, 'fp')
        """
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(self.to_arrays(), str(tmp), metadata={"format": ACTIVATIONS_FORMAT, "fingerprint": self.fingerprint})
        os.replace(tmp, path)  # a kill leaves a stray .tmp, never a torn file
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SparseActivations":
        """Activations written by :meth:`save` (safetensors only: nothing is unpickled)."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.is_file():
            raise FacInputError(f"{path} is not a saved activations file (write one with SparseActivations.save)")
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
            arrays = load_file(str(path))
        except Exception as err:
            raise FacInputError(f"{path} is not a safetensors activations file: {err}") from err
        if meta.get("format") != ACTIVATIONS_FORMAT:
            raise FacInputError(f"{path} is not a saved activations file (format {meta.get('format')!r})")
        try:
            return cls.from_arrays(arrays, meta.get("fingerprint", "")).check()
        except (KeyError, IndexError, FacInputError) as err:
            raise FacInputError(f"{path} is a damaged activations file: {err}") from err

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for safetensors (``d_sae`` as a one-element array; the fingerprint goes in metadata)."""
        return {
            "indptr": self.indptr, "indices": self.indices, "values": self.values,
            "n_tokens": self.n_tokens, "d_sae": np.asarray([self.d_sae], dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], fingerprint: str = "") -> "SparseActivations":
        return cls(
            arrays["indptr"].astype(np.int64), arrays["indices"].astype(np.int32), arrays["values"].astype(np.float32),
            arrays["n_tokens"].astype(np.int32), int(arrays["d_sae"][0]), str(fingerprint),
        )

    def check(self) -> "SparseActivations":
        """These activations if their arrays fit together (``FacInputError`` saying what does not):
        what a file read back from disk must pass before anything counts it."""
        n = len(self.indptr) - 1
        problems = []
        if n < 0 or self.indptr[0] != 0 or self.indptr[-1] != len(self.indices) or (np.diff(self.indptr) < 0).any():
            problems.append("indptr is not a running count of the entries")
        if len(self.indices) != len(self.values) or len(self.n_tokens) != max(n, 0):
            problems.append("array lengths disagree")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= self.d_sae):
            problems.append(f"latent ids outside [0, {self.d_sae})")
        if not np.isfinite(self.values).all() or (self.values <= 0).any():
            problems.append("values that are NaN, infinite or not positive")
        if problems:
            raise FacInputError("; ".join(problems))
        return self

    def __eq__(self, other: object) -> bool:  # numpy fields: compare values, not tuples of arrays
        return (isinstance(other, SparseActivations) and self.d_sae == other.d_sae
                and self.fingerprint == other.fingerprint
                and all(np.array_equal(a, b) for a, b in zip(self[:4], other[:4])))

    __hash__ = None  # type: ignore[assignment]
