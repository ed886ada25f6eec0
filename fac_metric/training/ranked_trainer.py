"""One SAE trained by every process of a launch: data parallel, the same steps as one process.

Owns: :class:`RankedTrainer`, sae-lens' ``SAETrainer`` spread over :class:`~fac_metric.Ranks`.
Every process reads the same global batches (same seed) and trains on its own slice of each;
gradients are averaged over the processes during ``backward`` (before sae-lens clips them), so
every process takes the same optimiser step on the same weights, as DDP does. sae-lens' losses
are batch means, so the averaged gradient is the one-process gradient of the whole batch (to
float summation order). The dead-latent counters and firing counts are combined after each
step (a latent fired if it fired on any slice), so the TopK auxiliary loss sees the dead
latents one process would. Only process 0 writes checkpoints. Must not: choose the recipe
(``sae_training.train_sae`` does) or read residuals.

With one process it is sae-lens' trainer, unchanged.
"""

from __future__ import annotations

from typing import Iterator

import torch
from sae_lens import SAETrainer

from fac_metric.ranks import Ranks


def slices(batches: Iterator[torch.Tensor], ranks: Ranks) -> Iterator[torch.Tensor]:
    """This process' slice of every global batch: rows ``[rank * b/world, (rank+1) * b/world)``.

    >>> next(slices(iter([torch.arange(6)]), Ranks(rank=1, world=3))).tolist()
    [2, 3]
    """
    for batch in batches:
        per = batch.shape[0] // ranks.world
        yield batch[ranks.rank * per : (ranks.rank + 1) * per]


class RankedTrainer(SAETrainer):
    """``SAETrainer`` whose ``cfg.train_batch_size_samples`` is the *global* batch; feed it
    :func:`slices` of the global batches. ``sae`` must start equal on every process (it is
    broadcast from process 0 to make sure)."""

    def __init__(self, *args, ranks: Ranks, **kwargs):
        super().__init__(*args, **kwargs)
        self.ranks = ranks
        if ranks.world > 1:
            if self.cfg.train_batch_size_samples % ranks.world:
                raise ValueError(f"batch size {self.cfg.train_batch_size_samples} does not split over "
                                 f"{ranks.world} processes: use a multiple of {ranks.world}")
            with torch.no_grad():
                for p in self.sae.parameters():
                    torch.distributed.broadcast(p.data, 0)
                    # Averaged as soon as backward has it: sae-lens clips the norm right after.
                    p.register_post_accumulate_grad_hook(self._average_grad)

    def _average_grad(self, p: torch.Tensor) -> None:
        torch.distributed.all_reduce(p.grad)
        p.grad.div_(self.ranks.world)

    def step(self, batch: torch.Tensor):
        if self.ranks.world == 1:
            return super().step(batch)
        freq_before = self.act_freq_scores.clone()
        out = super().step(batch)
        dist = torch.distributed
        # n_training_samples counts the global batch, as one process would.
        self.n_training_samples += batch.shape[0] * (self.ranks.world - 1)
        # Each process zeroed the counter of the latents its slice fired: the minimum is zero
        # where any slice fired and "one more step" elsewhere, exactly one process' update.
        dist.all_reduce(self.n_forward_passes_since_fired, op=dist.ReduceOp.MIN)
        fired = self.act_freq_scores - freq_before
        dist.all_reduce(fired)
        self.act_freq_scores = freq_before + fired
        return out

    def save_checkpoint(self, *args, **kwargs) -> None:
        # Every process holds the same weights and counters: one copy on disk is the checkpoint.
        if self.ranks.main:
            super().save_checkpoint(*args, **kwargs)
        self.ranks.barrier()


__all__ = ["RankedTrainer", "slices"]
