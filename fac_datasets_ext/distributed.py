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
            path = folder / block_name(k, block) if folder is not None else None
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


def block_name(k: int, block: int = ENCODE_BLOCK) -> str:
    """The cache file of encoding block ``k`` (of ``block`` texts) in a run folder."""
    return f"block-{k:06d}-{block}.safetensors"


def encode_blocks_in_workers(space, items: Sequence, folder: str | os.PathLike, num_proc: int, *,
                             batch_size: int = 32, block: int = ENCODE_BLOCK) -> list[int]:
    """Encode the blocks :func:`profile_spread` would, in ``num_proc`` worker processes, into its
    cache ``folder`` (blocks already there are skipped); ``profile_spread`` then reads them all.

    ``datasets.map``'s ``num_proc`` for the encoding pass: workers are spawned (a fork of a
    process running torch threads can deadlock), load the space from its ``source`` once each,
    and run one thread each. Returns the blocks they encoded.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from fac_metric import FacInputError

    if space.source is None:
        raise FacInputError("num_proc needs a feature space the workers can load again: pass its folder, its Hub "
                            "id or None (the default), not a FeatureSpace built in memory")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blocks = [range(start, min(start + block, len(items))) for start in range(0, len(items), block)]
    todo = [k for k in range(len(blocks)) if not (folder / block_name(k, block)).is_file()]
    if not todo:
        return []
    threads = max(1, (os.cpu_count() or 1) // num_proc)
    tasks = [([items[i] for i in blocks[k]], str(folder / block_name(k, block)), batch_size) for k in todo]
    try:
        with ProcessPoolExecutor(min(num_proc, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(space.source, space.fingerprint, threads)) as pool:
            list(pool.map(_encode_block, tasks))
    except BrokenProcessPool:
        # A worker can also die of memory: the message names the usual cause and points at the real one.
        raise FacInputError(f"an encoding worker of num_proc={num_proc} stopped (its message is above; where it says "
                            "your script is imported again, call augment_with_fac under `if __name__ == "
                            "\"__main__\":`, as spawned workers import the script); the blocks already encoded are "
                            "kept") from None
    return todo


SPAWN_GUARD = ("fac: num_proc workers import your script again, and it calls augment_with_fac at import: "
               "put the call under `if __name__ == \"__main__\":`")


def check_not_spawning() -> None:
    """Stop a spawned worker that is importing the user's script and reached an augment call in it.

    A script without an ``if __name__ == "__main__":`` guard would otherwise run the whole
    augmentation again in every worker (where it waits on the parent's run lock). The worker
    exits with one line; the parent then says how to fix the script.
    """
    import multiprocessing

    # What multiprocessing's own "bootstrapping phase" check reads: set while a child re-runs the main module.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(SPAWN_GUARD)


_WORKER_SPACE = None


def _start_worker(source, fingerprint: str, threads: int) -> None:
    global _WORKER_SPACE
    import torch

    from fac_metric import FacMismatchError, get_feature_space

    torch.set_num_threads(threads)
    _WORKER_SPACE = get_feature_space(source)
    if _WORKER_SPACE.fingerprint != fingerprint:
        raise FacMismatchError(f"a worker loaded a feature space with fingerprint {_WORKER_SPACE.fingerprint}, not "
                               f"{fingerprint}: its folder changed on disk during the run")


def _encode_block(task: tuple) -> None:
    texts, path, batch_size = task
    _WORKER_SPACE.encode(texts, batch_size=batch_size, show_progress=False).save(path)  # atomic


def encode_one_by_one(space, items: Sequence) -> SparseActivations:
    """Activations of each item encoded alone: a text's values then never depend on what else is encoded."""
    return SparseActivations.concat([space.encode([item], batch_size=1, show_progress=False) for item in items])


__all__ = ["Ranks", "profile_spread", "encode_blocks_in_workers", "block_name", "encode_one_by_one", "ENCODE_BLOCK"]
