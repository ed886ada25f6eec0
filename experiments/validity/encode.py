"""Every text of the study read once, cached in the work folder (a rerun reads the cache).

Three views per text: the feature space's sparse activations (what FAC measures), the mean of
the layer's residual over the text's own tokens (what the downstream classifier learns from),
and a MiniLM sentence embedding (what the embedding baselines measure). Files are safetensors
and ``.npy`` (loaded with ``allow_pickle=False``), each written atomically and keyed by the ids it
holds, so a killed run resumes at the first view that is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from fac_metric import FeatureSpace, SparseActivations


def _key(ids: Sequence[str], what: str, extra: str = "") -> str:
    return hashlib.sha256(json.dumps([what, extra, list(ids)]).encode()).hexdigest()[:16]


def _cached_npy(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    if path.is_file():
        return np.load(path, allow_pickle=False)
    arr = make()
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr, allow_pickle=False)
    os.replace(tmp, path)
    return arr


def sae_activations(space: FeatureSpace, ids: Sequence[str], texts: Sequence[str], work: Path,
                    name: str) -> SparseActivations:
    path = work / f"acts-{name}-{_key(ids, 'acts', space.fingerprint)}.safetensors"
    if path.is_file():
        return SparseActivations.load(path)
    acts = space.encode(list(texts), show_progress=True, desc=f"SAE {name}")
    tmp = path.with_name(path.name + ".tmp")
    acts.save(tmp)
    os.replace(tmp, path)
    return acts


@torch.inference_mode()
def mean_residuals(space: FeatureSpace, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """``[n, d_model]`` mean over each text's counted tokens of the hooked layer's residual."""
    reader = space.reader
    tokenized = reader.tokenize_all(list(texts))
    out = np.zeros((len(texts), reader.d_model), np.float32)
    for ids in reader.batches(tokenized, batch_size):
        batch = reader.read(tokenized, ids)
        start = 0
        for text_id, n in zip(batch.text_ids, batch.lengths):
            out[text_id] = batch.residuals[start : start + n].float().mean(0).cpu().numpy()
            start += n
    return out


def residuals(space: FeatureSpace, ids: Sequence[str], texts: Sequence[str], work: Path, name: str) -> np.ndarray:
    return _cached_npy(work / f"resid-{name}-{_key(ids, 'resid', space.lm_fingerprint())}.npy",
                       lambda: mean_residuals(space, texts))


def embeddings(ids: Sequence[str], texts: Sequence[str], work: Path, name: str) -> np.ndarray:
    from fac_metric.baselines import get_embedder

    return _cached_npy(work / f"minilm-{name}-{_key(ids, 'minilm')}.npy",
                       lambda: get_embedder().embed(list(texts)))
