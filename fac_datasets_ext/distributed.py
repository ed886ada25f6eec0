"""Spreading work over the processes of an ``accelerate launch``, with the same result for any count.

Owns: profiling a list of texts in fixed blocks spread over the processes (``profile_spread``,
with a per-block cache a killed run resumes from); which process is which, and gathering, is
:class:`fac_metric.ranks.Ranks` (re-exported here). The result never
depends on the number of processes because the *units* never do: a block of texts is encoded
as the same batch whichever process takes it (a text's activations move by ~1e-5 with its
batch-mates), and results are put back in unit order, never in arrival order. Must not: decide
what the units are (synthesis and augmentation do).

Without a launcher there is one process and nothing is gathered:

>>> ranks = Ranks.current()
>>> ranks.world, ranks.share(["a", "b", "c"])
(1, [(0, 'a'), (1, 'b'), (2, 'c')])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from fac_metric import FeatureProfile, Ranks, SparseActivations, Threshold

ENCODE_BLOCK = 64
"""Texts per encoding unit. Each block is one ``FeatureSpace.encode`` call, so its batches (and
their floating-point sums) are the same for 1 or N processes."""


def profile_spread(space, items: Sequence, ranks: Ranks, threshold: Threshold, *,
                   cache: str | os.PathLike | None = None, batch_size: int = 32, show_progress: bool = True,
                   desc: str = "Encoding", block: int = ENCODE_BLOCK,
                   work: dict | None = None) -> tuple[FeatureProfile, SparseActivations]:
    """The profile of ``items`` at ``threshold`` and, per item in order, its entries above δ.

    Blocks of ``block`` texts go round-robin to the processes; each process folds its blocks
    into one profile, and the processes' profiles merge by max/sum (exact, so the result is the
    same for any count). Only the entries above δ travel and stay in memory. With ``cache`` (a
    folder), each encoded block is saved there as it finishes and read back instead of encoded
    on a later run, so a killed run keeps the encoding it paid for. ``work`` (a dict), if given,
    gets this process' share: ``{"encoded": [block ids], "loaded": [block ids read from cache]}``.
    """
    from tqdm.auto import tqdm

    blocks = [range(start, min(start + block, len(items))) for start in range(0, len(items), block)]
    folder = Path(cache) if cache is not None else None
    mine = ranks.share(blocks)
    bar = tqdm(total=sum(len(b) for _, b in mine), desc=desc, unit="text", disable=not show_progress)
    active: list[tuple[int, dict[str, np.ndarray]]] = []

    def encoded_blocks():
        for k, rows in mine:
            path = folder / f"block-{k:06d}-{block}.safetensors" if folder is not None else None
            if path is not None and path.is_file():
                acts, kind = SparseActivations.load(path), "loaded"
            else:
                acts, kind = space.encode([items[i] for i in rows], batch_size=batch_size, show_progress=False), "encoded"
                if path is not None:
                    acts.save(path)  # atomic: a kill leaves a stray .tmp, never a torn block
            if work is not None:
                work.setdefault(kind, []).append(k)
            active.append((k, acts.above(threshold.per_latent).to_arrays()))
            bar.update(len(rows))
            yield acts

    # Only this process' blocks stream through; only their entries above δ stay in memory.
    profile = FeatureProfile.from_activations(encoded_blocks(), threshold)
    bar.close()
    profile = ranks.merged(profile)
    found = [SparseActivations.from_arrays(a, threshold.fingerprint) for a in ranks.gather(active)]
    if not found:
        return profile, SparseActivations.from_rows([], [], space.d_sae, threshold.fingerprint)
    return profile, SparseActivations.concat(found)


def encode_one_by_one(space, items: Sequence) -> SparseActivations:
    """Activations of each item encoded alone: a text's values then never depend on what else is encoded."""
    return SparseActivations.concat([space.encode([item], batch_size=1, show_progress=False) for item in items])


__all__ = ["Ranks", "profile_spread", "encode_one_by_one", "ENCODE_BLOCK"]
