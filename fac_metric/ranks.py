"""Which process of an ``accelerate launch`` (or ``torchrun``) this is, and gathering across them.

Owns: :class:`Ranks` (rank, world size, this process' accelerator), the round-robin share of an
ordered list of work units, gathering everyone's results back in unit order, merging profiles,
and a barrier. Every part of fac that spreads work over processes (scoring, profiling,
augmentation, synthesis) uses this one class, so a result never depends on the number of
processes. Must not: decide what the units are.

Without a launcher there is one process and nothing is gathered:

>>> ranks = Ranks.current()
>>> ranks.world, ranks.share(["a", "b", "c"])
(1, [(0, 'a'), (1, 'b'), (2, 'c')])
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True)
class Ranks:
    """This process' place among ``world`` processes (``rank`` 0 is the main one)."""

    rank: int = 0
    world: int = 1
    device: str | None = None
    """This process' accelerator (``cuda:<local rank>``) when several share a machine, else None."""

    @classmethod
    def current(cls) -> "Ranks":
        """The processes of the running ``accelerate launch`` (or ``torchrun``), else a single one.

        Without CUDA the processes talk over gloo on CPU: ``accelerate launch --multi_gpu
        --num_processes N`` (or ``torchrun --nproc_per_node N``) starts them; accelerate 1.15's
        ``--cpu --num_processes N`` starts only one unless an MPI hostfile is given.
        """
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
        state = PartialState(cpu=cpu)
        return cls(state.process_index, state.num_processes, None if cpu else str(state.device))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, units: Sequence[_T]) -> list[tuple[int, _T]]:
        """``(position, unit)`` of the units this process takes: every ``world``-th, from ``rank``."""
        return [(k, u) for k, u in enumerate(units) if k % self.world == self.rank]

    def gather(self, mine: list[tuple[int, Any]]) -> list[Any]:
        """Every process' ``(position, result)`` pairs, merged and put back in position order."""
        if self.world == 1:
            pairs = mine
        else:
            from accelerate.utils import gather_object

            pairs = gather_object(mine)
        return [result for _, result in sorted(pairs, key=lambda p: p[0])]

    def barrier(self) -> None:
        if self.world > 1:
            from accelerate import PartialState

            PartialState().wait_for_everyone()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on process 0 first, then on the others (a download or a cache that the
        others then read from process 0's copy instead of writing it at the same time)."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def merged(self, part):
        """Every process' ``part`` combined by its ``merge`` (a ``FeatureProfile``, an
        ``AnchorMatch``, ``TopSpans``: max/sum, exact), the same on every process."""
        if self.world == 1:
            return part
        parts = self.gather([(self.rank, part)])
        out = parts[0]
        for part in parts[1:]:
            out = out.merge(part)
        return out


__all__ = ["Ranks"]
