"""The training sets whose scores are compared with what a classifier learns from them.

Every set is the same 300 negative pool texts plus ``n`` positive pool texts (n = 10, 20, 40, 80;
harmful ones in the study task) drawn from one positive source ("narrow"), two or three sources
(equal shares), or the whole positive pool ("spread"), over several seeds. A *composition* is (sources, n): sets of one
composition differ only by seed, so the group bootstrap resamples compositions, not sets.

The anchor (what the task looks like, as a user would sample it) is a fixed 20 % of each positive
source's pool, and is never drawn into a training set: a set that contained anchor texts would
cover their features trivially, under every score.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from experiments.validity.task import Item, positive_sources

SIZES = (10, 20, 40, 80)
N_BENIGN = 300


@dataclass(frozen=True)
class TrainingSet:
    name: str
    composition: str
    sources: tuple[str, ...]
    n_positive: int
    seed: int
    rows: tuple[int, ...]
    """Indices into the task's items: the negative block first, then the positive draw."""


def _mixes(sources: tuple[str, ...], seed: int) -> list[tuple[str, ...]]:
    """Single sources, six pairs and four triples (seeded picks), and the whole pool."""
    rng = random.Random(f"mixes:{seed}")
    pairs = rng.sample(list(itertools.combinations(sources, 2)), 6)
    triples = rng.sample(list(itertools.combinations(sources, 3)), 4)
    return [(s,) for s in sources] + pairs + triples + [sources]


ANCHOR_SHARE = 0.2


def anchor_rows(items: list[Item], seed: int = 0) -> list[int]:
    """A stratified 20 % of each positive source's pool texts (seeded)."""
    out = []
    for s in positive_sources(items):
        rows = [i for i, it in enumerate(items) if it.split == "pool" and it.source == s]
        out += random.Random(f"anchor:{s}:{seed}").sample(rows, round(ANCHOR_SHARE * len(rows)))
    return sorted(out)


def small_anchor(anchor: list[int], n: int = 40, seed: int = 0) -> list[int]:
    """``n`` texts of the anchor, drawn at random (not stratified: a user with 40 texts has no strata)."""
    return sorted(random.Random(f"small:{seed}").sample(anchor, n))


def design(items: list[Item], *, seeds_per_composition: dict[int, int] | None = None, sizes=SIZES,
           n_benign: int = N_BENIGN, seed: int = 0) -> list[TrainingSet]:
    """All training sets. ``seeds_per_composition`` maps the number of sources mixed (1, 2, 3, or
    ``"all"``) to how many seeds each of its compositions gets (default 3, 2, 2, 5)."""
    per = seeds_per_composition or {1: 3, 2: 2, 3: 2, "all": 5}
    positive = positive_sources(items)
    pool = [i for i, it in enumerate(items) if it.split == "pool"]
    benign = [i for i in pool if items[i].label == 0]
    benign_block = tuple(sorted(random.Random(f"benign:{seed}").sample(benign, n_benign)))
    held = set(anchor_rows(items, seed))
    by_source = {s: [i for i in pool if items[i].source == s and i not in held] for s in positive}
    out = []
    for sources in _mixes(positive, seed):
        whole = len(sources) == len(positive)
        for n in sizes:
            if any(len(by_source[s]) < -(-n // len(sources)) for s in sources):
                continue  # a source too small for this draw (e.g. 80 from a source of 58)
            comp = f"{'all' if whole else '+'.join(sources)}@{n}"
            for k in range(per["all" if whole else len(sources)]):
                rng = random.Random(f"{comp}:{k}:{seed}")
                if whole:
                    draw = rng.sample([i for s in sources for i in by_source[s]], n)
                else:
                    shares = [n // len(sources) + (j < n % len(sources)) for j in range(len(sources))]
                    draw = [i for s, m in zip(sources, shares) for i in rng.sample(by_source[s], m)]
                out.append(TrainingSet(f"{comp}#{k}", comp, sources, n, k, benign_block + tuple(sorted(draw))))
    return out
