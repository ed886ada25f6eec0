"""Every text of the study read once, cached in the work folder (a rerun reads the cache).

Three views per text: the feature space's sparse activations (what FAC measures), the mean of
the layer's residual over the text's own tokens (what the downstream classifier learns from),
and a MiniLM sentence embedding (what the embedding baselines measure). Files are safetensors
and ``.npy`` (loaded with ``allow_pickle=False``), each written atomically and keyed by the ids it
holds, so a killed run resumes at the first view that is missing. Beside each file an index
(``<file>.ids.json``: the ids and a hash of each text) lets another task reuse the texts it
shares (the check task shares its negatives with the study task), so no text is read twice.
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


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _index(path: Path, what: str, extra: str, ids: Sequence[str], texts: Sequence[str]) -> None:
    """Record which texts ``path`` holds, row by row (written once; cheap to rewrite)."""
    side = path.with_name(path.name + ".ids.json")
    if not side.is_file():
        body = json.dumps({"what": what, "extra": extra, "ids": list(ids), "hashes": [_text_hash(t) for t in texts]})
        _write_atomic(side, lambda tmp: tmp.write_text(body))


def _donors(work: Path, what: str, extra: str, ids: Sequence[str], texts: Sequence[str]) -> dict[Path, list[tuple[int, int]]]:
    """Cached rows of the same view (``what``, ``extra``) in other files: file → [(row here, row there)]."""
    want = {(i, _text_hash(t)): k for k, (i, t) in enumerate(zip(ids, texts))}
    out: dict[Path, list[tuple[int, int]]] = {}
    for side in sorted(work.glob("*.ids.json")):
        meta = json.loads(side.read_text())
        data = side.with_name(side.name[: -len(".ids.json")])
        if meta["what"] != what or meta["extra"] != extra or not data.is_file():
            continue
        for j, key in enumerate(zip(meta["ids"], meta["hashes"])):
            k = want.pop(key, None)
            if k is not None:
                out.setdefault(data, []).append((k, j))
    return out


def _plan(work: Path, what: str, extra: str, ids: Sequence[str], texts: Sequence[str]):
    """Where each text's row comes from: ``(donors, todo)``, other caches' rows
    (file → [(row here, row there)]) and the positions still to compute, in order."""
    donors = _donors(work, what, extra, ids, texts)
    done = {k for pairs in donors.values() for k, _ in pairs}
    return donors, [k for k in range(len(ids)) if k not in done]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with path.open("wb") as f:  # a file object: np.save would append ".npy" to a path
        np.save(f, arr, allow_pickle=False)


def _cached_npy(path: Path, what: str, extra: str, ids: Sequence[str], texts: Sequence[str],
                make: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``[n, d]`` rows of ``make(texts)``, from the cache, from other tasks' caches, or computed."""
    work = path.parent
    if not path.is_file():
        donors, todo = _plan(work, what, extra, ids, texts)
        fresh = make([texts[k] for k in todo]) if todo else None
        parts = {f: np.load(f, allow_pickle=False) for f in donors}
        width = (fresh if fresh is not None else next(iter(parts.values()))).shape[1]
        arr = np.zeros((len(ids), width), np.float32)
        for f, pairs in donors.items():
            for k, j in pairs:
                arr[k] = parts[f][j]
        if todo:
            arr[todo] = fresh
        _write_atomic(path, lambda tmp: _save_npy(tmp, arr))
    _index(path, what, extra, ids, texts)
    return np.load(path, allow_pickle=False)


def sae_activations(space: FeatureSpace, ids: Sequence[str], texts: Sequence[str], work: Path,
                    name: str) -> SparseActivations:
    path = work / f"acts-{name}-{_key(ids, 'acts', space.fingerprint)}.safetensors"
    if not path.is_file():
        donors, todo = _plan(work, "acts", space.fingerprint, ids, texts)
        parts, order = [], []
        for f, pairs in donors.items():
            parts.append(SparseActivations.load(f).select([j for _, j in pairs]))
            order += [k for k, _ in pairs]
        if todo:
            parts.append(space.encode([texts[k] for k in todo], show_progress=True, desc=f"SAE {name}"))
            order += todo
        where = np.empty(len(ids), np.int64)
        where[order] = np.arange(len(order))  # row of text k in the concatenation
        acts = SparseActivations.concat(parts).select(where.tolist())
        _write_atomic(path, acts.save)
    _index(path, "acts", space.fingerprint, ids, texts)
    return SparseActivations.load(path)


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
    # The LM's fingerprint is dtype-blind (weights hashed at bf16), its residuals are not.
    fp = f"{space.lm_fingerprint()}|{space.reader.dtype}"
    return _cached_npy(work / f"resid-{name}-{_key(ids, 'resid', fp)}.npy", "resid", fp, ids, texts,
                       lambda todo: mean_residuals(space, todo))


def embeddings(ids: Sequence[str], texts: Sequence[str], work: Path, name: str) -> np.ndarray:
    from fac_metric.baselines import get_embedder

    return _cached_npy(work / f"minilm-{name}-{_key(ids, 'minilm')}.npy", "minilm", "", ids, texts,
                       lambda todo: get_embedder().embed(todo))
