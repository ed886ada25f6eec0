"""Top-span collection memory: bounded by features x heap size, not by the corpus.

    python benchmarks/span_memory.py                # 1,024 vs 10,240 texts, k=20
    python benchmarks/span_memory.py --n 256        # a quicker look

Each arm runs in a fresh process started from this script (``--child``): load the space once
(fp32), run ``collect_spans`` over 64 warm-up texts (allocator pools, lazy imports, the first
batches' buffers; the warm-up heaps are dropped), hand the C heap's free pages back to the OS
(``malloc_trim``: what glibc keeps of freed memory otherwise shifts the baseline by tens of MB
between identical runs), note RSS, then run ``collect_spans`` over N texts (1x) or 10 N texts
(10x). Growth = peak RSS during collection - RSS before it, the peak being the kernel's exact
high-water mark (reset at the start; a 20 ms sampler where that is unavailable). Texts are
generated lazily, so the corpus itself is never in memory: what grows is what collection keeps.
The target: the 10x arm's growth within 20% of the 1x arm's.

The 10x arm also prints its peak growth after each chunk of 1,024 texts: a leak shows as a
peak that keeps rising, a bound as one that levels off. On this project's machine it levels
off after about four chunks, while the 1x arm is a single chunk; the heaps' own objects grow by
a few MB between the two, the rest is freed encoder transients (the SAE's dense
``[tokens, d_sae]`` blocks, the LM's activations) that the allocator keeps and that the next
chunk's transients land beside (docs/performance.md). ``--mmap-threshold-mb 4`` fixes glibc's
mmap threshold (``GLIBC_TUNABLES``; by default it rises to the largest freed block under 32 MB,
which moves those blocks into the fragmenting main heap) to tell allocator from collection.

Texts are short (``--words`` words) and deterministic: the bundled examples (IFEval anchor, Brown
unseen, IFEval held out) in turn, each behind its own number and, on later passes over the pool,
a shifted word window, so no two texts are the same. The heaps (``d_sae x k`` spans) fill as
distinct latents fire, so each arm also reports how many heap slots it filled.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

from _memory import PeakRSS, release_free_heap  # benchmarks/_memory.py (this script's folder is on sys.path)

FACTOR = 10
CHUNK = 128  # texts per iter_peaks chunk (collect_spans' default)
WARMUP_TEXTS = 64
TARGET = 0.20


def _pool() -> list[list[str]]:
    from fac_metric.examples import load_example

    return [t.split() for name in ("ifeval_anchor", "brown_unseen", "ifeval_heldout") for t in load_example(name)]


def make_texts(start: int, stop: int, words: int):
    """Texts ``start..stop-1``, lazily: numbered, ``words`` words from the pool, window shifted per pass."""
    pool = _pool()
    for i in range(start, stop):
        text = pool[i % len(pool)]
        offset = (i // len(pool)) * 3 % max(1, len(text) - words + 1)
        yield f"{i}. " + " ".join(text[offset : offset + words])


def child(args) -> None:
    import torch

    from fac_metric.space.feature_space import FeatureSpace
    from fac_metric.meaning.spans import collect_spans

    t0 = time.perf_counter()
    space = FeatureSpace.load(args.feature_space, dtype="float32", text_format=args.text_format)
    load_s = time.perf_counter() - t0
    # Warm-up on texts the measured run does not see (numbered past its end); heaps dropped.
    warm = collect_spans(space, list(make_texts(10**7, 10**7 + WARMUP_TEXTS, args.words)), k=args.k,
                         batch_size=args.batch_size, show_progress=False)
    del warm
    gc.collect()
    trimmed = not args.no_trim and release_free_heap()
    t0 = time.perf_counter()
    by_chunk: list[float] = []

    def texts():
        # Asked for text i * CHUNK, iter_peaks has encoded and folded in the i chunks before it.
        for i, text in enumerate(make_texts(0, args.child, args.words)):
            if i and i % CHUNK == 0:
                by_chunk.append(round(rss.peak_so_far() - rss.base, 1))
            yield text

    with PeakRSS(interval=0.02, kernel_peak=True) as rss:
        heaps = collect_spans(space, texts(), k=args.k, batch_size=args.batch_size, chunk_size=CHUNK,
                              show_progress=False)
    wall = time.perf_counter() - t0
    filled = heaps.texts >= 0
    span_bytes = sum(sys.getsizeof(s) + sys.getsizeof(s[0]) for s in heaps.spans[filled])
    print(json.dumps({
        "texts": heaps.n_texts, "tokens": int(heaps.token_counts.sum()), "baseline_mb": round(rss.base, 1),
        "growth_mb": round(rss.growth, 1), "growth_by_chunk_mb": by_chunk + [round(rss.growth, 1)],
        "wall_s": round(wall, 1), "load_s": round(load_s, 1),
        "heap_slots_filled": int(filled.sum()), "heap_slots": int(filled.size),
        "latents_fired": int((heaps.count > 0).sum()), "span_objects_mb": round(span_bytes / 2**20, 1),
        "threads": torch.get_num_threads(), "exact_peak": rss.kernel_peak, "trimmed": trimmed,
    }))


def run_arm(args, n: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--k", str(args.k), "--batch-size", str(args.batch_size),
           "--words", str(args.words), "--text-format", args.text_format] + ["--no-trim"] * args.no_trim
    if args.feature_space:
        cmd += ["--feature-space", args.feature_space]
    env = dict(os.environ)
    if args.mmap_threshold_mb:
        # A fixed threshold also turns off glibc's dynamic one (see the module docstring).
        env["GLIBC_TUNABLES"] = f"glibc.malloc.mmap_threshold={int(args.mmap_threshold_mb * 2**20)}"
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1024, help="texts in the 1x arm (the 10x arm gets 10 times as many)")
    p.add_argument("--k", type=int, default=20, help="spans kept per latent")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--words", type=int, default=24, help="words per text (after its number)")
    p.add_argument("--text-format", choices=("raw", "chat"), default="raw")
    p.add_argument("--feature-space", help="default: the embedded one")
    p.add_argument("--no-trim", action="store_true", help="keep the C heap's free pages in the baseline")
    p.add_argument("--mmap-threshold-mb", type=float,
                   help="run the arms with glibc's mmap threshold fixed at this size (default: glibc's dynamic one)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    arms = {"1x": run_arm(args, args.n), f"{FACTOR}x": run_arm(args, FACTOR * args.n)}
    small, large = arms["1x"], arms[f"{FACTOR}x"]
    ratio = large["growth_mb"] / max(small["growth_mb"], 1.0)
    print(f"{'arm':>4} {'texts':>7} {'tokens':>9} {'baseline MB':>11} {'growth MB':>9} {'heap slots filled':>17} "
          f"{'span objs MB':>12} {'wall s':>7}")
    for name, r in arms.items():
        print(f"{name:>4} {r['texts']:>7,} {r['tokens']:>9,} {r['baseline_mb']:>11,.1f} {r['growth_mb']:>9.1f} "
              f"{r['heap_slots_filled']:>8,}/{r['heap_slots']:<8,} {r['span_objects_mb']:>12.1f} {r['wall_s']:>7.1f}")
    print(f"peak growth (MB) after each chunk of {CHUNK:,} texts, {FACTOR}x arm: "
          + " ".join(f"{g:.0f}" for g in large["growth_by_chunk_mb"]))
    ok = abs(ratio - 1) <= TARGET
    print(f"growth {FACTOR}x / 1x = {ratio:.2f}: {'within' if ok else 'NOT within'} the {TARGET:.0%} target")
    print(json.dumps({"arms": arms, "growth_ratio": round(ratio, 2), "within_target": ok,
                      "glibc_mmap_threshold_mb": args.mmap_threshold_mb or "dynamic (default)",
                      "note": "growth below 1 MB counts as 1 MB in the ratio"}))


if __name__ == "__main__":
    main()
