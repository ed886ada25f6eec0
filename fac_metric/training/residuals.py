"""The training data of an SAE: counted-token residuals in fp16 shards on disk, and the endless
shuffled batches a trainer reads from them, either all in memory or streamed a buffer at a time.

Owns: :class:`ResidualShards` (the shard files :func:`~fac_metric.training.sae_training.extract_shards`
writes), :class:`InMemoryResiduals` (every row in RAM, one global permutation per epoch: the
default recipe's exact order) and :class:`StreamedResiduals` (memory bounded by ``buffer_rows``
whatever the corpus: per epoch the shards come in a seeded order, ``buffer_rows`` of them are
shuffled together, so an 8B model's residuals never need to fit in RAM). Both drop outliers
(norms above ``factor`` x the median) and resume by skipping the batches already trained on.
Must not: run a model or train anything.

>>> import tempfile, torch
>>> from safetensors.torch import save_file
>>> folder = Path(tempfile.mkdtemp())
>>> for s in range(3):
...     save_file({"acts": torch.full((4, 2), float(s + 1), dtype=torch.float16)}, str(folder / f"acts-{s:05d}.safetensors"))
>>> shards = ResidualShards.in_folder(folder)
>>> shards.n_rows, shards.d_in
(12, 2)
>>> data = StreamedResiduals(shards, factor=10.0, buffer_rows=8, seed=0)
>>> epoch = [b for _, b in zip(range(data.n_rows // 2), data.batches(2))]
>>> sorted(torch.cat(epoch)[:, 0].tolist()) == sorted(shards.load_all().float()[:, 0].tolist())   # every row once
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from safetensors import safe_open
from safetensors.torch import load_file


@dataclass(frozen=True)
class ResidualShards:
    """Shard files of ``[rows, d_in]`` fp16 residuals (key ``acts``), in order."""

    paths: tuple[Path, ...]

    @classmethod
    def in_folder(cls, folder: str | Path) -> "ResidualShards":
        return cls(tuple(sorted(Path(folder).glob("acts-*.safetensors"))))

    def rows_of(self, i: int) -> int:
        with safe_open(str(self.paths[i]), framework="pt") as fh:
            return int(fh.get_slice("acts").get_shape()[0])

    @property
    def n_rows(self) -> int:
        return sum(self.rows_of(i) for i in range(len(self.paths)))

    @property
    def d_in(self) -> int:
        with safe_open(str(self.paths[0]), framework="pt") as fh:
            return int(fh.get_slice("acts").get_shape()[1])

    def load(self, i: int) -> torch.Tensor:
        return load_file(str(self.paths[i]))["acts"]

    def load_all(self) -> torch.Tensor:
        return torch.cat([self.load(i) for i in range(len(self.paths))])


def drop_outliers(acts: torch.Tensor, factor: float, median: float | None = None) -> torch.Tensor:
    """Drop rows whose norm exceeds ``factor`` x the median norm (they spike the loss); the
    median is ``acts``' own unless given (a streamed corpus estimates it from a sample)."""
    norms = acts.float().norm(dim=1)
    return acts[norms <= factor * (norms.median() if median is None else median)]


class InMemoryResiduals:
    """Every row in RAM: the default recipe (one permutation of all rows per epoch)."""

    def __init__(self, acts: torch.Tensor):
        self.acts = acts

    @property
    def n_rows(self) -> int:
        return int(self.acts.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.acts.shape[1])

    def sample(self, n: int) -> torch.Tensor:
        return self.acts[:n].float()

    def batches(self, batch_size: int, seed: int = 0, skip: int = 0) -> Iterator[torch.Tensor]:
        """Endless shuffled batches (a new permutation each epoch), skipping the first ``skip``."""
        gen = torch.Generator().manual_seed(seed)
        n_per_epoch = self.n_rows // batch_size
        step = 0
        while True:
            perm = torch.randperm(self.n_rows, generator=gen)
            for b in range(n_per_epoch):
                if step >= skip:
                    yield self.acts[perm[b * batch_size : (b + 1) * batch_size]].float()
                step += 1


class StreamedResiduals:
    """Rows read from ``shards`` a buffer at a time: memory is ``buffer_rows`` rows, not the corpus.

    The outlier median is estimated on the first ``sample_rows`` rows; one pass over the shards
    counts the rows kept (``n_rows``), reading one shard at a time.
    """

    def __init__(self, shards: ResidualShards, factor: float, *, buffer_rows: int = 1_000_000, seed: int = 0,
                 sample_rows: int = 200_000):
        if not shards.paths:
            raise ValueError("no residual shards to train on")
        self.shards, self.factor, self.buffer_rows, self.seed = shards, factor, max(1, buffer_rows), seed
        head, n = [], 0
        for i in range(len(shards.paths)):
            if n >= sample_rows:
                break
            head.append(shards.load(i))
            n += head[-1].shape[0]
        self.median = float(torch.cat(head)[:sample_rows].float().norm(dim=1).median())
        self._kept = [int(self._shard(i).shape[0]) for i in range(len(shards.paths))]

    def _shard(self, i: int) -> torch.Tensor:
        return drop_outliers(self.shards.load(i), self.factor, self.median)

    @property
    def n_rows(self) -> int:
        return sum(self._kept)

    @property
    def d_in(self) -> int:
        return self.shards.d_in

    def sample(self, n: int) -> torch.Tensor:
        out, have = [], 0
        for i in range(len(self.shards.paths)):
            if have >= n:
                break
            out.append(self._shard(i))
            have += out[-1].shape[0]
        return torch.cat(out)[:n].float()

    def batches(self, batch_size: int, seed: int | None = None, skip: int = 0) -> Iterator[torch.Tensor]:
        """Endless batches: per epoch a seeded shard order, buffers of about ``buffer_rows`` rows
        shuffled together, leftovers carried into the next buffer; the first ``skip`` skipped
        (computed, not trained on, so a resumed run sees the batches it would have seen)."""
        gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
        step = 0
        while True:
            order = torch.randperm(len(self.shards.paths), generator=gen).tolist()
            pending: list[torch.Tensor] = []
            size = 0
            for k, i in enumerate(order):
                # Skipped buffers are still read: which rows one holds decides the batches after it.
                pending.append(self._shard(i))
                size += pending[-1].shape[0]
                if size < self.buffer_rows and k < len(order) - 1:
                    continue
                buffer = torch.cat(pending)
                buffer = buffer[torch.randperm(buffer.shape[0], generator=gen)]
                n_full = buffer.shape[0] // batch_size
                for b in range(n_full):
                    if step >= skip:
                        yield buffer[b * batch_size : (b + 1) * batch_size].float()
                    step += 1
                pending, size = [buffer[n_full * batch_size :]], buffer.shape[0] - n_full * batch_size


__all__ = ["ResidualShards", "InMemoryResiduals", "StreamedResiduals", "drop_outliers"]
